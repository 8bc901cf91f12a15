//! Concurrency invariants over real HTTP, on every backend: one domain row and one
//! key per domain, one owner, one registration per email, one active sender per org
//! — held by the database, also across two server processes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use domain_core::lifecycle::Page;
use domain_core::ports::store::DomainStore;
use domain_core::{DomainName, OrganizationId};
use store_diesel::test_support::backends;
use store_diesel::{BackendKind, Store, StoreConfig};

use crate::helpers::{Answer, Org, TestApp, spawn_app, spawn_sibling};

/// Fires `bodies` at once, each from its own thread, alternating between `apps`.
fn fire(apps: &[Arc<TestApp>], calls: Vec<(Org, String)>) -> Vec<(Org, Answer)> {
    let barrier = Arc::new(std::sync::Barrier::new(calls.len()));
    let handles: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (org, body))| {
            let app = Arc::clone(&apps[i % apps.len()]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let answer = app.generate(&org, &body);
                (org, answer)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect()
}

fn all() -> Page<String> {
    Page {
        after: None,
        limit: 1000,
    }
}

async fn store_of(app: &TestApp) -> Store {
    let store =
        Store::connect(&StoreConfig::new(app.env_value("DOMAIN_API_DATABASE_URL"))).unwrap();
    store.migrate().await.unwrap();
    store
}

fn assert_no_server_errors(answers: &[(Org, Answer)], kind: BackendKind) {
    for (_, answer) in answers {
        assert!(
            answer.status < 500,
            "{kind:?}: {} {}",
            answer.status,
            answer.body
        );
        assert!(!answer.body.contains("locked"), "{kind:?}: {}", answer.body);
    }
}

async fn fifty_calls_for_one_new_domain(apps: &[Arc<TestApp>], kind: BackendKind) {
    let org = apps[0].create_org("Acme");
    let calls = (0..50)
        .map(|i| {
            (
                org.clone(),
                format!(r#"{{"email":"sender{i}@fifty.example"}}"#),
            )
        })
        .collect();

    let answers = fire(apps, calls);

    assert_no_server_errors(&answers, kind);
    assert!(
        answers.iter().all(|(_, a)| a.status == 201),
        "{kind:?}: all 201"
    );
    let bodies: HashSet<&str> = answers.iter().map(|(_, a)| a.body.as_str()).collect();
    assert_eq!(
        bodies.len(),
        1,
        "{kind:?}: identical DKIM records in every response"
    );
    let store = store_of(&apps[0]).await;
    let org_id = OrganizationId::new(org.id.clone());
    assert_eq!(
        store
            .list_domains(&org_id, &all())
            .await
            .unwrap()
            .items
            .len(),
        1,
        "{kind:?}: one domain row"
    );
    let detail = store
        .domain_detail(&org_id, &DomainName::parse("fifty.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.senders.len(), 50);
    assert_eq!(
        detail.senders.iter().filter(|s| s.active).count(),
        1,
        "{kind:?}: one active sender"
    );
}

async fn two_orgs_racing_for_one_domain(apps: &[Arc<TestApp>], kind: BackendKind) {
    let acme = apps[0].create_org("Acme");
    let other = apps[0].create_org("Other");
    let calls = (0..40)
        .map(|i| {
            let org = if i % 2 == 0 {
                acme.clone()
            } else {
                other.clone()
            };
            (org, format!(r#"{{"email":"s{i}@contested.example"}}"#))
        })
        .collect();

    let answers = fire(apps, calls);

    assert_no_server_errors(&answers, kind);
    let mut by_org: HashMap<String, Vec<u16>> = HashMap::new();
    for (org, answer) in &answers {
        by_org
            .entry(org.id.clone())
            .or_default()
            .push(answer.status);
        if answer.status == 409 {
            assert_eq!(answer.body, "Domain is already taken");
        }
    }
    let winners: Vec<_> = by_org
        .iter()
        .filter(|(_, s)| s.iter().all(|&c| c == 201))
        .collect();
    let losers: Vec<_> = by_org
        .iter()
        .filter(|(_, s)| s.iter().all(|&c| c == 409))
        .collect();
    assert_eq!(
        (winners.len(), losers.len()),
        (1, 1),
        "{kind:?}: {by_org:?}"
    );
    let store = store_of(&apps[0]).await;
    let loser = OrganizationId::new(losers[0].0.clone());
    assert!(
        store
            .list_domains(&loser, &all())
            .await
            .unwrap()
            .items
            .is_empty(),
        "{kind:?}: no orphan rows"
    );
}

async fn twenty_calls_with_one_email(apps: &[Arc<TestApp>], kind: BackendKind) {
    let org = apps[0].create_org("Acme");
    let calls = (0..20)
        .map(|_| (org.clone(), r#"{"email":"same@twenty.example"}"#.to_owned()))
        .collect();

    let answers = fire(apps, calls);

    assert_no_server_errors(&answers, kind);
    let created = answers.iter().filter(|(_, a)| a.status == 201).count();
    let taken = answers
        .iter()
        .filter(|(_, a)| a.status == 409 && a.body == "Email is already taken")
        .count();
    assert_eq!((created, taken), (1, 19), "{kind:?}");
}

async fn each_org_has_one_active_sender(apps: &[Arc<TestApp>], kind: BackendKind) {
    let orgs: Vec<Org> = (0..3)
        .map(|i| apps[0].create_org(&format!("Org{i}")))
        .collect();
    let calls = (0..45)
        .map(|i| {
            let org = orgs[i % 3].clone();
            // Several domains per org, interleaved.
            (
                org,
                format!(r#"{{"email":"u{i}@d{}-o{}.example"}}"#, i % 4, i % 3),
            )
        })
        .collect();

    let answers = fire(apps, calls);

    assert_no_server_errors(&answers, kind);
    assert!(answers.iter().all(|(_, a)| a.status == 201), "{kind:?}");
    let store = store_of(&apps[0]).await;
    for org in &orgs {
        let org_id = OrganizationId::new(org.id.clone());
        let mut active = 0;
        for domain in store.list_domains(&org_id, &all()).await.unwrap().items {
            let detail = store
                .domain_detail(&org_id, &domain.name)
                .await
                .unwrap()
                .unwrap();
            active += detail.senders.iter().filter(|s| s.active).count();
        }
        assert_eq!(active, 1, "{kind:?}: org {} has one active sender", org.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_converge_on_every_backend() {
    for kind in backends() {
        let apps = [Arc::new(spawn_app(kind).await)];
        fifty_calls_for_one_new_domain(&apps, kind).await;
        two_orgs_racing_for_one_domain(&apps, kind).await;
        twenty_calls_with_one_email(&apps, kind).await;
        each_org_has_one_active_sender(&apps, kind).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_one_database_keep_the_invariants() {
    for kind in backends() {
        let first = spawn_app(kind).await;
        let second = spawn_sibling(&first);
        let apps = [Arc::new(first), Arc::new(second)];
        fifty_calls_for_one_new_domain(&apps, kind).await;
        two_orgs_racing_for_one_domain(&apps, kind).await;
        twenty_calls_with_one_email(&apps, kind).await;
        each_org_has_one_active_sender(&apps, kind).await;
    }
}
