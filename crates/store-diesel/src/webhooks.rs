//! Webhooks: endpoints (WebhookStore port) and the delivery queue (DeliveryQueue
//! port). Deliveries are written with their events ([`crate::events`]); a sender
//! leases due ones (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's single writer),
//! records each attempt, and moves the delivery on — all in the database, so a crash
//! loses nothing: an unrecorded attempt's lease runs out and it is attempted again.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain_core::OrganizationId;
use domain_core::lifecycle::{EventType, Page, Paged};
use domain_core::ports::InfraError;
use domain_core::ports::webhooks::{
    Attempt, CreateEndpointError, DeliveryQueue, DeliveryState, DeliveryView, DueDelivery,
    Endpoint, Health, NewEndpoint, NextStep, OutboxStats, Reach, RecordedAttempt, WebhookStore,
};
use domain_core::webhooks::{EventFilter, WebhookId};

use crate::Store;
use crate::backend::{DbError, SqliteConn, in_transaction, with_conn};
use crate::events::{EventRow, into_event};
use crate::locks::lock_organization;

/// An endpoint's types as stored: `,a,b,` (matched with LIKE by the fan-out).
fn events_column(filter: &EventFilter) -> Option<String> {
    filter.as_ref().map(|kinds| {
        let mut column = String::from(",");
        for kind in kinds {
            column.push_str(kind.as_str());
            column.push(',');
        }
        column
    })
}

fn parse_events_column(column: Option<String>) -> Result<EventFilter, DbError> {
    column
        .map(|column| {
            column
                .split(',')
                .filter(|name| !name.is_empty())
                .map(|name| {
                    EventType::parse(name)
                        .ok_or_else(|| DbError::Corrupt(format!("webhook event type {name:?}")))
                })
                .collect()
        })
        .transpose()
}

fn parse_id(id: &str) -> Result<WebhookId, DbError> {
    WebhookId::parse(id).ok_or_else(|| DbError::Corrupt(format!("webhook id {id:?}")))
}

/// An endpoint as stored: id, url, events, created, consecutive failures.
type EndpointRow = (String, String, Option<String>, DateTime<Utc>, i32);

