use std::net::IpAddr;

use chrono::TimeZone;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn strict() -> AddressPolicy {
    AddressPolicy::default()
}

#[test]
fn special_addresses_are_refused_by_default() {
    for text in [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "0.1.2.3",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2001:db8::1",
        // Accepted before (the hostile-tenant run of issue 21):
        "64:ff9b:1::7f00:1",  // local-use NAT64 (127.0.0.1 behind it)
        "64:ff9b:1::808:808", // local-use NAT64, whatever it embeds
        "::ffff:0:7f00:1",    // SIIT, IPv4-translated 127.0.0.1
        "::ffff:0:808:808",   // SIIT
        "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
        "2001:0:7f00:1::1",   // Teredo, server 127.0.0.1
        "2001:2::1",          // benchmarking
        "3fff::1",            // documentation (RFC 9637)
        "3fff:fff::1",
        "2001:10::1",     // ORCHID (deprecated)
        "2001:20::1",     // ORCHIDv2
        "5f00::1",        // SRv6 SIDs
        "100::1",         // discard-only
        "fec0::1",        // site-local (deprecated)
        "::ffff:8.8.8.8", // IPv4-mapped: not globally reachable as IPv6
        "::8.8.8.8",      // IPv4-compatible (deprecated)
        "4000::1",        // unallocated
        "192.0.0.170",    // NAT64 discovery
        "192.88.99.1",    // 6to4 relay anycast (deprecated)
        "198.51.100.7",
        "203.0.113.9",
    ] {
        assert!(is_special(ip(text)), "{text} must be special");
        assert!(!strict().permits(ip(text)), "{text} must be refused");
    }
}

#[test]
fn public_addresses_are_permitted() {
    for text in [
        "93.184.216.34",
        "8.8.8.8",
        "51.79.43.241",
        "2606:4700::1111",
        "64:ff9b::808:808",
        "2002:808:808::1",
        // The registries' globally reachable entries among special blocks.
        "192.0.0.9",
        "192.0.0.10",
        "192.31.196.1",
        "192.52.193.1",
        "192.175.48.1",
        "2001:1::1",
        "2001:1::3",
        "2001:3::1",
        "2001:4:112::1",
        "2620:4f:8000::1",
        // Teredo with a public server and a public client (8.8.8.8, inverted).
        "2001:0:808:808:0:0:f7f7:f7f7",
        "3fff:1000::1",
    ] {
        assert!(strict().permits(ip(text)), "{text} must be permitted");
    }
}

#[test]
fn allowed_networks_and_allow_private_open_only_what_they_say() {
    let policy = AddressPolicy {
        allow_nets: vec!["127.0.0.2/32".parse().unwrap()],
        ..AddressPolicy::default()
    };
    assert!(policy.permits(ip("127.0.0.2")));
    assert!(!policy.permits(ip("127.0.0.1")));
    assert!(!policy.permits(ip("10.0.0.1")));
    let open = AddressPolicy {
        allow_private: true,
        ..AddressPolicy::default()
    };
    assert!(open.permits(ip("127.0.0.1")) && open.permits(ip("169.254.169.254")));
}

#[test]
fn one_forbidden_address_refuses_the_whole_name() {
    let policy = strict();
    assert!(policy.permits_all(&[ip("8.8.8.8")]));
    assert!(!policy.permits_all(&[ip("8.8.8.8"), ip("127.0.0.1")]));
    assert!(!policy.permits_all(&[]));
}

#[test]
fn urls_must_be_https_with_a_host_and_nothing_hidden() {
    let ok = WebhookUrl::parse("https://hooks.example.com/in?x=1", &strict()).unwrap();
    assert_eq!(ok.host(), &WebhookHost::Name("hooks.example.com".into()));
    assert_eq!(ok.port(), 443);
    assert_eq!(ok.request_target(), "/in?x=1");
    assert!(ok.is_https());
    for bad in [
        "",
        "http://hooks.example.com/",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com/#frag",
        "https://localhost/",
        "https://printer.local/",
        "https://db.internal/hook",
        "https://app.localhost/",
        "https://abc.onion/",
        "https://0.aa*",
        "https://a_b.example/",
        "https://-a.example/",
        "https://intranet:8443/",
        " https://hooks.example.com/",
        "hooks.example.com",
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/",
        "https://[64:ff9b:1::7f00:1]/",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "https://hooks.example.com:22/",
        "https://hooks.example.com:25/",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:1023/",
    ] {
        assert_eq!(
            WebhookUrl::parse(bad, &strict()),
            Err(InvalidWebhookUrl),
            "{bad:?} must be refused"
        );
    }
    let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
    assert!(WebhookUrl::parse(&long, &strict()).is_err());
}

