//! Events: recorded inside the unit of work of the change they describe
//! ([`record_events!`]), listed per organization, oldest first (EventStore port).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain_core::OrganizationId;
use domain_core::lifecycle::{Event, EventType, NewEvent, Page, Paged};
use domain_core::ports::InfraError;
use domain_core::ports::idempotency::{Guarded, Held, StoredResponse};
use domain_core::ports::lifecycle::{EventStore, OldEvents};

use crate::Store;
use crate::backend::{DbError, SqliteConn, in_transaction, with_conn};

/// Inserts `$events` (an iterator of `&NewEvent`) on `$conn`, stamped `$at`, in
/// order: their ids increase in that order. Then fans them out to the webhook outbox:
/// one pending delivery, due at once, per event and endpoint of the event's
/// organization that takes its type — in the same transaction, so a committed event
/// always has its deliveries and a rolled-back one never does. Expands inside a
/// `with_conn!` or `in_transaction!` body and evaluates to `Result<(), DbError>`.
macro_rules! record_events {
    ($conn:ident, $events:expr, $at:expr) => {{
        let events: Vec<&domain_core::lifecycle::NewEvent> = $events.into_iter().collect();
        $crate::events::RecordEvents::record_events(&mut *$conn, &events, $at).await
    }};
}

/// Records a unit of work's events and their deliveries (see [`record_events!`]).
pub(crate) trait RecordEvents {
    /// Inserts `events` stamped `at`, in order, and their deliveries.
    async fn record_events(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError>;

    /// As [`RecordEvents::record_events`], and keeps `keeping`'s answer with its key
    /// taken: `Some` when another request holds the key (the events are then to be
    /// rolled back by the caller).
    async fn record_events_keeping(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
        keeping: Keeping<'_>,
    ) -> Result<Option<Held>, DbError>;
}

impl RecordEvents for AsyncPgConnection {
    /// One statement, one round trip, however many events: a data-modifying CTE
    /// inserts the events (ids taken in the order given) and fans them out. The
    /// registrations of one organization take turns on its row lock, so every round
    /// trip saved inside the transaction is throughput.
    async fn record_events(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let (mut sql, n) = (String::from("WITH "), 0);
        push_events_cte(&mut sql, n, events.len());
        sql.push_str(DELIVERIES);
        bind_events(diesel::sql_query(sql).into_boxed::<Pg>(), events, at)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Still one statement: the key's upsert is one more data-modifying CTE, and the
    /// statement answers whether it took the key.
    async fn record_events_keeping(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
        keeping: Keeping<'_>,
    ) -> Result<Option<Held>, DbError> {
        use diesel::sql_types::{BigInt, Bytea, Integer, Text, Timestamptz};
        #[derive(QueryableByName)]
        struct Kept {
            #[diesel(sql_type = BigInt)]
            kept: i64,
        }
        let Keeping { guarded, response } = keeping;
        let mut sql = String::from(
            "WITH k AS (INSERT INTO idempotency_keys (organization_id, key, fingerprint, \
             status, content_type, body, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (organization_id, key) DO UPDATE SET \
             fingerprint = EXCLUDED.fingerprint, holder = NULL, lease_until = NULL, \
             status = EXCLUDED.status, content_type = EXCLUDED.content_type, \
             body = EXCLUDED.body, created_at = EXCLUDED.created_at, \
             expires_at = EXCLUDED.expires_at \
             WHERE idempotency_keys.expires_at <= $7 \
             OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= $7) \
             RETURNING 1)",
        );
        if !events.is_empty() {
            sql.push_str(", ");
            push_events_cte(&mut sql, 8, events.len());
            sql.push_str(", d AS (");
            sql.push_str(DELIVERIES);
            sql.push(')');
        }
        sql.push_str(" SELECT count(*) AS kept FROM k");
        let query = diesel::sql_query(sql)
            .into_boxed::<Pg>()
            .bind::<Text, _>(guarded.organization.as_str())
            .bind::<Text, _>(guarded.key.as_str())
            .bind::<Bytea, _>(&guarded.fingerprint)
            .bind::<Integer, _>(i32::from(response.status))
            .bind::<Text, _>(&response.content_type)
            .bind::<Bytea, _>(&response.body)
            .bind::<Timestamptz, _>(guarded.now)
            .bind::<Timestamptz, _>(guarded.expires_at);
        let kept: Kept = bind_events(query, events, at).get_result(self).await?;
        if kept.kept == 1 {
            return Ok(None);
        }
        use crate::schema::pg::*;
        let conn = self;
        let row = crate::ambient::read_key!(conn, guarded)?;
        // Gone between the two statements (pruned): another take decides.
        Ok(Some(
            row.and_then(|row| crate::ambient::held(guarded, row))
                .unwrap_or(Held::InProgress),
        ))
    }
}

/// Fans the events of the CTE `e` out to the webhook outbox: one pending delivery
/// per event and endpoint that takes its type. `events` holds an endpoint's types as
/// `,a,b,`; LIKE's `_` matches any character, harmless here since no two types
/// differ only there.
pub(crate) const DELIVERIES: &str = "INSERT INTO webhook_deliveries \
     (endpoint_id, organization_id, event_id, state, next_attempt_at, created_at) \
     SELECT w.id, w.organization_id, e.id, 'pending', e.created_at, e.created_at \
     FROM e JOIN webhook_endpoints w ON w.organization_id = e.organization_id \
     WHERE w.events IS NULL OR w.events LIKE '%,' || e.type || ',%' \
     ORDER BY e.id, w.id";

/// Appends the CTE `e`, which inserts `count` events from the parameters after the
/// first `first` (six each, as [`bind_events`] binds them).
fn push_events_cte(sql: &mut String, first: usize, count: usize) {
    sql.push_str(
        "e AS (INSERT INTO events (organization_id, type, domain, selector, email, created_at) VALUES ",
    );
    for i in 0..count {
        let n = first + i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
    }
    sql.push_str(" RETURNING id, organization_id, type, created_at)");
}

/// Binds the six parameters of each event, in order.
fn bind_events<'a>(
    mut query: diesel::query_builder::BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery>,
    events: &[&'a NewEvent],
    at: DateTime<Utc>,
) -> diesel::query_builder::BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery> {
    use diesel::sql_types::{Nullable, Text, Timestamptz};
    for event in events {
        query = query
            .bind::<Text, _>(event.organization.as_str())
            .bind::<Text, _>(event.kind.as_str())
            .bind::<Nullable<Text>, _>(event.domain.as_ref().map(|d| d.as_ascii()))
            .bind::<Nullable<Text>, _>(event.selector.as_ref().map(|s| s.as_str()))
            .bind::<Nullable<Text>, _>(event.email.as_deref())
            .bind::<Timestamptz, _>(at);
    }
    query
}

impl RecordEvents for SqliteConn {
    /// An insert per event, then one `INSERT … SELECT` for the deliveries, all in
    /// one trip to the connection's thread: each statement of the async wrapper is a
    /// hop to the blocking pool and back, which under load costs more than SQLite's
    /// work, and a batch of registrations runs these one after another.
    async fn record_events(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let owned: Vec<OwnedEvent> = events.iter().map(|event| owned(event)).collect();
        self.spawn_blocking(move |c| sqlite_sync::record_events(c, &owned, at))
            .await?;
        Ok(())
    }

