//! The webhook store and delivery queue against real databases (SQLite always,
//! PostgreSQL when configured): every recorded event fans out, in its own unit of
//! work, to exactly one pending delivery per endpoint of its organization that takes
//! its type, and a unit of work that rolls back leaves neither event nor delivery; a
//! delivery is leased to one caller at a time, also across two stores on one
//! database, until its lease runs out or its attempt is recorded; recorded attempts
//! move it on (retry, delivered, failed) and show in the deliveries list; the
//! endpoint limit holds under concurrent creations; deleting an endpoint takes its
//! deliveries with it; the outbox statistics count only what is pending.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{all, key, registration};
use domain_core::lifecycle::{Event, EventType, Page};
use domain_core::ports::lifecycle::{EventStore, OldEvents};
use domain_core::ports::store::{DomainStore, RegisterError};
use domain_core::ports::webhooks::{
    Attempt, CreateEndpointError, DEGRADED_AFTER, DeliveryQueue, DeliveryState, DeliveryView,
    DueDelivery, Endpoint, Health, NewEndpoint, NextStep, OutboxStats, Reach, RecordedAttempt,
    WebhookStore,
};
use domain_core::webhooks::{EventFilter, WebhookId};
use domain_core::{DomainName, OrganizationId};
use store_diesel::{BackendKind, Store};

/// Endpoint `n`'s id.
fn webhook(n: u8) -> WebhookId {
    WebhookId::from_random([n; 16])
}

/// Endpoint `n` of `organization`: its URL and sealed secret are derived from `n`.
fn endpoint(organization: &OrganizationId, n: u8, events: EventFilter) -> NewEndpoint {
    NewEndpoint {
        organization: organization.clone(),
        endpoint: Endpoint {
            id: webhook(n),
            url: url(n),
            events,
            created_at: second(Utc::now()),
            health: Health::Ok,
        },
        secret_sealed: secret(n),
    }
}

fn url(n: u8) -> String {
    format!("https://hooks.example.net/in/{n}")
}

fn secret(n: u8) -> Vec<u8> {
    vec![n; 48]
}

/// Creates endpoint `n` of `organization`, well under any limit.
async fn create(
    store: &Store,
    organization: &OrganizationId,
    n: u8,
    events: EventFilter,
) -> WebhookId {
    let new = endpoint(organization, n, events);
    store.create_endpoint(&new, 100).await.unwrap();
    new.endpoint.id
}

/// `at` cut to the whole second, which both backends store exactly.
fn second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap()
}

/// A whole second after every event recorded so far: deliveries are due at the time
/// of their event, so everything recorded is due then.
fn after_now() -> DateTime<Utc> {
    second(Utc::now()) + Duration::seconds(1)
}

fn lease_length() -> Duration {
    Duration::minutes(5)
}

/// Everything due at `now` and not held, leased for [`lease_length`].
async fn lease(store: &Store, now: DateTime<Utc>, skip: &[OrganizationId]) -> Vec<DueDelivery> {
    store
        .lease_deliveries(now, now + lease_length(), 1000, 1000, skip)
        .await
        .unwrap()
}

/// Registers `email` for `organization`, creating its domain with key `selector`
/// (domain.created, sender.registered, sender.activated).
async fn register(store: &Store, organization: &OrganizationId, email: &str, selector: &str) {
    store
        .register_sender(registration(organization, email, Some(key(selector))))
        .await
        .unwrap();
}

/// Every delivery of the organization's endpoint `id`, oldest first.
async fn deliveries(
    store: &Store,
    organization: &OrganizationId,
    id: &WebhookId,
) -> Vec<DeliveryView> {
    store
        .list_deliveries(organization, id, &all())
        .await
        .unwrap()
        .expect("the organization's endpoint")
        .items
}

async fn events(store: &Store, organization: &OrganizationId) -> Vec<Event> {
    store.list_events(organization, &all()).await.unwrap().items
}

/// The events of `views`, in the order they were recorded. (Not necessarily the
/// list's order: see the last test.)
fn events_of(views: &[DeliveryView]) -> Vec<Event> {
    let mut events: Vec<Event> = views.iter().map(|view| view.event.clone()).collect();
    events.sort_by_key(|event| event.id);
    events
}

/// The types of [`events_of`] `views`.
fn kinds(views: &[DeliveryView]) -> Vec<EventType> {
    events_of(views)
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

fn ids<'a>(due: impl IntoIterator<Item = &'a DueDelivery>) -> HashSet<i64> {
    due.into_iter().map(|d| d.id).collect()
}

async fn delivery_count(store: &Store) -> i64 {
    store
        .count("SELECT COUNT(*) AS n FROM webhook_deliveries")
        .await
}

