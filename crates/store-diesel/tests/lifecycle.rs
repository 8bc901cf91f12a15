//! Lifecycle store tests against real databases (SQLite always, PostgreSQL when
//! configured): rotation, checks, the inbound toggle, deletion, senders and events,
//! tenant isolation, and the invariants under concurrency.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Days, TimeDelta, Utc};
use common::{all, key, registration};
use domain_core::lifecycle::{DomainStatus, Event, EventType, KeyState, NewEvent, Page};
use domain_core::ports::admin::Administration;
use domain_core::ports::lifecycle::{
    CheckPlan, EventStore, KeyLifecycleStore, KeyMove, KeyTarget, RotateError, SenderStore,
};
use domain_core::ports::store::{DomainStore, RegisterError};
use domain_core::{DomainName, OrganizationId, SealedKey, Selector};
use store_diesel::Store;

fn example() -> DomainName {
    DomainName::parse("example.com").unwrap()
}

fn selector(value: &str) -> Selector {
    Selector::new(value).unwrap()
}

/// A whole-second time (both backends store it exactly), `hour` hours after midnight
/// of the day after tomorrow. The store stamps a domain's first key with the real
/// time, so the times a test passes must come after it on any date the suite runs:
/// a fixed calendar date stops being "later" once the calendar passes it.
fn at(hour: u32) -> DateTime<Utc> {
    static BASE: LazyLock<DateTime<Utc>> = LazyLock::new(|| {
        let day = Utc::now().date_naive() + Days::new(2);
        day.and_hms_opt(0, 0, 0).unwrap().and_utc()
    });
    *BASE + TimeDelta::hours(i64::from(hour))
}

/// A check at `hour` that changes no key and leaves the domain pending.
fn plan(org: &OrganizationId, hour: u32, key_moves: Vec<KeyMove>) -> CheckPlan {
    CheckPlan {
        organization: org.clone(),
        domain: example(),
        checked_at: at(hour),
        status: DomainStatus::Pending,
        verified_at: None,
        failed_checks: 0,
        next_check_at: Some(at(hour + 1)),
        key_moves,
        events: Vec::new(),
        last_check: None,
        zone: None,
    }
}

fn step(selector_name: &str, from: KeyState, to: KeyTarget) -> KeyMove {
    KeyMove {
        selector: selector(selector_name),
        from,
        to,
    }
}

/// `org` with one sender on example.com, whose first key is `old`.
async fn domain_with_key(store: &Store, name: &str) -> OrganizationId {
    let org = common::org(store, name).await;
    store
        .register_sender(registration(&org, "a@example.com", Some(key("old"))))
        .await
        .unwrap();
    org
}

async fn events(store: &Store, org: &OrganizationId) -> Vec<Event> {
    store.list_events(org, &all()).await.unwrap().items
}

/// An event's type, domain, selector and email.
type Summary<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// The events' (type, domain, selector, email), in order.
fn summary(events: &[Event]) -> Vec<Summary<'_>> {
    events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.domain.as_deref(),
                e.selector.as_deref(),
                e.email.as_deref(),
            )
        })
        .collect()
}

/// The keys of example.com as (selector, state), newest first.
async fn key_states(store: &Store, org: &OrganizationId) -> Vec<(String, KeyState)> {
    store
        .domain_detail(org, &example())
        .await
        .unwrap()
        .unwrap()
        .keys
        .into_iter()
        .map(|k| (k.selector.to_string(), k.state))
        .collect()
}

