//! Checks at the zone's authoritative nameservers: three in-process servers on
//! 127.0.0.2–4 (one port, told to the service by a test-only setting), found through
//! the configured resolver's NS and A records; one of them lags. Record checks
//! (verify) and claim verification alike.

use std::net::IpAddr;

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;

use crate::helpers::TestApp;
use crate::lifecycle::{app_with, call, publish_generated, verify};

fn record<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap()
}

/// `zone` served by three nameservers `ns1`–`ns3.<zone>` on 127.0.0.2–4, which the
/// configured resolver (returned second) names; the service under test is told their
/// port. `signed`: the resolver serves the zone signed (DNSSEC), and the service
/// trusts its key.
async fn zone_with_three_nameservers(
    zone: &str,
    signed: bool,
) -> (Vec<TestDnsServer>, TestDnsServer, TestApp) {
    let ips: Vec<IpAddr> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
    let nameservers = TestDnsServer::start_in_thread_on_each(&ips);
    let port = nameservers[0].addr().port().to_string();
    let resolver = TestDnsServer::start_in_thread();
    resolver.add_soa(zone);
    for (i, ip) in ips.iter().enumerate() {
        let host = format!("ns{}.{zone}", i + 1);
        resolver.add_ns(zone, &host);
        resolver.add_address(&host, *ip);
    }
    let anchor = signed.then(|| resolver.sign_zone(zone).setting());
    let mut env = vec![("DOMAIN_API_TEST_NAMESERVER_PORT", port.as_str())];
    if let Some(anchor) = &anchor {
        env.push(("DOMAIN_API_TEST_DNSSEC_TRUST_ANCHOR", anchor.as_str()));
    }
    let app = app_with(BackendKind::Sqlite, &resolver, &env).await;
    (nameservers, resolver, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_is_published_when_every_answering_nameserver_serves_it() {
    let zone = "auth.example";
    // The configured resolver knows where the zone is served, and (to show it is not
    // asked for them) the records too.
    let (nameservers, resolver, app) = zone_with_three_nameservers(zone, false).await;
    let org = app.create_org("Acme");
    let generated = app.generate(&org, &format!(r#"{{"email":"a@{zone}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);
    let map = generated.json();

    // Only the resolver has them: the nameservers do not, so nothing is published.
    publish_generated(&resolver, zone, &map);
    let report = verify(&app, &org, zone).json();
    assert_eq!(report["verified"], false, "{report}");
    let spf = record(&report, "SPF");
    assert_eq!(spf["status"], "missing", "{report}");
    assert_eq!(
        spf["nameservers"]["summary"],
        "published on 0 of 3 nameservers"
    );
    assert_eq!(spf["nameservers"]["lagging"].as_array().unwrap().len(), 3);

    // The primary and one secondary serve them; ns3 lags: not published, and named.
    publish_generated(&nameservers[0], zone, &map);
    publish_generated(&nameservers[1], zone, &map);
    let report = verify(&app, &org, zone).json();
    assert_eq!(report["verified"], false, "{report}");
    for kind in ["SPF", "DKIM", "DMARC"] {
        let check = record(&report, kind);
        assert_eq!(check["status"], "missing", "{kind}: {report}");
        assert_eq!(
            check["nameservers"]["summary"], "published on 2 of 3 nameservers",
            "{kind}"
        );
        assert_eq!(
            check["nameservers"]["lagging"],
            serde_json::json!(["ns3.auth.example (127.0.0.4)"]),
            "{kind}"
        );
        let reason = check["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(
                "Only published on 2 of 3 nameservers: ns3.auth.example (127.0.0.4) does not serve it yet."
            ),
            "{reason}"
        );
    }

    // The secondary catches up: published at once (no negative cache in between).
    publish_generated(&nameservers[2], zone, &map);
    let report = verify(&app, &org, zone).json();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(
        record(&report, "DKIM")["nameservers"]["summary"],
        "published on 3 of 3 nameservers"
    );

    // A nameserver that does not answer is named, and does not hold the record back.
    nameservers[2].set_blackhole(zone);
    let report = verify(&app, &org, zone).json();
    let spf = record(&report, "SPF");
    assert_eq!(spf["status"], "ok", "{report}");
    assert_eq!(
        spf["nameservers"]["unanswered"],
        serde_json::json!(["ns3.auth.example (127.0.0.4)"])
    );
    assert_eq!(
        spf["nameservers"]["summary"],
        "published on 2 of 3 nameservers"
    );
}

/// A claim moves a domain between organizations: the record must be served by every
/// authoritative nameserver that answers, not merely by the resolver, and a lagging
/// secondary holds the transfer back (and is named).
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_is_proven_only_when_every_answering_nameserver_serves_its_record() {
    let zone = "claimed.example";
    let (nameservers, resolver, app) = zone_with_three_nameservers(zone, false).await;
    let squatter = app.create_org("squatter");
    let owner = app.create_org("owner");
    let generated = app.generate(&squatter, &format!(r#"{{"email":"a@{zone}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);
    let claim_path = format!("/api/v1/emails/domains/{zone}/claim");
    let opened = call(&app, &owner, "POST", &claim_path, None);
    assert_eq!(opened.status, 201, "{}", opened.body);
    let record = opened.json()["record"].clone();
    let (name, value) = (
        record["name"].as_str().unwrap(),
        record["value"].as_str().unwrap(),
    );
    let verify_claim = || call(&app, &owner, "POST", &format!("{claim_path}/verify"), None);
    let still_the_squatters = || {
        let detail = call(
            &app,
            &squatter,
            "GET",
            &format!("/api/v1/emails/domains/{zone}"),
            None,
        );
        assert_eq!(detail.status, 200, "not transferred: {}", detail.body);
    };

    // The resolver's word alone (a spoofed or stale answer) proves nothing while the
    // zone's nameservers can be asked.
    resolver.add_txt_value(name, value);
    let refused = verify_claim();
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body, format!("Claim record not found at {name}"));
    still_the_squatters();

    // The primary and one secondary serve it; ns3 lags: not yet, and named.
    nameservers[0].add_txt_value(name, value);
    nameservers[1].add_txt_value(name, value);
    let lagging = verify_claim();
    assert_eq!(lagging.status, 409, "{}", lagging.body);
    assert_eq!(
        lagging.body,
        format!(
            "Claim record not found at {name} on every nameserver: published on 2 of 3 \
             nameservers; ns3.{zone} (127.0.0.4) does not serve it yet"
        )
    );
    still_the_squatters();

    // The secondary catches up: the domain moves.
    nameservers[2].add_txt_value(name, value);
    let proven = verify_claim();
    assert_eq!(proven.status, 200, "{}", proven.body);
    assert_eq!(proven.json()["domain"], zone);
    let gone = call(
        &app,
        &squatter,
        "GET",
        &format!("/api/v1/emails/domains/{zone}"),
        None,
    );
    assert_eq!(gone.status, 404, "{}", gone.body);
}

/// Where the zone is signed, the claim record must also be in a DNSSEC-validated
/// answer: signatures made without the zone's key (what a forger can send) hold the
/// transfer back although every nameserver serves the record.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_signed_zone_a_claim_needs_a_validated_answer() {
    let zone = "signed.example";
    let (nameservers, resolver, app) = zone_with_three_nameservers(zone, true).await;
    let squatter = app.create_org("squatter");
    let owner = app.create_org("owner");
    let generated = app.generate(&squatter, &format!(r#"{{"email":"a@{zone}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);
    let claim_path = format!("/api/v1/emails/domains/{zone}/claim");
    let opened = call(&app, &owner, "POST", &claim_path, None);
    assert_eq!(opened.status, 201, "{}", opened.body);
    let record = opened.json()["record"].clone();
    let (name, value) = (
        record["name"].as_str().unwrap(),
        record["value"].as_str().unwrap(),
    );
    for server in nameservers.iter().chain([&resolver]) {
        server.add_txt_value(name, value);
    }
    let verify_claim = || call(&app, &owner, "POST", &format!("{claim_path}/verify"), None);

    resolver.forge_signatures(zone, true);
    let refused = verify_claim();
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        refused.body,
        format!("Claim record at {name} is not DNSSEC-validated: the zone {zone} is signed")
    );
    let detail = call(
        &app,
        &squatter,
        "GET",
        &format!("/api/v1/emails/domains/{zone}"),
        None,
    );
    assert_eq!(detail.status, 200, "not transferred: {}", detail.body);

    // Signed with the zone's key: validated, the domain moves.
    resolver.forge_signatures(zone, false);
    let proven = verify_claim();
    assert_eq!(proven.status, 200, "{}", proven.body);
    assert_eq!(proven.json()["domain"], zone);
}
