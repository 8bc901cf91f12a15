//! The IdempotencyStore port on both backends: the store calls a request makes inside
//! its unit of work join that unit's transaction, so the change and the kept answer
//! commit together, and a rollback leaves neither.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

#[macro_use]
mod common;

use chrono::{Duration, Utc};
use common::{key, registration};
use domain_core::DomainName;
use domain_core::OrganizationId;
use domain_core::ports::idempotency::{
    Begun, Guarded, IdempotencyKey, IdempotencyStore, StoredResponse,
};
use domain_core::ports::store::DomainStore;
use store_diesel::Store;

fn guarded(organization: &OrganizationId, key: &str, fingerprint: u8) -> Guarded {
    let now = Utc::now();
    Guarded {
        organization: organization.clone(),
        key: IdempotencyKey::parse(key.as_bytes()).unwrap(),
        fingerprint: vec![fingerprint; 32],
        now,
        expires_at: now + Duration::hours(24),
    }
}

fn answer() -> StoredResponse {
    StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        body: b"{\"ok\":true}".to_vec(),
    }
}

async fn exists(store: &Store, organization: &OrganizationId, domain: &str) -> bool {
    store
        .domain_detail(organization, &DomainName::parse(domain).unwrap())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_unit_of_work_leaves_nothing_and_a_committed_one_replays() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;

        // Rolled back: the registration made inside it is gone, and the key is free.
        let Begun::Fresh(mut unit) = store.begin(&guarded(&org, "k1", 1)).await.unwrap() else {
            panic!("{kind:?}: a new key is fresh");
        };
        let worker = std::sync::Arc::clone(&store);
        let inside = org.clone();
        unit.run(Box::pin(async move {
            worker
                .register_sender(registration(&inside, "x@rolled.example", Some(key("k1"))))
                .await
                .unwrap();
        }))
        .await;
        unit.rollback().await;
        assert!(!exists(&store, &org, "rolled.example").await, "{kind:?}");
        assert!(matches!(
            store.begin(&guarded(&org, "k1", 1)).await.unwrap(),
            Begun::Fresh(_)
        ));

        // Committed: the registration and the answer, together.
        let Begun::Fresh(mut unit) = store.begin(&guarded(&org, "k2", 2)).await.unwrap() else {
            panic!("{kind:?}: a new key is fresh");
        };
        let worker = std::sync::Arc::clone(&store);
        let inside = org.clone();
        unit.run(Box::pin(async move {
            worker
                .register_sender(registration(&inside, "x@kept.example", Some(key("k2"))))
                .await
                .unwrap();
        }))
        .await;
        unit.commit(&answer()).await.unwrap();
        assert!(exists(&store, &org, "kept.example").await, "{kind:?}");
        match store.begin(&guarded(&org, "k2", 2)).await.unwrap() {
            Begun::Replay(stored) => assert_eq!(stored, answer(), "{kind:?}"),
            _ => panic!("{kind:?}: the same request replays"),
        }
        assert!(matches!(
            store.begin(&guarded(&org, "k2", 3)).await.unwrap(),
            Begun::Mismatch
        ));
        // Another organization's key of the same name is its own.
        let other = common::org(&store, "other").await;
        assert!(matches!(
            store.begin(&guarded(&other, "k2", 2)).await.unwrap(),
            Begun::Fresh(_)
        ));
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_answer_is_forgotten() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        let first = guarded(&org, "k", 1);
        let Begun::Fresh(unit) = store.begin(&first).await.unwrap() else {
            panic!("{kind:?}");
        };
        unit.commit(&answer()).await.unwrap();
        let later = Guarded {
            now: first.expires_at,
            expires_at: first.expires_at + Duration::hours(24),
            ..first.clone()
        };
        assert!(
            matches!(store.begin(&later).await.unwrap(), Begun::Fresh(_)),
            "{kind:?}"
        );
    });
}