// --- Rotation ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_adds_one_pending_key_and_keeps_signing_with_the_active_one() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;

        store
            .start_rotation(&org, &example(), key("new"), at(1))
            .await
            .unwrap();

        assert_eq!(
            key_states(&store, &org).await,
            [
                ("new".to_owned(), KeyState::Pending),
                ("old".to_owned(), KeyState::Active)
            ],
            "{kind:?}: newest first"
        );
        let detail = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.keys[0].created_at, at(1));
        assert_eq!(detail.keys[0].activated_at, None);
        assert_eq!(detail.keys[0].public_key, "MIIBIjANBgkqhkinew");
        // Every read of the domain still carries the active key.
        let found = store.find_domain(&example()).await.unwrap().unwrap();
        assert_eq!(found.selector.as_str(), "old", "{kind:?}");
        let listed = store.list_domains(&org, &all()).await.unwrap().items;
        assert_eq!(listed[0].selector.as_str(), "old");
        assert_eq!(
            store.sealed_key(&example()).await.unwrap(),
            Some(SealedKey(b"old".to_vec()))
        );
        let signing = store.signing_key(&example()).await.unwrap().unwrap();
        assert_eq!(
            (signing.selector.as_str(), signing.sealed_private_key),
            ("old", SealedKey(b"old".to_vec())),
            "{kind:?}: the pending key does not sign"
        );

        let again = store
            .start_rotation(&org, &example(), key("newer"), at(2))
            .await
            .unwrap_err();
        assert!(
            matches!(again, RotateError::InProgress),
            "{kind:?}: {again:?}"
        );
        assert_eq!(key_states(&store, &org).await.len(), 2);

        let stranger = common::org(&store, "Other").await;
        let theirs = store
            .start_rotation(&stranger, &example(), key("evil"), at(2))
            .await
            .unwrap_err();
        assert!(
            matches!(theirs, RotateError::NotFound),
            "{kind:?}: {theirs:?}"
        );
        let missing = store
            .start_rotation(
                &org,
                &DomainName::parse("nope.example").unwrap(),
                key("x1"),
                at(2),
            )
            .await
            .unwrap_err();
        assert!(matches!(missing, RotateError::NotFound), "{kind:?}");

        let recorded = events(&store, &org).await;
        assert_eq!(
            summary(&recorded).last().copied(),
            Some((
                "dkim.rotation_started",
                Some("example.com"),
                Some("new"),
                None
            )),
            "{kind:?}"
        );
        assert_eq!(recorded.last().unwrap().created_at, at(1));
        assert!(events(&store, &stranger).await.is_empty());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_rotations_on_two_instances_leave_exactly_one_pending_key() {
    on_every_backend!(|store, kind, db| {
        let org = domain_with_key(&store, "Acme").await;
        let second_instance = Arc::new(db.store().await);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = if i % 2 == 0 {
                    Arc::clone(&store)
                } else {
                    Arc::clone(&second_instance)
                };
                let org = org.clone();
                tokio::spawn(async move {
                    store
                        .start_rotation(&org, &example(), key(&format!("r{i}")), at(1))
                        .await
                })
            })
            .collect();

        let (mut started, mut in_progress) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => started += 1,
                Err(RotateError::InProgress) => in_progress += 1,
                Err(e) => panic!("{kind:?}: unexpected {e:?}"),
            }
        }

        assert_eq!((started, in_progress), (1, 19), "{kind:?}");
        let states = key_states(&store, &org).await;
        assert_eq!(
            states
                .iter()
                .filter(|(_, s)| *s == KeyState::Pending)
                .count(),
            1,
            "{kind:?}: {states:?}"
        );
        let rotations = events(&store, &org)
            .await
            .into_iter()
            .filter(|e| e.kind == EventType::DkimRotationStarted)
            .count();
        assert_eq!(
            rotations, 1,
            "{kind:?}: one event, for the one that started"
        );
        drop(second_instance);
    });
}

