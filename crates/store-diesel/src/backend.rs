//! The two backends behind one pool enum, building the pools, and the translation
//! of driver errors into what the domain understands. How one connection is opened
//! is in `session`; which driver failures are the infrastructure's, in `faults`.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, TransactionManager};
use domain_core::ports::BoxError;

use crate::faults;
use crate::session::{self, SessionLimits};

pub(crate) use crate::session::SqliteConn;

/// The pool, and the bound every query on it runs under. Cloning shares the pool.
#[derive(Clone)]
pub(crate) struct Backend {
    pub(crate) pools: Pools,
    pub(crate) statement_timeout: Duration,
    /// The runtime the store was built on (the service's own, not an HTTP
    /// worker's): PostgreSQL connections are driven there, and group commit's
    /// batches run there, so a batch's round trips never wait behind request
    /// handling on a busy worker.
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    /// Each organization's share of the pool for units of work held open across a
    /// request (`crate::shares`).
    pub(crate) unit_shares: std::sync::Arc<crate::shares::UnitShares>,
    /// SQLite's write lock, handed out in turn in this process
    /// (`crate::write_gate`); unused on PostgreSQL, whose row locks queue in the
    /// server.
    pub(crate) write_gate: std::sync::Arc<crate::write_gate::WriteGate>,
}

/// One pool of whichever backend the URL named.
#[derive(Clone)]
pub(crate) enum Pools {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// What the service adds to the statement timeout for its own deadline on a store
/// call: the server's `statement_timeout` fires first while the server answers (and
/// says why); the service's deadline is for a server or a link that has stopped.
pub(crate) const CLIENT_GRACE: Duration = Duration::from_millis(500);

impl Backend {
    /// The deadline the service itself puts on one store call (a connection taken,
    /// its statements, its commit): a stalled server cannot hold a request longer.
    pub(crate) fn deadline(&self) -> Duration {
        self.statement_timeout + CLIENT_GRACE
    }
}

/// Runs `call` within `limit`; past it, the call is abandoned (its pooled
/// connection is dropped, see [`Leased`], and the task's unit of work poisoned) and
/// the database is reported unavailable.
pub(crate) async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    if let Ok(result) = tokio::time::timeout(limit, call).await {
        result
    } else {
        crate::ambient::poison_current();
        faults::record(faults::Fault::Timeout);
        Err(DbError::Unavailable(
            format!("the database did not answer within {limit:?}").into(),
        ))
    }
}

/// A pooled connection for one store call. Returned to the pool when the call
/// settles; dropped before that (the call was abandoned at its deadline, its future
/// dropped mid-statement), it is detached and closed, never handed to another call
/// in an unknown state.
pub(crate) struct Leased<M: deadpool::managed::Manager> {
    object: Option<deadpool::managed::Object<M>>,
    settled: bool,
}

