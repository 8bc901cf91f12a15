//! Fresh databases for tests, one per test: a temporary SQLite file always, and a
//! new PostgreSQL database (dropped afterwards) when `DOMAIN_API_TEST_POSTGRES_URL`
//! names a server. With `DOMAIN_API_REQUIRE_POSTGRES=1` a missing URL is a failure,
//! never a silent skip.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::{BackendKind, Store, StoreConfig};

pub const POSTGRES_URL_VAR: &str = "DOMAIN_API_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "DOMAIN_API_REQUIRE_POSTGRES";

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    pub url: String,
    pub kind: BackendKind,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The PostgreSQL server URL for tests, if configured.
///
/// # Panics
/// When `DOMAIN_API_REQUIRE_POSTGRES=1` and the URL is not set.
#[must_use]
pub fn postgres_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty());
    let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1");
    assert!(
        url.is_some() || !required,
        "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: PostgreSQL tests cannot run"
    );
    url
}

/// The backends every store test runs on: SQLite always, PostgreSQL when configured.
#[must_use]
pub fn backends() -> Vec<BackendKind> {
    let mut kinds = vec![BackendKind::Sqlite];
    if postgres_url().is_some() {
        kinds.push(BackendKind::Postgres);
    } else {
        eprintln!(
            "note: {POSTGRES_URL_VAR} is not set; this test runs on SQLite only (CI sets it and {REQUIRE_POSTGRES_VAR}=1)"
        );
    }
    kinds
}

impl TestDatabase {
    /// A fresh, empty (unmigrated) database of `kind`.
    ///
    /// # Panics
    /// When the database cannot be created: a test cannot go on without it.
    pub async fn new(kind: BackendKind) -> Self {
        match kind {
            BackendKind::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    url,
                    kind,
                    _dir: Some(dir),
                    drop_pg: None,
                }
            }
            BackendKind::Postgres => {
                let server = postgres_url().expect("PostgreSQL test URL");
                let name = format!("domain_api_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AsyncPgConnection::establish(&server)
                    .await
                    .expect("connect to the PostgreSQL test server");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create a test database");
                let url = with_database(&server, &name);
                Self {
                    url,
                    kind,
                    _dir: None,
                    drop_pg: Some((server, name)),
                }
            }
        }
    }

    /// The PostgreSQL database's name (for tests that take it away and back).
    #[must_use]
    pub fn postgres_name(&self) -> Option<&str> {
        self.drop_pg.as_ref().map(|(_, name)| name.as_str())
    }

    /// The configuration [`TestDatabase::store`] uses: 8 connections, generous
    /// waits. Change it and pass it to [`TestDatabase::store_with`].
    #[must_use]
    pub fn config(&self) -> StoreConfig {
        let mut config = StoreConfig::new(self.url.clone());
        config.max_connections = 8;
        config.wait_timeout = Duration::from_secs(30);
        config
    }

    /// A store on this database migrated only up to and including `version` (e.g.
    /// `20261127000001`): the schema an older release left, for migration tests.
    ///
    /// # Panics
    /// When the store cannot be built or migrated.
    pub async fn store_migrated_through(&self, version: &str) -> Store {
        let store = Store::connect(&self.config()).expect("build the store");
        store
            .migrate_through(Some(version))
            .await
            .expect("migrate the test database");
        store
    }

    /// A migrated store on this database.
    ///
    /// # Panics
    /// When the store cannot be built or migrated.
    pub async fn store(&self) -> Store {
        self.store_with(&self.config()).await
    }

    /// A migrated store on this database, built with `config`.
    ///
    /// # Panics
    /// When the store cannot be built or migrated.
    pub async fn store_with(&self, config: &StoreConfig) -> Store {
        let store = Store::connect(config).expect("build the store");
        store.migrate().await.expect("migrate the test database");
        store
    }
}

/// `SELECT COUNT(*) AS n …` read back by [`Store::count`].
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl Store {
    /// Runs raw SQL statements (a test's view under the ports, e.g. an older schema's
    /// rows).
    ///
    /// # Panics
    /// When the SQL fails.
    pub async fn execute_sql(&self, sql: &str) {
        crate::backend::with_conn!(&self.backend, |c| {
            c.batch_execute(sql)
                .await
                .map_err(crate::backend::DbError::from)
        })
        .expect("execute test SQL");
    }

    /// The `n` of a raw `SELECT COUNT(*) AS n …` (a test reading the tables directly).
    ///
    /// # Panics
    /// When the query fails.
    pub async fn count(&self, sql: &str) -> i64 {
        use diesel_async::RunQueryDsl as _;
        let count: Count = crate::backend::with_conn!(&self.backend, |c| {
            diesel::sql_query(sql)
                .get_result(c)
                .await
                .map_err(crate::backend::DbError::from)
        })
        .expect("run a test count");
        count.n
    }
}

/// `server` with its database name replaced by `name`.
#[must_use]
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.drop_pg.take() else {
            return;
        };
        // Drop runs outside async; use a private runtime on a plain thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&server).await?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop a PostgreSQL test database");
        }
    }
}
