//! The one row lock the two backends must take differently. PostgreSQL needs
//! `SELECT … FOR UPDATE` (a no-op `UPDATE` only takes `FOR NO KEY UPDATE`, which does
//! not hold back the foreign-key checks of a concurrent sender insert); SQLite has no
//! row locks, and its `BEGIN IMMEDIATE` transaction already holds the only write lock.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::backend::{DbError, SqliteConn};

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
