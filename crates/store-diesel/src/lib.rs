//! DomainStore, Credentials and the lifecycle ports (KeyLifecycleStore, SenderStore,
//! EventStore) on diesel-async, for PostgreSQL (production, many instances) and
//! SQLite (the embedded default). One code path serves both: queries are written once
//! and expanded per connection type (`with_conn!`).
//!
//! Every invariant is held by the database — `UNIQUE` on domain names and sender
//! emails, partial unique indexes for one active sender per organization and for one
//! active and at most one pending DKIM key per domain — and the register-sender unit
//! of work retries, boundedly, when a concurrent one trips them. Every change records
//! its events in its own transaction.

mod ambient;
mod backend;
mod batch;
mod credentials;
mod domains;
mod events;
mod faults;
mod group_commit;
mod keys;
mod lifecycle;
mod live_checks;
mod locks;
mod ownership;
mod rows;
mod schema;
mod senders;
mod session;
mod shares;
mod token_cache;
mod turns;
mod webhooks;
mod write_gate;
mod writer;

use diesel::migration::{MigrationSource, MigrationVersion};
use diesel::prelude::*;
use diesel_async::AsyncMigrationHarness;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain_core::ports::store::StoreError;

use backend::{Backend, DbError, Pools, with_conn};
pub use backend::{BackendKind, ConnectError, StoreConfig};
pub use faults::DbErrorCounts;
pub use group_commit::GroupCommitStats;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The store: a pool of connections to one database.
pub struct Store {
    backend: Backend,
    url: String,
    /// The access-token tag key, read from the database at first use.
    token_key: std::sync::OnceLock<credentials::TokenKey>,
    /// Registrations that queue up share one transaction and one commit.
    group_commit: group_commit::GroupCommit,
    /// Token pairs looked up recently (`StoreConfig::token_cache_ttl`).
    tokens: token_cache::TokenCache,
}

/// Connection pool gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: usize,
    pub open: usize,
    pub in_use: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

