//! The change-set over real HTTP on every backend, against the in-process DNS server:
//! a domain that already sends through Google Workspace is told to replace its SPF
//! record with one merged record (never to add a second), its DMARC record is kept,
//! and once the merged record is published nothing is left to change.

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::lifecycle::{app_with, call, verify};

fn record<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

async fn google_workspace(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("workspace");
    let domain = "workspace-customer.com";
    let answer = app.generate(&org, &format!(r#"{{"email":"x@{domain}"}}"#));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let ours = answer.json()["SPF"].as_str().unwrap().to_owned();

    dns.add_txt_value(domain, "v=spf1 include:_spf.google.com ~all");
    dns.add_txt_value(domain, "google-site-verification=abc123");
    dns.add_txt_value(
        "_spf.google.com",
        "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com ~all",
    );
    dns.add_txt_value("_netblocks.google.com", "v=spf1 ip4:35.190.247.0/24 ~all");
    dns.add_txt_value(
        "_netblocks2.google.com",
        "v=spf1 ip6:2001:4860:4000::/36 ~all",
    );
    let theirs = "v=DMARC1; p=quarantine; rua=mailto:reports@workspace-customer.com";
    dns.add_txt_value(&format!("_dmarc.{domain}"), theirs);

    let report = verify(&app, &org, domain);
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    let spf = record(&report, "SPF");
    assert_eq!(spf["action"], "replace", "{kind:?}: {spf}");
    assert_eq!(
        spf["existing"],
        serde_json::json!(["v=spf1 include:_spf.google.com ~all"])
    );
    let merged = format!(
        "v=spf1 include:_spf.google.com {} ~all",
        ours.trim_start_matches("v=spf1 ").trim_end_matches(" -all")
    );
    assert_eq!(spf["suggestedValue"], merged.as_str());
    assert_eq!(spf["lookups"], 3);
    assert!(spf.get("warning").is_none(), "{spf}");
    let dmarc = record(&report, "DMARC");
    assert_eq!(dmarc["action"], "keep");
    assert_eq!(dmarc["suggestedValue"], theirs);
    assert!(record(&report, "DKIM").get("action").is_none());

    // The customer replaces its record with the merged one: nothing left to do.
    dns.clear(domain);
    dns.add_txt_value(domain, &merged);
    let after = verify(&app, &org, domain).json();
    let spf = record(&after, "SPF");
    assert_eq!(
        (&spf["status"], &spf["action"]),
        (&Value::from("ok"), &Value::from("none")),
        "{spf}"
    );
    assert_eq!(spf["suggestedValue"], merged.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_google_workspace_domain_is_told_to_merge_not_to_add_on_every_backend() {
    for kind in backends() {
        google_workspace(kind).await;
    }
}

/// Our zone lines inside a zone of their own (SOA, NS), as `named-checkzone` sees it.
fn check_zone(origin: &str, lines: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone");
    let zone = format!(
        "$ORIGIN {origin}.\n$TTL 3600\n@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 7200 3600 1209600 3600\n@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n{lines}"
    );
    std::fs::write(&path, zone).unwrap();
    let output = std::process::Command::new("named-checkzone")
        .arg(origin)
        .arg(&path)
        .output()
        .expect("named-checkzone (apt-get install bind9-utils; .ci/run installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

async fn zone_file(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("zone");
    let domain = "zone-file.example";
    let answer = app.generate(&org, &format!(r#"{{"email":"x@{domain}"}}"#));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let records = answer.json();
    // A rotation adds the pending key's record: four records to publish.
    assert_eq!(crate::lifecycle::rotate(&app, &org, domain).status, 202);
    let path = format!("/api/v1/emails/domains/{domain}/zone");
    let zone = call(&app, &org, "GET", &path, None);
    assert_eq!(zone.status, 200, "{}", zone.body);
    assert_eq!(zone.content_type, "text/plain; charset=utf-8");
    let lines: Vec<&str> = zone.body.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(lines.len(), 4, "{kind:?}: {}", zone.body);
    assert_eq!(
        lines[0],
        format!(
            "{domain}. 3600 IN TXT \"{}\"",
            records["SPF"].as_str().unwrap()
        )
    );
    // The DKIM value (over 255 octets) is cut into quoted strings of at most 255.
    let (dkim_name, dkim_value) = records.as_object().unwrap().iter().nth(1).unwrap();
    let dkim_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("{dkim_name}.")))
        .unwrap();
    let value = dkim_value.as_str().unwrap();
    assert!(dkim_line.ends_with(&format!("\"{}\" \"{}\"", &value[..255], &value[255..])));
    let (ok, output) = check_zone(domain, &zone.body);
    assert!(
        ok,
        "{kind:?}: named-checkzone refused the zone: {output}\n{}",
        zone.body
    );

    // The dashboard JWT works on it too; another organization gets 404.
    let token = crate::lifecycle::jwt(&app, &org);
    let bearer = format!("Bearer {token}");
    let by_jwt = app.request("GET", &path, &[("Authorization", bearer.as_str())], b"");
    assert_eq!(
        (by_jwt.status, by_jwt.body.as_str()),
        (200, zone.body.as_str())
    );
    let other = app.create_org("other");
    assert_eq!(call(&app, &other, "GET", &path, None).status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_zone_file_lists_every_record_and_named_checkzone_loads_it_on_every_backend() {
    for kind in backends() {
        zone_file(kind).await;
    }
}
