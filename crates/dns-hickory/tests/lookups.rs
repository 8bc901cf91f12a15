//! `HickoryDns` against the in-process authoritative server, over real UDP and TCP on
//! 127.0.0.1.

use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use dns_hickory::{DnsConfig, HickoryDns};
use domain_core::DomainName;
use domain_core::ports::dns::{Dns, DnsError, MxRecord};

const TIMEOUT: Duration = Duration::from_secs(2);

fn resolver(server: &TestDnsServer, timeout: Duration) -> HickoryDns {
    HickoryDns::new(&DnsConfig::with_servers(vec![server.addr()], timeout))
        .expect("the resolver builds")
}

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).expect("a valid domain")
}

fn mx(preference: u16, exchange: &str) -> MxRecord {
    MxRecord {
        preference,
        exchange: exchange.to_owned(),
    }
}

/// A 2048-bit RSA DKIM record: about 400 octets, so more than one character-string.
fn dkim_value() -> String {
    let key: String = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        .chars()
        .cycle()
        .take(392)
        .collect();
    format!("v=DKIM1; k=rsa; p={key}")
}

#[tokio::test]
async fn only_a_name_with_its_own_soa_is_a_zone_apex() {
    let server = TestDnsServer::start().await;
    server.add_soa("gworkspace.example");
    server.add_txt("mail.gworkspace.example", &["v=spf1 -all"]);
    let dns = resolver(&server, TIMEOUT);

    assert_eq!(dns.soa("gworkspace.example").await, Ok(()));
    assert_eq!(dns.soa("GWorkspace.Example.").await, Ok(()));
    // Inside the zone, with records of other types: NODATA.
    assert_eq!(
        dns.soa("mail.gworkspace.example").await,
        Err(DnsError::NoRecords)
    );
    assert_eq!(
        dns.soa("nope.gworkspace.example").await,
        Err(DnsError::NxDomain)
    );
    let zone = domain_core::find_zone(&dns, &domain("mail.gworkspace.example")).await;
    assert_eq!(zone, Some(domain("gworkspace.example")));

    server.add_soa("mail.gworkspace.example");
    let zone = domain_core::find_zone(&dns, &domain("mail.gworkspace.example")).await;
    assert_eq!(zone, Some(domain("mail.gworkspace.example")));

    server.set_servfail("mail.gworkspace.example");
    let zone = domain_core::find_zone(&dns, &domain("mail.gworkspace.example")).await;
    assert_eq!(
        zone, None,
        "a failed lookup below the apex found decides nothing"
    );
}

#[tokio::test]
async fn mx_records_come_sorted_by_preference_as_published() {
    let server = TestDnsServer::start().await;
    // Published out of order; the exchange's spelling and final dot are kept.
    server.add_mx("example.com", 20, "mx2.example.com.");
    server.add_mx("example.com", 10, "inbound.sendtrim.com.");
    server.add_mx("example.com", 30, "Backup.Example.NET");
    server.add_mx("example.com", 20, "mx1.example.com.");

    let records = resolver(&server, TIMEOUT)
        .mx(&domain("example.com"))
        .await
        .unwrap();

    assert_eq!(
        records,
        [
            mx(10, "inbound.sendtrim.com."),
            mx(20, "mx1.example.com."),
            mx(20, "mx2.example.com."),
            mx(30, "Backup.Example.NET."),
        ]
    );
}

#[tokio::test]
async fn internationalised_domains_are_queried_by_their_a_label() {
    let server = TestDnsServer::start().await;
    server.add_mx("xn--bcher-kva.example", 10, "mx.xn--bcher-kva.example.");

    let records = resolver(&server, TIMEOUT)
        .mx(&domain("bücher.example"))
        .await
        .unwrap();

    assert_eq!(records, [mx(10, "mx.xn--bcher-kva.example.")]);
}

#[tokio::test]
async fn a_long_dkim_value_arrives_as_several_strings_and_joins_back() {
    let server = TestDnsServer::start().await;
    let value = dkim_value();
    assert!(value.len() > 255);
    server.add_txt_value("s1._domainkey.example.com", &value);

    let records = resolver(&server, TIMEOUT)
        .txt("s1._domainkey.example.com")
        .await
        .unwrap();

    assert_eq!(records.len(), 1);
    let strings = &records[0].0;
    assert_eq!(
        strings.iter().map(Vec::len).collect::<Vec<_>>(),
        [255, value.len() - 255]
    );
    assert_eq!(records[0].joined(), value);
}

