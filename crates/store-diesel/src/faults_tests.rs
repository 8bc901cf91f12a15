//! The drivers' own failures, made the way the drivers make them: a stand-in
//! PostgreSQL server that resets, closes or refuses the link for tokio-postgres and
//! diesel-async, real SQLite connections, and SQLite's own texts for its codes.

use std::time::{Duration, Instant};

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;
use crate::session::{self, SessionLimits};

/// An error as diesel builds it from SQLite's `sqlite3_errmsg` (`last_error` in
/// diesel's `stmt.rs`): the text SQLite has for `code`, kind `Unknown`.
fn sqlite_error(code: std::ffi::c_int) -> DieselError {
    DieselError::DatabaseError(
        DatabaseErrorKind::Unknown,
        Box::new(libsqlite3_sys::code_to_str(code).to_owned()),
    )
}

/// A PostgreSQL server error as diesel-async passes it on: its message, and a kind
/// for the few SQLSTATEs diesel-async maps.
fn server_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
    DieselError::DatabaseError(kind, Box::new(message.to_owned()))
}

/// A tokio-postgres error that is not the server's, as diesel-async passes it on
/// (`from_tokio_postgres_error`, no SQLSTATE): its `Display` text.
fn driver_error(display: &str) -> DieselError {
    server_error(DatabaseErrorKind::UnableToSendCommand, display)
}

#[test]
fn sqlite_codes_of_the_machine_are_faults_and_those_of_the_query_are_not() {
    use libsqlite3_sys as ffi;
    let cases = [
        (ffi::SQLITE_FULL, Some(Fault::DiskFull)),
        (ffi::SQLITE_IOERR, Some(Fault::Io)),
        (ffi::SQLITE_IOERR_WRITE, Some(Fault::Io)),
        (ffi::SQLITE_IOERR_FSYNC, Some(Fault::Io)),
        (ffi::SQLITE_IOERR_SHORT_READ, Some(Fault::Io)),
        (ffi::SQLITE_IOERR_NOMEM, Some(Fault::Io)),
        (ffi::SQLITE_CANTOPEN, Some(Fault::Io)),
        (ffi::SQLITE_READONLY, Some(Fault::Io)),
        (ffi::SQLITE_READONLY_DBMOVED, Some(Fault::Io)),
        (ffi::SQLITE_NOMEM, Some(Fault::Resources)),
        (ffi::SQLITE_BUSY, Some(Fault::Timeout)),
        (ffi::SQLITE_LOCKED, Some(Fault::Timeout)),
        // A bug, or a file no retry will mend: they stay loud (500, logged whole).
        (ffi::SQLITE_ERROR, None),
        (ffi::SQLITE_CONSTRAINT, None),
        (ffi::SQLITE_MISMATCH, None),
        (ffi::SQLITE_TOOBIG, None),
        (ffi::SQLITE_RANGE, None),
        (ffi::SQLITE_MISUSE, None),
        (ffi::SQLITE_CORRUPT, None),
        (ffi::SQLITE_NOTADB, None),
    ];
    for (code, expected) in cases {
        let error = sqlite_error(code);
        assert_eq!(classify(&error), expected, "{code}: {error}");
    }
}

#[test]
fn a_sqlite_database_that_cannot_grow_is_a_full_disk() {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, RunQueryDsl as _, SqliteConnection};
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute("CREATE TABLE t (b BLOB); PRAGMA max_page_count = 16;")
        .unwrap();

    let error = (0..100)
        .find_map(|_| {
            diesel::sql_query("INSERT INTO t VALUES (zeroblob(4000))")
                .execute(&mut conn)
                .err()
        })
        .expect("the database fills up");

    assert_eq!(error.to_string(), "database or disk is full");
    assert_eq!(classify(&error), Some(Fault::DiskFull));
}

