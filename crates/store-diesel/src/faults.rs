//! Which database failures are the infrastructure's rather than a bug, by kind, and
//! how many there were.
//!
//! "500 means a bug" (DESIGN.md, shared resources): a failure the database server,
//! the network or the machine caused — a lost link, a server shutting down, a full
//! disk, an I/O error, a bound running out — becomes `DbError::Unavailable`, which
//! the edge answers 503 with `Retry-After`. Neither driver hands over a code for
//! most of these: diesel-async keeps a PostgreSQL error's message but not its
//! SQLSTATE, and turns every tokio-postgres error that is not the server's into
//! `UnableToSendCommand` carrying only the error's `Display` text (not its cause);
//! diesel keeps SQLite's `sqlite3_errmsg` text but not the result code. So the
//! failures are recognised by those texts, each listed in [`TEXTS`] with where it
//! comes from. Anything else — a syntax error, a constraint, a row that does not
//! decode, a panicked task, a corrupt file — stays what it is.
//!
//! Every classified failure is counted by kind, process-wide (`Store::db_error_counts`),
//! and a full disk is logged — at most once a minute, not once per request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;

/// What in the infrastructure made a database operation fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The link to the server was lost or closed, or none could be opened.
    Connection,
    /// A bound ran out: a statement, a lock, SQLite's busy handler, the pool wait.
    Timeout,
    /// The server is shutting down, starting up, recovering, or takes no writes.
    Shutdown,
    /// No space left for the database's files.
    DiskFull,
    /// The file system failed a read or a write, or refused to open or write the file.
    Io,
    /// Out of memory, or no connection slot left on the server.
    Resources,
}

const KINDS: usize = 6;

impl Fault {
    const fn index(self) -> usize {
        match self {
            Self::Connection => 0,
            Self::Timeout => 1,
            Self::Shutdown => 2,
            Self::DiskFull => 3,
            Self::Io => 4,
            Self::Resources => 5,
        }
    }
}

/// Database failures classified as the infrastructure's since the process started,
/// by kind (each one answered 503, never 500).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbErrorCounts {
    /// The link was lost or closed (reset, broken pipe, end of stream, the server
    /// ended the session), or no connection could be opened.
    pub connection: u64,
    /// A bound ran out: statement or lock timeout, SQLite busy, the pool wait.
    pub timeout: u64,
    /// The server is shutting down, starting up or recovering, or takes no writes
    /// (a standby, read-only mode).
    pub shutdown: u64,
    /// No space left on the device (SQLite's `SQLITE_FULL`, PostgreSQL's ENOSPC).
    pub disk_full: u64,
    /// An I/O error, or the database file cannot be opened or written.
    pub io: u64,
    /// Out of memory, or too many connections on the server.
    pub resources: u64,
}

/// How each failure's text reads, lower-cased, and what it means; the first match
/// wins, so a specific text comes before a general one it contains.
const TEXTS: &[(&str, Fault)] = &[
    // tokio-postgres 0.7 `Error`'s `Display` (src/error/mod.rs), which diesel-async
    // passes on as the message of `UnableToSendCommand` (src/pg/error_helper.rs):
    // `Kind::Io` is a read or write on the socket that failed (reset, broken pipe,
    // the stream ending inside a message, the kernel giving up on a silent peer).
    ("error communicating with the server", Fault::Connection),
    // `Kind::Closed`: the server closed the stream, or the connection task is gone.
    ("connection closed", Fault::Connection),
    // `Kind::Connect`, `Kind::Tls`: opening a connection failed.
    ("error connecting to server", Fault::Connection),
    ("error performing tls handshake", Fault::Connection),
    // `Kind::Timeout`: the connect timeout ran out.
    ("timeout waiting for server", Fault::Timeout),
    // diesel-async `drive_future` (src/pg/mod.rs): the connection's background task
    // ended, and a query waiting on it gets tokio's `RecvError::Closed`.
    ("channel closed", Fault::Connection),
    // `std::io::Error` texts, for a layer that passes on the cause.
    ("connection reset", Fault::Connection),
    ("broken pipe", Fault::Connection),
    ("unexpected eof", Fault::Connection),
    ("timed out", Fault::Connection),
    // PostgreSQL's own messages (English; a translated one is caught by `overdue`
    // only when it is a timeout). 57P01 admin_shutdown (also `pg_terminate_backend`),
    // 57P02 crash_shutdown, 57P03 cannot_connect_now (backend_startup.c).
    (
        "terminating connection due to administrator command",
        Fault::Shutdown,
    ),
    (
        "terminating connection because of crash of another server process",
        Fault::Shutdown,
    ),
    ("the database system is shutting down", Fault::Shutdown),
    ("the database system is starting up", Fault::Shutdown),
    ("the database system is in recovery mode", Fault::Shutdown),
    (
        "the database system is not yet accepting connections",
        Fault::Shutdown,
    ),
    (
        "the database system is not accepting connections",
        Fault::Shutdown,
    ),
    // Any other end of the session by the server: 57P05 idle_session_timeout,
    // 25P03 idle_in_transaction_session_timeout, 57P04 database_dropped.
    ("terminating connection", Fault::Connection),
    // 57014 query_canceled (`statement_timeout`, a cancel request), 55P03
    // lock_not_available (`lock_timeout`).
    ("canceling statement due to", Fault::Timeout),
    ("could not obtain lock", Fault::Timeout),
    // 53100 disk_full: "could not extend file …: No space left on device" (the
    // server's `%m`, strerror(ENOSPC)); a quota (EDQUOT).
    ("no space left on device", Fault::DiskFull),
    ("disk quota exceeded", Fault::DiskFull),
    // 58030 io_error: strerror(EIO).
    ("input/output error", Fault::Io),
    // 53200 out_of_memory (also SQLite's SQLITE_NOMEM text); 53300
    // too_many_connections.
    ("out of memory", Fault::Resources),
    ("sorry, too many clients already", Fault::Resources),
    ("remaining connection slots are reserved", Fault::Resources),
    // SQLite's `sqlite3ErrStr` (sqlite3.c as bundled by libsqlite3-sys 0.37), which
    // `sqlite3_errmsg` returns and diesel keeps (src/sqlite/connection/stmt.rs):
    // SQLITE_BUSY and SQLITE_LOCKED once `busy_timeout` has run out.
    ("database is locked", Fault::Timeout),
    ("database table is locked", Fault::Timeout),
    // SQLITE_FULL: a write failed with ENOSPC.
    ("database or disk is full", Fault::DiskFull),
    // SQLITE_IOERR and its extended codes: EIO, and any other failed read or write
    // (EFBIG past a file-size limit, EDQUOT: SQLite reports only ENOSPC as full).
    ("disk i/o error", Fault::Io),
    // SQLITE_CANTOPEN (the file, its WAL or a temporary file), SQLITE_READONLY (the
    // file or the file system turned read-only).
    ("unable to open database file", Fault::Io),
    ("attempt to write a readonly database", Fault::Io),
    // tokio's `JoinError` (diesel-async runs SQLite statements on the blocking pool):
    // a cancelled task means the runtime is shutting down. A panicked one is a bug.
    (" was cancelled", Fault::Shutdown),
];