#[tokio::test]
async fn every_txt_record_keeps_its_own_strings() {
    let server = TestDnsServer::start().await;
    server.add_txt("example.com", &["v=spf1 ", "include:sendtrim.com ~all"]);
    server.add_txt("example.com", &["google-site-verification=abc"]);

    // A trailing dot is accepted too.
    let records = resolver(&server, TIMEOUT)
        .txt("example.com.")
        .await
        .unwrap();

    let mut records: Vec<Vec<Vec<u8>>> = records.into_iter().map(|r| r.0).collect();
    records.sort();
    assert_eq!(
        records,
        [
            vec![b"google-site-verification=abc".to_vec()],
            vec![b"v=spf1 ".to_vec(), b"include:sendtrim.com ~all".to_vec()],
        ]
    );
}

#[tokio::test]
async fn answers_too_large_for_udp_are_fetched_over_tcp() {
    let server = TestDnsServer::start().await;
    let value = "x".repeat(3000);
    server.add_txt_value("big.example.com", &value);

    let records = resolver(&server, TIMEOUT)
        .txt("big.example.com")
        .await
        .unwrap();

    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0.len(), 12);
    assert_eq!(records[0].joined(), value);
    assert!(server.udp_queries() >= 1, "asked over UDP first");
    assert!(server.tcp_queries() >= 1, "then over TCP after TC");
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_nxdomain() {
    let server = TestDnsServer::start().await;
    server.add_mx("example.com", 10, "mx.example.com.");
    let dns = resolver(&server, TIMEOUT);

    assert_eq!(
        dns.mx(&domain("nope.example")).await,
        Err(DnsError::NxDomain)
    );
    assert_eq!(
        dns.txt("_dmarc.nope.example").await,
        Err(DnsError::NxDomain)
    );
}

#[tokio::test]
async fn a_name_without_records_of_the_type_is_no_records() {
    let server = TestDnsServer::start().await;
    server.add_txt("example.com", &["v=spf1 -all"]);
    server.add_txt("s1._domainkey.example.org", &["v=DKIM1; p="]);
    let dns = resolver(&server, TIMEOUT);

    // NODATA: the name has TXT but no MX.
    assert_eq!(
        dns.mx(&domain("example.com")).await,
        Err(DnsError::NoRecords)
    );
    // An empty non-terminal exists too: a name below it has records.
    assert_eq!(
        dns.mx(&domain("example.org")).await,
        Err(DnsError::NoRecords)
    );
}

#[tokio::test]
async fn servfail_is_reported_as_such() {
    let server = TestDnsServer::start().await;
    server.set_servfail("broken.example");

    let dns = resolver(&server, TIMEOUT);
    assert_eq!(
        dns.mx(&domain("broken.example")).await,
        Err(DnsError::ServFail)
    );
    assert_eq!(dns.txt("broken.example").await, Err(DnsError::ServFail));
}

#[tokio::test]
async fn a_silent_nameserver_times_out_within_the_bound() {
    let server = TestDnsServer::start().await;
    server.set_blackhole("slow.example");
    let timeout = Duration::from_secs(1);
    let dns = resolver(&server, timeout);

    for _ in 0..2 {
        let started = Instant::now();
        let outcome = dns.mx(&domain("slow.example")).await;
        let elapsed = started.elapsed();

        assert_eq!(outcome, Err(DnsError::Timeout));
        assert!(
            elapsed < timeout + Duration::from_millis(1500),
            "took {elapsed:?} for a {timeout:?} timeout"
        );
        assert!(
            elapsed >= timeout - Duration::from_millis(100),
            "gave up early, after {elapsed:?}"
        );
    }
    assert!(
        server.udp_queries() >= 2,
        "the queries did reach the server"
    );
}

#[tokio::test]
async fn names_are_matched_without_regard_to_case() {
    let server = TestDnsServer::start().await;
    server.add_txt("S1._DomainKey.Example.COM", &["v=DKIM1; p=abc"]);
    server.add_mx("example.net", 10, "mx.example.net.");
    let dns = resolver(&server, TIMEOUT);

    let records = dns.txt("s1._domainkey.example.com").await.unwrap();
    assert_eq!(records[0].joined(), "v=DKIM1; p=abc");
    let records = dns.txt("S1._DOMAINKEY.EXAMPLE.COM").await.unwrap();
    assert_eq!(records[0].joined(), "v=DKIM1; p=abc");
    assert_eq!(
        dns.mx(&domain("EXAMPLE.net")).await.unwrap(),
        [mx(10, "mx.example.net.")]
    );
}