// --- Checks --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn checks_promote_the_pending_key_then_revoke_and_remove_the_old_one() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        store
            .start_rotation(&org, &example(), key("new"), at(1))
            .await
            .unwrap();

        // Seen published: the active key retires, then the pending one activates.
        let mut promote = plan(
            &org,
            2,
            vec![
                step("old", KeyState::Active, KeyTarget::Retiring),
                step("new", KeyState::Pending, KeyTarget::Active),
            ],
        );
        promote.status = DomainStatus::Verified;
        promote.verified_at = Some(at(2));
        promote.events = vec![
            NewEvent::domain(&org, EventType::DomainVerified, &example()),
            NewEvent::key(
                &org,
                EventType::DkimKeyActivated,
                &example(),
                &selector("new"),
            ),
        ];
        assert!(store.apply_check(&promote).await.unwrap(), "{kind:?}");

        let detail = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        let domain = &detail.domain;
        assert_eq!(
            domain.selector.as_str(),
            "new",
            "{kind:?}: the new key signs"
        );
        assert_eq!(
            (
                domain.status,
                domain.verified_at,
                domain.last_checked_at,
                domain.next_check_at,
                domain.failed_checks
            ),
            (
                DomainStatus::Verified,
                Some(at(2)),
                Some(at(2)),
                Some(at(3)),
                0
            )
        );
        let (new, old) = (&detail.keys[0], &detail.keys[1]);
        assert_eq!(
            (new.state, new.activated_at),
            (KeyState::Active, Some(at(2)))
        );
        assert_eq!(
            (old.state, old.retired_at),
            (KeyState::Retiring, Some(at(2)))
        );
        assert_eq!(
            store.sealed_key(&example()).await.unwrap(),
            Some(SealedKey(b"new".to_vec()))
        );
        let signing = store.signing_key(&example()).await.unwrap().unwrap();
        assert_eq!(
            (signing.selector.as_str(), signing.sealed_private_key),
            ("new", SealedKey(b"new".to_vec())),
            "{kind:?}: the promoted key signs"
        );
        assert_eq!(
            summary(&events(&store, &org).await)[4..],
            [
                ("domain.verified", Some("example.com"), None, None),
                ("dkim.key_activated", Some("example.com"), Some("new"), None),
            ]
        );

        // Retire period over: revoked, and its private key destroyed in the table.
        let mut revoke = plan(
            &org,
            5,
            vec![step("old", KeyState::Retiring, KeyTarget::Revoked)],
        );
        revoke.status = DomainStatus::Verified;
        revoke.verified_at = Some(at(2));
        assert!(store.apply_check(&revoke).await.unwrap(), "{kind:?}");
        assert_eq!(
            key_states(&store, &org).await,
            [
                ("new".to_owned(), KeyState::Active),
                ("old".to_owned(), KeyState::Revoked)
            ]
        );
        let detail = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.keys[1].revoked_at, Some(at(5)));
        assert_eq!(
            store
                .count(
                    "SELECT COUNT(*) AS n FROM dkim_keys \
                     WHERE selector = 'old' AND state = 'revoked' AND private_key_sealed IS NULL"
                )
                .await,
            1,
            "{kind:?}: the revoked key's sealed bytes are gone"
        );
        assert_eq!(
            store
                .count("SELECT COUNT(*) AS n FROM dkim_keys WHERE private_key_sealed IS NOT NULL")
                .await,
            1,
            "{kind:?}: only the active key keeps its private half"
        );

        // Safe to remove: the row goes.
        let remove = plan(
            &org,
            9,
            vec![step("old", KeyState::Revoked, KeyTarget::Removed)],
        );
        assert!(store.apply_check(&remove).await.unwrap());
        assert_eq!(
            key_states(&store, &org).await,
            [("new".to_owned(), KeyState::Active)]
        );
        assert_eq!(
            store
                .count("SELECT COUNT(*) AS n FROM dkim_keys WHERE selector = 'old'")
                .await,
            0,
            "{kind:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_plan_changes_nothing_and_returns_false() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        store
            .start_rotation(&org, &example(), key("new"), at(1))
            .await
            .unwrap();
        let before = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        let events_before = events(&store, &org).await;

        // The first move would apply; the second finds its key no longer pending
        // (here: never retiring), so the whole plan is rolled back.
        let mut stale = plan(
            &org,
            2,
            vec![
                step("old", KeyState::Active, KeyTarget::Retiring),
                step("new", KeyState::Retiring, KeyTarget::Revoked),
            ],
        );
        stale.status = DomainStatus::Verified;
        stale.verified_at = Some(at(2));
        stale.events = vec![NewEvent::domain(
            &org,
            EventType::DomainVerified,
            &example(),
        )];
        assert!(!store.apply_check(&stale).await.unwrap(), "{kind:?}");

        // Another organization's plan for the domain, and a plan for a missing one.
        let stranger = common::org(&store, "Other").await;
        let mut theirs = stale.clone();
        theirs.organization = stranger.clone();
        theirs.key_moves.clear();
        assert!(!store.apply_check(&theirs).await.unwrap(), "{kind:?}");
        let mut missing = theirs.clone();
        missing.organization = org.clone();
        missing.domain = DomainName::parse("nope.example").unwrap();
        assert!(!store.apply_check(&missing).await.unwrap(), "{kind:?}");

        let after = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after, before, "{kind:?}: nothing changed");
        assert_eq!(after.domain.last_checked_at, None);
        assert_eq!(events(&store, &org).await, events_before);
        assert!(events(&store, &stranger).await.is_empty());
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_counts_failures_and_schedules_the_next_one() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        let mut failing = plan(&org, 3, Vec::new());
        failing.status = DomainStatus::Failing;
        failing.verified_at = Some(at(1));
        failing.failed_checks = 2;
        failing.next_check_at = None;
        failing.events = vec![NewEvent::domain(&org, EventType::DomainFailing, &example())];

        assert!(store.apply_check(&failing).await.unwrap());

        let domain = store.find_domain(&example()).await.unwrap().unwrap();
        assert_eq!(
            (
                domain.status,
                domain.failed_checks,
                domain.last_checked_at,
                domain.next_check_at
            ),
            (DomainStatus::Failing, 2, Some(at(3)), None),
            "{kind:?}"
        );
        assert_eq!(
            events(&store, &org).await.last().unwrap().kind,
            EventType::DomainFailing
        );
    });
}

