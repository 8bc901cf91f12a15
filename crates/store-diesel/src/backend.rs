//! The two backends behind one pool enum, connection setup, and the translation of
//! driver errors into what the domain understands.

use std::time::Duration;

use diesel::SqliteConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use domain_core::ports::BoxError;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// One pool of whichever backend the URL named.
pub(crate) enum Backend {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// How to reach the database and how big a pool to keep.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `postgres://…` or `sqlite://PATH`.
    pub url: String,
    pub max_connections: usize,
    /// How long a request waits for a pooled connection before the store reports
    /// itself unavailable.
    pub wait_timeout: Duration,
    /// Bound on opening one new connection.
    pub connect_timeout: Duration,
}

impl StoreConfig {
    /// Defaults suited to a small instance.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

/// The database URL is not one we can use.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the database URL must start with postgres://, postgresql:// or sqlite://")]
    UnsupportedScheme,
    #[error("the SQLite path is empty")]
    EmptySqlitePath,
    #[error("cannot create the directory for the SQLite database")]
    CreateDirectory(#[source] std::io::Error),
    #[error("cannot build the connection pool")]
    Pool(#[source] BoxError),
}

impl BackendKind {
    /// # Errors
    /// [`ConnectError::UnsupportedScheme`] for any other scheme.
    pub fn of_url(url: &str) -> Result<Self, ConnectError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite://") {
            Ok(Self::Sqlite)
        } else {
            Err(ConnectError::UnsupportedScheme)
        }
    }
}

/// Pragmas for every SQLite connection. `busy_timeout` must come before
/// `journal_mode=WAL`: switching to WAL itself may need to wait for a lock.
/// `secure_delete` zeroes the content of deleted rows in the file, so a deleted
/// domain's sealed keys do not linger in free pages.
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

pub(crate) fn sqlite_path(url: &str) -> Result<&str, ConnectError> {
    let path = url
        .strip_prefix("sqlite://")
        .ok_or(ConnectError::UnsupportedScheme)?;
    if path.is_empty() {
        return Err(ConnectError::EmptySqlitePath);
    }
    Ok(path)
}

pub(crate) async fn establish_sqlite(path: &str) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    conn.batch_execute(SQLITE_SETUP)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

pub(crate) fn build(config: &StoreConfig) -> Result<Backend, ConnectError> {
    let pool_error =
        |e: diesel_async::pooled_connection::deadpool::BuildError| ConnectError::Pool(Box::new(e));
    match BackendKind::of_url(&config.url)? {
        BackendKind::Postgres => {
            // `Fast` recycling: no `SELECT 1` round trip on every checkout (it was
            // half of PostgreSQL's work on the rejected-credentials path). A closed
            // connection is still caught by `is_broken()` before reuse, and a query
            // on a connection that died since is reported as unavailable (503).
            let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
            manager_config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
                config.url.clone(),
                manager_config,
            );
            let pool = Pool::builder(manager)
                .max_size(config.max_connections)
                .wait_timeout(Some(config.wait_timeout))
                .create_timeout(Some(config.connect_timeout))
                .recycle_timeout(Some(config.connect_timeout))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(pool_error)?;
            Ok(Backend::Postgres(pool))
        }
        BackendKind::Sqlite => {
            let path = sqlite_path(&config.url)?.to_owned();
            if let Some(parent) = std::path::Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                // Owner-only: the database holds sealed keys and token digests.
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(ConnectError::CreateDirectory)?;
            }
            let mut manager_config = ManagerConfig::<SqliteConn>::default();
            // A local file cannot drop the connection: skip the checkout ping.
            manager_config.recycling_method = RecyclingMethod::Fast;
            manager_config.custom_setup =
                Box::new(|url| Box::pin(establish_sqlite_owned(url.to_owned())));
            let manager =
                AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, manager_config);
            let pool = Pool::builder(manager)
                .max_size(config.max_connections)
                .wait_timeout(Some(config.wait_timeout))
                .create_timeout(Some(config.connect_timeout))
                .recycle_timeout(Some(config.connect_timeout))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(pool_error)?;
            Ok(Backend::Sqlite(pool))
        }
    }
}

async fn establish_sqlite_owned(path: String) -> diesel::ConnectionResult<SqliteConn> {
    establish_sqlite(&path).await
}

/// What went wrong inside the store, before it is mapped onto a port's error enum.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("query failed")]
    Query(#[source] DieselError),
    #[error("the domain belongs to another organization")]
    DomainTaken,
    #[error("the email is already registered")]
    EmailTaken,
    #[error("the domain does not exist and no key was supplied")]
    KeyRequired,
    #[error("a stored row is not valid: {0}")]
    Corrupt(String),
    /// The caller's callback refused a row; the transaction was rolled back.
    #[error("aborted by the caller")]
    Aborted(#[source] BoxError),
    /// A concurrent unit of work changed what this one read (a row it needed is gone
    /// or in another state); the transaction was rolled back.
    #[error("a concurrent change won")]
    Raced,
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::BrokenTransactionManager => Self::Unavailable(Box::new(error)),
            DieselError::DatabaseError(_, info) if is_connection_loss(info.message()) => {
                Self::Unavailable(Box::new(error))
            }
            _ => Self::Query(error),
        }
    }
}