#[tokio::test]
async fn changes_are_seen_at_once_because_nothing_is_cached() {
    let server = TestDnsServer::start().await;
    let dns = resolver(&server, TIMEOUT);
    let name = "_dmarc.example.com";

    assert_eq!(dns.txt(name).await, Err(DnsError::NxDomain));

    server.add_txt(name, &["v=DMARC1; p=none"]);
    let records = dns.txt(name).await.unwrap();
    assert_eq!(records[0].joined(), "v=DMARC1; p=none");

    server.add_txt(name, &["v=DMARC1; p=reject"]);
    assert_eq!(dns.txt(name).await.unwrap().len(), 2);

    server.clear(name);
    assert_eq!(dns.txt(name).await, Err(DnsError::NxDomain));

    server.set_servfail(name);
    assert_eq!(dns.txt(name).await, Err(DnsError::ServFail));
    server.clear(name);
    server.add_txt(name, &["v=DMARC1; p=quarantine"]);
    let records = dns.txt(name).await.unwrap();
    assert_eq!(records[0].joined(), "v=DMARC1; p=quarantine");
}

#[tokio::test]
async fn invalid_utf8_in_a_record_is_replaced_when_joined() {
    let server = TestDnsServer::start().await;
    server.add_txt_bytes("odd.example", &[b"v=spf1 \xff", b" -all"]);

    let records = resolver(&server, TIMEOUT).txt("odd.example").await.unwrap();

    assert_eq!(records[0].0, [b"v=spf1 \xff".to_vec(), b" -all".to_vec()]);
    assert_eq!(records[0].joined(), "v=spf1 \u{fffd} -all");
}

#[tokio::test]
async fn a_dropped_server_stops_answering() {
    let server = TestDnsServer::start().await;
    server.add_mx("example.com", 10, "mx.example.com.");
    let timeout = Duration::from_millis(500);
    let dns = resolver(&server, timeout);
    assert!(dns.mx(&domain("example.com")).await.is_ok());

    drop(server);
    tokio::task::yield_now().await;

    let started = Instant::now();
    let outcome = dns.mx(&domain("example.com")).await;
    assert!(
        matches!(outcome, Err(DnsError::Timeout | DnsError::Unexpected(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_millis(1500));
}

#[test]
fn a_server_on_its_own_thread_serves_synchronous_tests() {
    let server = TestDnsServer::start_in_thread();
    server.add_mx("example.com", 10, "inbound.sendtrim.com.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dns = resolver(&server, TIMEOUT);

    let records = runtime.block_on(dns.mx(&domain("example.com"))).unwrap();

    assert_eq!(records, [mx(10, "inbound.sendtrim.com.")]);
    drop(server);
    let outcome = runtime.block_on(dns.mx(&domain("example.com")));
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn a_server_on_its_own_thread_answers_while_the_test_blocks() {
    let server = TestDnsServer::start_in_thread();
    server.add_txt("example.com", &["v=spf1 -all"]);
    let dns = resolver(&server, TIMEOUT);

    // The lookup runs on another thread while this one blocks, as a blocking HTTP
    // client would: the server answers regardless.
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(dns.txt("example.com"))
    });
    let records = handle.join().unwrap().unwrap();

    assert_eq!(records[0].joined(), "v=spf1 -all");
}

/// A validating lookup: secure with the zone's key as the trust anchor, bogus when
/// the signatures are forged, and a zone without DNSKEY reads as unsigned.
#[tokio::test]
async fn validating_lookups_tell_secure_from_bogus() {
    use domain_core::ports::dns::Dnssec;

    let server = TestDnsServer::start().await;
    server.add_soa("signed.example");
    server.add_txt(
        "_domain-api-claim.signed.example",
        &["domain-api-claim=tok"],
    );
    server.add_soa("plain.example");
    let key = server.sign_zone("signed.example");
    let mut config = DnsConfig::with_servers(vec![server.addr()], TIMEOUT);
    config.trust_anchors = vec![dns_hickory::TrustAnchor::parse(&key.setting()).unwrap()];
    let dns = HickoryDns::new(&config).expect("the resolver builds");

    assert_eq!(dns.signed("signed.example").await, Ok(true));
    assert_eq!(dns.signed("plain.example").await, Ok(false));

    let answer = dns
        .txt_validated("_domain-api-claim.signed.example")
        .await
        .unwrap();
    assert_eq!(answer.dnssec, Dnssec::Secure, "{answer:?}");
    assert_eq!(answer.records[0].joined(), "domain-api-claim=tok");

    server.forge_signatures("signed.example", true);
    let answer = dns
        .txt_validated("_domain-api-claim.signed.example")
        .await
        .unwrap();
    assert_eq!(answer.dnssec, Dnssec::Bogus, "{answer:?}");
    assert!(answer.records.is_empty());

    // Without the zone's key as an anchor nothing validates it.
    server.forge_signatures("signed.example", false);
    let untrusting = resolver(&server, TIMEOUT);
    let answer = untrusting
        .txt_validated("_domain-api-claim.signed.example")
        .await;
    assert!(
        !matches!(answer, Ok(ref a) if a.dnssec == Dnssec::Secure),
        "{answer:?}"
    );
}