    /// The events, then the key's upsert (SQLite's statements cost no round trip).
    async fn record_events_keeping(
        &mut self,
        events: &[&NewEvent],
        at: DateTime<Utc>,
        keeping: Keeping<'_>,
    ) -> Result<Option<Held>, DbError> {
        use crate::schema::sqlite::*;
        self.record_events(events, at).await?;
        let conn = self;
        crate::ambient::take_key!(conn, keeping.guarded, &[], Some(keeping.response))
    }
}

pub(crate) use record_events;

/// An event's organization, type, domain, selector and email, owned (for a SQLite
/// connection's thread).
pub(crate) type OwnedEvent = sqlite_sync::Owned;

/// `event`, owned.
pub(crate) fn owned(event: &NewEvent) -> OwnedEvent {
    (
        event.organization.as_str().to_owned(),
        event.kind.as_str(),
        event.domain.as_ref().map(|d| d.as_ascii().to_owned()),
        event.selector.as_ref().map(|s| s.as_str().to_owned()),
        event.email.clone(),
    )
}

pub(crate) use sqlite_sync::record_events as sqlite_record_events;

/// Inserts `$events` as [`record_events!`] does and keeps `$claim`'s answer
/// `$response`, taking its key (a key taken with the change): on PostgreSQL in the
/// events' own statement, so a keyed registration costs no round trip more than an
/// unkeyed one inside its batch. Evaluates to `Result<(), DbError>`:
/// [`DbError::Superseded`] when another request kept the key first (the caller's
/// transaction or savepoint then rolls the events back with the rest).
macro_rules! record_events_keeping {
    ($conn:ident, $events:expr, $at:expr, $claim:expr, $response:expr) => {{
        let events: Vec<&domain_core::lifecycle::NewEvent> = $events.into_iter().collect();
        let keeping = $crate::events::Keeping {
            guarded: &$claim.guarded,
            response: $response,
        };
        match $crate::events::RecordEvents::record_events_keeping(
            &mut *$conn,
            &events,
            $at,
            keeping,
        )
        .await
        {
            Ok(None) => Ok(()),
            Ok(Some(held)) => Err($crate::backend::DbError::Superseded(held)),
            Err(error) => Err(error),
        }
    }};
}
pub(crate) use record_events_keeping;

/// A keyed request's answer to keep with the events, taking its key.
pub(crate) struct Keeping<'a> {
    pub(crate) guarded: &'a Guarded,
    pub(crate) response: &'a StoredResponse,
}

/// SQLite's statements run synchronously on the connection's thread.
pub(crate) mod sqlite_sync {
    use chrono::{DateTime, Utc};
    use diesel::dsl::sql;
    use diesel::prelude::*;
    use diesel::sql_types::{Nullable, Text};
    use diesel::sqlite::{Sqlite, SqliteConnection};

