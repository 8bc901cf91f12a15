//! Group commit of register-sender, on every backend: registrations that queue up
//! share one transaction, and the outcome is the one they would have had one by one.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;

use common::{key, org, registration};
use domain_core::DomainName;
use domain_core::lifecycle::EventType;
use domain_core::ports::lifecycle::EventStore;
use domain_core::ports::store::{DomainStore, RegisterError};
use store_diesel::Store;

/// Registers every email of `emails` for `org` at once, from as many tasks, spread
/// over the given stores; the outcomes in the order of `emails`.
async fn all_at_once(
    stores: &[Arc<Store>],
    org: &domain_core::OrganizationId,
    emails: &[String],
) -> Vec<Result<bool, RegisterError>> {
    let tasks: Vec<_> = emails
        .iter()
        .enumerate()
        .map(|(i, email)| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let reg = registration(org, email, None);
            tokio::spawn(async move { store.register_sender(reg).await.map(|r| r.domain_created) })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// `org` has `senders` senders on example.com, and the one registered last (by time,
/// then id) is its only active sender: the outcome of running them one by one.
async fn assert_last_registered_is_active(
    store: &Store,
    org: &domain_core::OrganizationId,
    senders: usize,
    kind: store_diesel::BackendKind,
) {
    let detail = store
        .domain_detail(org, &DomainName::parse("example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.senders.len(), senders, "{kind:?}");
    let active: Vec<_> = detail.senders.iter().filter(|s| s.active).collect();
    assert_eq!(active.len(), 1, "{kind:?}");
    assert_eq!(
        active[0].email,
        detail.senders.last().unwrap().email,
        "{kind:?}: the last one registered is the active one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_registrations_share_commits_and_end_as_if_run_one_by_one() {
    on_every_backend!(|store, kind| {
        let acme = org(&store, "Acme").await;
        let other = org(&store, "Other").await;
        store
            .register_sender(registration(&acme, "first@example.com", Some(key("k1"))))
            .await
            .unwrap();
        store
            .register_sender(registration(&other, "first@other.example", Some(key("k2"))))
            .await
            .unwrap();
        let before = store.group_commit_stats();

        // 60 fresh senders, one email twice, one domain of another organization.
        let mut emails: Vec<String> = (0..60).map(|i| format!("s{i}@example.com")).collect();
        emails.insert(20, "twice@example.com".to_owned());
        emails.insert(40, "twice@example.com".to_owned());
        emails.insert(30, "intruder@other.example".to_owned());
        let outcomes = all_at_once(std::slice::from_ref(&store), &acme, &emails).await;

        let mut twice = Vec::new();
        for (email, outcome) in emails.iter().zip(&outcomes) {
            match email.as_str() {
                "twice@example.com" => twice.push(outcome),
                "intruder@other.example" => assert!(
                    matches!(outcome, Err(RegisterError::DomainTaken)),
                    "{kind:?}: {outcome:?}"
                ),
                _ => assert!(
                    matches!(outcome, Ok(false)),
                    "{kind:?}: {email}: {outcome:?}"
                ),
            }
        }
        assert_eq!(
            twice.iter().filter(|o| o.is_ok()).count(),
            1,
            "{kind:?}: {twice:?}"
        );
        assert!(
            twice
                .iter()
                .any(|o| matches!(o, Err(RegisterError::EmailTaken))),
            "{kind:?}: {twice:?}"
        );

        // As if one by one: one active sender, the last one registered.
        assert_last_registered_is_active(&store, &acme, 62, kind).await;
        // A refused registration leaves no event behind; each of the 62 left two.
        let events = store
            .list_events(&acme, &common::all())
            .await
            .unwrap()
            .items;
        let registered = events
            .iter()
            .filter(|e| e.kind == EventType::SenderRegistered)
            .count();
        assert_eq!(registered, 62, "{kind:?}");
        assert!(
            events
                .iter()
                .all(|e| e.email.as_deref() != Some("intruder@other.example")),
            "{kind:?}"
        );
        let intruded = store
            .domain_detail(&other, &DomainName::parse("other.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(intruded.senders.len(), 1, "{kind:?}");

        // They shared transactions: far fewer commits than registrations.
        let after = store.group_commit_stats();
        let registrations = after.registrations - before.registrations;
        let batches = after.batches - before.batches;
        assert_eq!(registrations, emails.len() as u64, "{kind:?}");
        assert!(
            batches * 2 <= registrations,
            "{kind:?}: {batches} batches for {registrations} registrations"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_batching_one_organization_keep_one_active_sender() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let acme = org(&store, "Acme").await;
        store
            .register_sender(registration(&acme, "first@example.com", Some(key("k1"))))
            .await
            .unwrap();

        let emails: Vec<String> = (0..80).map(|i| format!("s{i}@example.com")).collect();
        let outcomes = all_at_once(&[Arc::clone(&store), second], &acme, &emails).await;

        for (email, outcome) in emails.iter().zip(&outcomes) {
            assert!(
                matches!(outcome, Ok(false)),
                "{kind:?}: {email}: {outcome:?}"
            );
        }
        assert_last_registered_is_active(&store, &acme, 81, kind).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_reaching_the_sender_limit_refuses_exactly_the_members_past_it() {
    on_every_backend!(|store, kind| {
        let acme = org(&store, "Acme").await;
        let limits = domain_core::ownership::CreationLimits {
            max_senders_per_domain: 10,
            ..common::GENEROUS
        };
        store
            .register_sender(common::registration_within(
                &acme,
                "first@example.com",
                Some(key("k1")),
                limits,
            ))
            .await
            .unwrap();
        let before = store.group_commit_stats();

        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let store = Arc::clone(&store);
                let reg =
                    common::registration_within(&acme, &format!("s{i}@example.com"), None, limits);
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }

        let registered = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(RegisterError::SenderLimit)))
            .count();
        assert_eq!((registered, refused), (9, 21), "{kind:?}: {outcomes:?}");
        assert_last_registered_is_active(&store, &acme, 10, kind).await;
        let after = store.group_commit_stats();
        assert_eq!(
            after.set_based - before.set_based + after.one_by_one - before.one_by_one,
            30,
            "{kind:?}: every registration ran, in a set or one by one"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_of_many_organizations_share_commits_and_each_keeps_its_own_active_sender() {
    on_every_backend!(|store, kind| {
        let mut orgs = Vec::new();
        for i in 0..32 {
            let o = org(&store, &format!("Org {i}")).await;
            store
                .register_sender(registration(
                    &o,
                    &format!("first@o{i}.example"),
                    Some(key(&format!("k{i}"))),
                ))
                .await
                .unwrap();
            orgs.push(o);
        }
        let before = store.group_commit_stats();

        let tasks: Vec<_> = (0..96)
            .map(|n| {
                let store = Arc::clone(&store);
                let (i, o) = (n % 32, orgs[n % 32].clone());
                let reg = registration(&o, &format!("s{n}@o{i}.example"), None);
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();
        for task in tasks {
            assert!(!task.await.unwrap().unwrap().domain_created, "{kind:?}");
        }

        // One organization a turn would make about one commit per organization
        // and registration here; they shared transactions instead.
        let after = store.group_commit_stats();
        let batches = after.batches - before.batches;
        assert_eq!(after.registrations - before.registrations, 96, "{kind:?}");
        assert!(batches * 6 <= 96, "{kind:?}: {batches} batches for 96");
        for (i, o) in orgs.iter().enumerate() {
            let detail = store
                .domain_detail(o, &DomainName::parse(&format!("o{i}.example")).unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(detail.senders.len(), 4, "{kind:?}");
            let active: Vec<_> = detail.senders.iter().filter(|s| s.active).collect();
            assert_eq!(active.len(), 1, "{kind:?}: org {i}");
            assert_eq!(
                active[0].email,
                detail.senders.last().unwrap().email,
                "{kind:?}: org {i}: the last one registered is the active one"
            );
        }
    });
}