fn into_endpoint(
    (id, url, events, created_at, failures): EndpointRow,
) -> Result<Endpoint, DbError> {
    Ok(Endpoint {
        id: parse_id(&id)?,
        url,
        events: parse_events_column(events)?,
        created_at,
        health: Health::of(count(failures)),
    })
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[async_trait]
impl WebhookStore for Store {
    async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        limit: usize,
    ) -> Result<(), CreateEndpointError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let organization = new.organization.as_str();
        let stored: bool = in_transaction!(&self.backend, |c| {
            // Concurrent creations take turns on the organization's row, so the count
            // below holds until this one commits.
            lock_organization!(c, organization)?;
            let existing: i64 = webhook_endpoints::table
                .filter(webhook_endpoints::organization_id.eq(organization))
                .count()
                .get_result(c)
                .await?;
            if existing >= limit {
                return Ok(false);
            }
            diesel::insert_into(webhook_endpoints::table)
                .values((
                    webhook_endpoints::id.eq(new.endpoint.id.as_str()),
                    webhook_endpoints::organization_id.eq(organization),
                    webhook_endpoints::url.eq(&new.endpoint.url),
                    webhook_endpoints::events.eq(events_column(&new.endpoint.events)),
                    webhook_endpoints::secret_sealed.eq(&new.secret_sealed),
                    webhook_endpoints::created_at.eq(new.endpoint.created_at),
                ))
                .execute(c)
                .await?;
            Ok(true)
        })
        .map_err(InfraError::from)?;
        if stored {
            Ok(())
        } else {
            Err(CreateEndpointError::LimitReached)
        }
    }

    async fn list_endpoints(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<Endpoint>, InfraError> {
        let rows: Vec<EndpointRow> = with_conn!(&self.backend, |c| {
            webhook_endpoints::table
                .filter(webhook_endpoints::organization_id.eq(organization.as_str()))
                .order((
                    webhook_endpoints::created_at.asc(),
                    webhook_endpoints::id.asc(),
                ))
                .select((
                    webhook_endpoints::id,
                    webhook_endpoints::url,
                    webhook_endpoints::events,
                    webhook_endpoints::created_at,
                    webhook_endpoints::consecutive_failures,
                ))
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(rows
            .into_iter()
            .map(into_endpoint)
            .collect::<Result<_, _>>()?)
    }

    async fn delete_endpoint(
        &self,
        organization: &OrganizationId,
        id: &WebhookId,
    ) -> Result<bool, InfraError> {
        let deleted = with_conn!(&self.backend, |c| {
            diesel::delete(
                webhook_endpoints::table
                    .filter(webhook_endpoints::id.eq(id.as_str()))
                    .filter(webhook_endpoints::organization_id.eq(organization.as_str())),
            )
            .execute(c)
            .await
            .map_err(DbError::from)
        })?;
        Ok(deleted > 0)
    }

    async fn list_deliveries(
        &self,
        organization: &OrganizationId,
        id: &WebhookId,
        page: &Page<i64>,
    ) -> Result<Option<Paged<DeliveryView, i64>>, InfraError> {
        let fetch = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = page.after.unwrap_or(0);
        type DeliveryRow = (i64, String, Option<DateTime<Utc>>, DateTime<Utc>, EventRow);
        type AttemptRow = (i64, DateTime<Utc>, Option<i32>, Option<String>, i32);
        let found: Option<(Vec<DeliveryRow>, Vec<AttemptRow>)> = with_conn!(&self.backend, |c| {
            let owned: i64 = webhook_endpoints::table
                .filter(webhook_endpoints::id.eq(id.as_str()))
                .filter(webhook_endpoints::organization_id.eq(organization.as_str()))
                .count()
                .get_result(c)
                .await?;
            if owned == 0 {
                return Ok(None);
            }
            let deliveries: Vec<DeliveryRow> = webhook_deliveries::table
                .inner_join(events::table)
                .filter(webhook_deliveries::endpoint_id.eq(id.as_str()))
                .filter(webhook_deliveries::id.gt(after))
                .order(webhook_deliveries::id.asc())
                .limit(fetch)
                .select((
                    webhook_deliveries::id,
                    webhook_deliveries::state,
                    webhook_deliveries::next_attempt_at,
                    webhook_deliveries::created_at,
                    (
                        events::id,
                        events::kind,
                        events::domain,
                        events::selector,
                        events::email,
                        events::created_at,
                    ),
                ))
                .load(c)
                .await?;
            let ids: Vec<i64> = deliveries.iter().map(|row| row.0).collect();
            let attempts: Vec<AttemptRow> = webhook_attempts::table
                .filter(webhook_attempts::delivery_id.eq_any(&ids))
                .order(webhook_attempts::id.asc())
                .select((
                    webhook_attempts::delivery_id,
                    webhook_attempts::attempted_at,
                    webhook_attempts::status_code,
                    webhook_attempts::error,
                    webhook_attempts::duration_ms,
                ))
                .load(c)
                .await?;
            Ok(Some((deliveries, attempts)))
        })?;
        let Some((deliveries, attempts)) = found else {
            return Ok(None);
        };
        let views = deliveries
            .into_iter()
            .map(|(delivery, state, next_attempt_at, created_at, event)| {
                Ok(DeliveryView {
                    id: delivery,
                    event: into_event(event)?,
                    state: DeliveryState::parse(&state).ok_or_else(|| {
                        DbError::Corrupt(format!("delivery {delivery} has state {state:?}"))
                    })?,
                    next_attempt_at,
                    created_at,
                    attempts: attempts
                        .iter()
                        .filter(|attempt| attempt.0 == delivery)
                        .map(|(_, at, status_code, error, duration_ms)| Attempt {
                            at: *at,
                            status_code: status_code.and_then(|code| u16::try_from(code).ok()),
                            error: error.clone(),
                            duration: Duration::from_millis(u64::from(count(*duration_ms))),
                        })
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(Some(Paged::from_fetched(views, page.limit, |d| d.id)))
    }
}

/// The consecutive transport failures (timeouts, refused or reset connections: no HTTP
/// answer) after which an endpoint is `degraded`: one attempt in flight at a time,
/// across every instance, until one gets an answer (any status resets the count).
pub const DEGRADED_AFTER: i32 = domain_core::ports::webhooks::DEGRADED_AFTER as i32;

/// How the fair pick reaches into one endpoint's pending deliveries for its oldest
/// `LIMIT` due ones nobody holds: PostgreSQL joins `LATERAL`; SQLite has no `LATERAL`
/// and looks the ids up with a correlated `IN`. Either way it is a range of the index
/// on `(endpoint_id, next_attempt_at, id)`, so a pick costs the endpoints times what
/// it takes, never an endpoint's whole backlog.
#[derive(Clone, Copy)]
enum Probe {
    Lateral,
    CorrelatedIn,
}

/// The fair pick, as SQL: every endpoint (not of the organizations skipped) offers its
/// oldest due deliveries nobody holds — at most `per_org`, and a degraded endpoint
/// only its oldest and only while none of its deliveries is leased — and the offers
/// are ranked within their organization (oldest due first) and taken rank by rank —
/// every organization's oldest, then every one's second, … — at most `per_org` of one
/// organization, `limit` in all. One organization's backlog therefore never fills a
/// batch ahead of another's first, and it is never read past its oldest few: the
/// rows ranked are the offers, not the due set. `p` numbers the parameters: now,
/// degraded threshold, skipped organizations…, per organization, limit.
fn fair_pick_sql(probe: Probe, skip: usize, p: impl Fn(usize) -> String) -> String {
    let mut not_skipped = String::new();
    if skip > 0 {
        let list: Vec<String> = (0..skip).map(|i| p(3 + i)).collect();
        not_skipped = format!(" AND e.organization_id NOT IN ({})", list.join(", "));
    }
    let (now, threshold, per_org, limit) = (p(1), p(2), p(3 + skip), p(4 + skip));
    let oldest = |take: &str| {
        let due = format!(
            "SELECT x.id{columns} FROM webhook_deliveries x \
             WHERE x.endpoint_id = e.id AND x.state = 'pending' AND x.next_attempt_at <= {now} \
               AND (x.lease_until IS NULL OR x.lease_until < {now}) \
             ORDER BY x.next_attempt_at, x.id LIMIT {take}",
            columns = match probe {
                Probe::Lateral => ", x.next_attempt_at",
                Probe::CorrelatedIn => "",
            },
        );
        match probe {
            Probe::Lateral => format!(
                "SELECT d.id, e.organization_id, d.next_attempt_at \
                 FROM webhook_endpoints e CROSS JOIN LATERAL ({due}) d"
            ),
            Probe::CorrelatedIn => format!(
                "SELECT d.id, e.organization_id, d.next_attempt_at \
                 FROM webhook_endpoints e JOIN webhook_deliveries d ON d.id IN ({due})"
            ),
        }
    };
    let (healthy, degraded) = (oldest(&per_org), oldest("1"));
    format!(
        "WITH offers AS (\
           {healthy} WHERE e.consecutive_failures < {threshold}{not_skipped} \
           UNION ALL \
           {degraded} WHERE e.consecutive_failures >= {threshold}{not_skipped} \
             AND NOT EXISTS (\
               SELECT 1 FROM webhook_deliveries held WHERE held.endpoint_id = e.id \
               AND held.state = 'pending' AND held.lease_until IS NOT NULL \
               AND held.lease_until >= {now})), \
         ranked AS (\
           SELECT id, next_attempt_at, \
                  ROW_NUMBER() OVER (PARTITION BY organization_id ORDER BY next_attempt_at, id) AS org_rank \
           FROM offers) \
         SELECT id FROM ranked WHERE org_rank <= {per_org} \
         ORDER BY org_rank, next_attempt_at, id LIMIT {limit}"
    )
}

#[derive(QueryableByName)]
struct PickedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Picks the ids of due deliveries nobody holds, fairly ([`fair_pick_sql`]), locking
/// them against other pickers.
trait DeliveryPick {
    /// Up to `limit` due delivery ids, at most `per_org` of one organization;
    /// PostgreSQL locks them `FOR UPDATE SKIP LOCKED` (concurrent pickers on any
    /// instance take disjoint sets without waiting); SQLite's IMMEDIATE transaction
    /// already holds the only write lock.
    async fn pick_deliveries(
        &mut self,
        now: DateTime<Utc>,
        skip: &[String],
        per_org: i64,
        limit: i64,
        lock: bool,
    ) -> Result<Vec<i64>, DbError>;
}

impl DeliveryPick for AsyncPgConnection {
    async fn pick_deliveries(
        &mut self,
        now: DateTime<Utc>,
        skip: &[String],
        per_org: i64,
        limit: i64,
        lock: bool,
    ) -> Result<Vec<i64>, DbError> {
        use diesel::pg::Pg;
        use diesel::sql_types::{BigInt, Integer, Text, Timestamptz};
        // Window functions cannot be locked directly: the fair pick chooses, the
        // outer statement locks what nobody else has locked meanwhile. The outer
        // statement states the lease condition again: a row another picker leased
        // and committed after this statement's snapshot is not skipped (its lock is
        // gone), but PostgreSQL re-checks the outer conditions on its new version,
        // which is leased — without them the `IN` alone would still match, and two
        // pickers would send one delivery.
        let pick = fair_pick_sql(Probe::Lateral, skip.len(), |n| format!("${n}"));
        let sql = if lock {
            format!(
                "SELECT id FROM webhook_deliveries WHERE id IN ({pick}) \
                 AND state = 'pending' AND (lease_until IS NULL OR lease_until < $1) \
                 FOR UPDATE SKIP LOCKED"
            )
        } else {
            pick
        };
        let mut query = diesel::sql_query(sql)
            .into_boxed::<Pg>()
            .bind::<Timestamptz, _>(now)
            .bind::<Integer, _>(DEGRADED_AFTER);
        for org in skip {
            query = query.bind::<Text, _>(org.as_str());
        }
        let picked: Vec<PickedId> = query
            .bind::<BigInt, _>(per_org)
            .bind::<BigInt, _>(limit)
            .load(self)
            .await?;
        Ok(picked.into_iter().map(|row| row.id).collect())
    }
}

impl DeliveryPick for SqliteConn {
    async fn pick_deliveries(
        &mut self,
        now: DateTime<Utc>,
        skip: &[String],
        per_org: i64,
        limit: i64,
        lock: bool,
    ) -> Result<Vec<i64>, DbError> {
        use diesel::sql_types::{BigInt, Integer, Text, TimestamptzSqlite};
        use diesel::sqlite::Sqlite;
        // The IMMEDIATE transaction (when `lock`) holds the only write lock already.
        let _ = lock;
        let sql = fair_pick_sql(Probe::CorrelatedIn, skip.len(), |n| format!("?{n}"));
        let mut query = diesel::sql_query(sql)
            .into_boxed::<Sqlite>()
            .bind::<TimestamptzSqlite, _>(now)
            .bind::<Integer, _>(DEGRADED_AFTER);
        for org in skip {
            query = query.bind::<Text, _>(org.as_str());
        }
        let picked: Vec<PickedId> = query
            .bind::<BigInt, _>(per_org)
            .bind::<BigInt, _>(limit)
            .load(self)
            .await?;
        Ok(picked.into_iter().map(|row| row.id).collect())
    }
}

/// A leased delivery with its endpoint (and its consecutive failures) and event.
type DueRow = (i64, i32, String, String, String, Vec<u8>, i32, EventRow);

#[async_trait]
impl DeliveryQueue for Store {
    async fn lease_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        per_organization: usize,
        skip: &[OrganizationId],
    ) -> Result<Vec<DueDelivery>, InfraError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let per_org = i64::try_from(per_organization).unwrap_or(i64::MAX);
        let skip: Vec<String> = skip.iter().map(|o| o.as_str().to_owned()).collect();
        // Most polls find nothing to take: the pick as a plain read first, so such a
        // sender takes no lock (on SQLite, the one write lock) to learn that.
        let offered: Vec<i64> = with_conn!(&self.backend, |c| {
            c.pick_deliveries(now, &skip, per_org, 1, false).await
        })?;
        if offered.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<DueRow> = in_transaction!(&self.backend, |c| {
            let ids = c.pick_deliveries(now, &skip, per_org, limit, true).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .set(webhook_deliveries::lease_until.eq(Some(lease_until)))
                .execute(c)
                .await?;
            Ok(webhook_deliveries::table
                .inner_join(webhook_endpoints::table)
                .inner_join(events::table)
                .filter(webhook_deliveries::id.eq_any(&ids))
                .order((
                    webhook_deliveries::next_attempt_at.asc(),
                    webhook_deliveries::id.asc(),
                ))
                .select((
                    webhook_deliveries::id,
                    webhook_deliveries::attempts,
                    webhook_endpoints::organization_id,
                    webhook_endpoints::id,
                    webhook_endpoints::url,
                    webhook_endpoints::secret_sealed,
                    webhook_endpoints::consecutive_failures,
                    (
                        events::id,
                        events::kind,
                        events::domain,
                        events::selector,
                        events::email,
                        events::created_at,
                    ),
                ))
                .load(c)
                .await?)
        })?;
        rows.into_iter()
            .map(
                |(id, attempts, organization, endpoint, url, secret_sealed, failures, event)| {
                    Ok(DueDelivery {
                        id,
                        organization: OrganizationId::new(organization),
                        endpoint: parse_id(&endpoint)?,
                        url,
                        secret_sealed,
                        event: into_event(event)?,
                        attempts: count(attempts),
                        failures: count(failures),
                    })
                },
            )
            .collect::<Result<_, DbError>>()
            .map_err(InfraError::from)
    }

    async fn record_attempt(
        &self,
        id: i64,
        attempt: &Attempt,
        next: NextStep,
    ) -> Result<(), InfraError> {
        // Alone: the endpoint's health is left as it is.
        let endpoint: Option<String> = with_conn!(&self.backend, |c| {
            Ok(webhook_deliveries::table
                .find(id)
                .select(webhook_deliveries::endpoint_id)
                .first(c)
                .await
                .optional()?)
        })?;
        let Some(endpoint) = endpoint else {
            return Ok(());
        };
        self.record_attempts(&[RecordedAttempt {
            delivery: id,
            endpoint: parse_id(&endpoint)?,
            attempt: attempt.clone(),
            next,
            reach: Reach::NotTried,
        }])
        .await
    }

    async fn record_attempts(&self, batch: &[RecordedAttempt]) -> Result<(), InfraError> {
        if batch.is_empty() {
            return Ok(());
        }
        in_transaction!(&self.backend, |c| {
            for recorded in batch {
                let attempt = &recorded.attempt;
                let (state, next_attempt_at, completed_at) = match recorded.next {
                    NextStep::Delivered => (DeliveryState::Delivered, None, Some(attempt.at)),
                    NextStep::RetryAt(at) => (DeliveryState::Pending, Some(at), None),
                    NextStep::Failed => (DeliveryState::Failed, None, Some(attempt.at)),
                };
                let duration_ms = i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX);
                // Only a pending delivery moves on: one whose endpoint was deleted
                // meanwhile is gone, and one another sender finished (after this
                // attempt outlived its lease) stays finished. Either way the attempt
                // is dropped.
                let moved = diesel::update(
                    webhook_deliveries::table
                        .find(recorded.delivery)
                        .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str())),
                )
                .set((
                    webhook_deliveries::state.eq(state.as_str()),
                    webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                    webhook_deliveries::next_attempt_at.eq(next_attempt_at),
                    webhook_deliveries::lease_until.eq(None::<DateTime<Utc>>),
                    webhook_deliveries::completed_at.eq(completed_at),
                ))
                .execute(c)
                .await?;
                if moved > 0 {
                    diesel::insert_into(webhook_attempts::table)
                        .values((
                            webhook_attempts::delivery_id.eq(recorded.delivery),
                            webhook_attempts::attempted_at.eq(attempt.at),
                            webhook_attempts::status_code.eq(attempt.status_code.map(i32::from)),
                            webhook_attempts::error.eq(attempt.error.as_deref()),
                            webhook_attempts::duration_ms.eq(duration_ms),
                        ))
                        .execute(c)
                        .await?;
                }
                let endpoint = webhook_endpoints::table.find(recorded.endpoint.as_str());
                match recorded.reach {
                    Reach::Answered => {
                        diesel::update(
                            endpoint.filter(webhook_endpoints::consecutive_failures.ne(0)),
                        )
                        .set(webhook_endpoints::consecutive_failures.eq(0))
                        .execute(c)
                        .await?;
                    }
                    Reach::Unreachable => {
                        diesel::update(endpoint)
                            .set(
                                webhook_endpoints::consecutive_failures
                                    .eq(webhook_endpoints::consecutive_failures + 1),
                            )
                            .execute(c)
                            .await?;
                    }
                    Reach::NotTried => {}
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, InfraError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let deleted = with_conn!(&self.backend, |c| {
            // One batch by id: neither backend deletes with LIMIT.
            let ids: Vec<i64> = webhook_deliveries::table
                .filter(webhook_deliveries::state.ne("pending"))
                .filter(webhook_deliveries::completed_at.lt(before))
                .select(webhook_deliveries::id)
                .limit(batch)
                .load(c)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            Ok(diesel::delete(
                webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)),
            )
            .execute(c)
            .await?)
        })?;
        Ok(deleted)
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, InfraError> {
        let (pending, oldest): (i64, Option<DateTime<Utc>>) = with_conn!(&self.backend, |c| {
            let pending = webhook_deliveries::table
                .filter(webhook_deliveries::state.eq("pending"))
                .count()
                .get_result(c)
                .await?;
            let oldest = webhook_deliveries::table
                .filter(webhook_deliveries::state.eq("pending"))
                .order(webhook_deliveries::created_at.asc())
                .select(webhook_deliveries::created_at)
                .first(c)
                .await
                .optional()?;
            Ok((pending, oldest))
        })?;
        Ok(OutboxStats {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest,
        })
    }
}
