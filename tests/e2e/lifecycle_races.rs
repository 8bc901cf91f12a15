//! Lifecycle races over real HTTP, on every backend and across two server processes
//! on one database: concurrent rotations start exactly one; `delete` racing
//! `generate` ends in a consistent state; `activate` racing `generate` leaves
//! exactly one active sender.

use std::sync::{Arc, Barrier};

use dns_hickory::test_support::TestDnsServer;
use serde_json::Value;
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{Answer, Org, TestApp, spawn_sibling};
use crate::lifecycle::{app_with, call, detail, domain_path, rotate};

/// A request to send in a race.
#[derive(Clone)]
enum Call {
    Rotate(String),
    Delete(String),
    Generate(String),
    Activate(String),
}

/// Fires `calls` at once, each from its own thread, alternating between `apps`.
fn race(apps: &[Arc<TestApp>], calls: Vec<(Org, Call)>) -> Vec<(Org, Call, Answer)> {
    let barrier = Arc::new(Barrier::new(calls.len()));
    let handles: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (org, what))| {
            let app = Arc::clone(&apps[i % apps.len()]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let answer = match &what {
                    Call::Rotate(domain) => rotate(&app, &org, domain),
                    Call::Delete(domain) => call(&app, &org, "DELETE", &domain_path(domain), None),
                    Call::Generate(email) => {
                        app.generate(&org, &format!(r#"{{"email":"{email}"}}"#))
                    }
                    Call::Activate(email) => call(
                        &app,
                        &org,
                        "POST",
                        &format!("/api/v1/emails/senders/{email}/activate"),
                        None,
                    ),
                };
                (org, what, answer)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect()
}

fn assert_no_server_errors(answers: &[(Org, Call, Answer)], kind: BackendKind) {
    for (_, _, answer) in answers {
        assert!(
            answer.status < 500,
            "{kind:?}: {} {}",
            answer.status,
            answer.body
        );
    }
}

/// Two processes on one fresh database of `kind`, resolving through `dns`.
async fn two_instances(kind: BackendKind, dns: &TestDnsServer) -> [Arc<TestApp>; 2] {
    let first = app_with(kind, dns, &[]).await;
    let second = spawn_sibling(&first);
    [Arc::new(first), Arc::new(second)]
}

async fn twenty_rotations(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let apps = two_instances(kind, &dns).await;
    let org = apps[0].create_org("Acme");
    assert_eq!(
        apps[0]
            .generate(&org, r#"{"email":"a@spin.example"}"#)
            .status,
        201
    );

    let answers = race(
        &apps,
        (0..20)
            .map(|_| (org.clone(), Call::Rotate("spin.example".into())))
            .collect(),
    );

    assert_no_server_errors(&answers, kind);
    let started = answers.iter().filter(|(_, _, a)| a.status == 202).count();
    let refused = answers
        .iter()
        .filter(|(_, _, a)| a.status == 409 && a.body == "A DKIM rotation is already in progress")
        .count();
    assert_eq!((started, refused), (1, 19), "{kind:?}");
    let view = detail(&apps[1], &org, "spin.example").json();
    let states: Vec<&str> = view["dkim"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "active"], "{kind:?}: one pending key");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_rotations_start_exactly_one_on_every_backend() {
    for kind in backends() {
        twenty_rotations(kind).await;
    }
}

/// The state of `domain` as `org` sees it: `None` when it has no such domain;
/// otherwise its detail, checked to have exactly one active key and only senders
/// on this domain.
fn consistent_view(app: &TestApp, org: &Org, domain: &str, kind: BackendKind) -> Option<Value> {
    let answer = detail(app, org, domain);
    if answer.status == 404 {
        return None;
    }
    assert_eq!(answer.status, 200, "{kind:?}: {}", answer.body);
    let view = answer.json();
    let active = view["dkim"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .count();
    assert_eq!(active, 1, "{kind:?}: one active key: {view}");
    Some(view)
}

/// Every sender the organization lists has a domain it can read: no sender outlives
/// its domain.
fn senders_have_domains(app: &TestApp, org: &Org, kind: BackendKind) -> Vec<Value> {
    let list = call(app, org, "GET", "/api/v1/emails/senders?limit=1000", None).json();
    let senders = list["senders"].as_array().unwrap().clone();
    for sender in &senders {
        let domain = sender["domain"].as_str().unwrap();
        assert_eq!(
            detail(app, org, domain).status,
            200,
            "{kind:?}: sender {} without its domain",
            sender["email"]
        );
    }
    senders
}

async fn delete_racing_generate(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let apps = two_instances(kind, &dns).await;
    let acme = apps[0].create_org("Acme");
    let other = apps[0].create_org("Other");
    assert_eq!(
        apps[0]
            .generate(&acme, r#"{"email":"first@race.example"}"#)
            .status,
        201
    );

    let mut calls = Vec::new();
    for i in 0..8 {
        calls.push((acme.clone(), Call::Delete("race.example".into())));
        calls.push((
            acme.clone(),
            Call::Generate(format!("acme{i}@race.example")),
        ));
        calls.push((
            other.clone(),
            Call::Generate(format!("other{i}@race.example")),
        ));
    }
    let answers = race(&apps, calls);

    assert_no_server_errors(&answers, kind);
    for (_, what, answer) in &answers {
        let expected: &[u16] = match what {
            Call::Delete(_) => &[204, 404],
            _ => &[201, 409],
        };
        assert!(
            expected.contains(&answer.status),
            "{kind:?}: {} {}",
            answer.status,
            answer.body
        );
    }
    // Whoever holds the name now holds it whole; nobody else sees it.
    let acme_view = consistent_view(&apps[0], &acme, "race.example", kind);
    let other_view = consistent_view(&apps[1], &other, "race.example", kind);
    assert!(
        acme_view.is_none() || other_view.is_none(),
        "{kind:?}: two owners"
    );
    for (org, view) in [(&acme, &acme_view), (&other, &other_view)] {
        let senders = senders_have_domains(&apps[0], org, kind);
        let on_domain = senders
            .iter()
            .filter(|s| s["domain"] == "race.example")
            .count();
        match view {
            None => assert_eq!(on_domain, 0, "{kind:?}: senders of a deleted domain"),
            Some(view) => {
                assert_eq!(
                    view["senders"].as_array().unwrap().len(),
                    on_domain,
                    "{kind:?}"
                );
                assert!(
                    on_domain >= 1,
                    "{kind:?}: a domain exists only with a sender"
                );
            }
        }
    }
    // The name is usable afterwards by whoever may take it.
    let holder = if other_view.is_some() { &other } else { &acme };
    assert_eq!(
        apps[0]
            .generate(holder, r#"{"email":"after@race.example"}"#)
            .status,
        201
    );
    consistent_view(&apps[0], holder, "race.example", kind).expect("the domain exists");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_racing_generate_ends_consistent_on_every_backend() {
    for kind in backends() {
        delete_racing_generate(kind).await;
    }
}

async fn activate_racing_generate(kind: BackendKind) {
    let dns = TestDnsServer::start_in_thread();
    let apps = two_instances(kind, &dns).await;
    let org = apps[0].create_org("Acme");
    for i in 0..6 {
        assert_eq!(
            apps[0]
                .generate(&org, &format!(r#"{{"email":"old{i}@active.example"}}"#))
                .status,
            201
        );
    }

    let mut calls = Vec::new();
    for i in 0..6 {
        calls.push((
            org.clone(),
            Call::Activate(format!("old{i}@active.example")),
        ));
        calls.push((
            org.clone(),
            Call::Generate(format!("new{i}@active.example")),
        ));
        calls.push((
            org.clone(),
            Call::Generate(format!("new{i}@elsewhere.example")),
        ));
    }
    let answers = race(&apps, calls);

    assert_no_server_errors(&answers, kind);
    for (_, what, answer) in &answers {
        let expected = if matches!(what, Call::Activate(_)) {
            200
        } else {
            201
        };
        assert_eq!(answer.status, expected, "{kind:?}: {}", answer.body);
    }
    let senders = senders_have_domains(&apps[1], &org, kind);
    assert_eq!(senders.len(), 18, "{kind:?}");
    let active = senders.iter().filter(|s| s["active"] == true).count();
    assert_eq!(active, 1, "{kind:?}: exactly one active sender");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_racing_generate_leaves_one_active_sender_on_every_backend() {
    for kind in backends() {
        activate_racing_generate(kind).await;
    }
}
