//! The background verifier over real HTTP on every backend, against the in-process DNS
//! server: publishing the records turns a domain verified
//! without anyone asking, removing one turns it failing after two checks, a published
//! pending key is promoted, `DOMAIN_API_VERIFIER=off` checks nothing, and two
//! instances on one database never check a domain twice at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Org, TestApp, spawn_sibling, spawn_sibling_with};
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

/// The service's clock (`DOMAIN_API_TEST_CLOCK_FILE`), moved on by the test.
pub struct TestClock(tempfile::NamedTempFile);

impl TestClock {
    pub fn new() -> Self {
        Self(tempfile::NamedTempFile::new().unwrap())
    }

    pub fn path(&self) -> String {
        self.0.path().display().to_string()
    }

    /// Moves the service's clock a second past `at`.
    pub fn move_past(&self, at: &Value) {
        let at: chrono::DateTime<chrono::Utc> = at.as_str().unwrap().parse().unwrap();
        let offset = (at - chrono::Utc::now()).num_seconds() + 1;
        let current: i64 = std::fs::read_to_string(self.0.path())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        std::fs::write(self.0.path(), offset.max(current).to_string()).unwrap();
    }
}

/// Seconds from `from` to `to` (RFC 3339 strings).
fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    (parse(to) - parse(from)).num_seconds()
}

/// Moves the clock past the domain's next check and waits for that check.
pub fn next_check(app: &TestApp, org: &Org, domain: &str, clock: &TestClock) -> Value {
    let before = detail(app, org, domain).json();
    clock.move_past(&before["nextCheckAt"]);
    wait_for(
        app,
        org,
        domain,
        Duration::from_secs(15),
        "the next check",
        |v| v["lastCheckedAt"] != before["lastCheckedAt"],
    )
}

async fn verified_then_failing(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let clock_path = clock.path();
    // The default schedule (1m, 5m, … while pending; 24h once verified), driven
    // through the service's clock.
    let app = app_with(
        kind,
        &dns,
        &[
            ("DOMAIN_API_VERIFIER", "on"),
            ("DOMAIN_API_VERIFY_POLL_INTERVAL", "100ms"),
            ("DOMAIN_API_TEST_CLOCK_FILE", clock_path.as_str()),
        ],
    )
    .await;
    let org = app.create_org("patient");
    let domain = "background.example";
    let records = generate(&app, &org, &format!("x@{domain}"));
    let created = detail(&app, &org, domain).json();
    assert_eq!(created["status"], "pending");
    let first = seconds_between(&created["createdAt"], &created["nextCheckAt"]);
    assert!(
        (59..=66).contains(&first),
        "{kind:?}: first check after {first} s"
    );

    // Checked in the background while nothing is published: still pending, and the
    // next check five minutes (plus jitter) on.
    let checked = next_check(&app, &org, domain, &clock);
    assert_eq!(checked["status"], "pending", "{kind:?}");
    let second = seconds_between(&checked["lastCheckedAt"], &checked["nextCheckAt"]);
    assert!(
        (300..=330).contains(&second),
        "{kind:?}: then after {second} s"
    );

    publish_generated(&dns, domain, &records);
    let verified = next_check(&app, &org, domain, &clock);
    assert_eq!(verified["status"], "verified", "{kind:?}: {verified}");
    assert!(!verified["verifiedAt"].is_null());
    let daily = seconds_between(&verified["lastCheckedAt"], &verified["nextCheckAt"]);
    assert!(
        (86_400..=95_040).contains(&daily),
        "{kind:?}: then after {daily} s"
    );
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
    dns.clear(&format!("_dmarc.{domain}"));
    let one_miss = next_check(&app, &org, domain, &clock);
    assert_eq!(
        one_miss["status"], "verified",
        "{kind:?}: failing after one miss"
    );
    let two_misses = next_check(&app, &org, domain, &clock);
    assert_eq!(two_misses["status"], "failing", "{kind:?}");
    assert!(types(&app, &org).contains(&"domain.failing".to_owned()));

    // Put back: verified again.
    dns.add_txt_value(
        &format!("_dmarc.{domain}"),
        records["_dmarc"].as_str().unwrap(),
    );
    let recovered = next_check(&app, &org, domain, &clock);
    assert_eq!(recovered["status"], "verified", "{kind:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_verifier_moves_status_on_without_being_asked_on_every_backend() {
    for kind in backends() {
        verified_then_failing(kind).await;
    }
}

/// The default schedule, driven through the service's clock.
const ON_THE_TEST_CLOCK: [(&str, &str); 2] = [
    ("DOMAIN_API_VERIFIER", "on"),
    ("DOMAIN_API_VERIFY_POLL_INTERVAL", "100ms"),
];

async fn app_on_clock(
    kind: BackendKind,
    dns: &TestDnsServer,
    clock: &TestClock,
    on: bool,
) -> TestApp {
    let path = clock.path();
    let mut settings = ON_THE_TEST_CLOCK.to_vec();
    if !on {
        settings[0] = ("DOMAIN_API_VERIFIER", "off");
    }
    settings.push(("DOMAIN_API_TEST_CLOCK_FILE", path.as_str()));
    app_with(kind, dns, &settings).await
}

async fn promotes_a_published_key(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let app = app_on_clock(kind, &dns, &clock, true).await;
    let org = app.create_org("rotating");
    let domain = "rotating-bg.example";
    let records = generate(&app, &org, &format!("x@{domain}"));
    publish_generated(&dns, domain, &records);
    let verified = next_check(&app, &org, domain, &clock);
    assert_eq!(verified["status"], "verified", "{kind:?}: {verified}");
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
    // The next background check (a day on, the domain being verified) promotes it.
    let promoted = next_check(&app, &org, domain, &clock);
    assert!(
        key_states(&promoted)
            .iter()
            .any(|(s, state)| s == pending["selector"].as_str().unwrap() && state == "active"),
        "{kind:?}: {promoted}"
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
    let clock = TestClock::new();
    let app = app_on_clock(kind, &dns, &clock, false).await;
    let org = app.create_org("quiet");
    generate(&app, &org, "x@quiet.example");
    let created = detail(&app, &org, "quiet.example").json();
    // Due (the clock a second past the first check), and ten polls go by: nothing.
    clock.move_past(&created["nextCheckAt"]);
    std::thread::sleep(Duration::from_millis(1000));
    let view = detail(&app, &org, "quiet.example").json();
    assert!(
        view["lastCheckedAt"].is_null(),
        "{kind:?}: checked while off: {view}"
    );
    // An instance on the same database with its verifier on checks it at once: it
    // was due all along.
    let on = spawn_sibling_with(&app, &[("DOMAIN_API_VERIFIER", "on")]);
    wait_for(
        &on,
        &org,
        "quiet.example",
        Duration::from_secs(15),
        "checked by the instance with its verifier on",
        |v| !v["lastCheckedAt"].is_null(),
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
