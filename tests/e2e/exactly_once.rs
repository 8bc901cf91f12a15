//! Idempotency-Key in phases, from outside: a keyed request holds no transaction, no
//! connection and no SQLite write lock while it waits on the network, so it cannot
//! block another organization's writes; its kept answer is sealed (a webhook's secret
//! shown once is not in the database in the clear) and still replays whole.

use std::sync::Arc;
use std::time::Duration;

use dns_hickory::test_support::TestDnsServer;
use serde_json::json;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Options, Org, TestApp, spawn_app_with};
use crate::idempotency::send as keyed;

/// A domain of `org` whose record names never answer on `dns`: a verify of it waits
/// out the DNS timeout on each.
fn domain_that_never_answers(app: &TestApp, dns: &TestDnsServer, org: &Org, domain: &str) {
    let created = app.generate(org, &format!(r#"{{"email":"x@{domain}"}}"#));
    assert_eq!(created.status, 201, "{}", created.body);
    let records = created.json();
    let records = records.as_object().unwrap();
    for name in records.keys() {
        match name.as_str() {
            "SPF" => dns.set_blackhole(domain),
            "_dmarc" => dns.set_blackhole(&format!("_dmarc.{domain}")),
            dkim => dns.set_blackhole(dkim),
        }
    }
}

async fn dns_work_holds_nothing(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    // Each lookup waits 1.5 s; the database waits at most 1 s for its write lock
    // (SQLite's busy timeout) or a pooled connection (two of them).
    let app = Arc::new(
        spawn_app_with(
            kind,
            Options {
                env: vec![
                    ("DOMAIN_API_DNS_SERVERS".into(), dns.addr().to_string()),
                    ("DOMAIN_API_DNS_TIMEOUT_MS".into(), "1500".into()),
                    ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS".into(), "1000".into()),
                    ("DOMAIN_API_DB_WAIT_TIMEOUT_MS".into(), "1000".into()),
                    ("DOMAIN_API_DB_POOL_SIZE".into(), "2".into()),
                    ("DOMAIN_API_VERIFIER".into(), "off".into()),
                ],
            },
        )
        .await,
    );
    let (slow, quiet) = (app.create_org("slow"), app.create_org("quiet"));
    let domains = ["slow-a.example", "slow-b.example"];
    for domain in domains {
        domain_that_never_answers(&app, &dns, &slow, domain);
    }

    // Two keyed verifies wait on DNS that never answers...
    let verifies: Vec<_> = domains
        .iter()
        .map(|domain| {
            let (app, slow) = (Arc::clone(&app), slow.clone());
            let path = format!("/api/v1/emails/domains/{domain}/verify");
            std::thread::spawn(move || keyed(&app, &slow, "POST", &path, &format!("v-{path}"), ""))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // ...while another organization writes, keyed and not.
    let plain = app.generate(&quiet, r#"{"email":"x@quiet.example"}"#);
    let with_key = keyed(
        &app,
        &quiet,
        "POST",
        "/api/v1/emails/domains/generate",
        "quiet-1",
        r#"{"email":"y@quiet.example"}"#,
    );
    let toggled = keyed(
        &app,
        &quiet,
        "PATCH",
        "/api/v1/emails/domains/quiet.example",
        "quiet-2",
        r#"{"inbound":false}"#,
    );

    assert_eq!(
        (plain.status, with_key.status, toggled.status),
        (201, 201, 200),
        "{kind:?}: another organization's writes wait for no keyed request's DNS: {} / {} / {}",
        plain.body,
        with_key.body,
        toggled.body
    );
    for verify in verifies {
        let answer = verify.join().unwrap();
        assert!(
            answer.status < 500,
            "{kind:?}: {} {}",
            answer.status,
            answer.body
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_request_waiting_on_dns_blocks_no_other_organizations_writes() {
    for kind in backends() {
        dns_work_holds_nothing(kind).await;
    }
}

async fn sealed_answers(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = spawn_app_with(
        kind,
        Options {
            env: vec![
                ("DOMAIN_API_DNS_SERVERS".into(), dns.addr().to_string()),
                ("DOMAIN_API_WEBHOOK_ALLOW_HTTP".into(), "1".into()),
                (
                    "DOMAIN_API_WEBHOOK_ALLOW_NETS".into(),
                    "127.0.0.2/32".into(),
                ),
                ("DOMAIN_API_WEBHOOK_SENDER".into(), "off".into()),
            ],
        },
    )
    .await;
    let org = app.create_org("hooks");
    dns.add_address("hook.sealed.example", "127.0.0.2".parse().unwrap());
    let body = json!({"url": "http://hook.sealed.example:8080/in", "events": ["domain.created"]})
        .to_string();

    let created = keyed(&app, &org, "POST", "/api/v1/webhooks", "hook-1", &body);
    assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    // The retry replays the whole answer, the secret with it...
    let again = keyed(&app, &org, "POST", "/api/v1/webhooks", "hook-1", &body);
    assert_eq!(
        (again.status, &again.body),
        (201, &created.body),
        "{kind:?}"
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    // ...which the database holds only sealed.
    if kind == BackendKind::Sqlite {
        let stored = database_bytes(&app);
        let encoded = secret.trim_start_matches("whsec_");
        assert!(
            !contains(&stored, encoded.as_bytes()),
            "the secret is in the database in the clear"
        );
        assert!(
            !contains(&stored, b"\"secret\""),
            "the kept answer is in the database in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_answer_is_sealed_and_replays_whole() {
    for kind in backends() {
        sealed_answers(kind).await;
    }
}

/// The SQLite database's files (the main file and its write-ahead log), as bytes.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let url = app.env_value("DOMAIN_API_DATABASE_URL");
    let path = url.strip_prefix("sqlite://").unwrap();
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::read(format!("{path}{suffix}")).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
