//! The background verifier's queue against real databases (SQLite always, PostgreSQL
//! when configured): what is due is leased once, a lease keeps others off until it
//! runs out or a check is applied, and two stores on one database lease disjoint sets.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{GENEROUS, key, registration_within};
use domain_core::lifecycle::DomainStatus;
use domain_core::ports::lifecycle::{CheckPlan, CheckQueue, KeyLifecycleStore};
use domain_core::ports::store::DomainStore;
use domain_core::{DomainName, OrganizationId};
use store_diesel::Store;

/// `count` domains of `org`, first check due `due_in` from now.
async fn domains(
    store: &Store,
    org: &OrganizationId,
    prefix: &str,
    count: usize,
    due_in: Duration,
) {
    for i in 0..count {
        let mut reg = registration_within(
            org,
            &format!("x@{prefix}{i}.example"),
            Some(key(&format!("{prefix}{i}"))),
            GENEROUS,
        );
        reg.creation.first_check_at = Utc::now() + due_in;
        store.register_sender(reg).await.unwrap();
    }
}

fn names(due: &[domain_core::ports::lifecycle::DueCheck]) -> HashSet<String> {
    due.iter().map(|d| d.domain.as_ascii().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn due_domains_are_leased_once_until_the_lease_runs_out_or_a_check_lands() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "a").await;
        domains(&store, &org, "due", 3, Duration::seconds(-5)).await;
        domains(&store, &org, "later", 2, Duration::hours(1)).await;
        let now = Utc::now();
        let first = store
            .lease_due(now, now + Duration::minutes(5), 10)
            .await
            .unwrap();
        assert_eq!(
            names(&first),
            ["due0.example", "due1.example", "due2.example"]
                .map(String::from)
                .into(),
            "{kind:?}"
        );
        assert!(first.iter().all(|d| d.organization == org));
        // Held: nobody else gets them now…
        assert!(
            store
                .lease_due(now, now + Duration::minutes(5), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // …but once the lease has run out, they are due again (the others are not).
        let later = now + Duration::minutes(6);
        assert_eq!(
            store
                .lease_due(later, later + Duration::minutes(5), 10)
                .await
                .unwrap()
                .len(),
            3
        );
        let much_later = now + Duration::hours(2);
        assert_eq!(
            store
                .lease_due(much_later, much_later + Duration::minutes(5), 10)
                .await
                .unwrap()
                .len(),
            5
        );

        // An applied check clears the lease and schedules the next one.
        let org2 = common::org(&store, "b").await;
        domains(&store, &org2, "applied", 1, Duration::seconds(-5)).await;
        let leased = store
            .lease_due(now, now + Duration::minutes(5), 10)
            .await
            .unwrap();
        assert_eq!(names(&leased), ["applied0.example".to_owned()].into());
        let name = DomainName::parse("applied0.example").unwrap();
        let applied = store
            .apply_check(&CheckPlan {
                organization: org2.clone(),
                domain: name.clone(),
                checked_at: now,
                status: DomainStatus::Pending,
                verified_at: None,
                failed_checks: 1,
                next_check_at: Some(now + Duration::seconds(1)),
                key_moves: Vec::new(),
                events: Vec::new(),
                last_check: None,
                zone: None,
            })
            .await
            .unwrap();
        assert!(applied);
        let soon = now + Duration::seconds(2);
        let again = store
            .lease_due(soon, soon + Duration::minutes(5), 10)
            .await
            .unwrap();
        assert_eq!(
            names(&again),
            ["applied0.example".to_owned()].into(),
            "{kind:?}"
        );
        // A lease given back is due at once.
        store.release(&again[0]).await.unwrap();
        assert_eq!(
            store
                .lease_due(soon, soon + Duration::minutes(5), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let detail = store.domain_detail(&org2, &name).await.unwrap().unwrap();
        assert_eq!(detail.domain.failed_checks, 1);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_leasing_at_once_never_share_a_domain() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let org = common::org(&store, "a").await;
        domains(&store, &org, "d", 60, Duration::seconds(-1)).await;
        let now = Utc::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let target = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = target
                        .lease_due(now, now + Duration::minutes(5), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch);
                }
            }));
        }
        let mut seen = HashSet::new();
        let mut total = 0;
        for task in tasks {
            for due in task.await.unwrap() {
                total += 1;
                assert!(
                    seen.insert(due.domain.as_ascii().to_owned()),
                    "{kind:?}: {} twice",
                    due.domain
                );
            }
        }
        assert_eq!(total, 60, "{kind:?}");
    });
}