#[test]
fn a_read_only_or_unopenable_sqlite_file_is_an_io_fault() {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    SqliteConnection::establish(path.to_str().unwrap())
        .unwrap()
        .batch_execute("CREATE TABLE t (x INTEGER)")
        .unwrap();

    let mut read_only =
        SqliteConnection::establish(&format!("file:{}?mode=ro", path.display())).unwrap();
    let write = read_only
        .batch_execute("INSERT INTO t VALUES (1)")
        .unwrap_err();
    let Err(open) =
        SqliteConnection::establish(dir.path().join("missing/dir/x.db").to_str().unwrap())
    else {
        panic!("a file in a missing directory cannot be opened");
    };

    assert_eq!(write.to_string(), "attempt to write a readonly database");
    assert_eq!(classify(&write), Some(Fault::Io));
    assert_eq!(open.to_string(), "unable to open database file");
    assert_eq!(of_connection(&open), Some(Fault::Io));
}

#[test]
fn tokio_postgres_link_failures_are_connection_faults() {
    // Every `Kind` whose `Display` says the link failed, and the closed channel
    // diesel-async reports when the connection's task has ended.
    for display in [
        "error communicating with the server",
        "connection closed",
        "error connecting to server",
        "error performing TLS handshake",
        "channel closed",
    ] {
        assert_eq!(
            classify(&driver_error(display)),
            Some(Fault::Connection),
            "{display}"
        );
    }
    assert_eq!(
        classify(&driver_error("timeout waiting for server")),
        Some(Fault::Timeout)
    );
}

#[test]
fn tokio_postgres_failures_of_our_own_making_are_not_faults() {
    for display in [
        "error serializing parameter 0",
        "error deserializing column 2",
        "invalid column `name`",
        "query returned an unexpected number of columns",
        "query returned an unexpected number of rows",
        "expected 2 parameters but got 1",
        "unexpected message from server",
        "error parsing response from server",
        "error encoding message to server",
        // tokio's `JoinError` for a SQLite statement whose task panicked.
        "task 12 panicked with message \"boom\"",
    ] {
        assert_eq!(classify(&driver_error(display)), None, "{display}");
    }
    assert_eq!(
        classify(&driver_error("task 12 was cancelled")),
        Some(Fault::Shutdown),
        "a statement's task cancelled: the runtime is shutting down"
    );
}

#[test]
fn postgresql_server_messages_are_classified_by_sqlstate_text() {
    use DatabaseErrorKind::{ReadOnlyTransaction, Unknown};
    let cases = [
        // 57P01, 57P02, 57P03
        (
            Unknown,
            "terminating connection due to administrator command",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "terminating connection because of crash of another server process",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "the database system is shutting down",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "the database system is starting up",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "the database system is in recovery mode",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "the database system is not yet accepting connections",
            Some(Fault::Shutdown),
        ),
        (
            Unknown,
            "the database system is not accepting connections",
            Some(Fault::Shutdown),
        ),
        // 25006 on a standby or a server in read-only mode
        (
            ReadOnlyTransaction,
            "cannot execute INSERT in a read-only transaction",
            Some(Fault::Shutdown),
        ),
        // 57P05
        (
            Unknown,
            "terminating connection due to idle-session timeout",
            Some(Fault::Connection),
        ),
        // 57014, 55P03
        (
            Unknown,
            "canceling statement due to statement timeout",
            Some(Fault::Timeout),
        ),
        (
            Unknown,
            "could not obtain lock on row in relation \"organizations\"",
            Some(Fault::Timeout),
        ),
        // 53100, 58030, 53200, 53300
        (
            Unknown,
            "could not extend file \"base/16384/16385\": No space left on device",
            Some(Fault::DiskFull),
        ),
        (
            Unknown,
            "could not write to file \"pg_wal/xlogtemp.42\": No space left on device",
            Some(Fault::DiskFull),
        ),
        (
            Unknown,
            "could not read block 7 in file \"base/16384/16385\": Input/output error",
            Some(Fault::Io),
        ),
        (Unknown, "out of memory", Some(Fault::Resources)),
        (
            Unknown,
            "sorry, too many clients already",
            Some(Fault::Resources),
        ),
        // Ours to fix, or typed outcomes the store handles.
        (Unknown, "syntax error at or near \"SELEC\"", None),
        (Unknown, "relation \"domains\" does not exist", None),
        (Unknown, "deadlock detected", None),
        (
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint \"domains_name_key\"",
            None,
        ),
        (
            DatabaseErrorKind::ForeignKeyViolation,
            "insert or update on table \"senders\" violates foreign key constraint",
            None,
        ),
        (
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update",
            None,
        ),
    ];
    for (kind, message, expected) in cases {
        assert_eq!(
            classify(&server_error(kind, message)),
            expected,
            "{message}"
        );
    }
}