/// A backup could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Only SQLite is copied this way.
    #[error("backup copies a SQLite database only; back PostgreSQL up with pg_dump")]
    NotSqlite,
    /// SQLite takes the target's name as text.
    #[error("the backup's path is not UTF-8")]
    NotUtf8,
    /// The target exists or cannot be created.
    #[error("cannot create the backup file")]
    File(#[source] std::io::Error),
    /// The copy failed.
    #[error("the copy failed")]
    Database(#[source] domain_core::ports::BoxError),
}

/// Applying migrations failed.
#[derive(Debug, thiserror::Error)]
#[error("failed to apply database migrations")]
pub struct MigrateError(#[source] domain_core::ports::BoxError);

impl Store {
    /// Builds the pool for `config.url`. No connection is opened until first use, so
    /// a database that is down at start-up is reported by [`Store::migrate`] or the
    /// first request, not here.
    ///
    /// # Errors
    /// [`ConnectError`] for an unusable URL or pool configuration.
    pub fn connect(config: &StoreConfig) -> Result<Self, ConnectError> {
        Ok(Self {
            backend: backend::build(config)?,
            url: config.url.clone(),
            token_key: std::sync::OnceLock::new(),
            group_commit: group_commit::GroupCommit::new(),
            tokens: token_cache::TokenCache::new(config.token_cache_ttl),
        })
    }

    #[must_use]
    pub fn kind(&self) -> BackendKind {
        match self.backend.pools {
            Pools::Postgres(_) => BackendKind::Postgres,
            Pools::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// Applies pending migrations (embedded in the binary) on a dedicated connection.
    /// Must run on a multi-threaded tokio runtime: diesel's harness blocks in place.
    ///
    /// # Errors
    /// [`MigrateError`] when the database cannot be reached or a migration fails.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        self.migrate_through(None).await
    }

    /// Applies pending migrations in order, up to and including `last` (a version such
    /// as `20261127000001`) when given.
    async fn migrate_through(&self, last: Option<&str>) -> Result<(), MigrateError> {
        match self.kind() {
            BackendKind::Postgres => {
                let conn = AsyncPgConnection::establish(&self.url)
                    .await
                    .map_err(|e| MigrateError(Box::new(e)))?;
                let mut harness = AsyncMigrationHarness::new(conn);
                run_migrations(&mut harness, POSTGRES_MIGRATIONS, last)?;
            }
            BackendKind::Sqlite => {
                let path =
                    backend::sqlite_path(&self.url).map_err(|e| MigrateError(Box::new(e)))?;
                let limits = session::SessionLimits {
                    statement_timeout: self.backend.statement_timeout,
                };
                let conn = session::establish_sqlite(path.to_owned(), limits)
                    .await
                    .map_err(|e| MigrateError(Box::new(e)))?;
                let mut harness = AsyncMigrationHarness::new(conn);
                run_migrations(&mut harness, SQLITE_MIGRATIONS, last)?;
            }
        }
        Ok(())
    }

    /// The embedded migrations not yet applied to this database, by name (e.g.
    /// `2026-11-26-000001_initial`), oldest first. Reads only: runs no DDL, so it
    /// works under a role that may only read and write rows.
    ///
    /// # Errors
    /// [`MigrateError`] when the database cannot be reached or read.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, MigrateError> {
        let (exists_sql, embedded) = match self.kind() {
            BackendKind::Postgres => (
                "SELECT COUNT(*) AS n FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() AND tablename = '__diesel_schema_migrations'",
                embedded_migrations::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS)?,
            ),
            BackendKind::Sqlite => (
                "SELECT COUNT(*) AS n FROM sqlite_master \
                 WHERE type = 'table' AND name = '__diesel_schema_migrations'",
                embedded_migrations::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS)?,
            ),
        };
        let applied: Vec<String> = with_conn!(&self.backend, |c| {
            let table: TableCount = diesel::sql_query(exists_sql)
                .get_result(c)
                .await
                .map_err(DbError::from)?;
            if table.n == 0 {
                return Ok(Vec::new());
            }
            let rows: Vec<AppliedVersion> =
                diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                    .load(c)
                    .await
                    .map_err(DbError::from)?;
            Ok(rows.into_iter().map(|row| row.version).collect())
        })
        .map_err(|e| MigrateError(Box::new(e)))?;
        Ok(embedded
            .into_iter()
            .filter(|(version, _)| !applied.contains(version))
            .map(|(_, name)| name)
            .collect())
    }

    /// Writes a consistent copy of the SQLite database to `path` while it serves
    /// (`VACUUM INTO`: one read transaction, so writers carry on in WAL mode and the
    /// copy is the database as of one moment, compacted). `path` must not exist; it
    /// is created with mode 0600 (the copy holds sealed keys and token digests).
    ///
    /// # Errors
    /// [`BackupError::NotSqlite`] on PostgreSQL, [`BackupError::File`] when `path`
    /// exists or cannot be created, [`BackupError::Database`] when the copy fails
    /// (the partial file is removed).
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), BackupError> {
        use std::os::unix::fs::OpenOptionsExt as _;

        if self.kind() != BackendKind::Sqlite {
            return Err(BackupError::NotSqlite);
        }
        let target = path.to_str().ok_or(BackupError::NotUtf8)?.to_owned();
        // An empty file of our own first: VACUUM INTO accepts one, and it keeps the
        // mode. create_new: never over an existing file.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(BackupError::File)?;
        let copied = with_conn!(&self.backend, |c| {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<diesel::sql_types::Text, _>(&target)
                .execute(c)
                .await
                .map_err(DbError::from)
        });
        if let Err(error) = copied {
            let _ = std::fs::remove_file(path);
            return Err(BackupError::Database(Box::new(error)));
        }
        Ok(())
    }

    /// Whether the database answers a trivial query now (for `/readyz`).
    ///
    /// # Errors
    /// [`StoreError`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_conn!(&self.backend, |c| {
            diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
                .get_result::<i32>(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(())
    }

    /// What group commit has done since start, for metrics.
    #[must_use]
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.group_commit.stats()
    }

    /// Database failures classified as the infrastructure's (each answered 503) since
    /// the process started, by kind, for metrics. The counts are process-wide: every
    /// `Store` in the process adds to the same ones (the binary has one store).
    #[must_use]
    pub fn db_error_counts(&self) -> DbErrorCounts {
        faults::counts()
    }

    /// The connection pool's state now, for metrics.
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        let status = match &self.backend.pools {
            Pools::Postgres(pool) => pool.status(),
            Pools::Sqlite(pool) => pool.status(),
        };
        PoolStatus {
            max: status.max_size,
            open: status.size,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        }
    }
}

/// `SELECT COUNT(*) AS n …`
#[derive(diesel::QueryableByName)]
struct TableCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A row of diesel's `__diesel_schema_migrations`.
#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// The migrations embedded in the binary for `DB`: (version, name), oldest first.
fn embedded_migrations<DB: diesel::backend::Backend>(
    source: &EmbeddedMigrations,
) -> Result<Vec<(String, String)>, MigrateError>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let mut list: Vec<(String, String)> = MigrationSource::<DB>::migrations(source)
        .map_err(MigrateError)?
        .iter()
        .map(|migration| {
            (
                migration.name().version().to_string(),
                migration.name().to_string(),
            )
        })
        .collect();
    list.sort();
    Ok(list)
}

/// Runs the pending migrations of `source` (sorted by version), stopping after `last`.
fn run_migrations<DB: diesel::backend::Backend>(
    harness: &mut impl MigrationHarness<DB>,
    source: impl MigrationSource<DB>,
    last: Option<&str>,
) -> Result<(), MigrateError> {
    let last = last.map(MigrationVersion::from);
    for migration in harness.pending_migrations(source).map_err(MigrateError)? {
        if last
            .as_ref()
            .is_some_and(|last| migration.name().version() > *last)
        {
            break;
        }
        harness
            .run_migration(migration.as_ref())
            .map_err(MigrateError)?;
    }
    Ok(())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("Store")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "test-support")]
pub mod test_support;