/// tokio-postgres reports a dropped server as an "unknown" error with these words.
fn is_connection_loss(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "connection closed",
        "connection reset",
        "broken pipe",
        "terminating connection",
        "unexpected eof",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

pub(crate) fn pool_error(error: PoolError) -> DbError {
    // Every pool failure (wait timeout, refused connection, failed setup) means the
    // database cannot serve us right now.
    DbError::Unavailable(Box::new(error))
}

/// The unique constraint a failed write tripped, by name (PostgreSQL) or by the
/// columns SQLite names in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UniqueTarget {
    SenderEmail,
    OneActiveSender,
    DomainName,
    /// `UNIQUE (domain_id, selector)` of `dkim_keys`.
    KeySelector,
    /// One active key and at most one pending key per domain (SQLite names the same
    /// column for both partial indexes, so they are one target).
    OneKeyInState,
    Other,
}

pub(crate) fn unique_violation(error: &DbError) -> Option<UniqueTarget> {
    let DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) =
        error
    else {
        return None;
    };
    let name = info.constraint_name().unwrap_or_default();
    let message = info.message();
    let mentions = |pg: &str, sqlite: &str| name == pg || message.contains(sqlite);
    Some(if mentions("senders_email_key", "senders.email") {
        UniqueTarget::SenderEmail
    } else if mentions("senders_one_active_per_org", "senders.organization_id") {
        UniqueTarget::OneActiveSender
    } else if mentions("domains_name_key", "domains.name") {
        UniqueTarget::DomainName
    } else if mentions(
        "dkim_keys_domain_id_selector_key",
        "dkim_keys.domain_id, dkim_keys.selector",
    ) {
        UniqueTarget::KeySelector
    } else if name == "dkim_keys_one_active_per_domain"
        || name == "dkim_keys_one_pending_per_domain"
        || message.ends_with("dkim_keys.domain_id")
    {
        UniqueTarget::OneKeyInState
    } else {
        UniqueTarget::Other
    })
}

/// Conflicts between concurrent units of work that a fresh attempt resolves: also a
/// foreign key whose target a concurrent delete just removed, and [`DbError::Raced`].
pub(crate) fn is_retryable(error: &DbError) -> bool {
    match error {
        DbError::Raced
        | DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            true
        }
        DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
            true
        }
        DbError::Query(DieselError::DatabaseError(_, info))
            if info.message().contains("deadlock detected") =>
        {
            true
        }
        _ => matches!(
            unique_violation(error),
            Some(UniqueTarget::OneActiveSender | UniqueTarget::DomainName)
        ),
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend is
/// configured and that backend's schema in scope, and evaluates to
/// `Result<_, DbError>`. The same query text compiles once per backend: one code
/// path, two connection types.
macro_rules! with_conn {
    ($backend:expr, |$conn:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Postgres(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::pg::*;
                async {
                    let mut pooled = pool.get().await.map_err($crate::backend::pool_error)?;
                    let $conn = &mut *pooled;
                    let result: Result<_, $crate::backend::DbError> = $body;
                    result
                }
                .await
            }
            $crate::backend::Backend::Sqlite(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::sqlite::*;
                async {
                    let mut pooled = pool.get().await.map_err($crate::backend::pool_error)?;
                    let $conn = &mut *pooled;
                    let result: Result<_, $crate::backend::DbError> = $body;
                    result
                }
                .await
            }
        }
    };
}

/// Like [`with_conn!`], inside one transaction: PostgreSQL's default, and SQLite's
/// `BEGIN IMMEDIATE` so that read-then-write units take the write lock up front
/// instead of failing with "database is locked" when they upgrade.
macro_rules! in_transaction {
    ($backend:expr, |$conn:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Postgres(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::pg::*;
                async {
                    let mut pooled = pool.get().await.map_err($crate::backend::pool_error)?;
                    diesel_async::AsyncConnection::transaction(
                        &mut *pooled,
                        async |$conn| -> Result<_, $crate::backend::DbError> { $body },
                    )
                    .await
                }
                .await
            }
            $crate::backend::Backend::Sqlite(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::sqlite::*;
                async {
                    let mut pooled = pool.get().await.map_err($crate::backend::pool_error)?;
                    pooled
                        .immediate_transaction(
                            async |$conn| -> Result<_, $crate::backend::DbError> { $body },
                        )
                        .await
                }
                .await
            }
        }
    };
}

pub(crate) use {in_transaction, with_conn};
