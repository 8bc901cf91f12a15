//! Ownership store tests against real databases (SQLite always, PostgreSQL when
//! configured): the ancestor rule and the creation quotas inside the registration,
//! held by two stores on one database; claims and the transfer, with their races.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{all, key, registration, registration_within};
use domain_core::lifecycle::{EventType, KeyState};
use domain_core::ownership::CreationLimits;
use domain_core::ports::claims::{ClaimStore, OpenClaimError, TransferError};
use domain_core::ports::lifecycle::{EventStore, KeyLifecycleStore, SenderStore};
use domain_core::ports::store::{DomainStore, RegisterError};
use domain_core::{DomainName, OrganizationId};
use store_diesel::Store;

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn week() -> chrono::Duration {
    chrono::Duration::days(7)
}

async fn event_types(store: &Store, org: &OrganizationId) -> Vec<EventType> {
    store
        .list_events(org, &all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_under_another_organization_s_domain_is_taken_but_not_under_its_own() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        store
            .register_sender(registration(&a, "x@example.co.uk", Some(key("a1"))))
            .await
            .unwrap();
        let squat = store
            .register_sender(registration(
                &b,
                "x@mail.deep.example.co.uk",
                Some(key("b1")),
            ))
            .await;
        assert!(
            matches!(squat, Err(RegisterError::DomainTaken)),
            "{kind:?}: {squat:?}"
        );
        let rules = registration(&b, "x@mail.example.co.uk", None).creation;
        assert!(matches!(
            store.admit_creation(&b, &rules).await,
            Err(RegisterError::DomainTaken)
        ));
        store
            .register_sender(registration(&a, "x@mail.example.co.uk", Some(key("a2"))))
            .await
            .unwrap();
        // Another registrable domain is free.
        store
            .register_sender(registration(&b, "x@example2.co.uk", Some(key("b2"))))
            .await
            .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_domain_limit_counts_owned_domains_and_never_limits_reuse() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let limits = CreationLimits {
            max_domains: 2,
            per_minute: 1000,
            max_senders_per_domain: 1000,
        };
        for (i, domain) in ["one.example", "two.example"].iter().enumerate() {
            store
                .register_sender(registration_within(
                    &a,
                    &format!("x@{domain}"),
                    Some(key(&format!("k{i}"))),
                    limits,
                ))
                .await
                .unwrap();
        }
        let third = store
            .register_sender(registration_within(
                &a,
                "x@three.example",
                Some(key("k3")),
                limits,
            ))
            .await;
        assert!(
            matches!(third, Err(RegisterError::DomainLimit)),
            "{kind:?}: {third:?}"
        );
        // Reuse: another sender on an owned domain.
        store
            .register_sender(registration_within(&a, "y@one.example", None, limits))
            .await
            .unwrap();
        // Deleting one frees a place.
        assert!(store.delete_domain(&a, &name("two.example")).await.unwrap());
        store
            .register_sender(registration_within(
                &a,
                "x@three.example",
                Some(key("k4")),
                limits,
            ))
            .await
            .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_counts_creations_in_the_last_minute_even_of_deleted_domains() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let limits = CreationLimits {
            max_domains: 1000,
            per_minute: 2,
            max_senders_per_domain: 1000,
        };
        for (i, domain) in ["one.example", "two.example"].iter().enumerate() {
            store
                .register_sender(registration_within(
                    &a,
                    &format!("x@{domain}"),
                    Some(key(&format!("k{i}"))),
                    limits,
                ))
                .await
                .unwrap();
        }
        assert!(store.delete_domain(&a, &name("two.example")).await.unwrap());
        let third = store
            .register_sender(registration_within(
                &a,
                "x@three.example",
                Some(key("k3")),
                limits,
            ))
            .await;
        let Err(RegisterError::RateLimited { retry_after }) = third else {
            panic!("{kind:?}: {third:?}");
        };
        assert!(
            retry_after >= Duration::from_secs(1) && retry_after <= Duration::from_secs(60),
            "{retry_after:?}"
        );
        // Reuse and other organizations are not limited.
        store
            .register_sender(registration_within(&a, "y@one.example", None, limits))
            .await
            .unwrap();
        store
            .register_sender(registration_within(
                &b,
                "x@four.example",
                Some(key("k4")),
                limits,
            ))
            .await
            .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_on_one_database_together_hold_the_domain_limit() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let a = common::org(&store, "a").await;
        let limits = CreationLimits {
            max_domains: 5,
            per_minute: 1000,
            max_senders_per_domain: 1000,
        };
        let calls = (0..16).map(|i| {
            let target = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            let reg = registration_within(
                &a,
                &format!("x@d{i}.example"),
                Some(key(&format!("k{i}"))),
                limits,
            );
            tokio::spawn(async move { target.register_sender(reg).await })
        });
        let mut created = 0;
        for call in calls.collect::<Vec<_>>() {
            match call.await.unwrap() {
                Ok(_) => created += 1,
                Err(RegisterError::DomainLimit) => {}
                Err(other) => panic!("{kind:?}: {other:?}"),
            }
        }
        assert_eq!(created, 5, "{kind:?}");
        let listed = store.list_domains(&a, &all()).await.unwrap().items.len();
        assert_eq!(listed, 5, "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_is_opened_once_per_claimant_and_renewed_only_after_it_expires() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        store
            .register_sender(registration(&a, "x@example.com", Some(key("a1"))))
            .await
            .unwrap();
        let now = Utc::now();
        let first = store
            .open_claim(&b, &name("example.com"), now, now + week())
            .await
            .unwrap();
        let again = store
            .open_claim(
                &b,
                &name("example.com"),
                now + chrono::Duration::days(1),
                now + week(),
            )
            .await
            .unwrap();
        assert_eq!(first.token, again.token, "{kind:?}");
        assert_eq!(first.token.len(), 40);
        let found = store
            .find_claim(&b, &name("example.com"), now)
            .await
            .unwrap();
        assert_eq!(found.map(|c| c.token), Some(first.token.clone()));
        // Past its expiry: not found, and opening again draws a new token.
        let later = now + week() + chrono::Duration::seconds(1);
        assert!(
            store
                .find_claim(&b, &name("example.com"), later)
                .await
                .unwrap()
                .is_none()
        );
        let renewed = store
            .open_claim(&b, &name("example.com"), later, later + week())
            .await
            .unwrap();
        assert_ne!(renewed.token, first.token);
        assert!(matches!(
            store
                .open_claim(&a, &name("example.com"), now, now + week())
                .await,
            Err(OpenClaimError::OwnDomain)
        ));
        assert!(matches!(
            store
                .open_claim(&b, &name("nobody.example"), now, now + week())
                .await,
            Err(OpenClaimError::NotFound)
        ));
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_gives_the_domain_a_new_key_and_leaves_nothing_of_the_old_owner() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let c = common::org(&store, "c").await;
        store
            .register_sender(registration(&a, "x@example.com", Some(key("a1"))))
            .await
            .unwrap();
        store
            .register_sender(registration(&a, "y@example.com", None))
            .await
            .unwrap();
        store
            .start_rotation(&a, &name("example.com"), key("a2"), Utc::now())
            .await
            .unwrap();
        let now = Utc::now();
        let claim = store
            .open_claim(&b, &name("example.com"), now, now + week())
            .await
            .unwrap();
        let other = store
            .open_claim(&c, &name("example.com"), now, now + week())
            .await
            .unwrap();
        // A wrong token proves nothing.
        let mut forged = claim.clone();
        forged.token = "0".repeat(40);
        assert!(matches!(
            store
                .transfer(&b, &forged, key("b1"), now, now, u32::MAX)
                .await,
            Err(TransferError::NoOpenClaim)
        ));
        store
            .transfer(&b, &claim, key("b1"), now, now, u32::MAX)
            .await
            .unwrap();

        let detail = store
            .domain_detail(&b, &name("example.com"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.domain.selector.as_str(), "b1", "{kind:?}");
        assert_eq!(detail.keys.len(), 1);
        assert_eq!(detail.keys[0].state, KeyState::Active);
        assert!(detail.senders.is_empty());
        assert!(!detail.domain.inbound_enabled);
        assert!(
            store
                .domain_detail(&a, &name("example.com"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .list_senders(&a, &all())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(
            store
                .signing_key(&name("example.com"))
                .await
                .unwrap()
                .unwrap()
                .selector
                .as_str(),
            "b1"
        );
        assert!(
            event_types(&store, &a)
                .await
                .contains(&EventType::DomainTransferred)
        );
        assert_eq!(event_types(&store, &b).await, [EventType::DomainClaimed]);
        // Every claim on the domain closed: the other claimant must start over
        // against the new owner.
        assert!(matches!(
            store
                .transfer(&c, &other, key("c1"), now, now, u32::MAX)
                .await,
            Err(TransferError::NoOpenClaim)
        ));
        assert!(
            store
                .find_claim(&c, &name("example.com"), now)
                .await
                .unwrap()
                .is_none()
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_claimants_rotations_and_deletions_leave_one_clear_winner() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        for round in 0..6 {
            let domain = name(&format!("race{round}.example"));
            let a = common::org(&store, &format!("a{round}")).await;
            let b = common::org(&store, &format!("b{round}")).await;
            let c = common::org(&store, &format!("c{round}")).await;
            store
                .register_sender(registration(&a, &format!("x@{domain}"), Some(key("a1"))))
                .await
                .unwrap();
            let now = Utc::now();
            let claim_b = store
                .open_claim(&b, &domain, now, now + week())
                .await
                .unwrap();
            let claim_c = store
                .open_claim(&c, &domain, now, now + week())
                .await
                .unwrap();
            let (s1, s2, s3) = (store.clone(), second.clone(), store.clone());
            let (d1, d2, d3) = (domain.clone(), domain.clone(), domain.clone());
            let a2 = a.clone();
            let by_b = tokio::spawn(async move {
                s1.transfer(&b, &claim_b, key("b1"), now, now, u32::MAX)
                    .await
            });
            let by_c = tokio::spawn(async move {
                s2.transfer(&c, &claim_c, key("c1"), now, now, u32::MAX)
                    .await
            });
            let owner_acts = tokio::spawn(async move {
                if round % 2 == 0 {
                    s3.delete_domain(&a2, &d3).await.map(|_| ())
                } else {
                    s3.start_rotation(&a2, &d3, key("a2"), now)
                        .await
                        .map_err(|e| domain_core::ports::InfraError::unexpected(format!("{e}")))
                }
            });
            let results = [by_b.await.unwrap(), by_c.await.unwrap()];
            let _ = owner_acts.await.unwrap();
            let won = results.iter().filter(|r| r.is_ok()).count();
            for result in &results {
                assert!(
                    matches!(result, Ok(()) | Err(TransferError::NoOpenClaim)),
                    "{kind:?}: {result:?}"
                );
            }
            assert!(won <= 1, "{kind:?} round {round}: two claimants won");
            let found = store.find_domain(&d1).await.unwrap();
            match found {
                None => assert_eq!(won, 0, "{kind:?}: a transfer won, then the domain vanished"),
                Some(stored) => {
                    // Whoever owns it has exactly one active key, and its own.
                    let detail = store
                        .domain_detail(&stored.organization, &d2)
                        .await
                        .unwrap()
                        .unwrap();
                    let active: Vec<_> = detail
                        .keys
                        .iter()
                        .filter(|k| k.state == KeyState::Active)
                        .collect();
                    assert_eq!(active.len(), 1, "{kind:?}");
                    if won == 1 {
                        assert_ne!(stored.organization, a, "{kind:?}");
                        assert_eq!(
                            detail.keys.len(),
                            1,
                            "{kind:?}: the old owner's keys stayed"
                        );
                    } else {
                        assert_eq!(stored.organization, a, "{kind:?}");
                    }
                }
            }
        }
    });
}

/// A claim took an organization past its domain limit (5 → 6): at the limit the
/// transfer is refused and nothing moves.
#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_past_the_claimants_domain_limit_moves_nothing() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        store
            .register_sender(registration(&a, "x@claimed.example", Some(key("a1"))))
            .await
            .unwrap();
        store
            .register_sender(registration(&b, "x@own.example", Some(key("b0"))))
            .await
            .unwrap();
        let now = Utc::now();
        let claim = store
            .open_claim(&b, &name("claimed.example"), now, now + week())
            .await
            .unwrap();

        assert!(
            matches!(
                store.transfer(&b, &claim, key("b1"), now, now, 1).await,
                Err(TransferError::DomainLimit)
            ),
            "{kind:?}: b owns one domain, its limit"
        );
        let kept = store
            .domain_detail(&a, &name("claimed.example"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            kept.domain.selector.as_str(),
            "a1",
            "{kind:?}: nothing moved"
        );

        store
            .transfer(&b, &claim, key("b1"), now, now, 2)
            .await
            .unwrap();
        assert!(
            store
                .domain_detail(&b, &name("claimed.example"))
                .await
                .unwrap()
                .is_some(),
            "{kind:?}"
        );
    });
}

/// New domains, rotations and claims are the key generations one budget counts,
/// newest first; other events are not.
#[tokio::test(flavor = "multi_thread")]
async fn key_generations_count_new_domains_rotations_and_claims() {
    use domain_core::ports::lifecycle::KeyGenerations as _;
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        store
            .register_sender(registration(&a, "x@first.example", Some(key("a1"))))
            .await
            .unwrap();
        // A second sender is no key generation.
        store
            .register_sender(registration(&a, "y@first.example", None))
            .await
            .unwrap();
        let rotated_at = Utc::now();
        store
            .start_rotation(&a, &name("first.example"), key("a2"), rotated_at)
            .await
            .unwrap();
        store
            .register_sender(registration(&b, "x@theirs.example", Some(key("b1"))))
            .await
            .unwrap();
        let now = Utc::now();
        let claim = store
            .open_claim(&a, &name("theirs.example"), now, now + week())
            .await
            .unwrap();
        store
            .transfer(&a, &claim, key("a3"), now, now, u32::MAX)
            .await
            .unwrap();

        let latest = store.latest_key_generations(&a, 10).await.unwrap();
        assert_eq!(latest.len(), 3, "{kind:?}: created, rotated, claimed");
        assert!(
            latest.windows(2).all(|w| w[0] >= w[1]),
            "{kind:?}: newest first"
        );
        assert_eq!(store.latest_key_generations(&a, 2).await.unwrap().len(), 2);
        assert_eq!(
            store.latest_key_generations(&b, 10).await.unwrap().len(),
            1,
            "{kind:?}: the old owner's creation only (a transfer is not its key)"
        );
    });
}

/// generate's per-minute window counts rotations too: one creation and one rotation
/// spend a budget of two, so the next new domain waits.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_domain_waits_for_the_keys_rotations_spent() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let two = CreationLimits {
            max_domains: 100,
            per_minute: 2,
            max_senders_per_domain: 1000,
        };
        store
            .register_sender(registration_within(
                &a,
                "x@one.example",
                Some(key("a1")),
                two,
            ))
            .await
            .unwrap();
        store
            .start_rotation(&a, &name("one.example"), key("a2"), Utc::now())
            .await
            .unwrap();
        let refused = store
            .register_sender(registration_within(
                &a,
                "x@two.example",
                Some(key("a3")),
                two,
            ))
            .await;
        assert!(
            matches!(refused, Err(RegisterError::RateLimited { .. })),
            "{kind:?}: {refused:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sender_limit_counts_the_senders_there_are_after_deletions_and_a_transfer() {
    // The count the limit is checked against is kept by the database's triggers
    // (migrations 2026-12-11-000001_sender_counts, 2026-12-12-000001_sender_counts_apart): every way senders come and go
    // moves it, so a freed place is taken again and a claimed domain starts empty.
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let limits = CreationLimits {
            max_senders_per_domain: 3,
            ..common::GENEROUS
        };
        let register = |org: &OrganizationId, email: &str, key_: Option<&str>| {
            let store = Arc::clone(&store);
            let reg = registration_within(org, email, key_.map(key), limits);
            async move { store.register_sender(reg).await }
        };
        register(&a, "s1@example.com", Some("a1")).await.unwrap();
        register(&a, "s2@example.com", None).await.unwrap();
        register(&a, "s3@example.com", None).await.unwrap();
        let full = register(&a, "s4@example.com", None).await;
        assert!(
            matches!(full, Err(RegisterError::SenderLimit)),
            "{kind:?}: {full:?}"
        );

        // One deleted frees one place, not more.
        assert!(store.delete_sender(&a, "s2@example.com").await.unwrap());
        register(&a, "s4@example.com", None).await.unwrap();
        let full = register(&a, "s5@example.com", None).await;
        assert!(
            matches!(full, Err(RegisterError::SenderLimit)),
            "{kind:?}: {full:?}"
        );

        // A transfer leaves nothing of the old owner's senders, in the count too.
        common::claim_and_transfer(&store, &b, "example.com", "b1").await;
        for email in ["t1@example.com", "t2@example.com", "t3@example.com"] {
            register(&b, email, None)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {email}: {e:?}"));
        }
        let full = register(&b, "t4@example.com", None).await;
        assert!(
            matches!(full, Err(RegisterError::SenderLimit)),
            "{kind:?}: {full:?}"
        );
    });
}