/// The infrastructure fault `error` reports, if it reports one.
pub(crate) fn classify(error: &DieselError) -> Option<Fault> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | DieselError::BrokenTransactionManager => Some(Fault::Connection),
        // The store never opens a read-only transaction: only a standby, or a server
        // an operator put in read-only mode, refuses a write this way (25006).
        DieselError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => {
            Some(Fault::Shutdown)
        }
        // A typed outcome (unique, foreign key, serialization failure…) stays typed.
        DieselError::DatabaseError(
            DatabaseErrorKind::Unknown | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => of_message(info.message()),
        DieselError::RollbackErrorOnCommit {
            commit_error,
            rollback_error,
        } => classify(commit_error).or_else(|| classify(rollback_error)),
        _ => None,
    }
}

/// The fault a pool failure reports. Every one is unavailable (the database cannot
/// serve us now); the kind comes from the connection's failure when there is one.
pub(crate) fn of_pool(error: &PoolError) -> Fault {
    use deadpool::managed::PoolError as Pool;
    match error {
        Pool::Timeout(_) => Some(Fault::Timeout),
        Pool::Closed => Some(Fault::Shutdown),
        Pool::Backend(ManagerError::ConnectionError(error)) => of_connection(error),
        Pool::Backend(ManagerError::QueryError(error)) => classify(error),
        _ => None,
    }
    .unwrap_or(Fault::Connection)
}

fn of_connection(error: &ConnectionError) -> Option<Fault> {
    match error {
        ConnectionError::BadConnection(message) => of_message(message),
        ConnectionError::CouldntSetupConfiguration(error) => classify(error),
        _ => None,
    }
}

fn of_message(message: &str) -> Option<Fault> {
    let message = message.to_ascii_lowercase();
    TEXTS
        .iter()
        .find(|(text, _)| message.contains(text))
        .map(|&(_, fault)| fault)
}

/// Counts one classified failure; a full disk is also logged, at most once a minute.
pub(crate) fn record(fault: Fault) {
    LEDGER.record(fault, Instant::now());
}

/// The counts since the process started.
pub(crate) fn counts() -> DbErrorCounts {
    LEDGER.counts()
}

/// Process-wide: every store in the process shares it (the binary has one).
static LEDGER: Ledger = Ledger::new();

/// How often at most "database disk is full" is logged.
const DISK_FULL_LOG_EVERY: Duration = Duration::from_secs(60);

struct Ledger {
    counts: [AtomicU64; KINDS],
    /// When "database disk is full" was last logged.
    disk_full_logged: Mutex<Option<Instant>>,
}

impl Ledger {
    const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; KINDS],
            disk_full_logged: Mutex::new(None),
        }
    }

    /// Counts `fault` at `now`; returns whether it was logged.
    fn record(&self, fault: Fault, now: Instant) -> bool {
        let count = self.counts[fault.index()].fetch_add(1, Ordering::Relaxed) + 1;
        if fault != Fault::DiskFull || !self.disk_full_log_due(now) {
            return false;
        }
        // Every request that fails on it answers 503 and logs its own line; this
        // one says what an operator must do something about.
        tracing::error!(disk_full_failures = count, "database disk is full");
        true
    }

    fn disk_full_log_due(&self, now: Instant) -> bool {
        let mut last = self
            .disk_full_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *last {
            Some(at) if now.saturating_duration_since(at) < DISK_FULL_LOG_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    fn counts(&self) -> DbErrorCounts {
        let count = |fault: Fault| self.counts[fault.index()].load(Ordering::Relaxed);
        DbErrorCounts {
            connection: count(Fault::Connection),
            timeout: count(Fault::Timeout),
            shutdown: count(Fault::Shutdown),
            disk_full: count(Fault::DiskFull),
            io: count(Fault::Io),
            resources: count(Fault::Resources),
        }
    }
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
