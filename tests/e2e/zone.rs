//! Records relative to the real zone, with a TTL: the zone is the closest enclosing
//! zone cut an SOA lookup finds (at every check), the registrable domain until then
//! or when the lookup fails; hosts in the detail, the verify report and the zone file
//! are relative to it. Against the in-process DNS server, on every backend.

use serde_json::Value;
use store_diesel::test_support::backends;

use dns_hickory::test_support::TestDnsServer;

use crate::helpers::TestApp;
use crate::lifecycle::{app_with, call, detail, domain_path, publish_generated, verify};

/// `(host, zone, name, ttl)` of each record of a detail or report body.
fn placed(body: &Value) -> Vec<(String, String, String, u64)> {
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["zone"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["ttl"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn expected(
    hosts: [&str; 3],
    zone: &str,
    names: [&str; 3],
    ttl: u64,
) -> Vec<(String, String, String, u64)> {
    hosts
        .iter()
        .zip(names)
        .map(|(h, n)| ((*h).to_owned(), zone.to_owned(), n.to_owned(), ttl))
        .collect()
}

fn zone_file(app: &TestApp, org: &crate::helpers::Org, domain: &str) -> String {
    let answer = call(
        app,
        org,
        "GET",
        &format!("{}/zone", domain_path(domain)),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_relative_to_the_zone_the_soa_lookup_finds() {
    for kind in backends() {
        let dns = TestDnsServer::start_in_thread();
        dns.add_soa("gworkspace.example");
        let app = app_with(kind, &dns, &[("DOMAIN_API_RECORD_TTL", "900")]).await;
        let org = app.create_org("Acme");
        let domain = "mail.gworkspace.example";

        let generated = app.generate(&org, &format!(r#"{{"email":"noreply@{domain}"}}"#));
        assert_eq!(generated.status, 201, "{kind:?}: {}", generated.body);
        // The seed's map is unchanged: three keys, in its order, nothing more.
        let map = generated.json();
        let keys: Vec<&String> = map.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{kind:?}: {map}");
        assert_eq!(keys[0], "SPF");
        assert!(
            keys[1].ends_with(&format!("._domainkey.{domain}")),
            "{keys:?}"
        );
        assert_eq!(keys[2], "_dmarc");
        let selector = keys[1].split('.').next().unwrap().to_owned();
        let dkim_name = format!("{selector}._domainkey.{domain}");
        let names = [domain, dkim_name.as_str(), "_dmarc.mail.gworkspace.example"];

        // Before any check: the registrable domain, said so.
        let before = detail(&app, &org, domain).json();
        assert_eq!(
            (before["zone"].as_str(), before["zoneSource"].as_str()),
            (Some("gworkspace.example"), Some("registrable")),
            "{kind:?}"
        );
        let dkim_host = format!("{selector}._domainkey.mail");
        assert_eq!(
            placed(&before),
            expected(
                ["mail", &dkim_host, "_dmarc.mail"],
                "gworkspace.example",
                names,
                900
            ),
            "{kind:?}"
        );

        // A check finds the SOA at gworkspace.example and keeps it.
        publish_generated(&dns, domain, &map);
        let report = verify(&app, &org, domain);
        assert_eq!(report.status, 200, "{kind:?}: {}", report.body);
        let report = report.json();
        assert_eq!(report["verified"], true, "{kind:?}: {report}");
        assert_eq!(
            (report["zone"].as_str(), report["zoneSource"].as_str()),
            (Some("gworkspace.example"), Some("soa")),
            "{kind:?}"
        );
        assert_eq!(
            placed(&report),
            expected(
                ["mail", &dkim_host, "_dmarc.mail"],
                "gworkspace.example",
                names,
                900
            ),
            "{kind:?}"
        );
        let after = detail(&app, &org, domain).json();
        assert_eq!(after["zoneSource"], "soa", "{kind:?}");
        assert_eq!(after["dkim"][0]["record"]["host"], dkim_host.as_str());
        let file = zone_file(&app, &org, domain);
        assert!(
            file.contains("\n; in the zone gworkspace.example\n"),
            "{file}"
        );
        assert!(
            file.contains(&format!("\n{domain}. 900 IN TXT \"v=spf1 ")),
            "{file}"
        );
        assert_eq!(file.matches(" 900 IN TXT ").count(), 3, "{file}");

        // The subdomain becomes a zone of its own (delegated): hosts relative to it.
        dns.add_soa(domain);
        assert_eq!(verify(&app, &org, domain).status, 200);
        let delegated = detail(&app, &org, domain).json();
        assert_eq!(
            (delegated["zone"].as_str(), delegated["zoneSource"].as_str()),
            (Some(domain), Some("soa")),
            "{kind:?}"
        );
        assert_eq!(
            placed(&delegated),
            expected(
                ["@", &format!("{selector}._domainkey"), "_dmarc"],
                domain,
                names,
                900
            ),
            "{kind:?}"
        );
        assert!(zone_file(&app, &org, domain).contains(&format!("\n; in the zone {domain}\n")));

        // A lookup that fails decides nothing: the zone found last stays.
        dns.set_servfail(domain);
        assert_eq!(verify(&app, &org, domain).status, 200);
        let kept = detail(&app, &org, domain).json();
        assert_eq!(
            (kept["zone"].as_str(), kept["zoneSource"].as_str()),
            (Some(domain), Some("soa")),
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_soa_found_the_registrable_domain_is_the_zone_and_said_so() {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(store_diesel::BackendKind::Sqlite, &dns, &[]).await;
    let org = app.create_org("Acme");

    // No SOA anywhere: the lookups answer, but find no zone cut.
    let domain = "news.other.example";
    assert_eq!(
        app.generate(&org, &format!(r#"{{"email":"a@{domain}"}}"#))
            .status,
        201
    );
    let report = verify(&app, &org, domain).json();
    assert_eq!(
        (report["zone"].as_str(), report["zoneSource"].as_str()),
        (Some("other.example"), Some("registrable")),
        "{report}"
    );
    assert_eq!(report["records"][0]["host"], "news");
    assert_eq!(report["records"][0]["ttl"], 3600, "the default TTL");

    // The zone's SOA lookups fail (SERVFAIL): the registrable domain again, said so.
    let failing = "deep.mail.third.example";
    dns.set_servfail(failing);
    dns.add_soa("third.example");
    assert_eq!(
        app.generate(&org, &format!(r#"{{"email":"a@{failing}"}}"#))
            .status,
        201
    );
    let report = verify(&app, &org, failing).json();
    assert_eq!(
        (report["zone"].as_str(), report["zoneSource"].as_str()),
        (Some("third.example"), Some("registrable")),
        "{report}"
    );
    let detail = detail(&app, &org, failing).json();
    assert_eq!(detail["zoneSource"], "registrable");
    assert_eq!(detail["records"][2]["host"], "_dmarc.deep.mail");
}