/// The zone stored for example.com.
async fn zone_of(store: &Store) -> Option<String> {
    store
        .find_domain(&example())
        .await
        .unwrap()
        .unwrap()
        .zone
        .map(|z| z.as_ascii().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_keeps_the_zone_it_found_until_another_is_found() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        assert_eq!(zone_of(&store).await, None, "{kind:?}: none before a check");

        let mut found = plan(&org, 1, Vec::new());
        found.zone = Some(example());
        assert!(store.apply_check(&found).await.unwrap());
        assert_eq!(
            zone_of(&store).await.as_deref(),
            Some("example.com"),
            "{kind:?}"
        );

        // A check whose lookup failed finds none: the last zone stays.
        assert!(store.apply_check(&plan(&org, 2, Vec::new())).await.unwrap());
        assert_eq!(
            zone_of(&store).await.as_deref(),
            Some("example.com"),
            "{kind:?}"
        );
        let detail = store
            .domain_detail(&org, &example())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.domain.zone, Some(example()), "{kind:?}");
    });
}

// --- Inbound -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_inbound_toggle_records_an_event_only_when_it_changes() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        let stranger = common::org(&store, "Other").await;
        let baseline = events(&store, &org).await.len();

        assert!(store.set_inbound(&org, &example(), true).await.unwrap());
        assert!(store.set_inbound(&org, &example(), true).await.unwrap());
        assert!(
            store
                .find_domain(&example())
                .await
                .unwrap()
                .unwrap()
                .inbound_enabled
        );
        assert!(store.set_inbound(&org, &example(), false).await.unwrap());
        assert!(
            !store
                .set_inbound(&stranger, &example(), true)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_inbound(&org, &DomainName::parse("nope.example").unwrap(), true)
                .await
                .unwrap()
        );

        assert!(
            !store
                .find_domain(&example())
                .await
                .unwrap()
                .unwrap()
                .inbound_enabled,
            "{kind:?}: another organization's toggle did nothing"
        );
        assert_eq!(
            summary(&events(&store, &org).await[baseline..]),
            [
                ("domain.inbound_enabled", Some("example.com"), None, None),
                ("domain.inbound_disabled", Some("example.com"), None, None),
            ],
            "{kind:?}"
        );
        assert!(events(&store, &stranger).await.is_empty());
    });
}

