//! The domain lifecycle over real HTTP on every backend, against records published
//! in the in-process DNS server: DKIM rotation (pending → active, the old key
//! retiring → revoked → removed on time, driven by settings in seconds), deletion,
//! senders and events with pagination, the inbound toggle, tenant isolation, and which
//! routes take the dashboard JWT.

use std::time::Duration;

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Answer, Options, Org, TestApp, spawn_app_with, spawn_sibling};

pub const JWT_SECRET: &str = "an-e2e-lifecycle-secret-of-at-least-32-bytes";

/// A server on `kind` resolving through `dns`, with a JWT secret and `extra` settings.
pub async fn app_with(kind: BackendKind, dns: &TestDnsServer, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("DOMAIN_API_DNS_SERVERS".to_owned(), dns.addr().to_string()),
        ("DOMAIN_API_DNS_TIMEOUT_MS".to_owned(), "500".to_owned()),
        ("DOMAIN_API_JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    spawn_app_with(kind, Options { env }).await
}

/// A request with `org`'s API tokens; a body is sent as JSON.
pub fn call(app: &TestApp, org: &Org, method: &str, path: &str, body: Option<&str>) -> Answer {
    let mut headers = vec![
        ("X-Api-Access-Token", org.access.as_str()),
        ("X-Api-Secret-Token", org.secret.as_str()),
    ];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    app.request(method, path, &headers, body.unwrap_or_default().as_bytes())
}

/// A request with a dashboard JWT only.
fn call_with_jwt(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Answer {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    app.request(method, path, &headers, body.unwrap_or_default().as_bytes())
}

pub fn jwt(app: &TestApp, org: &Org) -> String {
    let (ok, stdout, stderr) = app.cli(&["jwt", "issue", "--org", &org.id, "--ttl", "10m"]);
    assert!(ok, "{stderr}");
    stdout.trim().to_owned()
}

pub fn domain_path(domain: &str) -> String {
    format!("/api/v1/emails/domains/{domain}")
}

pub fn detail(app: &TestApp, org: &Org, domain: &str) -> Answer {
    call(app, org, "GET", &domain_path(domain), None)
}

pub fn verify(app: &TestApp, org: &Org, domain: &str) -> Answer {
    call(
        app,
        org,
        "POST",
        &format!("{}/verify", domain_path(domain)),
        None,
    )
}

pub fn rotate(app: &TestApp, org: &Org, domain: &str) -> Answer {
    call(
        app,
        org,
        "POST",
        &format!("{}/dkim/rotate", domain_path(domain)),
        None,
    )
}

/// Publishes SPF, DMARC and the DKIM record `generate` returned, as a careful
/// customer would.
pub fn publish_generated(dns: &TestDnsServer, domain: &str, records: &Value) {
    let map = records.as_object().unwrap();
    let (dkim_name, dkim_value) = map.iter().nth(1).unwrap();
    dns.add_txt_value(domain, map["SPF"].as_str().unwrap());
    dns.add_txt_value(dkim_name, dkim_value.as_str().unwrap());
    dns.add_txt_value(&format!("_dmarc.{domain}"), map["_dmarc"].as_str().unwrap());
}

/// `(selector, state)` of every key in a detail body, newest first.
pub fn key_states(detail: &Value) -> Vec<(String, String)> {
    detail["dkim"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["selector"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn key<'a>(detail: &'a Value, selector: &str) -> &'a Value {
    detail["dkim"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["selector"] == selector)
        .unwrap_or_else(|| panic!("no key {selector} in {detail}"))
}

/// The DKIM record name `generate` answered with.
fn generated_dkim_name(answer: &Answer) -> String {
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer
        .json()
        .as_object()
        .unwrap()
        .keys()
        .nth(1)
        .unwrap()
        .clone()
}

/// Waits just past a setting of one second, so the next check sees it elapsed.
async fn past_one_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

async fn a_full_rotation(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(
        kind,
        &dns,
        &[
            ("DOMAIN_API_DKIM_RETIRE_AFTER", "1s"),
            ("DOMAIN_API_DKIM_REVOKED_KEEP", "1s"),
        ],
    )
    .await;
    let org = app.create_org("Acme");
    let first = app.generate(&org, r#"{"email":"a@rotate.example"}"#);
    let old_name = generated_dkim_name(&first);
    publish_generated(&dns, "rotate.example", &first.json());
    let report = verify(&app, &org, "rotate.example");
    assert_eq!(report.status, 200, "{kind:?}: {}", report.body);
    assert_eq!(report.json()["verified"], true, "{kind:?}: {}", report.body);
    let view = detail(&app, &org, "rotate.example").json();
    assert_eq!(view["status"], "verified", "{kind:?}");
    assert!(view["verifiedAt"].is_string(), "{kind:?}");
    assert!(view["lastCheckedAt"].is_string(), "{kind:?}");
    let old = view["dkim"][0]["selector"].as_str().unwrap().to_owned();

    // Rotate: a new key, pending, beside the active one.
    let rotated = rotate(&app, &org, "rotate.example");
    assert_eq!(rotated.status, 202, "{kind:?}: {}", rotated.body);
    assert_eq!(rotated.content_type, "application/json");
    let rotated = rotated.json();
    let new = rotated["dkim"][0]["selector"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "{kind:?}: a new selector");
    assert_eq!(
        key_states(&rotated),
        [
            (new.clone(), "pending".into()),
            (old.clone(), "active".into())
        ],
        "{kind:?}"
    );
    assert_eq!(rotated["records"].as_array().unwrap().len(), 4, "{kind:?}");
    assert_eq!(
        rotated["records"][1]["name"],
        format!("{new}._domainkey.rotate.example")
    );
    // generate keeps answering with the active key while the new one is pending.
    let during = app.generate(&org, r#"{"email":"b@rotate.example"}"#);
    assert_eq!(generated_dkim_name(&during), old_name, "{kind:?}");
    // A second rotation waits for the first.
    let again = rotate(&app, &org, "rotate.example");
    assert_eq!(
        (again.status, again.body.as_str()),
        (409, "A DKIM rotation is already in progress"),
        "{kind:?}"
    );
    // Not published yet: the pending key stays pending.
    assert_eq!(verify(&app, &org, "rotate.example").status, 200);
    assert_eq!(
        key(&detail(&app, &org, "rotate.example").json(), &new)["state"],
        "pending",
        "{kind:?}"
    );

    // Published: the check promotes it; the old key retires.
    let pending = &key(&rotated, &new)["record"];
    dns.add_txt_value(
        pending["name"].as_str().unwrap(),
        pending["value"].as_str().unwrap(),
    );
    let report = verify(&app, &org, "rotate.example").json();
    assert_eq!(report["verified"], true, "{kind:?}: {report}");
    assert_eq!(
        report["records"][1]["name"],
        format!("{new}._domainkey.rotate.example"),
        "{kind:?}: the report speaks of the key active now"
    );
    let view = detail(&app, &org, "rotate.example").json();
    assert_eq!(
        key_states(&view),
        [
            (new.clone(), "active".into()),
            (old.clone(), "retiring".into())
        ],
        "{kind:?}"
    );
    assert!(key(&view, &new)["activatedAt"].is_string(), "{kind:?}");
    assert!(key(&view, &old)["retiredAt"].is_string(), "{kind:?}");
    let after = app.generate(&org, r#"{"email":"c@rotate.example"}"#);
    assert_eq!(
        generated_dkim_name(&after),
        format!("{new}._domainkey.rotate.example"),
        "{kind:?}: generate answers with the new active key"
    );

    // DOMAIN_API_DKIM_RETIRE_AFTER=1s later, a check revokes the old key.
    past_one_second().await;
    assert_eq!(verify(&app, &org, "rotate.example").status, 200);
    let view = detail(&app, &org, "rotate.example").json();
    let revoked = key(&view, &old);
    assert_eq!(revoked["state"], "revoked", "{kind:?}: {view}");
    assert_eq!(revoked["record"]["value"], "v=DKIM1; k=rsa; p=", "{kind:?}");
    assert!(revoked["revokedAt"].is_string(), "{kind:?}");
    assert!(
        view["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["value"] == "v=DKIM1; k=rsa; p="),
        "{kind:?}: the revoked record is among those to publish"
    );

    // DOMAIN_API_DKIM_REVOKED_KEEP=1s later it is safe to remove, and the next check
    // drops it from the list.
    past_one_second().await;
    let view = detail(&app, &org, "rotate.example").json();
    assert_eq!(key(&view, &old)["safeToRemove"], true, "{kind:?}");
    assert_eq!(verify(&app, &org, "rotate.example").status, 200);
    let view = detail(&app, &org, "rotate.example").json();
    assert_eq!(
        key_states(&view),
        [(new.clone(), "active".into())],
        "{kind:?}"
    );
    assert_eq!(view["records"].as_array().unwrap().len(), 3, "{kind:?}");
}

/// 679 RSA keys in 45 s from one organization by looping rotate → publish →
/// verify: at the default interval a promoted rotation cannot be followed by
/// another for a day (429 with `Retry-After`, no key generated), and the operator's
/// `domain-api dkim rotate` still rotates at once (a compromised key).
async fn rotation_interval(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[("DOMAIN_API_DKIM_ROTATION_INTERVAL", "24h")]).await;
    let org = app.create_org("Loop");
    let first = app.generate(&org, r#"{"email":"a@loop.example"}"#);
    publish_generated(&dns, "loop.example", &first.json());
    assert_eq!(verify(&app, &org, "loop.example").json()["verified"], true);

    // The domain's first rotation: its first key was its creation, not a rotation.
    let rotated = rotate(&app, &org, "loop.example");
    assert_eq!(rotated.status, 202, "{kind:?}: {}", rotated.body);
    let rotated = rotated.json();
    let new = rotated["dkim"][0]["selector"].as_str().unwrap().to_owned();
    let pending = &key(&rotated, &new)["record"];
    dns.add_txt_value(
        pending["name"].as_str().unwrap(),
        pending["value"].as_str().unwrap(),
    );
    assert_eq!(verify(&app, &org, "loop.example").json()["verified"], true);
    assert_eq!(
        key(&detail(&app, &org, "loop.example").json(), &new)["state"],
        "active"
    );

    let again = rotate(&app, &org, "loop.example");
    assert_eq!(
        (again.status, again.body.as_str()),
        (429, "Too many DKIM keys generated; retry later"),
        "{kind:?}"
    );
    let retry_after: u64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (23 * 3600..=24 * 3600).contains(&retry_after),
        "{kind:?}: about a day: {retry_after}"
    );
    assert_eq!(
        key_states(&detail(&app, &org, "loop.example").json()).len(),
        2,
        "{kind:?}: no key was generated"
    );

    let (ok, out, err) = app.cli(&["dkim", "rotate", "--domain", "loop.example"]);
    assert!(ok, "{kind:?}: {err}");
    let printed: Value = serde_json::from_str(out.trim()).unwrap();
    let urgent = printed["pendingSelector"].as_str().unwrap().to_owned();
    assert_eq!(printed["domain"], "loop.example");
    assert_eq!(
        key(&detail(&app, &org, "loop.example").json(), &urgent)["state"],
        "pending",
        "{kind:?}"
    );
}

/// One client made 37 validates a second (1,301 DNS queries a second): requests
/// that query DNS on an organization's behalf draw on a per-minute budget; past it
/// they answer 429 with `Retry-After` and query nothing, and another organization's
/// budget is its own.
#[tokio::test(flavor = "multi_thread")]
async fn live_dns_checks_are_budgeted_per_organization_across_instances_on_every_backend() {
    for kind in backends() {
        live_check_budget(kind).await;
    }
}

async fn live_check_budget(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[("DOMAIN_API_LIVE_CHECKS_PER_MINUTE", "3")]).await;
    // A second instance on the same database: the budget is the organization's, not
    // each instance's.
    let sibling = spawn_sibling(&app);
    let (org, other) = (app.create_org("Eager"), app.create_org("Quiet"));
    app.generate(&org, r#"{"email":"a@eager.example"}"#);
    app.generate(&other, r#"{"email":"a@quiet.example"}"#);
    for target in [&app, &sibling, &app] {
        assert_eq!(
            verify(target, &org, "eager.example").status,
            200,
            "{kind:?}"
        );
    }
    let queries = dns.udp_queries() + dns.tcp_queries();
    for target in [&sibling, &app] {
        let refused = verify(target, &org, "eager.example");
        assert_eq!(
            (refused.status, refused.body.as_str()),
            (429, "Too many live DNS checks; retry later"),
            "{kind:?}"
        );
        let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    // Turning inbound on looks the MX up: refused too; turning it off is not a check.
    let on = call(
        &sibling,
        &org,
        "PATCH",
        "/api/v1/emails/domains/eager.example",
        Some(r#"{"inbound":true}"#),
    );
    assert_eq!(on.status, 429, "{}", on.body);
    let off = call(
        &app,
        &org,
        "PATCH",
        "/api/v1/emails/domains/eager.example",
        Some(r#"{"inbound":false}"#),
    );
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(
        dns.udp_queries() + dns.tcp_queries(),
        queries,
        "a refused check queries nothing"
    );
    assert_eq!(verify(&sibling, &other, "quiet.example").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_rotates_once_a_day_but_the_operator_rotates_at_once_on_every_backend() {
    for kind in backends() {
        rotation_interval(kind).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_runs_pending_active_retiring_revoked_removed_on_every_backend() {
    for kind in backends() {
        a_full_rotation(kind).await;
    }
}

async fn delete_and_recreate(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    let first = generated_dkim_name(&app.generate(&acme, r#"{"email":"a@gone.example"}"#));

    let deleted = call(&app, &acme, "DELETE", &domain_path("gone.example"), None);
    assert_eq!(
        (deleted.status, deleted.body.as_str()),
        (204, ""),
        "{kind:?}"
    );

    let missing = detail(&app, &acme, "gone.example");
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "Domain not found")
    );
    let again = call(&app, &acme, "DELETE", &domain_path("gone.example"), None);
    assert_eq!(
        (again.status, again.body.as_str()),
        (404, "Domain not found")
    );
    let senders = call(&app, &acme, "GET", "/api/v1/emails/senders", None).json();
    assert_eq!(
        senders["senders"],
        serde_json::json!([]),
        "{kind:?}: its senders are gone"
    );
    let events = call(&app, &acme, "GET", "/api/v1/events", None).json();
    let deleted_event = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "domain.deleted")
        .unwrap_or_else(|| panic!("{kind:?}: no domain.deleted in {events}"));
    assert_eq!(deleted_event["data"]["domain"], "gone.example");

    // The name is free: another organization creates it afresh, with a new key.
    let recreated = generated_dkim_name(&app.generate(&other, r#"{"email":"a@gone.example"}"#));
    assert_ne!(recreated, first, "{kind:?}: a new selector");
    assert_eq!(detail(&app, &other, "gone.example").status, 200);
    assert_eq!(detail(&app, &acme, "gone.example").status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_domain_frees_its_name_on_every_backend() {
    for kind in backends() {
        delete_and_recreate(kind).await;
    }
}

/// Every sender of every page, following `next`.
fn all_senders(app: &TestApp, org: &Org, limit: usize) -> Vec<Value> {
    let mut senders = Vec::new();
    let mut path = format!("/api/v1/emails/senders?limit={limit}");
    loop {
        let page = call(app, org, "GET", &path, None);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let items = page["senders"].as_array().unwrap();
        assert!(items.len() <= limit);
        senders.extend(items.iter().cloned());
        match page["next"].as_str() {
            None => {
                assert!(page["next"].is_null());
                return senders;
            }
            Some(next) => {
                assert_eq!(Some(next), items.last().unwrap()["email"].as_str());
                path = format!("/api/v1/emails/senders?limit={limit}&after={next}");
            }
        }
    }
}

/// Every event of every page, following `next`.
pub fn all_events(app: &TestApp, org: &Org, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut path = format!("/api/v1/events?limit={limit}");
    loop {
        let page = call(app, org, "GET", &path, None);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let items = page["events"].as_array().unwrap();
        events.extend(items.iter().cloned());
        match page["next"].as_i64() {
            None => {
                assert!(page["next"].is_null());
                return events;
            }
            Some(next) => {
                assert_eq!(Some(next), items.last().unwrap()["id"].as_i64());
                path = format!("/api/v1/events?limit={limit}&after={next}");
            }
        }
    }
}

async fn senders_and_events(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    for local in ["e", "a", "d", "b", "c"] {
        let answer = app.generate(&acme, &format!(r#"{{"email":"{local}@senders.example"}}"#));
        assert_eq!(answer.status, 201, "{kind:?}: {}", answer.body);
    }
    assert_eq!(
        app.generate(&other, r#"{"email":"x@theirs.example"}"#)
            .status,
        201
    );

    let senders = all_senders(&app, &acme, 2);
    let emails: Vec<&str> = senders
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "a@senders.example",
            "b@senders.example",
            "c@senders.example",
            "d@senders.example",
            "e@senders.example"
        ],
        "{kind:?}"
    );
    let active: Vec<&str> = senders
        .iter()
        .filter(|s| s["active"] == true)
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        active,
        ["c@senders.example"],
        "{kind:?}: the last registered"
    );
    assert_eq!(senders[0]["domain"], "senders.example");
    assert!(senders[0]["createdAt"].is_string());
    assert!(senders[0]["replyTo"].is_null());

    let activated = call(
        &app,
        &acme,
        "POST",
        "/api/v1/emails/senders/a@senders.example/activate",
        None,
    );
    assert_eq!(activated.status, 200, "{kind:?}: {}", activated.body);
    assert_eq!(activated.json()["email"], "a@senders.example");
    assert_eq!(activated.json()["active"], true);
    let active: Vec<Value> = all_senders(&app, &acme, 1000)
        .into_iter()
        .filter(|s| s["active"] == true)
        .collect();
    assert_eq!(active.len(), 1, "{kind:?}");
    assert_eq!(active[0]["email"], "a@senders.example");

    let deleted = call(
        &app,
        &acme,
        "DELETE",
        "/api/v1/emails/senders/b@senders.example",
        None,
    );
    assert_eq!(
        (deleted.status, deleted.body.as_str()),
        (204, ""),
        "{kind:?}"
    );
    for (method, path) in [
        ("DELETE", "/api/v1/emails/senders/b@senders.example"),
        ("POST", "/api/v1/emails/senders/b@senders.example/activate"),
        (
            "POST",
            "/api/v1/emails/senders/nobody@senders.example/activate",
        ),
    ] {
        let answer = call(&app, &acme, method, path, None);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (404, "Sender not found"),
            "{kind:?}: {method} {path}"
        );
    }
    assert_eq!(all_senders(&app, &acme, 1000).len(), 4, "{kind:?}");

    assert_eq!(rotate(&app, &acme, "senders.example").status, 202);
    let events = all_events(&app, &acme, 3);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{kind:?}: oldest first: {ids:?}"
    );
    let of_type = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    let created: Vec<&Value> = of_type("domain.created").collect();
    assert_eq!(created.len(), 1, "{kind:?}: {events:?}");
    assert_eq!(created[0]["domain"], "senders.example");
    assert_eq!(
        created[0]["data"],
        serde_json::json!({"domain": "senders.example"})
    );
    assert!(created[0]["createdAt"].is_string());
    assert_eq!(
        ids[0],
        created[0]["id"].as_i64().unwrap(),
        "{kind:?}: created comes first"
    );
    let sender_deleted: Vec<&Value> = of_type("sender.deleted").collect();
    assert_eq!(
        sender_deleted[0]["data"],
        serde_json::json!({"domain": "senders.example", "email": "b@senders.example"}),
        "{kind:?}"
    );
    assert!(of_type("sender.activated").any(|e| e["data"]["email"] == "a@senders.example"));
    let rotation: Vec<&Value> = of_type("dkim.rotation_started").collect();
    assert_eq!(rotation.len(), 1, "{kind:?}");
    assert!(rotation[0]["data"]["selector"].is_string(), "{kind:?}");
    assert_eq!(rotation[0]["data"]["domain"], "senders.example");
    assert!(
        events.iter().all(|e| e["domain"] != "theirs.example"),
        "{kind:?}: an organization sees only its own events"
    );
    // After the last one: an empty page.
    let last = ids.last().unwrap();
    let empty = call(
        &app,
        &acme,
        "GET",
        &format!("/api/v1/events?after={last}"),
        None,
    )
    .json();
    assert_eq!(empty, serde_json::json!({"events": [], "next": null}));
    for path in [
        "/api/v1/events?limit=0",
        "/api/v1/emails/senders?limit=1001",
    ] {
        let answer = call(&app, &acme, "GET", path, None);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (400, "Invalid limit: expected a whole number from 1 to 1000"),
            "{path}"
        );
    }
    let answer = call(&app, &acme, "GET", "/api/v1/events?after=x", None);
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (400, "Invalid after: not a value from next")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn senders_and_events_page_through_on_every_backend() {
    for kind in backends() {
        senders_and_events(kind).await;
    }
}

async fn isolation(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let acme = app.create_org("Acme");
    let other = app.create_org("Other");
    assert_eq!(
        app.generate(&acme, r#"{"email":"a@mine.example"}"#).status,
        201
    );
    let before = detail(&app, &acme, "mine.example").body;

    for domain in ["mine.example", "nobody.example"] {
        let path = domain_path(domain);
        for (method, path, body) in [
            ("GET", path.clone(), None),
            ("PATCH", path.clone(), Some(r#"{"inbound":false}"#)),
            ("POST", format!("{path}/dkim/rotate"), None),
            ("POST", format!("{path}/verify"), None),
            ("DELETE", path.clone(), None),
        ] {
            let answer = call(&app, &other, method, &path, body);
            assert_eq!(
                (
                    answer.status,
                    answer.content_type.as_str(),
                    answer.body.as_str()
                ),
                (404, "text/plain; charset=utf-8", "Domain not found"),
                "{kind:?}: {method} {path}"
            );
        }
    }
    for email in ["a@mine.example", "nobody@mine.example"] {
        for (method, path) in [
            ("POST", format!("/api/v1/emails/senders/{email}/activate")),
            ("DELETE", format!("/api/v1/emails/senders/{email}")),
        ] {
            let answer = call(&app, &other, method, &path, None);
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (404, "Sender not found"),
                "{kind:?}: {method} {path}"
            );
        }
    }
    // Nothing of it touched Acme's domain.
    assert_eq!(detail(&app, &acme, "mine.example").body, before, "{kind:?}");
    assert_eq!(
        all_senders(&app, &other, 100).len(),
        0,
        "{kind:?}: nobody else's senders"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organization_s_domain_or_sender_is_a_404_like_a_missing_one() {
    for kind in backends() {
        isolation(kind).await;
    }
}

async fn dashboard_jwt(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let app = app_with(kind, &dns, &[]).await;
    let org = app.create_org("Acme");
    let records = app.generate(&org, r#"{"email":"a@dash.example"}"#).json();
    publish_generated(&dns, "dash.example", &records);
    let token = jwt(&app, &org);
    let path = domain_path("dash.example");

    let view = call_with_jwt(&app, &token, "GET", &path, None);
    assert_eq!(view.status, 200, "{kind:?}: {}", view.body);
    assert_eq!(view.json()["status"], "pending");
    let report = call_with_jwt(&app, &token, "POST", &format!("{path}/verify"), None);
    assert_eq!(report.status, 200, "{kind:?}: {}", report.body);
    assert_eq!(report.json()["verified"], true);

    // The inbound toggle: refused until the MX points at one of the inbound hosts.
    let refused = call_with_jwt(&app, &token, "PATCH", &path, Some(r#"{"inbound":true}"#));
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (
            409,
            "Inbound requires an MX record pointing at inbound.sendtrim.com or smtp.sendtrim.com"
        ),
        "{kind:?}"
    );
    dns.add_mx("dash.example", 10, "inbound.sendtrim.com.");
    let on = call_with_jwt(&app, &token, "PATCH", &path, Some(r#"{"inbound":true}"#));
    assert_eq!(on.status, 200, "{kind:?}: {}", on.body);
    assert_eq!(on.json()["inboundEnabled"], true);
    let off = call(&app, &org, "PATCH", &path, Some(r#"{"inbound":false}"#));
    assert_eq!(off.json()["inboundEnabled"], false, "{kind:?}");
    let bad = call(&app, &org, "PATCH", &path, Some(r#"{"inbound":"yes"}"#));
    assert_eq!(
        (bad.status, bad.body.as_str()),
        (400, "Invalid inbound flag: expected true or false")
    );
    let events: Vec<String> = all_events(&app, &org, 100)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        events.contains(&"domain.inbound_enabled".to_owned()),
        "{kind:?}: {events:?}"
    );
    assert!(
        events.contains(&"domain.inbound_disabled".to_owned()),
        "{kind:?}: {events:?}"
    );
    assert!(
        events.contains(&"domain.verified".to_owned()),
        "{kind:?}: {events:?}"
    );

    // Everything else is API tokens only: a JWT alone is no credential there.
    for (method, path) in [
        ("POST", format!("{path}/dkim/rotate")),
        ("DELETE", path.clone()),
        ("GET", "/api/v1/emails/domains".to_owned()),
        ("GET", "/api/v1/emails/senders".to_owned()),
        (
            "POST",
            "/api/v1/emails/senders/a@dash.example/activate".to_owned(),
        ),
        ("DELETE", "/api/v1/emails/senders/a@dash.example".to_owned()),
        ("GET", "/api/v1/events".to_owned()),
    ] {
        let answer = call_with_jwt(&app, &token, method, &path, None);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (401, "Missing API credentials"),
            "{kind:?}: {method} {path}"
        );
    }
    assert_eq!(
        detail(&app, &org, "dash.example").status,
        200,
        "not deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_jwt_opens_detail_verify_and_the_inbound_toggle_only() {
    for kind in backends() {
        dashboard_jwt(kind).await;
    }
}
