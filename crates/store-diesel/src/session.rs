//! Opening one connection: the bounds every session carries, and the SQLite file's
//! permissions.
//!
//! A query must never wait longer than the configured statement timeout for the
//! database: not on a row lock another transaction holds, not on a link that went
//! silent. PostgreSQL sessions get `statement_timeout` and `lock_timeout` (the server
//! cancels the statement) and short TCP keepalives plus a TCP user timeout (the
//! kernel gives up on a peer that stopped answering); SQLite connections get a
//! `busy_timeout` of the same length. Every one of these surfaces as
//! [`DbError::Unavailable`](crate::backend::DbError), a 503, never as a hang.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

/// A SQLite connection driven from async code (diesel-async's blocking wrapper; its
/// statements run in place on the writer's thread, `crate::writer`).
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, crate::writer::Spawner>;

/// Keepalive probes: after `idle` without traffic, one probe a second, three
/// unanswered ones and the connection is dead.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 3;

/// The bounds one database session carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionLimits {
    /// `statement_timeout` and `lock_timeout` (PostgreSQL), `busy_timeout` (SQLite).
    pub(crate) statement_timeout: Duration,
}

impl SessionLimits {
    fn millis(self) -> u128 {
        self.statement_timeout.as_millis()
    }

    /// How long a PostgreSQL link may stay silent before the kernel probes it: the
    /// statement timeout (a healthy server answers or cancels within it), at least
    /// the one second TCP can express.
    fn keepalive_idle(self) -> Duration {
        self.statement_timeout.max(Duration::from_secs(1))
    }
}

/// Opens one PostgreSQL connection with the session's bounds.
pub(crate) async fn establish_postgres(
    url: String,
    limits: SessionLimits,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    // The parser's message may quote part of the URL, password included: not kept.
    let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
        ConnectionError::InvalidConnectionUrl("the PostgreSQL URL cannot be parsed".into())
    })?;
    let idle = limits.keepalive_idle();
    config
        .keepalives(true)
        .keepalives_idle(idle)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES)
        // Keepalives only run on an idle socket; data the peer never acknowledges
        // (a request sent into a frozen link) is bounded by the user timeout.
        .tcp_user_timeout(idle + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| ConnectionError::BadConnection(connect_failure(&e)))?;
    let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
    // A statement waiting on a row lock is cancelled by whichever comes first; both
    // are set so that a lock wait is reported as one, and so that an operator who
    // raises `statement_timeout` for a role still has lock waits bounded.
    let ms = limits.millis();
    conn.batch_execute(&format!(
        "SET statement_timeout = {ms}; SET lock_timeout = {ms};"
    ))
    .await
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Why a connection could not be opened: the server's own reason when it refused
/// the login ("the database system is starting up", "sorry, too many clients
/// already"; the store classifies by it, `crate::faults`), else the driver's
/// (tokio-postgres says only "db error" for the former).
fn connect_failure(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map_or_else(|| error.to_string(), |db| db.message().to_owned())
}

/// Opens one SQLite connection with the session's bounds and the store's pragmas.
pub(crate) async fn establish_sqlite(
    path: String,
    limits: SessionLimits,
) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    // `busy_timeout` must come before `journal_mode=WAL`: switching to WAL may
    // itself have to wait for a lock. `secure_delete` zeroes the content of deleted
    // rows in the file, so a deleted domain's sealed keys do not linger in free
    // pages.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        limits.millis()
    ))
    .await
    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// Creates the SQLite database file with mode 0600 if it does not exist yet, before
/// SQLite opens it. SQLite creates `-wal` and `-shm` with the database file's mode,
/// so all three are the owner's alone whatever the umask and the directory's mode:
/// they hold the token tag key and token digests. An existing file keeps its mode
/// (the operator may have chosen it); a mode open to others is logged.
pub(crate) fn create_private_database_file(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    // `:memory:` and `file:` URIs are SQLite's to interpret.
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let path = Path::new(path);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // The umask may have taken bits away from 0600; set exactly 0600.
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "the SQLite database is readable by others; it holds the token tag key: chmod 600 it and its -wal and -shm files"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
