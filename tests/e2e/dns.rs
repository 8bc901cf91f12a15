//! Live DNS end to end: the inbound MX check, the read API, and `validate` against
//! records published into an in-process DNS server on 127.0.0.1.

use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use store_diesel::BackendKind;

use crate::helpers::{Options, Org, TestApp, spawn_app_with};

const JWT_SECRET: &str = "an-e2e-test-secret-of-at-least-32-bytes";
const DNS_TIMEOUT_MS: u64 = 500;

async fn app_with_dns(dns: &TestDnsServer) -> TestApp {
    let options = Options {
        env: vec![
            ("DOMAIN_API_DNS_SERVERS".into(), dns.addr().to_string()),
            (
                "DOMAIN_API_DNS_TIMEOUT_MS".into(),
                DNS_TIMEOUT_MS.to_string(),
            ),
            ("DOMAIN_API_JWT_SECRET".into(), JWT_SECRET.into()),
        ],
    };
    spawn_app_with(BackendKind::Sqlite, options).await
}

fn detail(app: &TestApp, org: &Org, domain: &str) -> crate::helpers::Answer {
    app.request(
        "GET",
        &format!("/api/v1/emails/domains/{domain}"),
        &[
            ("X-Api-Access-Token", &org.access),
            ("X-Api-Secret-Token", &org.secret),
        ],
        b"",
    )
}

fn inbound_of(app: &TestApp, org: &Org, domain: &str) -> bool {
    detail(app, org, domain).json()["inboundEnabled"]
        .as_bool()
        .expect("inboundEnabled")
}

