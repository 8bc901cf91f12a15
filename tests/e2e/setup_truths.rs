//! The Domain Setup page tells the truth from the first look, in a real browser
//! (`browser.rs`): a domain the background verifier verified shows that check's rows
//! and time (not "Not checked yet" under a "Verified" badge); the inbound MX record
//! (host, priority, value) is shown before any check; once inbound is on, the MX is
//! listed with the records and is in the downloaded zone file.

use std::time::{Duration, Instant};

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::browser::Browser;
use crate::helpers::{Org, TestApp};
use crate::lifecycle::{app_with, call, detail, jwt, publish_generated};
use crate::setup_page::{assert_no_console_errors, rows, statuses, wait_for_file, wait_loaded};

/// The background verifier checks every second.
const FAST: [(&str, &str); 4] = [
    ("DOMAIN_API_VERIFIER", "on"),
    ("DOMAIN_API_VERIFY_SCHEDULE", "1s"),
    ("DOMAIN_API_VERIFY_INTERVAL", "1s"),
    ("DOMAIN_API_VERIFY_POLL_INTERVAL", "100ms"),
];

fn generate(app: &TestApp, org: &Org, domain: &str) -> Value {
    let answer = app.generate(org, &format!(r#"{{"email":"hello@{domain}"}}"#));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

fn text(browser: &Browser, script: &str) -> String {
    browser
        .run(script, &[])
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn background_verdict(kind: BackendKind, browser: &Browser) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &FAST).await;
    let org = app.create_org("verified-in-the-background");
    let domain = "background.example";
    publish_generated(&dns, domain, &generate(&app, &org, domain));
    // Nobody presses "Check now": the background verifier finds every record.
    let started = Instant::now();
    while detail(&app, &org, domain).json()["status"] != "verified" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{kind:?}: never verified"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    browser.goto(&app.url(&format!("/setup/{domain}#token={}", jwt(&app, &org))));
    wait_loaded(browser);
    assert_eq!(
        text(
            browser,
            "return document.getElementById('domain-status').textContent;"
        ),
        "Verified"
    );
    // The rows are that check's: every record published, none "Not checked yet".
    assert_eq!(statuses(browser), ["ok", "ok", "ok"], "{kind:?}");
    let badges: Vec<Value> = rows(browser).iter().map(|r| r["badge"].clone()).collect();
    assert_eq!(badges, ["Published", "Published", "Published"], "{kind:?}");
    // With its time: the check the status facts name.
    let summary = text(
        browser,
        "const s = document.getElementById('check-summary'); return s.hidden ? '' : s.textContent;",
    );
    assert!(
        summary.starts_with("Last check, ")
            && summary.ends_with(": all 3 records are published correctly."),
        "{kind:?}: {summary:?}"
    );
    let checked = text(
        browser,
        "return document.querySelector('#check-summary time').getAttribute('datetime');",
    );
    let facts = text(
        browser,
        "return document.querySelector('#last-checked time').getAttribute('datetime');",
    );
    assert_eq!(checked, facts, "{kind:?}");
    assert!(!checked.is_empty());
    assert_no_console_errors(browser, |_| false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_verified_in_the_background_shows_the_rows_of_that_check_on_every_backend() {
    let Some(browser) = Browser::start() else {
        return;
    };
    for kind in backends() {
        background_verdict(kind, &browser).await;
    }
}

/// The inbound section's MX fields: host, full name, priority, value.
fn inbound_mx(browser: &Browser) -> Value {
    browser.run(
        "const mx = document.getElementById('inbound-mx');
         return mx ? [...mx.querySelectorAll('code')].map(c => c.textContent) : null;",
        &[],
    )
}

async fn inbound_mx_shown(kind: BackendKind, browser: &Browser) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("inbound-mx");
    let token = jwt(&app, &org);
    let domain = "inbound-mx.example";
    generate(&app, &org, domain);

    // Before any check: what to publish for inbound mail, in full.
    browser.goto(&app.url(&format!("/setup/{domain}#token={token}")));
    wait_loaded(browser);
    assert_eq!(
        inbound_mx(browser),
        serde_json::json!(["@", domain, "10", "inbound.sendtrim.com"]),
        "{kind:?}"
    );
    assert_eq!(
        rows(browser).len(),
        3,
        "{kind:?}: no MX row while inbound is off"
    );
    assert_no_console_errors(browser, |_| false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbound_mx_is_shown_before_any_check_on_every_backend() {
    let Some(browser) = Browser::start() else {
        return;
    };
    for kind in backends() {
        inbound_mx_shown(kind, &browser).await;
    }
}

async fn inbound_mx_listed(kind: BackendKind, browser: &Browser) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("inbound-mx-on");
    let token = jwt(&app, &org);
    let domain = "inbound-on.example";
    generate(&app, &org, domain);

    // The customer publishes the MX and turns inbound on: the MX is a record to keep.
    dns.add_mx(domain, 10, "inbound.sendtrim.com.");
    let on = call(
        &app,
        &org,
        "PATCH",
        &format!("/api/v1/emails/domains/{domain}"),
        Some(r#"{"inbound":true}"#),
    );
    assert_eq!(on.status, 200, "{kind:?}: {}", on.body);
    browser.goto(&app.url(&format!("/setup/{domain}#token={token}")));
    wait_loaded(browser);
    let shown = rows(browser);
    let kinds: Vec<&str> = shown.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SPF", "DKIM", "DMARC", "MX"], "{kind:?}");
    let mx = &shown[3];
    assert_eq!(
        (&mx["host"], &mx["fullName"], &mx["value"]),
        (
            &Value::from("@"),
            &Value::from(domain),
            &Value::from("inbound.sendtrim.com")
        ),
        "{kind:?}"
    );
    assert_eq!(
        text(
            browser,
            "return document.querySelector('#records li[data-kind=\"MX\"] code.priority').textContent;"
        ),
        "10"
    );

    // The zone file the page downloads carries it too.
    let download = browser.downloads.path().join(format!("{domain}.zone"));
    let _ = std::fs::remove_file(&download);
    browser.allow_downloads();
    browser.click("#zone");
    let file = wait_for_file(&download);
    assert!(
        file.lines()
            .any(|line| line == format!("{domain}. 3600 IN MX 10 inbound.sendtrim.com.")),
        "{kind:?}: {file}"
    );
    assert_no_console_errors(browser, |_| false);
}

#[tokio::test(flavor = "multi_thread")]
async fn once_inbound_is_on_the_mx_is_listed_with_the_records_and_in_the_zone_file_on_every_backend()
 {
    let Some(browser) = Browser::start() else {
        return;
    };
    for kind in backends() {
        inbound_mx_listed(kind, &browser).await;
    }
}