async fn event_count(store: &Store) -> i64 {
    store.count("SELECT COUNT(*) AS n FROM events").await
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

/// SQL that makes every insert of a delivery to endpoint `id` fail: a failure inside
/// the fan-out, after the event itself was written.
fn refuse_deliveries_to(kind: BackendKind, id: &WebhookId) -> String {
    match kind {
        BackendKind::Sqlite => format!(
            "CREATE TRIGGER refuse_delivery BEFORE INSERT ON webhook_deliveries \
             WHEN NEW.endpoint_id = '{id}' \
             BEGIN SELECT RAISE(ABORT, 'delivery refused by the test'); END;"
        ),
        BackendKind::Postgres => format!(
            "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'delivery refused by the test'; END $$; \
             CREATE TRIGGER refuse_delivery BEFORE INSERT ON webhook_deliveries \
             FOR EACH ROW WHEN (NEW.endpoint_id = '{id}') EXECUTE FUNCTION refuse_delivery();"
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_fans_out_once_to_every_endpoint_of_its_organization_that_takes_its_type() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        // Recorded before any endpoint existed: never delivered.
        register(&store, &a, "x@before.example", "k0").await;
        let before: HashSet<i64> = events(&store, &a).await.iter().map(|e| e.id).collect();
        assert_eq!(before.len(), 3, "{kind:?}");

        let every = create(&store, &a, 1, None).await;
        let chosen = create(
            &store,
            &a,
            2,
            Some(vec![
                EventType::SenderActivated,
                EventType::DomainInboundEnabled,
            ]),
        )
        .await;
        let nothing_of_a = create(&store, &a, 3, Some(vec![EventType::DkimKeyRevoked])).await;
        let theirs = create(&store, &b, 4, None).await;
        let mut with_inbound = registration(&a, "x@after.example", Some(key("k1")));
        with_inbound.enable_inbound = true;
        store.register_sender(with_inbound).await.unwrap();
        register(&store, &b, "y@other.example", "k2").await;

        let new_of_a: Vec<Event> = events(&store, &a)
            .await
            .into_iter()
            .filter(|e| !before.contains(&e.id))
            .collect();
        assert_eq!(
            new_of_a.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [
                EventType::DomainCreated,
                EventType::SenderRegistered,
                EventType::SenderActivated,
                EventType::DomainInboundEnabled,
            ],
            "{kind:?}"
        );

        // No filter: one delivery per event, pending, due at the event's time.
        let to_every = deliveries(&store, &a, &every).await;
        assert_eq!(events_of(&to_every), new_of_a, "{kind:?}");
        for delivery in &to_every {
            assert_eq!(delivery.state, DeliveryState::Pending, "{kind:?}");
            assert_eq!(delivery.next_attempt_at, Some(delivery.event.created_at));
            assert_eq!(delivery.created_at, delivery.event.created_at);
            assert!(delivery.attempts.is_empty());
        }
        // A filter: only the chosen types.
        let to_chosen = deliveries(&store, &a, &chosen).await;
        assert_eq!(
            kinds(&to_chosen),
            [EventType::SenderActivated, EventType::DomainInboundEnabled],
            "{kind:?}"
        );
        assert!(
            deliveries(&store, &a, &nothing_of_a).await.is_empty(),
            "{kind:?}"
        );
        // The other organization's events go to its endpoint only.
        let to_theirs = deliveries(&store, &b, &theirs).await;
        assert_eq!(events_of(&to_theirs), events(&store, &b).await, "{kind:?}");
        assert_eq!(to_theirs.len(), 3);

        // A sender leases exactly these, each once, with its endpoint's URL and secret.
        let due = lease(&store, after_now(), &[]).await;
        let listed: HashSet<i64> = to_every
            .iter()
            .chain(&to_chosen)
            .chain(&to_theirs)
            .map(|d| d.id)
            .collect();
        assert_eq!(due.len(), 9, "{kind:?}: {due:?}");
        assert_eq!(ids(&due), listed, "{kind:?}");
        let pairs: HashSet<(WebhookId, i64)> = due
            .iter()
            .map(|d| (d.endpoint.clone(), d.event.id))
            .collect();
        let mut expected = HashSet::new();
        expected.extend(new_of_a.iter().map(|e| (every.clone(), e.id)));
        expected.extend(to_chosen.iter().map(|d| (chosen.clone(), d.event.id)));
        expected.extend(to_theirs.iter().map(|d| (theirs.clone(), d.event.id)));
        assert_eq!(pairs, expected, "{kind:?}");
        assert!(due.iter().all(|d| !before.contains(&d.event.id)));
        let owners: HashMap<WebhookId, (OrganizationId, u8)> = [
            (every, (a.clone(), 1)),
            (chosen, (a.clone(), 2)),
            (theirs, (b.clone(), 4)),
        ]
        .into();
        for delivery in &due {
            let (owner, n) = &owners[&delivery.endpoint];
            assert_eq!(&delivery.organization, owner, "{kind:?}");
            assert_eq!(delivery.url, url(*n));
            assert_eq!(delivery.secret_sealed, secret(*n));
            assert_eq!(delivery.attempts, 0);
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_of_work_recording_events_of_two_organizations_delivers_each_to_its_own() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let c = common::org(&store, "c").await;
        let of_a = create(&store, &a, 1, None).await;
        let of_b = create(&store, &b, 2, None).await;
        let of_c = create(&store, &c, 3, None).await;
        register(&store, &a, "x@example.com", "a1").await;
        // One transaction: domain.claimed for b, domain.transferred for a.
        common::claim_and_transfer(&store, &b, "example.com", "b1").await;

        let to_a = deliveries(&store, &a, &of_a).await;
        assert_eq!(events_of(&to_a), events(&store, &a).await, "{kind:?}");
        assert_eq!(kinds(&to_a).last(), Some(&EventType::DomainTransferred));
        let to_b = deliveries(&store, &b, &of_b).await;
        assert_eq!(events_of(&to_b), events(&store, &b).await, "{kind:?}");
        assert!(kinds(&to_b).contains(&EventType::DomainClaimed));
        assert!(!kinds(&to_b).contains(&EventType::DomainTransferred));
        assert!(deliveries(&store, &c, &of_c).await.is_empty(), "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_of_work_that_rolls_back_leaves_neither_its_events_nor_their_deliveries() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let of_a = create(&store, &a, 1, None).await;
        let of_b = create(&store, &b, 2, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        let (events_before, deliveries_before) =
            (event_count(&store).await, delivery_count(&store).await);
        assert_eq!((events_before, deliveries_before), (3, 3), "{kind:?}");

        // Conflicts: another organization on a's domain (and on its address), the
        // same address again in another case.
        let taken = store
            .register_sender(registration(&b, "x@one.example", Some(key("k2"))))
            .await;
        assert!(
            matches!(taken, Err(RegisterError::DomainTaken)),
            "{kind:?}: {taken:?}"
        );
        let under = store
            .register_sender(registration(&b, "y@mail.one.example", Some(key("k3"))))
            .await;
        assert!(
            matches!(under, Err(RegisterError::DomainTaken)),
            "{kind:?}: {under:?}"
        );
        let again = store
            .register_sender(registration(&a, "X@One.example", None))
            .await;
        assert!(
            matches!(again, Err(RegisterError::EmailTaken)),
            "{kind:?}: {again:?}"
        );
        assert_eq!(event_count(&store).await, events_before, "{kind:?}");
        assert_eq!(delivery_count(&store).await, deliveries_before, "{kind:?}");
        assert!(deliveries(&store, &b, &of_b).await.is_empty());

        // A failure inside the fan-out itself, after the events were inserted: the
        // poisoned endpoint refuses its deliveries and the whole registration rolls
        // back, the events and the other endpoint's deliveries with it.
        let poisoned = create(&store, &a, 9, None).await;
        store
            .execute_sql(&refuse_deliveries_to(kind, &poisoned))
            .await;
        let failed = store
            .register_sender(registration(&a, "y@two.example", Some(key("k4"))))
            .await;
        assert!(
            matches!(failed, Err(RegisterError::Infra(_))),
            "{kind:?}: {failed:?}"
        );
        assert_eq!(event_count(&store).await, events_before, "{kind:?}");
        assert_eq!(delivery_count(&store).await, deliveries_before, "{kind:?}");
        assert_eq!(events(&store, &a).await.len(), 3);
        assert!(
            store
                .find_domain(&name("two.example"))
                .await
                .unwrap()
                .is_none()
        );
        let due = lease(&store, after_now(), &[]).await;
        assert_eq!(due.len(), 3, "{kind:?}: {due:?}");
        assert!(
            due.iter()
                .all(|d| d.endpoint == of_a && d.event.domain.as_deref() == Some("one.example")),
            "{kind:?}: {due:?}"
        );

        // Without the poisoned endpoint the same registration goes through, with
        // its deliveries.
        assert!(store.delete_endpoint(&a, &poisoned).await.unwrap());
        register(&store, &a, "y@two.example", "k4").await;
        assert_eq!(event_count(&store).await, events_before + 3, "{kind:?}");
        assert_eq!(deliveries(&store, &a, &of_a).await.len(), 6, "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leased_delivery_is_held_until_its_lease_runs_out_and_skipped_organizations_wait() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let of_a = create(&store, &a, 1, None).await;
        let of_b = create(&store, &b, 2, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        register(&store, &b, "y@two.example", "k2").await;
        let now = after_now();
        let until = now + lease_length();

        // Both organizations skipped: nothing, and nothing taken.
        assert!(lease(&store, now, &[a.clone(), b.clone()]).await.is_empty());
        // a skipped: b's only.
        let first = lease(&store, now, std::slice::from_ref(&a)).await;
        assert_eq!(first.len(), 3, "{kind:?}: {first:?}");
        assert!(
            first
                .iter()
                .all(|d| d.organization == b && d.endpoint == of_b)
        );
        // b's are held now: the rest are a's.
        let second = lease(&store, now, &[]).await;
        assert_eq!(second.len(), 3, "{kind:?}: {second:?}");
        assert!(
            second
                .iter()
                .all(|d| d.organization == a && d.endpoint == of_a)
        );
        // Everything is held, whoever asks, until the leases run out.
        assert!(lease(&store, now, &[]).await.is_empty(), "{kind:?}");
        assert!(
            lease(&store, until - Duration::seconds(1), &[])
                .await
                .is_empty(),
            "{kind:?}"
        );
        // Then all of them are due again, each once.
        let later = until + Duration::seconds(1);
        let again = lease(&store, later, &[]).await;
        let all_six: HashSet<i64> = ids(first.iter().chain(&second));
        assert_eq!(again.len(), 6, "{kind:?}: {again:?}");
        assert_eq!(ids(&again), all_six);
        assert!(again.iter().all(|d| d.attempts == 0));

        // The limit goes round-robin over the organizations, each one's oldest due
        // first: a's first, b's first, then a's second (a's were recorded first).
        let much_later = later + lease_length() + Duration::seconds(1);
        let of = |due: &[DueDelivery], org: &OrganizationId| -> Vec<i64> {
            due.iter()
                .filter(|d| &d.organization == org)
                .map(|d| d.id)
                .collect()
        };
        let mut a_ids: Vec<i64> = of(&second, &a);
        let mut b_ids: Vec<i64> = of(&first, &b);
        a_ids.sort_unstable();
        b_ids.sort_unstable();
        let fair = store
            .lease_deliveries(much_later, much_later + lease_length(), 3, 1000, &[])
            .await
            .unwrap();
        assert_eq!(
            ids(&fair),
            HashSet::from([a_ids[0], b_ids[0], a_ids[1]]),
            "{kind:?}: {fair:?}"
        );
        let rest = store
            .lease_deliveries(much_later, much_later + lease_length(), 3, 1000, &[])
            .await
            .unwrap();
        assert_eq!(
            ids(&rest),
            HashSet::from([b_ids[1], a_ids[2], b_ids[2]]),
            "{kind:?}: {rest:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stores_leasing_at_once_never_get_the_same_delivery() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        create(&store, &a, 1, None).await;
        create(&store, &a, 2, None).await;
        create(&store, &b, 3, None).await;
        for i in 0..8 {
            register(&store, &a, &format!("x@a{i}.example"), &format!("a{i}")).await;
            register(&store, &b, &format!("x@b{i}.example"), &format!("b{i}")).await;
        }
        // 8 registrations of 3 events, to 2 endpoints of a and 1 of b.
        let total = 8 * 3 * 2 + 8 * 3;
        assert_eq!(delivery_count(&store).await, total, "{kind:?}");
        let mut now = after_now();
        let mut every_round: Option<HashSet<i64>> = None;
        // Each round starts when the previous round's leases have run out.
        for round in 0..3 {
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
                            .lease_deliveries(now, now + lease_length(), 4, 4, &[])
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|d| d.id));
                    }
                }));
            }
            let mut seen = HashSet::new();
            for task in tasks {
                for id in task.await.unwrap() {
                    assert!(
                        seen.insert(id),
                        "{kind:?}: round {round}: {id} leased twice"
                    );
                }
            }
            assert_eq!(seen.len(), usize::try_from(total).unwrap(), "{kind:?}");
            if let Some(previous) = &every_round {
                assert_eq!(&seen, previous, "{kind:?}: round {round}");
            }
            every_round = Some(seen);
            now += lease_length() + Duration::seconds(1);
        }

        // Two leases racing head to head (joined, not spawned) split what is due.
        let (one, two) = tokio::join!(
            store.lease_deliveries(now, now + lease_length(), 1000, 1000, &[]),
            second.lease_deliveries(now, now + lease_length(), 1000, 1000, &[]),
        );
        let (one, two) = (ids(&one.unwrap()), ids(&two.unwrap()));
        assert!(one.is_disjoint(&two), "{kind:?}");
        assert_eq!(one.len() + two.len(), usize::try_from(total).unwrap());
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn recorded_attempts_move_a_delivery_on_and_show_in_the_deliveries_list() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let of_a = create(&store, &a, 1, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        let t0 = after_now();
        let leased = lease(&store, t0, &[]).await;
        assert_eq!(leased.len(), 3, "{kind:?}");
        let listed = deliveries(&store, &a, &of_a).await;
        let [retried, delivered, failed] = [listed[0].id, listed[1].id, listed[2].id];

        let retry_at = t0 + Duration::minutes(10);
        let unavailable = Attempt {
            at: t0,
            status_code: Some(503),
            error: None,
            duration: std::time::Duration::from_millis(250),
        };
        store
            .record_attempt(retried, &unavailable, NextStep::RetryAt(retry_at))
            .await
            .unwrap();
        let ok = Attempt {
            at: t0,
            status_code: Some(204),
            error: None,
            duration: std::time::Duration::from_millis(12),
        };
        store
            .record_attempt(delivered, &ok, NextStep::Delivered)
            .await
            .unwrap();
        let timeout = Attempt {
            at: t0,
            status_code: None,
            error: Some("timeout".to_owned()),
            duration: std::time::Duration::from_secs(10),
        };
        store
            .record_attempt(failed, &timeout, NextStep::Failed)
            .await
            .unwrap();

        let listed = deliveries(&store, &a, &of_a).await;
        assert_eq!(
            listed
                .iter()
                .map(|d| (d.id, d.state, d.next_attempt_at, d.attempts.clone()))
                .collect::<Vec<_>>(),
            [
                (
                    retried,
                    DeliveryState::Pending,
                    Some(retry_at),
                    vec![unavailable.clone()]
                ),
                (delivered, DeliveryState::Delivered, None, vec![ok.clone()]),
                (failed, DeliveryState::Failed, None, vec![timeout.clone()]),
            ],
            "{kind:?}"
        );

        // The retry is not due before its time (its lease was released, though)…
        assert!(
            lease(&store, retry_at - Duration::seconds(1), &[])
                .await
                .is_empty(),
            "{kind:?}"
        );
        // …and is at its time, with the attempt counted.
        let due = lease(&store, retry_at, &[]).await;
        assert_eq!(
            due.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(),
            [(retried, 1)],
            "{kind:?}"
        );
        let refused = Attempt {
            at: retry_at,
            status_code: None,
            error: Some("connection refused".to_owned()),
            duration: std::time::Duration::from_millis(3),
        };
        let retry_again = retry_at + Duration::minutes(30);
        store
            .record_attempt(retried, &refused, NextStep::RetryAt(retry_again))
            .await
            .unwrap();
        let due = lease(&store, retry_again, &[]).await;
        assert_eq!(
            due.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(),
            [(retried, 2)],
            "{kind:?}"
        );
        let finally = Attempt {
            at: retry_again,
            status_code: Some(200),
            error: None,
            duration: std::time::Duration::from_millis(40),
        };
        store
            .record_attempt(retried, &finally, NextStep::Delivered)
            .await
            .unwrap();
        let listed = deliveries(&store, &a, &of_a).await;
        assert_eq!(listed[0].state, DeliveryState::Delivered, "{kind:?}");
        assert_eq!(listed[0].next_attempt_at, None);
        assert_eq!(listed[0].attempts, [unavailable, refused, finally]);

        // Delivered and failed deliveries are never leased again.
        assert!(
            lease(&store, t0 + Duration::days(365), &[])
                .await
                .is_empty(),
            "{kind:?}"
        );

        // Another organization sees nothing of the endpoint; nor does anyone of an
        // endpoint that does not exist.
        assert!(
            store
                .list_deliveries(&b, &of_a, &all())
                .await
                .unwrap()
                .is_none(),
            "{kind:?}"
        );
        assert!(
            store
                .list_deliveries(&a, &webhook(77), &all())
                .await
                .unwrap()
                .is_none()
        );

        // Pages: two, then the last one.
        let page = |after| Page { after, limit: 2 };
        let first = store
            .list_deliveries(&a, &of_a, &page(None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            first.items.iter().map(|d| d.id).collect::<Vec<_>>(),
            [retried, delivered],
            "{kind:?}"
        );
        assert_eq!(first.next, Some(delivered));
        let last = store
            .list_deliveries(&a, &of_a, &page(first.next))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            last.items.iter().map(|d| d.id).collect::<Vec<_>>(),
            [failed],
            "{kind:?}"
        );
        assert_eq!(last.next, None);
        assert_eq!(
            first
                .items
                .into_iter()
                .chain(last.items)
                .collect::<Vec<_>>(),
            listed
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_limit_holds_also_for_concurrent_creations_on_two_stores() {
    on_every_backend!(|store, kind, db| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        store
            .create_endpoint(&endpoint(&a, 1, None), 2)
            .await
            .unwrap();
        store
            .create_endpoint(&endpoint(&a, 2, Some(vec![EventType::DomainVerified])), 2)
            .await
            .unwrap();
        let third = store.create_endpoint(&endpoint(&a, 3, None), 2).await;
        assert!(
            matches!(third, Err(CreateEndpointError::LimitReached)),
            "{kind:?}: {third:?}"
        );
        // Listed oldest first, as created.
        let listed = store.list_endpoints(&a).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|e| (e.id.clone(), e.url.clone(), e.events.clone()))
                .collect::<Vec<_>>(),
            [
                (webhook(1), url(1), None),
                (webhook(2), url(2), Some(vec![EventType::DomainVerified])),
            ],
            "{kind:?}"
        );
        // The limit is the organization's own.
        store
            .create_endpoint(&endpoint(&b, 4, None), 2)
            .await
            .unwrap();
        // A deleted endpoint frees its place.
        assert!(store.delete_endpoint(&a, &webhook(1)).await.unwrap());
        store
            .create_endpoint(&endpoint(&a, 3, None), 2)
            .await
            .unwrap();
        assert_eq!(store.list_endpoints(&a).await.unwrap().len(), 2);

        // Eight creations at once across two stores, limit three: three stored.
        let second = Arc::new(db.store().await);
        let c = common::org(&store, "c").await;
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let target = if i % 2 == 0 {
                    store.clone()
                } else {
                    second.clone()
                };
                let new = endpoint(&c, 10 + i, None);
                tokio::spawn(async move { target.create_endpoint(&new, 3).await })
            })
            .collect();
        let (mut stored, mut refused) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => stored += 1,
                Err(CreateEndpointError::LimitReached) => refused += 1,
                Err(e) => panic!("{kind:?}: unexpected {e:?}"),
            }
        }
        assert_eq!((stored, refused), (3, 5), "{kind:?}");
        assert_eq!(store.list_endpoints(&c).await.unwrap().len(), 3, "{kind:?}");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_endpoint_takes_its_deliveries_and_attempts_with_it() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let gone = create(&store, &a, 1, None).await;
        let kept = create(&store, &a, 2, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        let t0 = after_now();
        let leased = lease(&store, t0, &[]).await;
        assert_eq!(leased.len(), 6, "{kind:?}");
        let attempted = leased.iter().find(|d| d.endpoint == gone).unwrap().id;
        store
            .record_attempt(
                attempted,
                &Attempt {
                    at: t0,
                    status_code: Some(500),
                    error: None,
                    duration: std::time::Duration::from_millis(5),
                },
                NextStep::RetryAt(t0 + Duration::seconds(5)),
            )
            .await
            .unwrap();

        // Not another organization's to delete.
        assert!(!store.delete_endpoint(&b, &gone).await.unwrap(), "{kind:?}");
        assert_eq!(deliveries(&store, &a, &gone).await.len(), 3);

        assert!(store.delete_endpoint(&a, &gone).await.unwrap(), "{kind:?}");
        assert!(!store.delete_endpoint(&a, &gone).await.unwrap());
        assert!(
            store
                .list_deliveries(&a, &gone, &all())
                .await
                .unwrap()
                .is_none(),
            "{kind:?}"
        );
        assert_eq!(
            store
                .list_endpoints(&a)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            [webhook(2)]
        );
        assert_eq!(
            store
                .count(&format!(
                    "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = '{gone}'"
                ))
                .await,
            0,
            "{kind:?}"
        );
        assert_eq!(
            store
                .count("SELECT COUNT(*) AS n FROM webhook_attempts")
                .await,
            0,
            "{kind:?}"
        );
        // Once every lease has run out, only the kept endpoint's are due.
        let due = lease(&store, t0 + Duration::hours(1), &[]).await;
        assert_eq!(due.len(), 3, "{kind:?}: {due:?}");
        assert!(due.iter().all(|d| d.endpoint == kept), "{kind:?}");
        assert_eq!(deliveries(&store, &a, &kept).await.len(), 3);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_stats_count_pending_deliveries_and_their_oldest() {
    on_every_backend!(|store, kind| {
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats::default(),
            "{kind:?}"
        );
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        let of_a = create(&store, &a, 1, None).await;
        let of_b = create(&store, &b, 2, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        let older = deliveries(&store, &a, &of_a).await;
        let oldest = older[0].created_at;
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats {
                pending: 3,
                oldest: Some(oldest),
            },
            "{kind:?}"
        );
        // Newer deliveries, of another organization too, leave the oldest.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        register(&store, &b, "y@two.example", "k2").await;
        let newer = deliveries(&store, &b, &of_b).await;
        assert!(newer[0].created_at > oldest);
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats {
                pending: 6,
                oldest: Some(oldest),
            },
            "{kind:?}"
        );

        // Delivered and failed ones leave the count; one to retry stays in it.
        let t0 = after_now();
        assert_eq!(lease(&store, t0, &[]).await.len(), 6);
        let attempt = Attempt {
            at: t0,
            status_code: Some(200),
            error: None,
            duration: std::time::Duration::from_millis(1),
        };
        let outcomes = [
            NextStep::Delivered,
            NextStep::Failed,
            NextStep::RetryAt(t0 + Duration::minutes(1)),
        ];
        for (delivery, next) in older.iter().zip(outcomes) {
            store
                .record_attempt(delivery.id, &attempt, next)
                .await
                .unwrap();
        }
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats {
                pending: 4,
                oldest: Some(oldest),
            },
            "{kind:?}"
        );
        store
            .record_attempt(older[2].id, &attempt, NextStep::Delivered)
            .await
            .unwrap();
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats {
                pending: 3,
                oldest: Some(newer[0].created_at),
            },
            "{kind:?}"
        );
        for delivery in &newer {
            store
                .record_attempt(delivery.id, &attempt, NextStep::Delivered)
                .await
                .unwrap();
        }
        assert_eq!(
            store.outbox_stats().await.unwrap(),
            OutboxStats::default(),
            "{kind:?}"
        );
    });
}

