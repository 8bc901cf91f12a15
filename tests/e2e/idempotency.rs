//! `Idempotency-Key` over real HTTP on every backend: a retry replays the first answer
//! and does nothing again, another request with the key is refused, concurrent calls
//! with one key (on two instances) run once, a 5xx is not kept, and keys expire on
//! the service's clock.

use std::sync::Arc;

use dns_hickory::test_support::TestDnsServer;
use serde_json::{Value, json};
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Answer, Org, TestApp, spawn_sibling};
use crate::lifecycle::{all_events, app_with};
use crate::verifier::TestClock;

/// A request of `org` with `Idempotency-Key: key` (and a JSON body when one is given).
pub(crate) fn send(
    app: &TestApp,
    org: &Org,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> Answer {
    let mut headers = vec![
        ("X-Api-Access-Token", org.access.as_str()),
        ("X-Api-Secret-Token", org.secret.as_str()),
        ("Idempotency-Key", key),
    ];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    app.request(method, path, &headers, body.as_bytes())
}

fn generate(app: &TestApp, org: &Org, key: &str, body: &str) -> Answer {
    send(
        app,
        org,
        "POST",
        "/api/v1/emails/domains/generate",
        key,
        body,
    )
}

fn replayed(answer: &Answer) -> bool {
    answer.header("Idempotent-Replayed") == Some("true")
}

fn count(events: &[Value], kind: &str, domain: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["data"]["domain"] == domain)
        .count()
}