#[test]
fn diesel_failures_that_are_not_the_databases_are_not_faults() {
    for error in [
        DieselError::NotFound,
        DieselError::AlreadyInTransaction,
        DieselError::NotInTransaction,
        DieselError::DeserializationError("bad row".into()),
        DieselError::SerializationError("bad value".into()),
    ] {
        assert_eq!(classify(&error), None, "{error}");
    }
    assert_eq!(
        classify(&DieselError::BrokenTransactionManager),
        Some(Fault::Connection)
    );
}

#[test]
fn a_commit_that_failed_on_a_full_disk_is_a_full_disk_even_if_its_rollback_failed() {
    let error = DieselError::RollbackErrorOnCommit {
        rollback_error: Box::new(sqlite_error(libsqlite3_sys::SQLITE_ERROR)),
        commit_error: Box::new(sqlite_error(libsqlite3_sys::SQLITE_FULL)),
    };

    assert_eq!(classify(&error), Some(Fault::DiskFull));
}

#[test]
fn a_pool_failure_takes_its_kind_from_the_connection_failure() {
    use deadpool::managed::{PoolError as Pool, TimeoutType};
    let backend = |error: ConnectionError| Pool::Backend(ManagerError::ConnectionError(error));

    assert_eq!(of_pool(&Pool::Timeout(TimeoutType::Wait)), Fault::Timeout);
    assert_eq!(of_pool(&Pool::Closed), Fault::Shutdown);
    assert_eq!(
        of_pool(&backend(ConnectionError::BadConnection(
            "database or disk is full".into()
        ))),
        Fault::DiskFull
    );
    assert_eq!(
        of_pool(&backend(ConnectionError::BadConnection(
            "the database system is starting up".into()
        ))),
        Fault::Shutdown
    );
    assert_eq!(
        of_pool(&backend(ConnectionError::BadConnection("db error".into()))),
        Fault::Connection,
        "any other failure to connect is the link's"
    );
}

#[test]
fn every_kind_is_counted_and_a_full_disk_is_logged_at_most_once_a_minute() {
    let ledger = Ledger::new();
    let start = Instant::now();

    let logged: Vec<bool> = [
        (Fault::DiskFull, 0),
        (Fault::DiskFull, 1),
        (Fault::Io, 2),
        (Fault::DiskFull, 59),
        (Fault::DiskFull, 60),
        (Fault::DiskFull, 61),
        (Fault::Connection, 62),
        (Fault::Timeout, 63),
        (Fault::Shutdown, 64),
        (Fault::Resources, 65),
    ]
    .into_iter()
    .map(|(fault, at)| ledger.record(fault, start + Duration::from_secs(at)))
    .collect();

    assert_eq!(
        logged,
        [
            true, false, false, false, true, false, false, false, false, false
        ]
    );
    assert_eq!(
        ledger.counts(),
        DbErrorCounts {
            connection: 1,
            timeout: 1,
            shutdown: 1,
            disk_full: 5,
            io: 1,
            resources: 1,
        }
    );
}

/// What the stand-in server does to the one connection it accepts.
#[derive(Clone, Copy)]
enum Script {
    /// Refuses the login with a FATAL error (SQLSTATE, message).
    RefuseLogin(&'static str, &'static str),
    /// Lets the client log in, then answers its first query with a FATAL error and
    /// closes the link a moment later, as PostgreSQL does when it ends a session.
    EndSession(&'static str, &'static str),
    /// Lets the client log in, then resets the link (RST) on its first query.
    Reset,
    /// Lets the client log in, then closes the link (FIN) on its first query.
    Close,
}