/// The fan-out numbers a unit of work's deliveries in its events' order on both
/// backends (PostgreSQL numbered them in another order until the `INSERT … SELECT` was
/// ordered), so the deliveries list reads like the events list.
#[tokio::test(flavor = "multi_thread")]
async fn the_deliveries_list_shows_one_unit_of_work_s_events_in_their_order() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let every = create(&store, &a, 1, None).await;
        let mut with_inbound = registration(&a, "x@one.example", Some(key("k1")));
        with_inbound.enable_inbound = true;
        store.register_sender(with_inbound).await.unwrap();
        let listed: Vec<(i64, EventType)> = deliveries(&store, &a, &every)
            .await
            .iter()
            .map(|d| (d.event.id, d.event.kind))
            .collect();
        let recorded: Vec<(i64, EventType)> = events(&store, &a)
            .await
            .iter()
            .map(|e| (e.id, e.kind))
            .collect();
        assert_eq!(listed, recorded, "{kind:?}: the deliveries list's order");
    });
}

fn attempt_at(at: DateTime<Utc>, status_code: u16) -> Attempt {
    Attempt {
        at,
        status_code: Some(status_code),
        error: None,
        duration: std::time::Duration::from_millis(3),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_recorded_too_late_changes_nothing() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let hook = create(&store, &a, 1, Some(vec![EventType::DomainCreated])).await;
        let doomed = create(&store, &a, 2, Some(vec![EventType::DomainCreated])).await;
        register(&store, &a, "x@one.example", "k1").await;
        let t0 = after_now();
        let leased = lease(&store, t0, &[]).await;
        assert_eq!(leased.len(), 2, "{kind:?}");
        let mine = leased.iter().find(|d| d.endpoint == hook).unwrap().id;
        let theirs = leased.iter().find(|d| d.endpoint == doomed).unwrap().id;

        // Delivered by one sender; a second, whose attempt outlived its lease, reports
        // a failure afterwards: the delivery stays delivered with one attempt.
        store
            .record_attempt(mine, &attempt_at(t0, 200), NextStep::Delivered)
            .await
            .unwrap();
        store
            .record_attempt(
                mine,
                &attempt_at(t0, 500),
                NextStep::RetryAt(t0 + Duration::seconds(5)),
            )
            .await
            .unwrap();
        let listed = deliveries(&store, &a, &hook).await;
        assert_eq!(listed[0].state, DeliveryState::Delivered, "{kind:?}");
        assert_eq!(listed[0].attempts.len(), 1, "{kind:?}");
        let due = lease(&store, t0 + Duration::days(365), &[]).await;
        assert_eq!(
            due.iter().map(|d| d.id).collect::<Vec<_>>(),
            [theirs],
            "{kind:?}: only the other endpoint's delivery is still due"
        );

        // The endpoint is deleted while its delivery is in flight: recording the
        // attempt is not an error, and nothing comes back.
        assert!(store.delete_endpoint(&a, &doomed).await.unwrap());
        store
            .record_attempt(theirs, &attempt_at(t0, 200), NextStep::Delivered)
            .await
            .unwrap();
        assert!(
            lease(&store, t0 + Duration::days(365), &[])
                .await
                .is_empty()
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_deletes_finished_deliveries_past_their_retention_in_batches() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let hook = create(&store, &a, 1, None).await;
        register(&store, &a, "x@one.example", "k1").await;
        register(&store, &a, "y@two.example", "k2").await;
        let t0 = after_now();
        let leased = lease(&store, t0, &[]).await;
        assert_eq!(leased.len(), 6, "{kind:?}");
        // Three delivered at t0, one failed at t0 + 1 h, two left pending.
        for delivery in &leased[..3] {
            store
                .record_attempt(delivery.id, &attempt_at(t0, 200), NextStep::Delivered)
                .await
                .unwrap();
        }
        let later = t0 + Duration::hours(1);
        store
            .record_attempt(leased[3].id, &attempt_at(later, 500), NextStep::Failed)
            .await
            .unwrap();

        // Nothing finished before t0 yet.
        assert_eq!(
            store.prune_deliveries(t0, 100).await.unwrap(),
            0,
            "{kind:?}"
        );
        // Finished before t0 + 1 s: the three delivered, two then one.
        let cutoff = t0 + Duration::seconds(1);
        assert_eq!(
            store.prune_deliveries(cutoff, 2).await.unwrap(),
            2,
            "{kind:?}"
        );
        assert_eq!(
            store.prune_deliveries(cutoff, 2).await.unwrap(),
            1,
            "{kind:?}"
        );
        assert_eq!(
            store.prune_deliveries(cutoff, 2).await.unwrap(),
            0,
            "{kind:?}"
        );
        // A year on: the failed one goes; pending ones are never pruned.
        let far = t0 + Duration::days(365);
        assert_eq!(
            store.prune_deliveries(far, 100).await.unwrap(),
            1,
            "{kind:?}"
        );
        let left = deliveries(&store, &a, &hook).await;
        assert_eq!(left.len(), 2, "{kind:?}");
        assert!(left.iter().all(|d| d.state == DeliveryState::Pending));
        assert_eq!(store.outbox_stats().await.unwrap().pending, 2);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn one_organizations_backlog_never_fills_a_lease_ahead_of_anothers_first_delivery() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let b = common::org(&store, "b").await;
        for n in 1..=20 {
            create(&store, &a, n, None).await;
        }
        // 17 registrations of 3 events to 20 endpoints: 1,020 deliveries of a, all
        // due before b's one.
        for i in 0..17 {
            register(&store, &a, &format!("x@a{i}.example"), &format!("a{i}")).await;
        }
        let of_b = create(&store, &b, 99, Some(vec![EventType::SenderActivated])).await;
        register(&store, &b, "y@b.example", "b0").await;
        assert_eq!(delivery_count(&store).await, 1021, "{kind:?}");
        let now = after_now();

        let batch = store
            .lease_deliveries(now, now + lease_length(), 4, 4, &[])
            .await
            .unwrap();
        assert_eq!(batch.len(), 4, "{kind:?}");
        assert!(
            batch
                .iter()
                .any(|d| d.organization == b && d.endpoint == of_b),
            "{kind:?}: b's only delivery waits behind a's backlog: {batch:?}"
        );
        // And a's share of one batch is bounded too.
        let more = store
            .lease_deliveries(now, now + lease_length(), 100, 4, &[])
            .await
            .unwrap();
        assert_eq!(more.len(), 4, "{kind:?}: at most 4 of a: {more:?}");
        assert!(more.iter().all(|d| d.organization == a));
    });
}

