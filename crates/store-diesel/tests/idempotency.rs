//! The IdempotencyStore port on both backends: a key is taken with a lease in a
//! statement of its own; the store calls a request makes inside its unit of work
//! join the transaction its first write opens (reads before it hold nothing), so the
//! change and the kept answer commit together, and a rollback leaves neither; a
//! registration keeps the answer in its group-commit batch. A key taken with the
//! change (generate's) is taken by the change's own write: a keyed registration is
//! one group-commit member, and a duplicate is stopped at its write.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

#[macro_use]
mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{key, registration};
use domain_core::DomainName;
use domain_core::OrganizationId;
use domain_core::ports::idempotency::{
    Begun, Guarded, Held, IdempotencyKey, IdempotencyStore, KeptAnswers, RegistrationAnswer,
    StoredResponse, Taking,
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
        lease_until: now + Duration::seconds(30),
        expires_at: now + Duration::hours(24),
        taking: Taking::UpFront,
    }
}

/// A key taken with the change (generate's).
fn with_change(organization: &OrganizationId, key: &str, fingerprint: u8) -> Guarded {
    Guarded {
        taking: Taking::WithChange,
        ..guarded(organization, key, fingerprint)
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
        let worker = Arc::clone(&store);
        let inside = org.clone();
        unit.run(
            RegistrationAnswer::default(),
            Box::pin(async move {
                worker
                    .register_sender(registration(&inside, "x@rolled.example", Some(key("k1"))))
                    .await
                    .unwrap();
            }),
        )
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
        let worker = Arc::clone(&store);
        let inside = org.clone();
        unit.run(
            RegistrationAnswer::default(),
            Box::pin(async move {
                worker
                    .register_sender(registration(&inside, "x@kept.example", Some(key("k2"))))
                    .await
                    .unwrap();
            }),
        )
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

/// A unit of work whose answer to a registration is `answer()` with the email's
/// domain in the body (what the generate route sets).
fn rendering() -> RegistrationAnswer {
    let rendering = RegistrationAnswer::default();
    rendering.set(Arc::new(|outcome| {
        let registered = outcome.as_ref().ok()?;
        Some(StoredResponse {
            body: registered.domain.name.as_ascii().as_bytes().to_vec(),
            ..answer()
        })
    }));
    rendering
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registration_keeps_the_answer_in_its_batch_and_the_commit_adds_nothing() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        let Begun::Fresh(mut unit) = store.begin(&guarded(&org, "k", 1)).await.unwrap() else {
            panic!("{kind:?}: a new key is fresh");
        };
        let (worker, inside) = (Arc::clone(&store), org.clone());
        unit.run(
            rendering(),
            Box::pin(async move {
                worker
                    .register_sender(registration(&inside, "x@batched.example", Some(key("k1"))))
                    .await
                    .unwrap();
            }),
        )
        .await;

        // Kept by the batch already: the answer replays before the request's commit.
        match store.begin(&guarded(&org, "k", 1)).await.unwrap() {
            Begun::Replay(stored) => assert_eq!(stored.body, b"batched.example", "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
        // What the request then answers is not written again.
        unit.commit(&answer()).await.unwrap();
        match store.begin(&guarded(&org, "k", 1)).await.unwrap() {
            Begun::Replay(stored) => assert_eq!(stored.body, b"batched.example", "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
        assert_eq!(store.group_commit_stats().registrations, 1, "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_key_answers_in_progress_until_its_lease_runs_out() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        let first = guarded(&org, "k", 1);
        let Begun::Fresh(mut slow) = store.begin(&first).await.unwrap() else {
            panic!("{kind:?}");
        };
        let retry = Guarded {
            now: first.lease_until,
            lease_until: first.lease_until + Duration::seconds(30),
            ..first.clone()
        };
        let (worker, inside, seen) = (Arc::clone(&store), org.clone(), first.clone());
        slow.run(
            RegistrationAnswer::default(),
            Box::pin(async move {
                // While it waits on the network, the key is in progress to anyone else.
                // (Called from inside the holder's unit, these go to the pool: it has not
                // written, so there is no transaction for them to join.)
                assert!(
                    matches!(worker.begin(&seen).await.unwrap(), Begun::InProgress),
                    "the same request"
                );
                let another = guarded(&seen.organization, "k", 2);
                assert!(
                    matches!(worker.begin(&another).await.unwrap(), Begun::Mismatch),
                    "another request"
                );

                // It outlives its lease: a retry takes the key over and finishes.
                let Begun::Fresh(taken) = worker.begin(&retry).await.unwrap() else {
                    panic!("a lapsed lease is taken over");
                };
                taken.commit(&answer()).await.unwrap();

                // Then the slow one writes: its change cannot be kept.
                worker
                    .register_sender(registration(&inside, "x@slow.example", Some(key("k1"))))
                    .await
                    .unwrap();
            }),
        )
        .await;

        assert!(
            slow.commit(&answer()).await.is_err(),
            "{kind:?}: the lease was lost"
        );
        assert!(
            !exists(&store, &org, "slow.example").await,
            "{kind:?}: the lost holder's change is rolled back"
        );
        assert!(
            matches!(store.begin(&first).await.unwrap(), Begun::Replay(_)),
            "{kind:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_request_holds_nothing_until_it_writes() {
    on_every_backend!(|store, kind| {
        let (org, other) = (
            common::org(&store, "acme").await,
            common::org(&store, "other").await,
        );
        let Begun::Fresh(mut unit) = store.begin(&guarded(&org, "k", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let (worker, inside) = (Arc::clone(&store), org.clone());
        unit.run(
            RegistrationAnswer::default(),
            Box::pin(async move {
                // A read, then a wait on the network: another organization's write
                // goes through meanwhile (on SQLite the write lock is free).
                let name = DomainName::parse("held.example").unwrap();
                assert!(worker.find_domain(&name).await.unwrap().is_none());
                let neighbour = Arc::clone(&worker);
                let elsewhere = tokio::spawn(async move {
                    neighbour
                        .register_sender(registration(
                            &other,
                            "x@neighbour.example",
                            Some(key("n1")),
                        ))
                        .await
                });
                let done = tokio::time::timeout(std::time::Duration::from_secs(2), elsewhere).await;
                assert!(
                    matches!(done, Ok(Ok(Ok(_)))),
                    "another organization's write waits for no keyed request"
                );
                worker
                    .register_sender(registration(&inside, "x@held.example", Some(key("k1"))))
                    .await
                    .unwrap();
            }),
        )
        .await;
        unit.commit(&answer()).await.unwrap();
        assert!(exists(&store, &org, "held.example").await, "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_answers_are_pruned_in_batches_and_live_ones_kept() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        for name in ["a", "b", "c"] {
            let Begun::Fresh(unit) = store.begin(&guarded(&org, name, 1)).await.unwrap() else {
                panic!("{kind:?}");
            };
            unit.commit(&answer()).await.unwrap();
        }
        let later = Utc::now() + Duration::hours(25);

        assert_eq!(
            store.prune_expired(Utc::now(), 10).await.unwrap(),
            0,
            "{kind:?}: none expired yet"
        );
        assert_eq!(
            store.prune_expired(later, 2).await.unwrap(),
            2,
            "{kind:?}: one batch"
        );
        assert_eq!(store.prune_expired(later, 2).await.unwrap(), 1, "{kind:?}");
        assert!(
            matches!(
                store.begin(&guarded(&org, "a", 1)).await.unwrap(),
                Begun::Fresh(_)
            ),
            "{kind:?}: a pruned key is new again"
        );
    });
}

/// As [`rendering`], and a refusal answered 409 with its reason (as generate does):
/// a refused registration keeps its answer too.
fn answering() -> RegistrationAnswer {
    let answering = RegistrationAnswer::default();
    answering.set(Arc::new(|outcome| {
        Some(match outcome {
            Ok(registered) => StoredResponse {
                body: registered.domain.name.as_ascii().as_bytes().to_vec(),
                ..answer()
            },
            Err(refused) => StoredResponse {
                status: 409,
                content_type: "text/plain".into(),
                body: refused.to_string().into_bytes(),
            },
        })
    }));
    answering
}

/// Runs a registration of `email` in `unit` (answered as `answer`).
async fn register_in(
    unit: &mut Box<dyn domain_core::ports::idempotency::UnitOfWork>,
    store: &Arc<Store>,
    org: &OrganizationId,
    email: &'static str,
    answer: RegistrationAnswer,
) -> Result<(), domain_core::ports::store::RegisterError> {
    let (worker, inside) = (Arc::clone(store), org.clone());
    let mut outcome = None;
    unit.run(
        answer,
        Box::pin(async {
            let registration = registration(&inside, email, Some(key("k1")));
            outcome = Some(worker.register_sender(registration).await.map(|_| ()));
        }),
    )
    .await;
    outcome.unwrap()
}

/// The cost of a keyed registration: taken with the change, the key is written in
/// the registration's own group-commit member — one batch, where a key taken up
/// front adds a batch (a transaction and a commit) of its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_taken_with_the_change_costs_no_batch_of_its_own() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        for (taking, batches) in [(Taking::UpFront, 2), (Taking::WithChange, 1)] {
            let name = format!("{taking:?}");
            let before = store.group_commit_stats().batches;
            let guarded = Guarded {
                taking,
                ..guarded(&org, &name, 1)
            };
            let Begun::Fresh(mut unit) = store.begin(&guarded).await.unwrap() else {
                panic!("{kind:?}: a new key is fresh");
            };
            let email = match taking {
                Taking::UpFront => "x@up-front.example",
                Taking::WithChange => "x@with-change.example",
            };
            register_in(&mut unit, &store, &org, email, rendering())
                .await
                .unwrap();
            assert!(unit.superseded().is_none(), "{kind:?} {name}");
            assert_eq!(
                unit.commit(&answer()).await.unwrap(),
                None,
                "{kind:?} {name}"
            );
            assert_eq!(
                store.group_commit_stats().batches - before,
                batches,
                "{kind:?} {name}: batches for one keyed registration"
            );
            match store.begin(&guarded).await.unwrap() {
                Begun::Replay(stored) => {
                    assert_eq!(stored.body, email.split('@').nth(1).unwrap().as_bytes());
                }
                other => panic!("{kind:?} {name}: {other:?}"),
            }
        }
    });
}

/// Two requests with one key, both past the read before either wrote: the first
/// registration keeps its answer; the second, in the same batch or a later one, is
/// refused at its write (its registration rolled back, no event of its own) and
/// answers the first one's answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_of_a_key_taken_with_the_change_answers_the_first_answer() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        let Begun::Fresh(mut first) = store.begin(&with_change(&org, "k", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let Begun::Fresh(mut second) = store.begin(&with_change(&org, "k", 1)).await.unwrap()
        else {
            panic!("{kind:?}: nothing is written before the change");
        };
        let events_before = common::event_count(&store, &org).await;
        let (a, b) = tokio::join!(
            register_in(&mut first, &store, &org, "x@dup.example", answering()),
            register_in(&mut second, &store, &org, "x@dup.example", answering()),
        );
        // One of them ran; which one is the order the batch saw them in.
        let (winner, loser, lost) = match (a, b) {
            (Ok(()), Err(lost)) => (first, second, lost),
            (Err(lost), Ok(())) => (second, first, lost),
            other => panic!("{kind:?}: {other:?}"),
        };
        assert!(
            matches!(lost, domain_core::ports::store::RegisterError::Infra(_)),
            "{kind:?}: the loser's store call fails ({lost:?}); the middleware answers for it"
        );
        assert!(winner.superseded().is_none(), "{kind:?}");
        let expected = StoredResponse {
            body: b"dup.example".to_vec(),
            ..answer()
        };
        assert_eq!(
            loser.superseded(),
            Some(Held::Replay(expected.clone())),
            "{kind:?}"
        );
        loser.rollback().await;
        assert_eq!(winner.commit(&answer()).await.unwrap(), None, "{kind:?}");
        assert_eq!(
            common::event_count(&store, &org).await - events_before,
            3,
            "{kind:?}: one registration's events (created, registered, activated)"
        );
        match store.begin(&with_change(&org, "k", 1)).await.unwrap() {
            Begun::Replay(stored) => assert_eq!(stored, expected, "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
    });
}

/// A key taken with the change by a write other than a registration (the first
/// write opens the request's transaction and takes the key in it), and by a request
/// that writes nothing (its answer alone, in one upsert): a duplicate that comes
/// second is refused and told what the first kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_taken_with_the_change_stops_a_duplicate_on_every_path() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;

        // The transaction's first write (a registration outside a batch: the request
        // did not say how it answers).
        let Begun::Fresh(mut first) = store.begin(&with_change(&org, "w", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let Begun::Fresh(mut second) = store.begin(&with_change(&org, "w", 1)).await.unwrap()
        else {
            panic!("{kind:?}");
        };
        let default = RegistrationAnswer::default;
        register_in(&mut first, &store, &org, "x@first.example", default())
            .await
            .unwrap();
        assert_eq!(first.commit(&answer()).await.unwrap(), None, "{kind:?}");
        assert!(
            register_in(&mut second, &store, &org, "x@second.example", default())
                .await
                .is_err(),
            "{kind:?}: the duplicate's write is refused"
        );
        assert_eq!(
            second.superseded(),
            Some(Held::Replay(answer())),
            "{kind:?}"
        );
        second.rollback().await;
        assert!(exists(&store, &org, "first.example").await, "{kind:?}");
        assert!(!exists(&store, &org, "second.example").await, "{kind:?}");

        // No write: the answer alone takes the key; the second is told the first's.
        let Begun::Fresh(first) = store.begin(&with_change(&org, "r", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let Begun::Fresh(second) = store.begin(&with_change(&org, "r", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let refused = StoredResponse {
            status: 400,
            content_type: "text/plain".into(),
            body: b"Invalid sender address".to_vec(),
        };
        assert_eq!(first.commit(&refused).await.unwrap(), None, "{kind:?}");
        assert_eq!(
            second.commit(&answer()).await.unwrap(),
            Some(Held::Replay(refused.clone())),
            "{kind:?}"
        );
        // With another request's body, the same key is another request's.
        let Begun::Fresh(third) = store.begin(&with_change(&org, "m", 1)).await.unwrap() else {
            panic!("{kind:?}");
        };
        let Begun::Fresh(other) = store.begin(&with_change(&org, "m", 2)).await.unwrap() else {
            panic!("{kind:?}");
        };
        assert_eq!(third.commit(&refused).await.unwrap(), None, "{kind:?}");
        assert_eq!(
            other.commit(&answer()).await.unwrap(),
            Some(Held::Mismatch),
            "{kind:?}"
        );
    });
}

/// The bytes an organization's kept answers take, read from one row that triggers
/// keep exact: a running key counts nothing, a kept answer its body, a take-over of
/// an expired answer drops it, and so does the prune.
#[tokio::test(flavor = "multi_thread")]
async fn the_bytes_of_kept_answers_are_counted_per_organization() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        let other = common::org(&store, "other").await;
        let body = answer().body.len() as u64;
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 0, "{kind:?}");

        let first = guarded(&org, "k1", 1);
        let Begun::Fresh(unit) = store.begin(&first).await.unwrap() else {
            panic!("{kind:?}");
        };
        assert_eq!(
            store.stored_bytes(&org).await.unwrap(),
            0,
            "{kind:?}: running"
        );
        unit.commit(&answer()).await.unwrap();
        let Begun::Fresh(unit) = store.begin(&guarded(&org, "k2", 2)).await.unwrap() else {
            panic!("{kind:?}");
        };
        unit.commit(&answer()).await.unwrap();
        assert_eq!(
            store.stored_bytes(&org).await.unwrap(),
            2 * body,
            "{kind:?}"
        );
        assert_eq!(store.stored_bytes(&other).await.unwrap(), 0, "{kind:?}");
        assert_eq!(
            store
                .first_expiry(&org)
                .await
                .unwrap()
                .map(|t| t.timestamp()),
            Some(first.expires_at.timestamp()),
            "{kind:?}"
        );

        // k1's answer expired: a new request takes the key over (running again).
        let later = Guarded {
            now: first.expires_at,
            lease_until: first.expires_at + Duration::seconds(30),
            expires_at: first.expires_at + Duration::hours(24),
            ..first.clone()
        };
        let Begun::Fresh(unit) = store.begin(&later).await.unwrap() else {
            panic!("{kind:?}");
        };
        assert_eq!(store.stored_bytes(&org).await.unwrap(), body, "{kind:?}");
        unit.rollback().await;

        let pruned = store
            .prune_expired(first.expires_at + Duration::hours(25), 100)
            .await
            .unwrap();
        // k2's answer (k1's take-over was rolled back, its record gone with it).
        assert_eq!(pruned, 1, "{kind:?}");
        assert_eq!(store.stored_bytes(&org).await.unwrap(), 0, "{kind:?}");
        assert_eq!(store.first_expiry(&org).await.unwrap(), None, "{kind:?}");
    });
}

/// Keyed reuse registrations (generate's keys, taken with the change) run as one set
/// of their batch: each keeps its answer with its change, one refused (its email
/// taken) keeps its refusal, and each key replays what its request answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyed_reuse_registrations_run_as_a_set_and_keep_their_answers() {
    on_every_backend!(|store, kind| {
        let org = common::org(&store, "acme").await;
        store
            .register_sender(registration(&org, "first@set.example", Some(key("k1"))))
            .await
            .unwrap();
        let before = store.group_commit_stats();
        let mut emails: Vec<String> = (0..40).map(|i| format!("s{i}@set.example")).collect();
        emails.insert(20, "first@set.example".to_owned());
        let local = tokio::task::LocalSet::new();
        let outcomes = local
            .run_until(async {
                let tasks: Vec<_> = emails
                    .iter()
                    .enumerate()
                    .map(|(i, email)| {
                        let (store, org) = (Arc::clone(&store), org.clone());
                        let email = email.clone();
                        tokio::task::spawn_local(async move {
                            let guarded = with_change(&org, &format!("key{i}"), 1);
                            let Begun::Fresh(mut unit) = store.begin(&guarded).await.unwrap()
                            else {
                                panic!("a new key is fresh");
                            };
                            let (worker, inside) = (Arc::clone(&store), org.clone());
                            let mut outcome = None;
                            unit.run(
                                answering(),
                                Box::pin(async {
                                    let reg = registration(&inside, &email, None);
                                    outcome = Some(worker.register_sender(reg).await.map(|_| ()));
                                }),
                            )
                            .await;
                            let committed = unit.commit(&answer()).await.unwrap();
                            (outcome.unwrap(), committed)
                        })
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.unwrap());
                }
                outcomes
            })
            .await;

        for (i, (email, (outcome, committed))) in emails.iter().zip(&outcomes).enumerate() {
            assert_eq!(*committed, None, "{kind:?} {email}");
            let taken = email == "first@set.example";
            assert_eq!(outcome.is_err(), taken, "{kind:?} {email}: {outcome:?}");
            match store
                .begin(&with_change(&org, &format!("key{i}"), 1))
                .await
                .unwrap()
            {
                Begun::Replay(stored) if taken => {
                    assert_eq!(stored.status, 409, "{kind:?} {email}");
                }
                Begun::Replay(stored) => {
                    assert_eq!(stored.status, 201, "{kind:?} {email}");
                    assert_eq!(stored.body, b"set.example", "{kind:?} {email}");
                }
                other => panic!("{kind:?} {email}: {other:?}"),
            }
        }
        // Two requests with one key in one batch: the first keeps its answer, the
        // second is refused at its write and told the first's answer.
        let Begun::Fresh(mut first) = store.begin(&with_change(&org, "dup", 1)).await.unwrap()
        else {
            panic!("{kind:?}");
        };
        let Begun::Fresh(mut second) = store.begin(&with_change(&org, "dup", 1)).await.unwrap()
        else {
            panic!("{kind:?}");
        };
        let (inside, worker) = (org.clone(), Arc::clone(&store));
        let (mut a, mut b) = (None, None);
        tokio::join!(
            first.run(
                answering(),
                Box::pin(async {
                    let reg = registration(&inside, "a@set.example", None);
                    a = Some(worker.register_sender(reg).await.map(|_| ()));
                }),
            ),
            second.run(
                answering(),
                Box::pin(async {
                    let reg = registration(&inside, "b@set.example", None);
                    b = Some(worker.register_sender(reg).await.map(|_| ()));
                }),
            ),
        );
        let (winner, loser) = match (a.unwrap(), b.unwrap()) {
            (Ok(()), Err(_)) => (first, second),
            (Err(_), Ok(())) => (second, first),
            other => panic!("{kind:?}: {other:?}"),
        };
        let expected = StoredResponse {
            body: b"set.example".to_vec(),
            ..answer()
        };
        assert_eq!(loser.superseded(), Some(Held::Replay(expected)), "{kind:?}");
        loser.rollback().await;
        assert_eq!(winner.commit(&answer()).await.unwrap(), None, "{kind:?}");
        let detail = store
            .domain_detail(&org, &DomainName::parse("set.example").unwrap())
            .await
            .unwrap()
            .unwrap();
        let ab = detail
            .senders
            .iter()
            .filter(|s| s.email.starts_with("a@") || s.email.starts_with("b@"))
            .count();
        assert_eq!(ab, 1, "{kind:?}: the loser's sender is rolled back");

        let after = store.group_commit_stats();
        assert!(
            after.set_based - before.set_based >= 20,
            "{kind:?}: {} of {} keyed registrations in sets",
            after.set_based - before.set_based,
            emails.len()
        );
    });
}