async fn replays(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("retrying");
    let body = r#"{"email":"noreply@retry.example"}"#;

    let first = generate(&app, &org, "order-1", body);
    assert_eq!(first.status, 201, "{kind:?}: {}", first.body);
    assert!(!replayed(&first));
    // The answer was lost; the client retries: the same 201, nothing done again.
    let again = generate(&app, &org, "order-1", body);
    assert_eq!(
        (
            again.status,
            again.body.as_str(),
            again.content_type.as_str()
        ),
        (201, first.body.as_str(), first.content_type.as_str()),
        "{kind:?}"
    );
    assert!(replayed(&again), "{kind:?}");
    let events = all_events(&app, &org, 1000);
    assert_eq!(count(&events, "domain.created", "retry.example"), 1);
    assert_eq!(count(&events, "sender.registered", "retry.example"), 1);
    // Without the key the same call is a new one: the email is taken.
    let plain = app.generate(&org, body);
    assert_eq!(plain.status, 409, "{kind:?}");

    // The key with another request: refused, nothing done.
    let other = generate(&app, &org, "order-1", r#"{"email":"other@retry.example"}"#);
    assert_eq!(
        (other.status, other.body.as_str()),
        (422, "Idempotency-Key reused with a different request"),
        "{kind:?}"
    );
    // A 4xx is kept like any answer below 500.
    let taken = generate(&app, &org, "order-2", body);
    assert_eq!(taken.status, 409);
    let taken_again = generate(&app, &org, "order-2", body);
    assert_eq!((taken_again.status, &taken_again.body), (409, &taken.body));
    assert!(replayed(&taken_again));

    // Keys belong to their organization: another one's "order-1" is its own.
    let neighbour = app.create_org("neighbour");
    let theirs = generate(
        &app,
        &neighbour,
        "order-1",
        r#"{"email":"noreply@neighbour.example"}"#,
    );
    assert_eq!(theirs.status, 201, "{kind:?}: {}", theirs.body);
    assert!(!replayed(&theirs));

    // DELETE too: the retry of a delete that happened is its 204, not a 404.
    let path = "/api/v1/emails/domains/neighbour.example";
    let deleted = send(&app, &neighbour, "DELETE", path, "drop-1", "");
    assert_eq!(deleted.status, 204, "{kind:?}: {}", deleted.body);
    let deleted_again = send(&app, &neighbour, "DELETE", path, "drop-1", "");
    assert_eq!(deleted_again.status, 204, "{kind:?}");
    assert!(replayed(&deleted_again));

    // A malformed key is refused before anything runs.
    for bad in ["", "tab\there", &"k".repeat(256)] {
        let refused = generate(&app, &org, bad, r#"{"email":"x@bad-key.example"}"#);
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (
                400,
                "Invalid Idempotency-Key: one header of 1 to 255 printable ASCII characters"
            ),
            "{kind:?}: {bad:?}"
        );
    }
    assert_eq!(
        count(
            &all_events(&app, &org, 1000),
            "domain.created",
            "bad-key.example"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_with_the_same_key_replays_the_first_answer_on_every_backend() {
    for kind in backends() {
        replays(kind).await;
    }
}

async fn races(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let first = app_with(kind, &dns, &[]).await;
    let second = spawn_sibling(&first);
    let apps = [Arc::new(first), Arc::new(second)];
    let org = apps[0].create_org("racing");
    let body = r#"{"email":"noreply@race.example"}"#;
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let app = Arc::clone(&apps[i % 2]);
                let org = org.clone();
                scope.spawn(move || generate(&app, &org, "one-key", body))
            })
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    let originals: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == 201 && !replayed(a))
        .collect();
    assert_eq!(originals.len(), 1, "{kind:?}: {answers:#?}");
    for answer in &answers {
        match answer.status {
            201 => assert_eq!(answer.body, originals[0].body, "{kind:?}"),
            409 => assert_eq!(
                answer.body, "A request with this Idempotency-Key is in progress",
                "{kind:?}"
            ),
            other => panic!("{kind:?}: {other} {}", answer.body),
        }
    }
    let events = all_events(&apps[0], &org, 1000);
    assert_eq!(
        count(&events, "domain.created", "race.example"),
        1,
        "{kind:?}"
    );
    assert_eq!(count(&events, "sender.registered", "race.example"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_calls_with_one_key_on_two_instances_run_once_on_every_backend() {
    for kind in backends() {
        races(kind).await;
    }
}

async fn server_errors_and_expiry(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let clock = TestClock::new();
    let clock_path = clock.path();
    let app = app_with(
        kind,
        &dns,
        &[
            ("DOMAIN_API_TEST_CLOCK_FILE", clock_path.as_str()),
            ("DOMAIN_API_WEBHOOK_SENDER", "off"),
        ],
    )
    .await;
    let org = app.create_org("unlucky");
    // The webhook host's lookup times out: 503, which is not kept.
    dns.set_blackhole("hooks.slow.example");
    let body = json!({"url": "https://hooks.slow.example/in"}).to_string();
    let failed = send(&app, &org, "POST", "/api/v1/webhooks", "hook-1", &body);
    assert_eq!(failed.status, 503, "{kind:?}: {}", failed.body);
    dns.clear("hooks.slow.example");
    dns.add_address("hooks.slow.example", "93.184.216.34".parse().unwrap());
    let retried = send(&app, &org, "POST", "/api/v1/webhooks", "hook-1", &body);
    assert_eq!(
        retried.status, 201,
        "{kind:?}: the retry ran: {}",
        retried.body
    );
    assert!(!replayed(&retried));
    let replay = send(&app, &org, "POST", "/api/v1/webhooks", "hook-1", &body);
    assert_eq!((replay.status, &replay.body), (201, &retried.body));
    assert!(
        replayed(&replay),
        "the secret is shown again only to the same request"
    );

    // A day and a second later the key is forgotten: the request runs again.
    let generate_body = r#"{"email":"noreply@expiry.example"}"#;
    assert_eq!(generate(&app, &org, "day-1", generate_body).status, 201);
    std::fs::write(&clock_path, (24 * 3600 + 1).to_string()).unwrap();
    let later = generate(&app, &org, "day-1", generate_body);
    assert_eq!(later.status, 409, "{kind:?}: ran again: {}", later.body);
    assert!(!replayed(&later));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_not_kept_and_keys_expire_on_every_backend() {
    for kind in backends() {
        server_errors_and_expiry(kind).await;
    }
}

/// Issue 21: 300 keyed `PATCH {"inbound":false}` grew the SQLite file by 117 MB in
/// 3.4 s — every keyed answer was kept whole for a day, without bound. An
/// organization's kept answers now take at most
/// `DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG` (plus what one second of its keyed
/// requests keeps): past it a new key answers 429 with `Retry-After` and runs
/// nothing, a kept answer is still replayed, and other organizations are untouched.
async fn answer_room(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &[("DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG", "8000")],
    )
    .await;
    let org = app.create_org("keeper");
    let other = app.create_org("other");
    assert_eq!(
        app.generate(&org, r#"{"email":"x@room.example"}"#).status,
        201
    );
    let patch = |org: &Org, key: &str| {
        send(
            &app,
            org,
            "PATCH",
            "/api/v1/emails/domains/room.example",
            key,
            r#"{"inbound":false}"#,
        )
    };

    let mut refused = None;
    for i in 0..500 {
        let answer = patch(&org, &format!("fill-{i}"));
        if answer.status == 429 {
            refused = Some((i, answer));
            break;
        }
        assert_eq!(answer.status, 200, "{kind:?} #{i}: {}", answer.body);
    }
    let (kept, answer) = refused.unwrap_or_else(|| panic!("{kind:?}: 500 answers kept"));
    assert_eq!(
        answer.body, "Too many stored Idempotency-Key answers; retry later",
        "{kind:?}"
    );
    let wait: u64 = answer.header("Retry-After").unwrap().parse().unwrap();
    // The first answer expires a day (the default TTL) after it was kept.
    assert!(
        (86_000..=86_400).contains(&wait),
        "{kind:?}: Retry-After {wait}"
    );
    assert!(kept >= 2, "{kind:?}: refused after {kept} answers");

    // Still full a second later (the bound is read again), a kept answer still
    // replays, and another organization has room of its own.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(patch(&org, "one-more").status, 429, "{kind:?}");
    let replay = patch(&org, "fill-0");
    assert_eq!(replay.status, 200, "{kind:?}: {}", replay.body);
    assert!(replayed(&replay), "{kind:?}");
    assert_eq!(
        app.generate(&other, r#"{"email":"x@elsewhere-room.example"}"#)
            .status,
        201
    );
    let theirs = send(
        &app,
        &other,
        "PATCH",
        "/api/v1/emails/domains/elsewhere-room.example",
        "fill-0",
        r#"{"inbound":false}"#,
    );
    assert_eq!(theirs.status, 200, "{kind:?}: {}", theirs.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organizations_kept_answers_are_bounded_in_bytes_on_every_backend() {
    for kind in backends() {
        answer_room(kind).await;
    }
}
