//! The live-check budget's log: one row per live DNS check admitted, so that
//! `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` holds each organization to its budget across
//! every instance. An admission counts and records in one transaction, turn by turn
//! per organization, and prunes the organization's rows older than the window: an
//! organization keeps at most its budget of rows.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain_core::OrganizationId;
use domain_core::ports::InfraError;
use domain_core::ports::lifecycle::LiveCheckLog;

use crate::Store;
use crate::backend::{Backend, DbError, SqliteConn, in_transaction};

/// Makes the admissions of one organization take turns until the transaction ends.
trait LiveCheckTurn {
    async fn live_check_turn(&mut self, organization: &str) -> Result<(), DbError>;
}

impl LiveCheckTurn for AsyncPgConnection {
    /// A transaction-scoped advisory lock keyed by the organization: visible to every
    /// instance, and it needs no organization row (a dashboard JWT's organization may
    /// have none), nor does it hold up the organization's other writes.
    async fn live_check_turn(&mut self, organization: &str) -> Result<(), DbError> {
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock(hashtextextended('live_checks:' || $1, 0))",
        )
        .bind::<diesel::sql_types::Text, _>(organization)
        .execute(self)
        .await?;
        Ok(())
    }
}

impl LiveCheckTurn for SqliteConn {
    /// SQLite's IMMEDIATE transaction already holds the only write lock.
    async fn live_check_turn(&mut self, _organization: &str) -> Result<(), DbError> {
        Ok(())
    }
}

/// Counts and records one check of `org` at `now` (see [`LiveCheckLog`]).
async fn take(
    backend: &Backend,
    org: &str,
    now: DateTime<Utc>,
    window: Duration,
    limit: u32,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let since = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    in_transaction!(backend, |c| {
        c.live_check_turn(org).await?;
        diesel::delete(
            live_checks::table
                .filter(live_checks::organization_id.eq(org))
                .filter(live_checks::checked_at.le(since)),
        )
        .execute(c)
        .await?;
        let recent: Vec<DateTime<Utc>> = live_checks::table
            .filter(live_checks::organization_id.eq(org))
            .order(live_checks::checked_at.asc())
            .select(live_checks::checked_at)
            .limit(i64::from(limit))
            .load(c)
            .await?;
        if recent.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            // The oldest: a check frees when it leaves the window.
            return Ok::<_, DbError>(recent.into_iter().next());
        }
        diesel::insert_into(live_checks::table)
            .values((
                live_checks::organization_id.eq(org),
                live_checks::checked_at.eq(now),
            ))
            .execute(c)
            .await?;
        Ok(None)
    })
}

#[async_trait]
impl LiveCheckLog for Store {
    async fn take_live_check(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
        window: Duration,
        limit: u32,
    ) -> Result<Option<DateTime<Utc>>, InfraError> {
        let (backend, org) = (self.backend.clone(), organization.as_str().to_owned());
        // On a task of its own, so never inside a keyed request's unit of work: the
        // check is admitted before its DNS work, and joining the request's
        // transaction would open it (SQLite: take the one write lock; PostgreSQL:
        // hold the organization's turn) across that DNS work.
        let taken = tokio::spawn(async move { take(&backend, &org, now, window, limit).await })
            .await
            .map_err(InfraError::unexpected)??;
        Ok(taken)
    }
}
