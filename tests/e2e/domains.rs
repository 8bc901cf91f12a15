//! `POST /api/v1/emails/domains` over real HTTP on every backend: a domain created on
//! its own (201, then 200 for its owner, 409 for anyone else), under generate's
//! ownership rules and quotas, with `Idempotency-Key`, inbound only with the MX, and
//! reused with its key by a later generate. Also the detail's `inboundMx` and
//! `lastCheck` (a check's findings kept with the domain).

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Answer, Org, TestApp};
use crate::idempotency::send;
use crate::lifecycle::{all_events, app_with, call, jwt};

const DOMAINS: &str = "/api/v1/emails/domains";

fn create(app: &TestApp, org: &Org, body: &str) -> Answer {
    call(app, org, "POST", DOMAINS, Some(body))
}

fn assert_answer(answer: &Answer, status: u16, body: &str, what: &str) {
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (status, body),
        "{what}"
    );
}

fn count(events: &[Value], kind: &str, domain: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["data"]["domain"] == domain)
        .count()
}

async fn created_then_reused(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let owner = app.create_org("owner");
    let other = app.create_org("other");

    // 201 with the detail: pending, one active key, every record, no sender.
    let first = create(&app, &owner, r#"{"name":"Own-Domain.example"}"#);
    assert_eq!(first.status, 201, "{kind:?}: {}", first.body);
    assert!(first.content_type.starts_with("application/json"));
    let detail = first.json();
    assert_eq!(detail["domain"], "own-domain.example");
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["inboundEnabled"], false);
    assert_eq!(detail["senders"], Value::Array(vec![]));
    assert_eq!(detail["dkim"].as_array().unwrap().len(), 1);
    assert_eq!(detail["dkim"][0]["state"], "active");
    assert_eq!(detail["records"].as_array().unwrap().len(), 3);
    // The same body as the detail route's.
    let read = call(
        &app,
        &owner,
        "GET",
        &format!("{DOMAINS}/own-domain.example"),
        None,
    );
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), detail, "{kind:?}");

    // The owner again: 200, the same domain, the same key.
    let again = create(&app, &owner, r#"{"name":"own-domain.example"}"#);
    assert_eq!(again.status, 200, "{kind:?}: {}", again.body);
    assert_eq!(again.json(), detail, "{kind:?}");

    // Anyone else: taken, and so is a name under it.
    for name in ["own-domain.example", "mail.own-domain.example"] {
        assert_answer(
            &create(&app, &other, &format!(r#"{{"name":"{name}"}}"#)),
            409,
            "Domain is already taken",
            name,
        );
    }

    // generate on it reuses the domain and its key.
    let records = app.generate(&owner, r#"{"email":"noreply@own-domain.example"}"#);
    assert_eq!(records.status, 201, "{kind:?}: {}", records.body);
    let selector = detail["dkim"][0]["selector"].as_str().unwrap();
    let records = records.json();
    assert_eq!(
        records[format!("{selector}._domainkey.own-domain.example")],
        detail["dkim"][0]["record"]["value"],
        "{kind:?}: {records}"
    );
    let after = call(
        &app,
        &owner,
        "GET",
        &format!("{DOMAINS}/own-domain.example"),
        None,
    )
    .json();
    assert_eq!(after["dkim"], detail["dkim"], "{kind:?}");
    assert_eq!(after["senders"][0]["email"], "noreply@own-domain.example");

    let events = all_events(&app, &owner, 100);
    assert_eq!(count(&events, "domain.created", "own-domain.example"), 1);
    assert_eq!(count(&events, "sender.registered", "own-domain.example"), 1);
    assert!(all_events(&app, &other, 100).is_empty(), "{kind:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_created_on_its_own_is_its_owners_and_generate_reuses_it_on_every_backend() {
    for kind in backends() {
        created_then_reused(kind).await;
    }
}

async fn refusals(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("careless");
    for (body, status, sentence) in [
        (r#"{"name":"co.uk"}"#, 400, "Invalid domain: co.uk"),
        (
            r#"{"name":"printer.local"}"#,
            400,
            "Invalid domain: printer.local",
        ),
        (
            r#"{"name":"exa mple.com"}"#,
            400,
            "Invalid domain: exa mple.com",
        ),
        (r#"{"name":"localhost"}"#, 400, "Invalid domain: localhost"),
        (r#"{"name":5}"#, 400, "Invalid domain: 5"),
        (
            r#"{}"#,
            400,
            "Missing domain name: expected \"name\" as a JSON string",
        ),
        (
            r#"{"name":"example.com","inbound":"yes"}"#,
            400,
            "Invalid inbound flag: expected true or false",
        ),
        (r#"{"name":"gmail.com"}"#, 409, "Domain is already taken"),
        (
            r#"{"name":"eu.outlook.com"}"#,
            409,
            "Domain is already taken",
        ),
    ] {
        assert_answer(&create(&app, &org, body), status, sentence, body);
    }
    // The domain is the body's, in the limit of DKIM record names.
    let long = format!("{}.example", vec!["a".repeat(60); 4].join("."));
    assert_eq!(
        create(&app, &org, &format!(r#"{{"name":"{long}"}}"#)).status,
        400,
        "{kind:?}"
    );

    // API tokens only, as generate: a dashboard JWT alone is no credential here.
    let token = jwt(&app, &org);
    let bearer = format!("Bearer {token}");
    let answer = app.request(
        "POST",
        DOMAINS,
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"name":"jwt.example"}"#,
    );
    assert_answer(&answer, 401, "Missing API credentials", "JWT alone");
    let wrong = app.request("PUT", DOMAINS, &[("X-Api-Access-Token", &org.access)], b"");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("Allow"), Some("GET, POST"));
    assert!(all_events(&app, &org, 100).is_empty(), "{kind:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_domain_refuses_bad_names_reserved_names_and_foreign_credentials_on_every_backend()
 {
    for kind in backends() {
        refusals(kind).await;
    }
}

async fn quotas(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &[
            ("DOMAIN_API_MAX_DOMAINS_PER_ORG", "2"),
            ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "3"),
        ],
    )
    .await;
    let org = app.create_org("small");
    assert_eq!(create(&app, &org, r#"{"name":"one.example"}"#).status, 201);
    assert_eq!(create(&app, &org, r#"{"name":"two.example"}"#).status, 201);
    assert_answer(
        &create(&app, &org, r#"{"name":"three.example"}"#),
        403,
        "Domain limit reached",
        "third",
    );
    // Its own domains stay reachable, and generate on them reuses them.
    assert_eq!(create(&app, &org, r#"{"name":"one.example"}"#).status, 200);
    assert_eq!(
        app.generate(&org, r#"{"email":"x@two.example"}"#).status,
        201,
        "{kind:?}"
    );
    // The key budget (three a minute) is generate's and rotation's too: a rotation
    // spends the third, and the next new domain waits.
    let rotate = call(
        &app,
        &org,
        "POST",
        &format!("{DOMAINS}/one.example/dkim/rotate"),
        None,
    );
    assert_eq!(rotate.status, 202, "{kind:?}: {}", rotate.body);
    assert_eq!(
        call(
            &app,
            &org,
            "DELETE",
            &format!("{DOMAINS}/two.example"),
            None
        )
        .status,
        204
    );
    let limited = create(&app, &org, r#"{"name":"four.example"}"#);
    assert_answer(&limited, 429, "Too many new domains; retry later", "budget");
    let wait: u64 = limited.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{kind:?}: Retry-After {wait}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_domain_meets_the_domain_limit_and_the_key_budget_on_every_backend() {
    for kind in backends() {
        quotas(kind).await;
    }
}

async fn idempotent(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("retrying");
    let body = r#"{"name":"retry.example"}"#;

    let first = send(&app, &org, "POST", DOMAINS, "create-1", body);
    assert_eq!(first.status, 201, "{kind:?}: {}", first.body);
    assert_eq!(first.header("Idempotent-Replayed"), None);
    // The answer was lost; the retry replays the 201 (not the owner's 200).
    let again = send(&app, &org, "POST", DOMAINS, "create-1", body);
    assert_eq!(
        (
            again.status,
            again.body.as_str(),
            again.content_type.as_str()
        ),
        (201, first.body.as_str(), first.content_type.as_str()),
        "{kind:?}"
    );
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    // Another request with the key is refused; a new key reads the owner's 200.
    let other = send(
        &app,
        &org,
        "POST",
        DOMAINS,
        "create-1",
        r#"{"name":"x.example"}"#,
    );
    assert_answer(
        &other,
        422,
        "Idempotency-Key reused with a different request",
        "mismatch",
    );
    assert_eq!(
        send(&app, &org, "POST", DOMAINS, "create-2", body).status,
        200
    );
    // A refusal is kept like any 4xx.
    let taken = send(
        &app,
        &org,
        "POST",
        DOMAINS,
        "create-3",
        r#"{"name":"gmail.com"}"#,
    );
    assert_answer(&taken, 409, "Domain is already taken", "taken");
    let taken = send(
        &app,
        &org,
        "POST",
        DOMAINS,
        "create-3",
        r#"{"name":"gmail.com"}"#,
    );
    assert_eq!(taken.header("Idempotent-Replayed"), Some("true"));

    let events = all_events(&app, &org, 100);
    assert_eq!(
        count(&events, "domain.created", "retry.example"),
        1,
        "{kind:?}"
    );
    assert_eq!(events.len(), 1, "{kind:?}: {events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_domain_with_an_idempotency_key_runs_once_on_every_backend() {
    for kind in backends() {
        idempotent(kind).await;
    }
}

async fn inbound(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("inbound");
    let body = r#"{"name":"mx.example","inbound":true}"#;

    // No MX at our relay: refused as the toggle is, and nothing is created.
    dns.add_mx("mx.example", 10, "mail.elsewhere.example.");
    assert_answer(
        &create(&app, &org, body),
        409,
        "Inbound requires an MX record pointing at inbound.sendtrim.com or smtp.sendtrim.com",
        "no MX",
    );
    let missing = call(&app, &org, "GET", &format!("{DOMAINS}/mx.example"), None);
    assert_eq!(missing.status, 404, "{kind:?}");

    dns.clear("mx.example");
    dns.add_mx("mx.example", 10, "inbound.sendtrim.com.");
    let created = create(&app, &org, body);
    assert_eq!(created.status, 201, "{kind:?}: {}", created.body);
    assert_eq!(created.json()["inboundEnabled"], true);

    // An owner's domain without inbound: inbound true turns it on (200), false never
    // turns it off.
    assert_eq!(
        create(&app, &org, r#"{"name":"later.example"}"#).status,
        201
    );
    let off = create(&app, &org, r#"{"name":"later.example","inbound":true}"#);
    assert_eq!(off.status, 409, "{kind:?}: {}", off.body);
    dns.add_mx("later.example", 5, "smtp.sendtrim.com.");
    let on = create(&app, &org, r#"{"name":"later.example","inbound":true}"#);
    assert_eq!(
        (on.status, &on.json()["inboundEnabled"]),
        (200, &Value::Bool(true))
    );
    let kept = create(&app, &org, r#"{"name":"later.example","inbound":false}"#);
    assert_eq!(
        (kept.status, &kept.json()["inboundEnabled"]),
        (200, &Value::Bool(true))
    );

    let events = all_events(&app, &org, 100);
    for domain in ["mx.example", "later.example"] {
        assert_eq!(count(&events, "domain.created", domain), 1, "{kind:?}");
        assert_eq!(
            count(&events, "domain.inbound_enabled", domain),
            1,
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_domain_with_inbound_needs_the_mx_at_the_relay_on_every_backend() {
    for kind in backends() {
        inbound(kind).await;
    }
}

async fn last_check_kept(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("checked");
    let path = format!("{DOMAINS}/checked.example");
    let created = create(&app, &org, r#"{"name":"checked.example"}"#).json();
    assert_eq!(created["lastCheck"], Value::Null, "{kind:?}");
    // What inbound needs is named before any check.
    assert_eq!(
        created["inboundMx"],
        serde_json::json!({"type":"MX","host":"@","name":"checked.example","priority":10,"value":"inbound.sendtrim.com"})
    );

    dns.add_txt_value("checked.example", "v=spf1 ip4:51.79.43.241 -all");
    let report = call(&app, &org, "POST", &format!("{path}/verify"), None);
    assert_eq!(report.status, 200, "{kind:?}: {}", report.body);
    let report = report.json();
    let detail = call(&app, &org, "GET", &path, None).json();
    let kept = &detail["lastCheck"];
    assert_eq!(kept["checkedAt"], detail["lastCheckedAt"], "{kind:?}");
    let rows: Vec<Value> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!({"type": r["type"], "name": r["name"], "status": r["status"], "reason": r["reason"]})
        })
        .collect();
    assert_eq!(kept["records"], Value::Array(rows), "{kind:?}");
    let statuses: Vec<&str> = kept["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "missing", "missing"], "{kind:?}");
    assert_eq!(kept["inbound"]["mxReady"], false);
    assert_eq!(kept["inbound"]["status"], report["inbound"]["status"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_checks_findings_are_kept_with_the_domain_on_every_backend() {
    for kind in backends() {
        last_check_kept(kind).await;
    }
}