impl<M: deadpool::managed::Manager> Leased<M> {
    pub(crate) fn new(object: deadpool::managed::Object<M>) -> Self {
        Self {
            object: Some(object),
            settled: false,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut M::Type {
        self.object.as_deref_mut().expect("held until dropped")
    }

    /// The call finished: the connection may go back to the pool.
    pub(crate) fn settle(&mut self) {
        self.settled = true;
    }
}

impl<M: deadpool::managed::Manager> Drop for Leased<M> {
    fn drop(&mut self) {
        if let (false, Some(object)) = (self.settled, self.object.take()) {
            drop(deadpool::managed::Object::take(object));
        }
    }
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
    /// Bound on one statement, and on waiting for a lock: PostgreSQL's
    /// `statement_timeout` and `lock_timeout` (with TCP keepalives of the same
    /// order), SQLite's `busy_timeout`. A query that hits it fails as unavailable.
    pub statement_timeout: Duration,
    /// How long a token pair looked up stays confirmed without a lookup: the
    /// longest a token revoked elsewhere keeps working here. Zero looks every
    /// request's token up.
    pub token_cache_ttl: Duration,
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
            statement_timeout: Duration::from_secs(5),
            token_cache_ttl: Duration::ZERO,
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
    #[error("cannot create the SQLite database file")]
    CreateDatabaseFile(#[source] std::io::Error),
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

pub(crate) fn sqlite_path(url: &str) -> Result<&str, ConnectError> {
    let path = url
        .strip_prefix("sqlite://")
        .ok_or(ConnectError::UnsupportedScheme)?;
    if path.is_empty() {
        return Err(ConnectError::EmptySqlitePath);
    }
    Ok(path)
}

pub(crate) fn build(config: &StoreConfig) -> Result<Backend, ConnectError> {
    let limits = SessionLimits {
        statement_timeout: config.statement_timeout,
    };
    let pool_error =
        |e: diesel_async::pooled_connection::deadpool::BuildError| ConnectError::Pool(Box::new(e));
    let runtime = tokio::runtime::Handle::try_current().ok();
    match BackendKind::of_url(&config.url)? {
        BackendKind::Postgres => {
            // `Fast` recycling: no `SELECT 1` round trip on every checkout (it was
            // half of PostgreSQL's work on the rejected-credentials path). A closed
            // connection is still caught by `is_broken()` before reuse, and a query
            // on a connection that died since is reported as unavailable (503).
            let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
            manager_config.recycling_method = RecyclingMethod::Fast;
            let driven_on = runtime.clone();
            manager_config.custom_setup = Box::new(move |url| {
                let establish = session::establish_postgres(url.to_owned(), limits);
                let driven_on = driven_on.clone();
                Box::pin(async move {
                    // The connection's I/O task is spawned where it is established.
                    match driven_on {
                        Some(runtime) => runtime
                            .spawn(establish)
                            .await
                            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?,
                        None => establish.await,
                    }
                })
            });
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
            Ok(Backend {
                write_gate: std::sync::Arc::default(),
                pools: Pools::Postgres(pool),
                statement_timeout: config.statement_timeout,
                runtime,
                unit_shares: std::sync::Arc::new(crate::shares::UnitShares::new(
                    config.max_connections,
                )),
            })
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
            session::create_private_database_file(&path)
                .map_err(ConnectError::CreateDatabaseFile)?;
            let mut manager_config = ManagerConfig::<SqliteConn>::default();
            // A local file cannot drop the connection: skip the checkout ping.
            manager_config.recycling_method = RecyclingMethod::Fast;
            manager_config.custom_setup =
                Box::new(move |url| Box::pin(session::establish_sqlite(url.to_owned(), limits)));
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
            Ok(Backend {
                write_gate: std::sync::Arc::default(),
                pools: Pools::Sqlite(pool),
                statement_timeout: config.statement_timeout,
                runtime,
                unit_shares: std::sync::Arc::new(crate::shares::UnitShares::new(
                    config.max_connections,
                )),
            })
        }
    }
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
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    #[error("the domain's sender limit is reached")]
    SenderLimit,
    #[error("too many new domains")]
    RateLimited(Duration),
    #[error("a stored row is not valid: {0}")]
    Corrupt(String),
    /// The caller's callback refused a row; the transaction was rolled back.
    #[error("aborted by the caller")]
    Aborted(#[source] BoxError),
    /// A concurrent unit of work changed what this one read (a row it needed is gone
    /// or in another state); the transaction was rolled back.
    #[error("a concurrent change won")]
    Raced,
    /// A keyed request's lease on its Idempotency-Key ran out and another request
    /// took the key: this one's change is rolled back.
    #[error("the Idempotency-Key was taken by another request")]
    LeaseLost,
    /// A keyed request whose key is taken with its change found the key kept by
    /// another request: this one's change is rolled back, and it answers what the
    /// key holds.
    #[error("the Idempotency-Key is held by another request")]
    Superseded(domain_core::ports::idempotency::Held),
}

impl From<domain_core::ownership::CreationRefusal> for DbError {
    fn from(refusal: domain_core::ownership::CreationRefusal) -> Self {
        use domain_core::ownership::CreationRefusal;
        match refusal {
            CreationRefusal::Taken => Self::DomainTaken,
            CreationRefusal::DomainLimit => Self::DomainLimit,
            CreationRefusal::RateLimited(wait) => Self::RateLimited(wait),
        }
    }
}

impl From<DieselError> for DbError {
    /// A failure of the infrastructure (`crate::faults`: a lost link, a server
    /// shutting down, a full disk, an I/O error, a bound running out) is
    /// unavailable, and counted; any other stays the query's.
    fn from(error: DieselError) -> Self {
        match faults::classify(&error) {
            Some(fault) => {
                faults::record(fault);
                Self::Unavailable(Box::new(error))
            }
            None => Self::Query(error),
        }
    }
}

/// A unit of work that failed with an error the driver could not classify, after
/// running for at least the statement timeout, ran into a session bound whatever
/// the language of the message: the database could not serve it in the time
/// allowed, which is what unavailable means. (PostgreSQL cancels no statement for a
/// timeout before the timeout has passed, so none of its timeouts escapes this;
/// SQLite's messages are never translated, and its busy handler may give up a
/// little before the bound, so SQLite relies on the texts `crate::faults` knows.)
pub(crate) fn overdue(error: DbError, elapsed: Duration, limit: Duration) -> DbError {
    match error {
        DbError::Query(error @ DieselError::DatabaseError(DatabaseErrorKind::Unknown, _))
            if elapsed >= limit =>
        {
            faults::record(faults::Fault::Timeout);
            DbError::Unavailable(Box::new(error))
        }
        other => other,
    }
}

pub(crate) fn pool_error(error: PoolError) -> DbError {
    // Every pool failure (wait timeout, refused connection, failed setup) means the
    // database cannot serve us right now.
    faults::record(faults::of_pool(&error));
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

/// Attempts of a unit of work when a concurrent one got in the way (a unique index
/// tripped by a racing insert, a serialization failure or a deadlock).
const MAX_ATTEMPTS: u32 = 8;

/// Whether a unit of work that failed with `error` on its `attempt`-th run (from 1)
/// runs again: a conflict with a concurrent one, and attempts left.
pub(crate) fn runs_again(error: &DbError, attempt: u32) -> bool {
    is_retryable(error) && attempt < MAX_ATTEMPTS
}

/// The pause before run `attempt + 1`: time for the unit of work that won the race
/// to finish.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(u64::from(attempt) * 2)
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

pub(crate) use crate::write_gate::{WriteTurn, Writer};

/// Opens a `BEGIN IMMEDIATE` transaction on `conn` (the write lock up front), in
/// `writer`'s go at the process's write gate (`crate::write_gate`), held until the
/// transaction ends. The wait is bounded by the store call that waits.
pub(crate) async fn begin_immediate(
    backend: &Backend,
    conn: &mut SqliteConn,
    writer: Writer,
) -> Result<WriteTurn, DbError> {
    let turn = backend.write_gate.enter(writer).await;
    conn.spawn_blocking(|c| {
        diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
    })
    .await?;
    Ok(turn)
}

/// Ends the transaction [`begin_immediate`] opened: commits it after `result` is
/// `Ok` (an error of the commit is the result then), rolls it back otherwise.
pub(crate) async fn finish<R>(
    conn: &mut SqliteConn,
    result: Result<R, DbError>,
) -> Result<R, DbError> {
    type Manager = <SqliteConn as AsyncConnection>::TransactionManager;
    match result {
        Ok(value) => match Manager::commit_transaction(conn).await {
            Ok(()) => Ok(value),
            Err(error) => {
                // A commit that failed leaves the transaction open (SQLITE_BUSY):
                // roll it back so the pooled connection is clean.
                let _ = Manager::rollback_transaction(conn).await;
                Err(error.into())
            }
        },
        Err(error) => {
            if let Err(rollback) = Manager::rollback_transaction(conn).await {
                tracing::warn!(%rollback, "could not roll back a SQLite transaction");
            }
            Err(error)
        }
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend is
/// configured and that backend's schema in scope, and evaluates to
/// `Result<_, DbError>`. The same query text compiles once per backend: one code
/// path, two connection types. Inside an ambient unit of work whose transaction is
/// open (a batch, a keyed request that has written, `crate::ambient`) `$conn` is that
/// unit's connection instead. The whole call (taking the connection, the body) runs
/// within the backend's deadline ([`bounded`]).
macro_rules! with_conn {
    ($backend:expr, |$conn:ident| $body:expr) => {{
        let backend: &$crate::backend::Backend = $backend;
        match &backend.pools {
            $crate::backend::Pools::Postgres(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::pg::*;
                $crate::backend::bounded(backend.deadline(), async {
                    let mut joined = $crate::ambient::joined(false).await?;
                    let mut pooled = None;
                    let started = std::time::Instant::now();
                    let $conn: &mut diesel_async::AsyncPgConnection = match joined.as_deref_mut() {
                        Some($crate::ambient::AmbientConn::Postgres(conn)) => &mut **conn,
                        _ => pooled
                            .insert($crate::backend::Leased::new(
                                pool.get().await.map_err($crate::backend::pool_error)?,
                            ))
                            .conn(),
                    };
                    #[allow(unused_braces)]
                    let result: Result<_, $crate::backend::DbError> = async { $body }.await;
                    if let Some(pooled) = pooled.as_mut() {
                        pooled.settle();
                    }
                    result.map_err(|e| {
                        $crate::backend::overdue(e, started.elapsed(), backend.statement_timeout)
                    })
                })
                .await
            }
            $crate::backend::Pools::Sqlite(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::sqlite::*;
                $crate::backend::bounded(backend.deadline(), async {
                    let mut joined = $crate::ambient::joined(false).await?;
                    let mut pooled = None;
                    let started = std::time::Instant::now();
                    let $conn: &mut $crate::backend::SqliteConn = match joined.as_deref_mut() {
                        Some($crate::ambient::AmbientConn::Sqlite(conn, _)) => &mut **conn,
                        _ => pooled
                            .insert($crate::backend::Leased::new(
                                pool.get().await.map_err($crate::backend::pool_error)?,
                            ))
                            .conn(),
                    };
                    #[allow(unused_braces)]
                    let result: Result<_, $crate::backend::DbError> = async { $body }.await;
                    if let Some(pooled) = pooled.as_mut() {
                        pooled.settle();
                    }
                    result.map_err(|e| {
                        $crate::backend::overdue(e, started.elapsed(), backend.statement_timeout)
                    })
                })
                .await
            }
        }
    }};
}

/// Like [`with_conn!`], inside one transaction: PostgreSQL's default, and SQLite's
/// `BEGIN IMMEDIATE` so that read-then-write units take the write lock up front
/// instead of failing with "database is locked" when they upgrade. Inside an ambient
/// unit of work the transaction is a savepoint of it (its outer transaction already
/// holds SQLite's write lock); a keyed request's first one opens that transaction.
macro_rules! in_transaction {
    ($backend:expr, |$conn:ident| $body:expr) => {{
        let backend: &$crate::backend::Backend = $backend;
        match &backend.pools {
            $crate::backend::Pools::Postgres(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::pg::*;
                $crate::backend::bounded(backend.deadline(), async {
                    let mut joined = $crate::ambient::joined(true).await?;
                    let mut pooled = None;
                    let started = std::time::Instant::now();
                    let conn: &mut diesel_async::AsyncPgConnection = match joined.as_deref_mut()
                    {
                        Some($crate::ambient::AmbientConn::Postgres(conn)) => &mut **conn,
                        _ => pooled
                            .insert($crate::backend::Leased::new(
                                pool.get().await.map_err($crate::backend::pool_error)?,
                            ))
                            .conn(),
                    };
                    let result = diesel_async::AsyncConnection::transaction(
                        conn,
                        async |$conn| -> Result<_, $crate::backend::DbError> { $body },
                    )
                    .await;
                    if let Some(pooled) = pooled.as_mut() {
                        pooled.settle();
                    }
                    result.map_err(|e| {
                        $crate::backend::overdue(e, started.elapsed(), backend.statement_timeout)
                    })
                })
                .await
            }
            $crate::backend::Pools::Sqlite(pool) => {
                #[allow(unused_imports)]
                use $crate::schema::sqlite::*;
                $crate::backend::bounded(backend.deadline(), async {
                    let mut joined = $crate::ambient::joined(true).await?;
                    let started = std::time::Instant::now();
                    let work = async |$conn: &mut $crate::backend::SqliteConn| -> Result<_, $crate::backend::DbError> { $body };
                    let result = match joined.as_deref_mut() {
                        Some($crate::ambient::AmbientConn::Sqlite(conn, _)) => {
                            diesel_async::AsyncConnection::transaction(&mut **conn, work).await
                        }
                        _ => {
                            let mut pooled = $crate::backend::Leased::new(
                                pool.get().await.map_err($crate::backend::pool_error)?,
                            );
                            let result = match $crate::backend::begin_immediate(backend, pooled.conn(), $crate::backend::Writer::Other).await {
                                Ok(turn) => {
                                    let result = work(pooled.conn()).await;
                                    let result = $crate::backend::finish(pooled.conn(), result).await;
                                    drop(turn);
                                    result
                                }
                                Err(error) => Err(error),
                            };
                            pooled.settle();
                            result
                        }
                    };
                    result.map_err(|e| {
                        $crate::backend::overdue(e, started.elapsed(), backend.statement_timeout)
                    })
                })
                .await
            }
        }
    }};
}

pub(crate) use {in_transaction, with_conn};

/// Takes PostgreSQL's transaction-scoped advisory lock of every registrable name in
/// `registrables`, in their order (`unnest` keeps it): the one key a
/// creation under a registrable name takes turns on, whether alone
/// (`locks::RegistrableLock`) or in a set (`batch`). A hash collision only makes two
/// unrelated creations wait for each other.
pub(crate) async fn lock_registrables(
    conn: &mut AsyncPgConnection,
    registrables: &[&str],
) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended(r, 0)) FROM unnest($1::text[]) AS r",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(registrables)
    .execute(conn)
    .await?;
    Ok(())
}

/// `head` followed by `rows` copies of `row` (a parenthesized list of placeholders),
/// comma-separated: a multi-row `INSERT … VALUES` for SQLite, whose statements cost
/// no round trip but whose per-row statements would each be parsed and stepped.
pub(crate) fn multi_row_values(head: &str, row: &str, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_session_bound_running_out_is_unavailable() {
        for message in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "could not obtain lock on row in relation \"organizations\"",
            "database is locked",
        ] {
            let error = DbError::from(server_error(DatabaseErrorKind::Unknown, message));
            assert!(matches!(error, DbError::Unavailable(_)), "{message}");
        }
        let error = DbError::from(server_error(DatabaseErrorKind::Unknown, "syntax error"));
        assert!(matches!(error, DbError::Query(_)));
    }

    #[test]
    fn failures_of_the_infrastructure_are_unavailable_and_counted_by_kind() {
        type Kind = fn(&faults::DbErrorCounts) -> u64;
        let cases: [(DatabaseErrorKind, &str, Kind); 5] = [
            // What diesel-async makes of tokio-postgres' `Kind::Io` (a reset link):
            // it used to answer 500.
            (
                DatabaseErrorKind::UnableToSendCommand,
                "error communicating with the server",
                |c| c.connection,
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
                |c| c.shutdown,
            ),
            (
                DatabaseErrorKind::Unknown,
                "database or disk is full",
                |c| c.disk_full,
            ),
            (DatabaseErrorKind::Unknown, "disk I/O error", |c| c.io),
            (DatabaseErrorKind::Unknown, "database is locked", |c| {
                c.timeout
            }),
        ];
        for (kind, message, count) in cases {
            // Process-wide counts: other tests may add to them, never take away.
            let before = count(&faults::counts());

            let error = DbError::from(server_error(kind, message));

            assert!(matches!(error, DbError::Unavailable(_)), "{message}");
            assert!(count(&faults::counts()) > before, "{message} is counted");
        }
    }

    #[test]
    fn an_unclassified_failure_after_the_whole_timeout_is_unavailable_in_any_language() {
        let limit = Duration::from_millis(300);
        let translated = || {
            DbError::from(server_error(
                DatabaseErrorKind::Unknown,
                "Abbruch der Anweisung wegen Zeitüberschreitung",
            ))
        };
        let timeouts = faults::counts().timeout;

        let overdue_error = overdue(translated(), limit, limit);
        let early_error = overdue(translated(), limit / 2, limit);
        let conflict = overdue(
            DbError::from(server_error(
                DatabaseErrorKind::UniqueViolation,
                "duplicate",
            )),
            limit * 2,
            limit,
        );

        assert!(matches!(overdue_error, DbError::Unavailable(_)));
        assert!(faults::counts().timeout > timeouts, "counted as a timeout");
        assert!(matches!(early_error, DbError::Query(_)));
        assert!(
            unique_violation(&conflict).is_some(),
            "a typed outcome stays typed"
        );
    }

    /// A unit of work that writes one row, holding SQLite's write lock for `hold`.
    async fn write_one(backend: &Backend, hold: Duration) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl as _;
        in_transaction!(backend, |c| {
            diesel::sql_query("INSERT INTO gate_test (x) VALUES (1)")
                .execute(c)
                .await?;
            tokio::time::sleep(hold).await;
            Ok(())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sqlite_writer_gets_the_lock_after_at_most_the_unit_holding_it() {
        // One task runs 60 units of work back to back, each holding the write lock
        // for 10 ms; another wants to write once, after the stream began. First
        // come, first served, it writes after the unit in progress, not after the
        // stream (SQLite's busy handler alone polls the lock and loses every gap).
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("gate.db").display());
        let store = crate::Store::connect(&StoreConfig::new(url)).expect("a store");
        let backend = store.backend.clone();
        with_conn!(&backend, |c| {
            use diesel_async::RunQueryDsl as _;
            diesel::sql_query("CREATE TABLE gate_test (x INTEGER)")
                .execute(c)
                .await?;
            Ok(())
        })
        .expect("the table");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = tokio::spawn({
            let (backend, done) = (backend.clone(), std::sync::Arc::clone(&done));
            async move {
                for _ in 0..60 {
                    write_one(&backend, Duration::from_millis(10))
                        .await
                        .expect("a unit of the stream");
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        while done.load(std::sync::atomic::Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = done.load(std::sync::atomic::Ordering::SeqCst);
        write_one(&backend, Duration::ZERO)
            .await
            .expect("the other writer");
        let after = done.load(std::sync::atomic::Ordering::SeqCst);
        stream.await.expect("the stream");
        // The unit in progress, and one more if the stream's next unit asked for the
        // lock while the other writer was still opening its connection.
        assert!(
            after <= before + 2,
            "the other writer waited for {} units of the stream",
            after - before
        );
    }

    #[derive(diesel::QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = diesel::sql_types::Text)]
        compile_options: String,
    }

    #[tokio::test]
    async fn sqlite_is_built_without_memory_statistics() {
        // `.cargo/config.toml` builds the bundled SQLite with
        // SQLITE_DEFAULT_MEMSTATUS=0: with the statistics, every allocation SQLite
        // makes takes one process-wide mutex, which the pool's threads queue on.
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("options.db").display());
        let store = crate::Store::connect(&StoreConfig::new(url)).expect("a store");
        let options: Vec<CompileOption> = with_conn!(&store.backend, |c| {
            use diesel_async::RunQueryDsl as _;
            Ok(diesel::sql_query("PRAGMA compile_options").load(c).await?)
        })
        .expect("the compile options");
        let options: Vec<&str> = options.iter().map(|o| o.compile_options.as_str()).collect();
        assert!(
            options.contains(&"DEFAULT_MEMSTATUS=0"),
            "SQLite built with memory statistics: {options:?}"
        );
    }
}
