//! Row locks. Every unit of work that changes several of an organization's senders
//! (registration, activation, domain deletion) locks the organization's row first:
//! they then take turns, where otherwise a registration holding a sender row and
//! waiting for the domain row could meet a deletion holding the domain row and
//! waiting for that sender (PostgreSQL aborts one of them as a deadlock). Deleting
//! one sender locks only that row and needs no more.
//!
//! The organization lock is a no-op `UPDATE` of its name, which both backends
//! understand. The
//! domain lock for deletion is the one the two backends take differently:
//! PostgreSQL needs `SELECT … FOR UPDATE` (a no-op `UPDATE` only takes `FOR NO KEY
//! UPDATE`, which does not hold back the foreign-key checks of a concurrent sender
//! insert); SQLite has no row locks, and its `BEGIN IMMEDIATE` transaction already
//! holds the only write lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::backend::{DbError, SqliteConn};

/// Locks the organization's row (`$org`, its id) on `$conn` for the rest of the
/// transaction; evaluates to the rows found (0 or 1) as a `QueryResult`. Expands
/// inside a `with_conn!`/`in_transaction!` body. The organization's changes to its
/// senders (register, activate, delete a domain) take turns on it, in PostgreSQL a
/// row lock visible to every instance; SQLite's IMMEDIATE transaction already
/// serializes writers.
macro_rules! lock_organization {
    ($conn:ident, $org:expr) => {
        // `name`, not `id`: updating a key column, even to itself, makes SQLite
        // check every row referencing it (every sender, domain and event of the
        // organization); no foreign key references `name`.
        diesel::update(organizations::table.find($org))
            .set(organizations::name.eq(organizations::name))
            .execute(&mut *$conn)
            .await
    };
}

pub(crate) use lock_organization;

/// Locks a domain row for the rest of the transaction.
pub(crate) trait DomainLock {
    /// The id of `organization`'s domain `name`, locked against every concurrent
    /// writer (including inserts that reference it) until the transaction ends;
    /// `None` when the organization has no such domain.
    async fn lock_domain(&mut self, organization: &str, name: &str)
    -> Result<Option<i64>, DbError>;
}

impl DomainLock for AsyncPgConnection {
    async fn lock_domain(
        &mut self,
        organization: &str,
        name: &str,
    ) -> Result<Option<i64>, DbError> {
        use crate::schema::pg::domains;
        Ok(domains::table
            .filter(domains::name.eq(name))
            .filter(domains::organization_id.eq(organization))
            .select(domains::id)
            .for_update()
            .first(self)
            .await
            .optional()?)
    }
}

impl DomainLock for SqliteConn {
    async fn lock_domain(
        &mut self,
        organization: &str,
        name: &str,
    ) -> Result<Option<i64>, DbError> {
        use crate::schema::sqlite::domains;
        Ok(domains::table
            .filter(domains::name.eq(name))
            .filter(domains::organization_id.eq(organization))
            .select(domains::id)
            .first(self)
            .await
            .optional()?)
    }
}

/// Makes the creations of domains under one registrable domain take turns, across
/// instances, until the transaction ends.
pub(crate) trait RegistrableLock {
    /// Waits for and takes the lock on `registrable` (a domain name).
    async fn lock_registrable(&mut self, registrable: &str) -> Result<(), DbError>;
}

impl RegistrableLock for AsyncPgConnection {
    async fn lock_registrable(&mut self, registrable: &str) -> Result<(), DbError> {
        crate::backend::lock_registrables(self, &[registrable]).await
    }
}

impl RegistrableLock for SqliteConn {
    async fn lock_registrable(&mut self, _registrable: &str) -> Result<(), DbError> {
        // The IMMEDIATE transaction already holds the database's only write lock.
        Ok(())
    }
}

/// The ids of domains due at `$now` whose lease (if any) ran out, earliest first, in
/// the backend schema `$schema`.
macro_rules! due_ids {
    ($schema:path, $now:expr) => {{
        use $schema as schema;
        let now: DateTime<Utc> = $now;
        schema::domains::table
            .filter(schema::domains::next_check_at.le(now))
            .filter(
                schema::domains::check_lease_until
                    .is_null()
                    .or(schema::domains::check_lease_until.lt(now)),
            )
            .order(schema::domains::next_check_at.asc())
            .select(schema::domains::id)
    }};
}

/// Picks the ids of due domains nobody holds, locking them against other pickers.
pub(crate) trait DuePick {
    /// Up to `limit` ids of domains due at `now` whose lease (if any) ran out, earliest
    /// first. PostgreSQL locks them `FOR UPDATE SKIP LOCKED`, so concurrent pickers on
    /// any instance take disjoint sets without waiting; SQLite's IMMEDIATE
    /// transaction already holds the only write lock.
    async fn pick_due(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>, DbError>;

    /// The same ids read without any lock: whether anything is due at all.
    async fn pick_due_unlocked(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, DbError>;
}

impl DuePick for AsyncPgConnection {
    async fn pick_due(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>, DbError> {
        Ok(due_ids!(crate::schema::pg, now)
            .limit(limit)
            .for_update()
            .skip_locked()
            .load(self)
            .await?)
    }

    async fn pick_due_unlocked(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, DbError> {
        Ok(due_ids!(crate::schema::pg, now)
            .limit(limit)
            .load(self)
            .await?)
    }
}

impl DuePick for SqliteConn {
    async fn pick_due(&mut self, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>, DbError> {
        Ok(due_ids!(crate::schema::sqlite, now)
            .limit(limit)
            .load(self)
            .await?)
    }

    async fn pick_due_unlocked(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, DbError> {
        self.pick_due(now, limit).await
    }
}