/// A stand-in PostgreSQL server on 127.0.0.1 that speaks just enough of the
/// protocol (startup, `AuthenticationOk`, `ReadyForQuery`, `ErrorResponse`) to play
/// `script` on one connection; returns its URL.
async fn stand_in_server(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut length = [0u8; 4];
        socket.read_exact(&mut length).await.unwrap();
        let mut startup = vec![0u8; u32::from_be_bytes(length) as usize - 4];
        socket.read_exact(&mut startup).await.unwrap();
        if let Script::RefuseLogin(code, message) = script {
            socket.write_all(&fatal(code, message)).await.unwrap();
            return;
        }
        // AuthenticationOk, ReadyForQuery (idle).
        socket
            .write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'])
            .await
            .unwrap();
        let mut query = [0u8; 1];
        socket.read_exact(&mut query).await.unwrap();
        match script {
            Script::EndSession(code, message) => {
                socket.write_all(&fatal(code, message)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Script::Reset => socket.set_zero_linger().unwrap(),
            Script::Close | Script::RefuseLogin(..) => {}
        }
    });
    format!("postgres://domain_api@{addr}/domain_api?sslmode=disable")
}

/// An `ErrorResponse` of severity FATAL.
fn fatal(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&u32::try_from(fields.len() + 4).unwrap().to_be_bytes());
    message.extend(fields);
    message
}

/// Opens a connection the way the pool does (`session::establish_postgres`: the
/// session's settings are its first queries) and returns how it failed.
async fn connect(url: String) -> ConnectionError {
    let limits = SessionLimits {
        statement_timeout: Duration::from_secs(5),
    };
    match session::establish_postgres(url, limits).await {
        Ok(_) => panic!("the stand-in server lets no session through"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_reset_or_closed_postgresql_link_is_a_connection_fault_as_diesel_async_reports_it() {
    for script in [Script::Reset, Script::Close] {
        let error = connect(stand_in_server(script).await).await;

        let ConnectionError::CouldntSetupConfiguration(query_error) = &error else {
            panic!("the link fails under the session's first query: {error:?}");
        };
        assert!(
            ["error communicating with the server", "connection closed"]
                .contains(&query_error.to_string().as_str()),
            "{query_error}"
        );
        assert_eq!(classify(query_error), Some(Fault::Connection));
    }
}

#[tokio::test]
async fn a_session_the_server_ends_for_its_shutdown_is_a_shutdown() {
    let url = stand_in_server(Script::EndSession(
        "57P01",
        "terminating connection due to administrator command",
    ))
    .await;

    let error = connect(url).await;

    let ConnectionError::CouldntSetupConfiguration(query_error) = &error else {
        panic!("the server ends the session under its first query: {error:?}");
    };
    assert!(matches!(
        query_error,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, _)
    ));
    assert_eq!(classify(query_error), Some(Fault::Shutdown));
}

#[tokio::test]
async fn a_server_starting_up_or_shutting_down_refuses_the_login_as_a_shutdown() {
    for message in [
        "the database system is starting up",
        "the database system is shutting down",
    ] {
        let error = connect(stand_in_server(Script::RefuseLogin("57P03", message)).await).await;

        assert_eq!(error.to_string(), message, "the server's reason is kept");
        assert_eq!(of_connection(&error), Some(Fault::Shutdown));
    }
}

#[tokio::test]
async fn a_refused_postgresql_connection_is_a_connection_fault() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = unused.local_addr().unwrap();
    drop(unused);

    let error = connect(format!("postgres://domain_api@{addr}/x?sslmode=disable")).await;

    assert_eq!(error.to_string(), "error connecting to server");
    assert_eq!(of_connection(&error), Some(Fault::Connection));
}
