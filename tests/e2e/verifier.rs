//! The background verifier over real HTTP on every backend, against the in-process DNS
//! server, at a test-sized schedule: publishing the records turns a domain verified
//! without anyone asking, removing one turns it failing after two checks, a published
//! pending key is promoted, `DOMAIN_API_VERIFIER=off` checks nothing, and two
//! instances on one database never check a domain twice at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Org, TestApp, spawn_sibling};
use crate::lifecycle::{all_events, app_with, detail, key_states, publish_generated, rotate};

/// Checks every second, found within a tenth of a second.
const FAST: [(&str, &str); 4] = [
    ("DOMAIN_API_VERIFIER", "on"),
    ("DOMAIN_API_VERIFY_SCHEDULE", "1s"),
    ("DOMAIN_API_VERIFY_INTERVAL", "1s"),
    ("DOMAIN_API_VERIFY_POLL_INTERVAL", "100ms"),
];

fn generate(app: &TestApp, org: &Org, email: &str) -> Value {
    let answer = app.generate(org, &format!(r#"{{"email":"{email}"}}"#));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

/// Polls the domain's detail until `done` holds, for at most `limit`.
fn wait_for(
    app: &TestApp,
    org: &Org,
    domain: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let view = detail(app, org, domain).json();
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < limit, "{what}: still {view}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn types(app: &TestApp, org: &Org) -> Vec<String> {
    all_events(app, org, 1000)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn verified_then_failing(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &FAST).await;
    let org = app.create_org("patient");
    let domain = "background.example";
    let records = generate(&app, &org, &format!("x@{domain}"));
    let created = detail(&app, &org, domain).json();
    assert_eq!(created["status"], "pending");
    let next: chrono::DateTime<chrono::Utc> =
        created["nextCheckAt"].as_str().unwrap().parse().unwrap();
    let in_ms = (next - chrono::Utc::now()).num_milliseconds();
    assert!(
        (0..=1100).contains(&in_ms),
        "{kind:?}: first check in {in_ms} ms"
    );

    // Checked in the background while nothing is published: still pending.
    let checked = wait_for(
        &app,
        &org,
        domain,
        Duration::from_secs(15),
        "first check",
        |v| !v["lastCheckedAt"].is_null(),
    );
    assert_eq!(checked["status"], "pending", "{kind:?}");

    publish_generated(&dns, domain, &records);
    let verified = wait_for(
        &app,
        &org,
        domain,
        Duration::from_secs(15),
        "verified",
        |v| v["status"] == "verified",
    );
    assert!(!verified["verifiedAt"].is_null());
    assert_eq!(
        types(&app, &org)
            .iter()
            .filter(|t| *t == "domain.verified")
            .count(),
        1,
        "{kind:?}"
    );

    // One record goes: the first check that misses it keeps `verified`, the second
    // turns the domain failing.
    let removed_at = chrono::Utc::now();
    dns.clear(&format!("_dmarc.{domain}"));
    let mut saw_one_miss = false;
    let started = Instant::now();
    loop {
        let view = detail(&app, &org, domain).json();
        let last: chrono::DateTime<chrono::Utc> =
            view["lastCheckedAt"].as_str().unwrap().parse().unwrap();
        if view["status"] == "failing" {
            break;
        }
        if last > removed_at && view["status"] == "verified" {
            saw_one_miss = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{kind:?}: never failing: {view}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        saw_one_miss,
        "{kind:?}: failing after a single failed check"
    );
    assert!(types(&app, &org).contains(&"domain.failing".to_owned()));

    // Put back: verified again.
    dns.add_txt_value(
        &format!("_dmarc.{domain}"),
        records["_dmarc"].as_str().unwrap(),
    );
    wait_for(
        &app,
        &org,
        domain,
        Duration::from_secs(15),
        "recovered",
        |v| v["status"] == "verified",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_verifier_moves_status_on_without_being_asked_on_every_backend() {
    for kind in backends() {
        verified_then_failing(kind).await;
    }
}

async fn promotes_a_published_key(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &FAST).await;
    let org = app.create_org("rotating");
    let domain = "rotating-bg.example";
    let records = generate(&app, &org, &format!("x@{domain}"));
    publish_generated(&dns, domain, &records);
    wait_for(
        &app,
        &org,
        domain,
        Duration::from_secs(15),
        "verified",
        |v| v["status"] == "verified",
    );
    let rotated = rotate(&app, &org, domain);
    assert_eq!(rotated.status, 202, "{}", rotated.body);
    let view = rotated.json();
    let pending = view["dkim"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "pending")
        .unwrap()
        .clone();
    dns.add_txt_value(
        pending["record"]["name"].as_str().unwrap(),
        pending["record"]["value"].as_str().unwrap(),
    );
    let promoted = wait_for(
        &app,
        &org,
        domain,
        Duration::from_secs(15),
        "promoted",
        |v| {
            key_states(v)
                .iter()
                .any(|(s, state)| s == pending["selector"].as_str().unwrap() && state == "active")
        },
    );
    assert_eq!(
        key_states(&promoted)
            .iter()
            .filter(|(_, s)| s == "retiring")
            .count(),
        1,
        "{kind:?}: {promoted}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_verifier_promotes_a_published_pending_key_on_every_backend() {
    for kind in backends() {
        promotes_a_published_key(kind).await;
    }
}

async fn switched_off(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let mut settings = FAST.to_vec();
    settings[0] = ("DOMAIN_API_VERIFIER", "off");
    let app = app_with(kind, &dns, &settings).await;
    let org = app.create_org("quiet");
    generate(&app, &org, "x@quiet.example");
    std::thread::sleep(Duration::from_millis(2500));
    let view = detail(&app, &org, "quiet.example").json();
    assert!(
        view["lastCheckedAt"].is_null(),
        "{kind:?}: checked while off: {view}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_with_the_verifier_off_checks_nothing_on_every_backend() {
    for kind in backends() {
        switched_off(kind).await;
    }
}

async fn two_instances(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let mut settings = FAST.to_vec();
    settings.push(("DOMAIN_API_VERIFY_CONCURRENCY", "8"));
    let app = Arc::new(app_with(kind, &dns, &settings).await);
    let sibling = spawn_sibling(&app);
    let org = app.create_org("shared");
    let domains: Vec<String> = (0..12).map(|i| format!("shared{i}.example")).collect();
    for domain in &domains {
        let records = generate(&app, &org, &format!("x@{domain}"));
        publish_generated(&dns, domain, &records);
    }
    for domain in &domains {
        wait_for(
            &sibling,
            &org,
            domain,
            Duration::from_secs(30),
            "verified",
            |v| v["status"] == "verified",
        );
    }
    // Each domain turned verified once: two checks of one domain at the same moment
    // would both have applied `pending → verified`.
    std::thread::sleep(Duration::from_millis(1500));
    let events = all_events(&app, &org, 1000);
    for domain in &domains {
        let verified = events
            .iter()
            .filter(|e| e["type"] == "domain.verified" && e["data"]["domain"] == domain.as_str())
            .count();
        assert_eq!(verified, 1, "{kind:?}: {domain} verified {verified} times");
    }
    let metrics = |app: &TestApp| app.get("/metrics").unwrap().body;
    for instance in [metrics(&app), metrics(&sibling)] {
        assert!(
            instance.contains("domain_api_verify_checks_total{outcome=\"verified\"}"),
            "{kind:?}: {instance}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_the_checks_without_overlap_on_every_backend() {
    for kind in backends() {
        two_instances(kind).await;
    }
}