    use crate::schema::sqlite::*;

    #[derive(QueryableByName)]
    struct EventId {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }

    /// An event's organization, type, domain, selector and email.
    pub(crate) type Owned = (
        String,
        &'static str,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    /// The events in order (one multi-row insert: ids increase in the order
    /// given), then their deliveries.
    pub(crate) fn record_events(
        c: &mut SqliteConnection,
        owned: &[Owned],
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        if owned.is_empty() {
            return Ok(());
        }
        let mut text = crate::backend::multi_row_values(
            "INSERT INTO events (organization_id, type, domain, selector, email, created_at) VALUES ",
            "(?, ?, ?, ?, ?, ?)",
            owned.len(),
        );
        text.push_str(" RETURNING id");
        let mut query = diesel::sql_query(text).into_boxed::<Sqlite>();
        for (organization, kind, domain, selector, email) in owned {
            query = query
                .bind::<Text, _>(organization)
                .bind::<Text, _>(*kind)
                .bind::<Nullable<Text>, _>(domain)
                .bind::<Nullable<Text>, _>(selector)
                .bind::<Nullable<Text>, _>(email)
                .bind::<Moment, _>(at);
        }
        let ids: Vec<i64> = query
            .load::<EventId>(c)?
            .into_iter()
            .map(|e| e.id)
            .collect();
        // As in the PostgreSQL statement: `,a,b,` matched with LIKE.
        let takes_type = webhook_endpoints::events
            .is_null()
            .or(webhook_endpoints::events
                .like(sql::<Nullable<Text>>("'%,' || events.type || ',%'")));
        diesel::insert_into(webhook_deliveries::table)
            .values(
                events::table
                    .inner_join(
                        webhook_endpoints::table
                            .on(webhook_endpoints::organization_id.eq(events::organization_id)),
                    )
                    .filter(events::id.eq_any(&ids))
                    .filter(takes_type)
                    // Deliveries numbered in their events' order, so the
                    // deliveries list reads like the events list.
                    .order((events::id.asc(), webhook_endpoints::id.asc()))
                    .select((
                        webhook_endpoints::id,
                        webhook_endpoints::organization_id,
                        events::id,
                        "pending".into_sql::<Text>(),
                        at.into_sql::<Nullable<Moment>>(),
                        at.into_sql::<Moment>(),
                    )),
            )
            .into_columns((
                webhook_deliveries::endpoint_id,
                webhook_deliveries::organization_id,
                webhook_deliveries::event_id,
                webhook_deliveries::state,
                webhook_deliveries::next_attempt_at,
                webhook_deliveries::created_at,
            ))
            .execute(c)?;
        Ok(())
    }
}

/// An event as stored: id, type, domain, selector, email, time.
pub(crate) type EventRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

pub(crate) fn into_event(row: EventRow) -> Result<Event, DbError> {
    let (id, kind, domain, selector, email, created_at) = row;
    Ok(Event {
        id,
        kind: EventType::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("event {id} has type {kind:?}")))?,
        domain,
        selector,
        email,
        created_at,
    })
}

#[async_trait]
impl EventStore for Store {
    async fn list_events(
        &self,
        organization: &OrganizationId,
        page: &Page<i64>,
    ) -> Result<Paged<Event, i64>, InfraError> {
        // One more than the page: it only says whether a next page exists.
        let fetch = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = page.after.unwrap_or(0);
        let rows: Vec<EventRow> = with_conn!(&self.backend, |c| {
            events::table
                .filter(events::organization_id.eq(organization.as_str()))
                .filter(events::id.gt(after))
                .order(events::id.asc())
                .select((
                    events::id,
                    events::kind,
                    events::domain,
                    events::selector,
                    events::email,
                    events::created_at,
                ))
                .limit(fetch)
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        let events = rows
            .into_iter()
            .map(into_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged::from_fetched(events, page.limit, |e| e.id))
    }
}

#[async_trait]
impl OldEvents for Store {
    async fn prune_events(&self, before: DateTime<Utc>, batch: usize) -> Result<usize, InfraError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let pruned = in_transaction!(&self.backend, |c| {
            // The oldest events by id (the primary key: events are recorded in time
            // order), of which those recorded before `before`: a round costs one
            // batch whatever the table holds. Their deliveries and attempts go with
            // them (ON DELETE CASCADE).
            let oldest: Vec<(i64, DateTime<Utc>)> = events::table
                .order(events::id.asc())
                .select((events::id, events::created_at))
                .limit(batch)
                .load(c)
                .await?;
            let ids: Vec<i64> = oldest
                .into_iter()
                .filter(|(_, at)| *at < before)
                .map(|(id, _)| id)
                .collect();
            if ids.is_empty() {
                return Ok(0);
            }
            Ok(
                diesel::delete(events::table.filter(events::id.eq_any(&ids)))
                    .execute(c)
                    .await?,
            )
        })?;
        Ok(pruned)
    }
}