fn recorded(due: &DueDelivery, at: DateTime<Utc>, reach: Reach) -> RecordedAttempt {
    RecordedAttempt {
        delivery: due.id,
        endpoint: due.endpoint.clone(),
        attempt: Attempt {
            at,
            status_code: (reach == Reach::Answered).then_some(503),
            error: (reach == Reach::Unreachable).then(|| "timeout".to_owned()),
            duration: std::time::Duration::from_millis(5),
        },
        next: NextStep::RetryAt(at),
        reach,
    }
}

async fn health(store: &Store, organization: &OrganizationId, id: &WebhookId) -> Health {
    store
        .list_endpoints(organization)
        .await
        .unwrap()
        .into_iter()
        .find(|endpoint| &endpoint.id == id)
        .unwrap()
        .health
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_unanswered_three_times_in_a_row_is_degraded_and_leased_one_at_a_time() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        let hook = create(&store, &a, 1, None).await;
        let other = create(&store, &a, 2, None).await;
        for i in 0..4 {
            register(&store, &a, &format!("x@a{i}.example"), &format!("a{i}")).await;
        }
        let t0 = after_now();
        assert_eq!(health(&store, &a, &hook).await, Health::Ok);

        // Unanswered attempts in one batch each, all but the last: still ok.
        let mut at = t0;
        for round in 0..DEGRADED_AFTER {
            let due = lease(&store, at, &[]).await;
            assert_eq!(due.len(), 24, "{kind:?}: round {round}");
            assert!(due.iter().all(|d| !d.degraded()), "{kind:?}");
            let batch: Vec<RecordedAttempt> = due
                .iter()
                .filter(|d| d.endpoint == hook)
                .take(1)
                .map(|d| recorded(d, at, Reach::Unreachable))
                .chain(
                    due.iter()
                        .filter(|d| d.endpoint == other)
                        .take(1)
                        .map(|d| recorded(d, at, Reach::Answered)),
                )
                .collect();
            store.record_attempts(&batch).await.unwrap();
            at += lease_length() + Duration::seconds(1);
        }
        assert_eq!(
            health(&store, &a, &hook).await,
            Health::Degraded,
            "{kind:?}"
        );
        assert_eq!(health(&store, &a, &other).await, Health::Ok, "{kind:?}");

        // Degraded: one of its 12 due deliveries at a time, none while one is held.
        let due = lease(&store, at, &[]).await;
        let of_hook: Vec<&DueDelivery> = due.iter().filter(|d| d.endpoint == hook).collect();
        assert_eq!(of_hook.len(), 1, "{kind:?}: {due:?}");
        assert!(of_hook[0].degraded());
        assert_eq!(due.len(), 13, "{kind:?}: the other endpoint's 12 too");
        assert!(lease(&store, at, &[]).await.is_empty(), "{kind:?}");
        // Answered (any status): ok again, and all of it is due once the leases ran out.
        store
            .record_attempts(&[recorded(of_hook[0], at, Reach::Answered)])
            .await
            .unwrap();
        assert_eq!(health(&store, &a, &hook).await, Health::Ok, "{kind:?}");
        let later = at + lease_length() + Duration::seconds(1);
        let due = lease(&store, later, &[]).await;
        assert_eq!(
            due.iter().filter(|d| d.endpoint == hook).count(),
            12,
            "{kind:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_degraded_endpoint_has_one_delivery_out_when_two_stores_lease_at_once() {
    on_every_backend!(|store, kind, db| {
        let second = Arc::new(db.store().await);
        let a = common::org(&store, "a").await;
        let hook = create(&store, &a, 1, None).await;
        for i in 0..4 {
            register(&store, &a, &format!("x@a{i}.example"), &format!("a{i}")).await;
        }
        let mut at = after_now();
        for _ in 0..DEGRADED_AFTER {
            let due = lease(&store, at, &[]).await;
            store
                .record_attempts(&[recorded(&due[0], at, Reach::Unreachable)])
                .await
                .unwrap();
            at += lease_length() + Duration::seconds(1);
        }
        assert_eq!(
            health(&store, &a, &hook).await,
            Health::Degraded,
            "{kind:?}"
        );

        // Each round, eight leases at once across two stores (two instances); the
        // delivery leased is never recorded, so its lease runs out before the next.
        for round in 0..12 {
            let mut tasks = Vec::new();
            for i in 0..8 {
                let target = if i % 2 == 0 {
                    store.clone()
                } else {
                    second.clone()
                };
                tasks.push(tokio::spawn(async move {
                    target
                        .lease_deliveries(at, at + lease_length(), 4, 4, &[])
                        .await
                        .unwrap()
                }));
            }
            let mut out = Vec::new();
            for task in tasks {
                out.extend(task.await.unwrap().into_iter().map(|d| d.id));
            }
            assert_eq!(out.len(), 1, "{kind:?}: round {round}: {out:?}");
            at += lease_length() + Duration::seconds(1);
        }
    });
}

/// Issue 21: events were never pruned. Events recorded before the cut go, oldest
/// first and a batch at a time, with their deliveries (and those deliveries'
/// attempts); later ones stay, with theirs.
#[tokio::test(flavor = "multi_thread")]
async fn events_past_their_retention_go_with_their_deliveries() {
    on_every_backend!(|store, kind| {
        let a = common::org(&store, "a").await;
        create(&store, &a, 1, None).await;
        register(&store, &a, "x@old.example", "s1").await;
        let recorded = event_count(&store).await;
        assert_eq!(recorded, 3, "{kind:?}");
        assert_eq!(delivery_count(&store).await, 3, "{kind:?}");
        // An attempt on one of them, which must go with it.
        let due = lease(&store, after_now(), &[]).await;
        let refused = Attempt {
            at: after_now(),
            status_code: Some(503),
            error: None,
            duration: std::time::Duration::from_millis(5),
        };
        store
            .record_attempt(
                due[0].id,
                &refused,
                NextStep::RetryAt(after_now() + Duration::hours(1)),
            )
            .await
            .unwrap();

        // Nothing was recorded before an hour ago.
        let hour_ago = Utc::now() - Duration::hours(1);
        assert_eq!(
            store.prune_events(hour_ago, 100).await.unwrap(),
            0,
            "{kind:?}"
        );

        // Everything so far is past a cut one second from now; a batch of two first.
        let cut = after_now();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        register(&store, &a, "y@old.example", "s2").await;
        assert_eq!(store.prune_events(cut, 2).await.unwrap(), 2, "{kind:?}");
        assert_eq!(store.prune_events(cut, 100).await.unwrap(), 1, "{kind:?}");
        assert_eq!(store.prune_events(cut, 100).await.unwrap(), 0, "{kind:?}");
        // The later registration's two events and their deliveries stay.
        assert_eq!(event_count(&store).await, 2, "{kind:?}");
        assert_eq!(delivery_count(&store).await, 2, "{kind:?}");
        assert_eq!(
            store
                .count("SELECT COUNT(*) AS n FROM webhook_attempts")
                .await,
            0,
            "{kind:?}"
        );
    });
}