// --- Deletion ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_domain_destroys_its_keys_and_senders_and_frees_the_name() {
    on_every_backend!(|store, kind| {
        let org = domain_with_key(&store, "Acme").await;
        store
            .register_sender(registration(&org, "b@example.com", None))
            .await
            .unwrap();
        store
            .start_rotation(&org, &example(), key("new"), at(1))
            .await
            .unwrap();
        store
            .register_sender(registration(&org, "c@kept.example", Some(key("kept"))))
            .await
            .unwrap();
        store
            .activate_sender(&org, "b@example.com")
            .await
            .unwrap()
            .unwrap();
        let stranger = common::org(&store, "Other").await;

        assert!(!store.delete_domain(&stranger, &example()).await.unwrap());
        assert!(store.find_domain(&example()).await.unwrap().is_some());
        assert!(
            store.delete_domain(&org, &example()).await.unwrap(),
            "{kind:?}"
        );

        assert_eq!(store.find_domain(&example()).await.unwrap(), None);
        assert_eq!(store.domain_detail(&org, &example()).await.unwrap(), None);
        assert_eq!(store.sealed_key(&example()).await.unwrap(), None);
        assert_eq!(store.signing_key(&example()).await.unwrap(), None);
        for (table, left) in [("dkim_keys", 1), ("senders", 1), ("domains", 1)] {
            assert_eq!(
                store
                    .count(&format!("SELECT COUNT(*) AS n FROM {table}"))
                    .await,
                left,
                "{kind:?}: only kept.example's row is left in {table}"
            );
        }
        let senders = store.list_senders(&org, &all()).await.unwrap().items;
        assert_eq!(senders.len(), 1);
        assert_eq!(
            (senders[0].email.as_str(), senders[0].active),
            ("c@kept.example", false),
            "{kind:?}: the deleted active sender leaves none active"
        );
        assert!(!store.delete_domain(&org, &example()).await.unwrap());
        assert_eq!(
            summary(&events(&store, &org).await).last().copied(),
            Some(("domain.deleted", Some("example.com"), None, None))
        );

        // The name is free: anyone creates it afresh, with a new key.
        let again = store
            .register_sender(registration(&stranger, "a@example.com", Some(key("fresh"))))
            .await
            .unwrap();
        assert!(again.domain_created, "{kind:?}");
        assert_eq!(
            key_states(&store, &stranger).await,
            [("fresh".to_owned(), KeyState::Active)]
        );
        assert_eq!(
            store.sealed_key(&example()).await.unwrap(),
            Some(SealedKey(b"fresh".to_vec()))
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_racing_registrations_leave_a_domain_whole_or_gone() {
    on_every_backend!(|store, kind, db| {
        let acme = domain_with_key(&store, "Acme").await;
        let other = common::org(&store, "Other").await;
        let second_instance = Arc::new(db.store().await);
        // Rounds: each starts from what the previous one left (gone, or owned by
        // either organization).
        for round in 0..3 {
            let tasks: Vec<_> = (0..30)
                .map(|i| {
                    let store = if i % 2 == 0 {
                        Arc::clone(&store)
                    } else {
                        Arc::clone(&second_instance)
                    };
                    let owner = if i % 3 == 0 {
                        other.clone()
                    } else {
                        acme.clone()
                    };
                    tokio::spawn(async move {
                        if i % 5 == 0 {
                            store.delete_domain(&owner, &example()).await.map(|_| ())
                        } else {
                            let reg = registration(
                                &owner,
                                &format!("s{round}x{i}@example.com"),
                                Some(key(&format!("k{round}x{i}"))),
                            );
                            match store.register_sender(reg).await {
                                Ok(_) | Err(RegisterError::DomainTaken) => Ok(()),
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            }
            assert_whole_or_gone(&store, &[&acme, &other]).await;
        }
        drop(second_instance);
    });
}

/// Either example.com is gone, or it exists with exactly one active key and its
/// senders, all of its owner; and no organization has two active senders.
async fn assert_whole_or_gone(store: &Store, orgs: &[&OrganizationId]) {
    for (what, sql) in [
        (
            "a domain without exactly one active key",
            "SELECT COUNT(*) AS n FROM domains d WHERE (SELECT COUNT(*) FROM dkim_keys k \
             WHERE k.domain_id = d.id AND k.state = 'active') <> 1",
        ),
        (
            "a domain without its sender",
            "SELECT COUNT(*) AS n FROM domains d \
             WHERE NOT EXISTS (SELECT 1 FROM senders s WHERE s.domain_id = d.id)",
        ),
        (
            "a sender of another organization than its domain's",
            "SELECT COUNT(*) AS n FROM senders s JOIN domains d ON d.id = s.domain_id \
             WHERE d.organization_id <> s.organization_id",
        ),
    ] {
        assert_eq!(store.count(sql).await, 0, "{what}");
    }
    for org in orgs {
        let active = store
            .list_senders(org, &all())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|s| s.active)
            .count();
        assert!(active <= 1, "{active} active senders");
    }
}

// --- Senders -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn senders_are_listed_by_address_in_pages_and_only_the_organizations_own() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "Acme").await;
        let stranger = common::org(&store, "Other").await;
        for (email, new_key) in [
            ("c@example.com", Some(key("k1"))),
            ("a@example.com", None),
            ("b@two.example", Some(key("k2"))),
        ] {
            store
                .register_sender(registration(&org, email, new_key))
                .await
                .unwrap();
        }
        let mut reply = registration(&stranger, "z@theirs.example", Some(key("k3")));
        reply.reply_to = Some(domain_core::EmailAddress::parse("help@theirs.example").unwrap());
        store.register_sender(reply).await.unwrap();

        let first = store
            .list_senders(
                &org,
                &Page {
                    after: None,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        let emails: Vec<_> = first.items.iter().map(|s| s.email.as_str()).collect();
        assert_eq!(emails, ["a@example.com", "b@two.example"], "{kind:?}");
        assert_eq!(first.next.as_deref(), Some("b@two.example"));
        assert_eq!(first.items[1].domain, "two.example");
        assert!(first.items[1].active, "the last registered is active");
        let second = store
            .list_senders(
                &org,
                &Page {
                    after: first.next,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        let emails: Vec<_> = second.items.iter().map(|s| s.email.as_str()).collect();
        assert_eq!(emails, ["c@example.com"]);
        assert_eq!(second.next, None);

        let theirs = store.list_senders(&stranger, &all()).await.unwrap().items;
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].reply_to.as_deref(), Some("help@theirs.example"));
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn activating_a_sender_makes_it_the_organizations_only_active_one() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "Acme").await;
        let stranger = common::org(&store, "Other").await;
        for (email, new_key) in [
            ("a@example.com", Some(key("k1"))),
            ("b@two.example", Some(key("k2"))),
        ] {
            store
                .register_sender(registration(&org, email, new_key))
                .await
                .unwrap();
        }
        store
            .register_sender(registration(&stranger, "z@theirs.example", Some(key("k3"))))
            .await
            .unwrap();
        let baseline = events(&store, &org).await.len();

        let activated = store
            .activate_sender(&org, "a@example.com")
            .await
            .unwrap()
            .unwrap();

        assert_eq!(
            (
                activated.email.as_str(),
                activated.domain.as_str(),
                activated.active
            ),
            ("a@example.com", "example.com", true),
            "{kind:?}"
        );
        let active: Vec<_> = store
            .list_senders(&org, &all())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|s| s.active)
            .map(|s| s.email)
            .collect();
        assert_eq!(active, ["a@example.com"], "{kind:?}");
        assert_eq!(
            summary(&events(&store, &org).await[baseline..]),
            [(
                "sender.activated",
                Some("example.com"),
                None,
                Some("a@example.com")
            )]
        );

        assert_eq!(
            store
                .activate_sender(&stranger, "a@example.com")
                .await
                .unwrap(),
            None,
            "{kind:?}: another organization's sender"
        );
        assert_eq!(
            store
                .activate_sender(&org, "nobody@example.com")
                .await
                .unwrap(),
            None
        );
        let theirs = store.list_senders(&stranger, &all()).await.unwrap().items;
        assert!(
            theirs[0].active,
            "{kind:?}: the other organization is untouched"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_active_sender_leaves_the_organization_with_none_active() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "Acme").await;
        let stranger = common::org(&store, "Other").await;
        store
            .register_sender(registration(&org, "a@example.com", Some(key("k1"))))
            .await
            .unwrap();
        store
            .register_sender(registration(&org, "b@example.com", None))
            .await
            .unwrap();

        assert!(
            !store
                .delete_sender(&stranger, "b@example.com")
                .await
                .unwrap()
        );
        assert!(
            store.delete_sender(&org, "b@example.com").await.unwrap(),
            "{kind:?}"
        );
        assert!(!store.delete_sender(&org, "b@example.com").await.unwrap());

        let left = store.list_senders(&org, &all()).await.unwrap().items;
        assert_eq!(left.len(), 1);
        assert_eq!(
            (left[0].email.as_str(), left[0].active),
            ("a@example.com", false),
            "{kind:?}"
        );
        assert!(
            store.find_domain(&example()).await.unwrap().is_some(),
            "the domain stays"
        );
        assert_eq!(
            summary(&events(&store, &org).await).last().copied(),
            Some((
                "sender.deleted",
                Some("example.com"),
                None,
                Some("b@example.com")
            ))
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activations_racing_registrations_leave_one_active_sender() {
    on_every_backend!(|store, kind, db| {
        let org = common::org(&store, "Acme").await;
        for i in 0..5 {
            store
                .register_sender(registration(
                    &org,
                    &format!("old{i}@example.com"),
                    (i == 0).then(|| key("k0")),
                ))
                .await
                .unwrap();
        }
        let second_instance = Arc::new(db.store().await);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = if i % 2 == 0 {
                    Arc::clone(&store)
                } else {
                    Arc::clone(&second_instance)
                };
                let org = org.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        let email = format!("old{}@example.com", i % 5);
                        assert!(store.activate_sender(&org, &email).await.unwrap().is_some());
                    } else {
                        let reg = registration(&org, &format!("new{i}@example.com"), None);
                        store.register_sender(reg).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }

        let active = store
            .list_senders(&org, &all())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|s| s.active)
            .count();
        assert_eq!(active, 1, "{kind:?}");
        drop(second_instance);
    });
}

// --- Events --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn registration_records_its_events_in_order_and_they_list_in_pages() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "Acme").await;
        let stranger = common::org(&store, "Other").await;
        let mut first = registration(&org, "a@example.com", Some(key("k1")));
        first.enable_inbound = true;
        store.register_sender(first).await.unwrap();
        // Inbound already on, domain already there: no domain event this time.
        let mut second = registration(&org, "b@example.com", Some(key("k2")));
        second.enable_inbound = true;
        store.register_sender(second).await.unwrap();

        let recorded = events(&store, &org).await;
        assert_eq!(
            summary(&recorded),
            [
                ("domain.created", Some("example.com"), None, None),
                (
                    "sender.registered",
                    Some("example.com"),
                    None,
                    Some("a@example.com")
                ),
                (
                    "sender.activated",
                    Some("example.com"),
                    None,
                    Some("a@example.com")
                ),
                ("domain.inbound_enabled", Some("example.com"), None, None),
                (
                    "sender.registered",
                    Some("example.com"),
                    None,
                    Some("b@example.com")
                ),
                (
                    "sender.activated",
                    Some("example.com"),
                    None,
                    Some("b@example.com")
                ),
            ],
            "{kind:?}"
        );
        assert!(
            recorded.windows(2).all(|w| w[0].id < w[1].id),
            "{kind:?}: ids increase"
        );

        let page = |after, limit| Page { after, limit };
        let one = store.list_events(&org, &page(None, 4)).await.unwrap();
        assert_eq!(one.items, recorded[..4]);
        assert_eq!(one.next, Some(recorded[3].id));
        let two = store.list_events(&org, &page(one.next, 4)).await.unwrap();
        assert_eq!(two.items, recorded[4..]);
        assert_eq!(two.next, None, "{kind:?}: the last page has no next");
        assert!(events(&store, &stranger).await.is_empty());
    });
}