fn generate_inbound(
    app: &TestApp,
    org: &Org,
    email: &str,
    inbound: bool,
) -> crate::helpers::Answer {
    app.generate(
        org,
        &format!(r#"{{"email":"{email}","inbound":{inbound}}}"#),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_follows_the_live_mx_records() {
    let dns = TestDnsServer::start_in_thread();
    dns.add_mx("ours.example", 20, "mx.elsewhere.net.");
    dns.add_mx("ours.example", 10, "INBOUND.SendTrim.com.");
    dns.add_mx("elsewhere.example", 10, "aspmx.l.google.com.");
    dns.add_txt("nomx.example", &["v=spf1 -all"]);
    dns.set_servfail("servfail.example");
    dns.set_blackhole("blackhole.example");
    let app = app_with_dns(&dns).await;
    let org = app.create_org("Acme");

    for (domain, expected) in [
        ("ours.example", true),
        ("elsewhere.example", false),
        ("nomx.example", false),
        ("nxdomain.example", false),
        ("servfail.example", false),
    ] {
        let answer = generate_inbound(&app, &org, &format!("a@{domain}"), true);
        assert_eq!(answer.status, 201, "{domain}: {}", answer.body);
        assert_eq!(inbound_of(&app, &org, domain), expected, "{domain}");
    }

    // A name that never answers: still 201, inbound off, within the DNS bound.
    let started = Instant::now();
    let answer = generate_inbound(&app, &org, "a@blackhole.example", true);
    let took = started.elapsed();
    assert_eq!(answer.status, 201);
    assert!(!inbound_of(&app, &org, "blackhole.example"));
    assert!(
        took < Duration::from_millis(DNS_TIMEOUT_MS + 1500),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_sender_turns_inbound_on_once_mx_is_in_place_and_never_off() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let org = app.create_org("Acme");

    assert_eq!(
        generate_inbound(&app, &org, "a@later.example", true).status,
        201
    );
    assert!(!inbound_of(&app, &org, "later.example"), "no MX yet");

    dns.add_mx("later.example", 10, "smtp.sendtrim.com.");
    assert_eq!(
        generate_inbound(&app, &org, "b@later.example", true).status,
        201
    );
    assert!(
        inbound_of(&app, &org, "later.example"),
        "MX in place: inbound on"
    );

    dns.clear("later.example");
    assert_eq!(
        generate_inbound(&app, &org, "c@later.example", false).status,
        201
    );
    assert!(
        inbound_of(&app, &org, "later.example"),
        "inbound:false never turns it off"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_api_lists_and_describes_only_the_orgs_own_domains() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    let records = app
        .generate(
            &acme,
            r#"{"email":"noreply@mail.example.com","replyTo":"help@example.com"}"#,
        )
        .json();
    assert_eq!(
        app.generate(&acme, r#"{"email":"second@mail.example.com"}"#)
            .status,
        201
    );

    let list = app
        .request(
            "GET",
            "/api/v1/emails/domains",
            &[
                ("X-Api-Access-Token", &acme.access),
                ("X-Api-Secret-Token", &acme.secret),
            ],
            b"",
        )
        .json();
    assert_eq!(list["domains"].as_array().unwrap().len(), 1);
    assert_eq!(list["domains"][0]["domain"], "mail.example.com");

    let view = detail(&app, &acme, "mail.example.com").json();
    let published = view["records"].as_array().unwrap();
    let (dkim_name, dkim_value) = records.as_object().unwrap().iter().nth(1).unwrap();
    assert_eq!(published[0]["type"], "TXT");
    // Before any check found the zone, hosts are relative to the registrable domain.
    assert_eq!(view["zone"], "example.com");
    assert_eq!(view["zoneSource"], "registrable");
    assert_eq!(published[0]["host"], "mail");
    assert_eq!(published[0]["value"], records["SPF"]);
    assert_eq!(&published[1]["name"], dkim_name);
    assert_eq!(&published[1]["value"], dkim_value);
    let strings: Vec<&str> = published[1]["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(strings.len() >= 2 && strings.iter().all(|s| s.len() <= 255));
    assert_eq!(strings.concat(), dkim_value.as_str().unwrap());
    assert_eq!(published[2]["host"], "_dmarc.mail");
    assert_eq!(published[2]["name"], "_dmarc.mail.example.com");
    let senders = view["senders"].as_array().unwrap();
    assert_eq!(senders.len(), 2);
    assert_eq!(senders[0]["replyTo"], "help@example.com");
    assert_eq!(
        (
            senders[0]["active"].as_bool(),
            senders[1]["active"].as_bool()
        ),
        (Some(false), Some(true))
    );

    // Another org's domain is indistinguishable from a missing one.
    let foreign = detail(&app, &other, "mail.example.com");
    let missing = detail(&app, &other, "nothing.example");
    assert_eq!(
        (foreign.status, foreign.body.as_str()),
        (404, "Domain not found")
    );
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "Domain not found")
    );
    let other_list = app
        .request(
            "GET",
            "/api/v1/emails/domains",
            &[
                ("X-Api-Access-Token", &other.access),
                ("X-Api-Secret-Token", &other.secret),
            ],
            b"",
        )
        .json();
    assert_eq!(other_list["domains"].as_array().unwrap().len(), 0);
}

/// Publishes what `generate` returned, as a careful customer would.
fn publish(dns: &TestDnsServer, domain: &str, records: &serde_json::Value) {
    let map = records.as_object().unwrap();
    let (dkim_name, dkim_value) = map.iter().nth(1).unwrap();
    dns.add_txt_value(domain, map["SPF"].as_str().unwrap());
    dns.add_txt_value(dkim_name, dkim_value.as_str().unwrap());
    dns.add_txt_value(&format!("_dmarc.{domain}"), map["_dmarc"].as_str().unwrap());
}

fn validate(app: &TestApp, token: &str, domain: &str) -> crate::helpers::Answer {
    let bearer = format!("Bearer {token}");
    app.request(
        "GET",
        &format!("/api/v1/domains/validate?domain={domain}"),
        &[("Authorization", &bearer)],
        b"",
    )
}

fn jwt(app: &TestApp, org: &Org) -> String {
    let (ok, stdout, stderr) = app.cli(&["jwt", "issue", "--org", &org.id, "--ttl", "10m"]);
    assert!(ok, "{stderr}");
    stdout.trim().to_owned()
}

fn status_of(report: &serde_json::Value, kind: &str) -> (String, String) {
    let check = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap();
    (
        check["status"].as_str().unwrap().to_owned(),
        check["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_reports_every_record_ok_once_the_returned_records_are_published() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let org = app.create_org("Acme");
    let records = app
        .generate(&org, r#"{"email":"noreply@valid.example"}"#)
        .json();
    let token = jwt(&app, &org);

    let before = validate(&app, &token, "valid.example").json();
    assert_eq!(before["verified"], false);
    assert_eq!(status_of(&before, "DKIM").0, "missing");

    publish(&dns, "valid.example", &records);
    let after = validate(&app, &token, "valid.example");

    assert_eq!(after.status, 200, "{}", after.body);
    let report = after.json();
    assert_eq!(report["verified"], true, "{report}");
    for kind in ["SPF", "DKIM", "DMARC"] {
        assert_eq!(status_of(&report, kind).0, "ok", "{kind}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_the_common_publishing_mistakes() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let org = app.create_org("Acme");
    let token = jwt(&app, &org);
    let mut cases = Vec::new();
    for name in ["truncated", "doubled", "quoted", "twospf"] {
        let domain = format!("{name}.example");
        let records = app
            .generate(&org, &format!(r#"{{"email":"a@{domain}"}}"#))
            .json();
        publish(&dns, &domain, &records);
        cases.push((domain, records));
    }
    let dkim = |records: &serde_json::Value| {
        let (name, value) = records.as_object().unwrap().iter().nth(1).unwrap();
        (name.clone(), value.as_str().unwrap().to_owned())
    };

    // Truncated at 255 characters by a provider that does not split.
    let (name, value) = dkim(&cases[0].1);
    dns.clear(&name);
    dns.add_txt(&name, &[&value[..255]]);
    // The provider appended the domain to a host that already had it.
    let (name, value) = dkim(&cases[1].1);
    dns.clear(&name);
    dns.add_txt_value(&format!("{name}.doubled.example"), &value);
    // Surrounding quotes kept in the value.
    let (name, value) = dkim(&cases[2].1);
    dns.clear(&name);
    dns.add_txt_value(&name, &format!("\"{value}\""));
    // A second SPF record next to ours.
    dns.add_txt("twospf.example", &["v=spf1 include:_spf.google.com ~all"]);

    let truncated = validate(&app, &token, "truncated.example").json();
    let (status, reason) = status_of(&truncated, "DKIM");
    assert_eq!(status, "mismatch");
    assert!(
        reason.contains("truncated") && reason.contains("255"),
        "{reason}"
    );

    let doubled = validate(&app, &token, "doubled.example").json();
    let (status, reason) = status_of(&doubled, "DKIM");
    assert_eq!(status, "mismatch");
    assert!(
        reason.contains("doubled.example.doubled.example"),
        "{reason}"
    );

    let quoted = validate(&app, &token, "quoted.example").json();
    let (status, reason) = status_of(&quoted, "DKIM");
    assert_eq!(status, "mismatch");
    assert!(reason.to_lowercase().contains("quot"), "{reason}");

    // A subdomain sender whose zone is its parent: the panel appended the zone.
    let sub = app
        .generate(&org, r#"{"email":"a@mail.zone.example"}"#)
        .json();
    publish(&dns, "mail.zone.example", &sub);
    let (name, value) = dkim(&sub);
    dns.clear(&name);
    dns.add_txt_value(&format!("{name}.zone.example"), &value);
    let subdomain = validate(&app, &token, "mail.zone.example").json();
    let (status, reason) = status_of(&subdomain, "DKIM");
    assert_eq!(status, "mismatch");
    let selector = name.split('.').next().unwrap();
    assert!(
        reason.contains(&format!(
            "enter only {selector}._domainkey.mail as the host"
        )),
        "{reason}"
    );

    let two = validate(&app, &token, "twospf.example").json();
    let (status, reason) = status_of(&two, "SPF");
    assert_eq!(status, "mismatch");
    assert!(reason.contains("exactly one"), "{reason}");
    for report in [&truncated, &doubled, &quoted, &two] {
        assert_eq!(report["verified"], false);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_requires_a_valid_token_for_the_owning_org() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    assert_eq!(
        app.generate(&acme, r#"{"email":"a@owned.example"}"#).status,
        201
    );

    let none = app.request(
        "GET",
        "/api/v1/domains/validate?domain=owned.example",
        &[],
        b"",
    );
    assert_eq!(
        (none.status, none.header("www-authenticate")),
        (401, Some("Bearer"))
    );
    assert_eq!(validate(&app, "not.a.jwt", "owned.example").status, 401);
    let lower = format!("bearer {}", jwt(&app, &acme));
    let lower_case = app.request(
        "GET",
        "/api/v1/domains/validate?domain=owned.example",
        &[("Authorization", &lower)],
        b"",
    );
    assert_eq!(
        lower_case.status, 200,
        "the auth scheme is case-insensitive"
    );
    assert_eq!(
        validate(&app, &jwt(&app, &other), "owned.example").status,
        404
    );
    assert_eq!(
        validate(&app, &jwt(&app, &acme), "not%20a%20domain").status,
        400
    );
    let missing = app.request(
        "GET",
        "/api/v1/domains/validate",
        &[("Authorization", &format!("Bearer {}", jwt(&app, &acme)))],
        b"",
    );
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (400, "Missing domain parameter")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_is_not_served_without_a_jwt_secret() {
    let app = crate::helpers::spawn_app(BackendKind::Sqlite).await;
    let answer = app.request(
        "GET",
        "/api/v1/domains/validate?domain=example.com",
        &[("Authorization", "Bearer x")],
        b"",
    );
    assert_eq!(answer.status, 404);
    let (ok, _, stderr) = app.cli(&["jwt", "issue", "--org", "x"]);
    assert!(!ok && stderr.contains("DOMAIN_API_JWT_SECRET"), "{stderr}");
}

/// Issue 21: a validate whose SPF includes never answer took 30 s, one include after
/// another. The whole DNS work of one request now ends by one deadline
/// (`DOMAIN_API_CHECK_DEADLINE_MS`, default twice the DNS timeout: 1 s here), the
/// includes are looked up side by side, and what did not answer is said to have
/// timed out, never judged. One after another, these 20 includes alone would take
/// 20 × 500 ms = 10 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_validate_whose_includes_never_answer_ends_by_the_check_deadline() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with_dns(&dns).await;
    let org = app.create_org("Acme");
    let records = app
        .generate(&org, r#"{"email":"noreply@slow-includes.example"}"#)
        .json();
    publish(&dns, "slow-includes.example", &records);
    let ours = records["SPF"].as_str().unwrap();
    let includes: Vec<String> = (0..20)
        .map(|i| format!("include:spf{i}.never-answers.example"))
        .collect();
    for i in 0..20 {
        dns.set_blackhole(&format!("spf{i}.never-answers.example"));
    }
    dns.clear("slow-includes.example");
    dns.add_txt_value(
        "slow-includes.example",
        &ours.replacen("v=spf1", &format!("v=spf1 {}", includes.join(" ")), 1),
    );
    let token = jwt(&app, &org);

    let started = Instant::now();
    let answer = validate(&app, &token, "slow-includes.example");
    let took = started.elapsed();

    assert_eq!(answer.status, 200, "{}", answer.body);
    let report = answer.json();
    let spf = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "SPF")
        .unwrap();
    let warning = spf["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("lookup timed out"), "{spf}");
    // Generous for a debug build on a busy machine, and far below the 10 s that the
    // includes cost one after another.
    assert!(took < Duration::from_secs(5), "validate took {took:?}");
}