#[test]
fn http_and_literal_addresses_follow_the_policy() {
    let policy = AddressPolicy {
        allow_http: true,
        allow_nets: vec!["127.0.0.2/32".parse().unwrap()],
        allow_private: false,
    };
    let url = WebhookUrl::parse("http://127.0.0.2:8080/hook", &policy).unwrap();
    assert_eq!(url.host(), &WebhookHost::Ip(ip("127.0.0.2")));
    assert_eq!(url.port(), 8080);
    assert_eq!(url.host_str(), "127.0.0.2");
    assert!(!url.is_https());
    assert!(WebhookUrl::parse("http://127.0.0.1:8080/hook", &policy).is_err());
    let v6 = WebhookUrl::parse("https://[2606:4700::1111]/", &AddressPolicy::default()).unwrap();
    assert_eq!(v6.host_str(), "2606:4700::1111");
    assert_eq!(v6.host_header(), "[2606:4700::1111]");
    assert_eq!(url.host_header(), "127.0.0.2:8080");
    let default_port = WebhookUrl::parse("https://hooks.example.com:443/", &strict()).unwrap();
    assert_eq!(default_port.host_header(), "hooks.example.com");
}

#[test]
fn the_retry_schedule_gives_one_delay_per_failed_attempt_then_none() {
    let schedule = RetrySchedule::standard();
    assert_eq!(schedule.after(0), None);
    assert_eq!(schedule.after(1), Some(Duration::from_secs(5)));
    assert_eq!(schedule.after(2), Some(Duration::from_secs(300)));
    assert_eq!(schedule.after(7), Some(Duration::from_secs(36_000)));
    assert_eq!(schedule.after(8), None);
    assert_eq!(RetrySchedule::new(vec![]).after(1), None);
}

#[test]
fn ids_have_one_shape() {
    let id = WebhookId::from_random([0xab; 16]);
    assert_eq!(id.as_str(), format!("wh_{}", "ab".repeat(16)));
    assert_eq!(WebhookId::parse(id.as_str()), Some(id));
    for bad in [
        "wh_",
        "wh_ABABABABABABABABABABABABABABABAB",
        "xx_abababababababababababababababab",
        "wh_abab",
    ] {
        assert_eq!(WebhookId::parse(bad), None, "{bad}");
    }
}

#[test]
fn a_secret_shows_as_whsec_base64_and_debug_hides_it() {
    let secret = WebhookSecret(Zeroizing::new(vec![0xff, 0x00, 0x10]));
    assert_eq!(&*secret.to_whsec(), "whsec_/wAQ");
    assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
}

#[test]
fn the_payload_is_the_event_as_json() {
    let event = Event {
        id: 42,
        kind: EventType::SenderRegistered,
        domain: Some("example.com".into()),
        selector: None,
        email: Some("we\"ird\\\u{1}@example.com".into()),
        created_at: Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap(),
    };
    let body = payload(&event);
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({
            "id": 42,
            "type": "sender.registered",
            "createdAt": "2026-11-29T12:00:00Z",
            "data": {"domain": "example.com", "email": "we\"ird\\\u{1}@example.com"}
        })
    );
    assert!(body.starts_with(r#"{"id":42,"type":"sender.registered","#));
    let bare = Event {
        domain: None,
        email: None,
        ..event
    };
    assert!(payload(&bare).ends_with(r#""data":{}}"#));
    assert_eq!(
        signed_content("42", 1_700_000_000, "{}"),
        "42.1700000000.{}"
    );
}

#[test]
fn filters_pass_what_they_name() {
    assert!(filter_accepts(&None, EventType::DomainVerified));
    let only = Some(vec![EventType::DomainVerified]);
    assert!(filter_accepts(&only, EventType::DomainVerified));
    assert!(!filter_accepts(&only, EventType::DomainFailing));
}
