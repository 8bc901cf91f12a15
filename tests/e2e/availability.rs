//! The database going away: 503 with a short reason (never a 500 or driver text),
//! `/readyz` not ready, and recovery on its own when the database returns.

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use store_diesel::BackendKind;
use store_diesel::test_support::postgres_url;

use crate::helpers::{Options, spawn_app_with};

async fn admin(sql: &str) {
    let server = postgres_url().expect("PostgreSQL URL");
    let mut conn = AsyncPgConnection::establish(&server)
        .await
        .expect("admin connection");
    conn.batch_execute(sql).await.expect("admin SQL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    if postgres_url().is_none() {
        eprintln!(
            "note: DOMAIN_API_TEST_POSTGRES_URL is not set; the outage test needs PostgreSQL"
        );
        return;
    }
    let options = Options {
        env: vec![("DOMAIN_API_DB_WAIT_TIMEOUT_MS".into(), "1000".into())],
    };
    let app = spawn_app_with(BackendKind::Postgres, options).await;
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@outage.example"}"#).status,
        201
    );
    let name = app
        .db
        .as_ref()
        .and_then(|db| db.postgres_name())
        .expect("database name")
        .to_owned();

    // The database goes away: no new connections, existing ones cut.
    admin(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid();"
    ))
    .await;

    let ready = app.get("/readyz").unwrap();
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (503, "Service temporarily unavailable")
    );
    let refused = app.generate(&org, r#"{"email":"b@outage.example"}"#);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.content_type, "text/plain; charset=utf-8");
    assert_eq!(refused.body, "Service temporarily unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));

    // A token whose tag does not verify is refused without the database: 401, not 503.
    let rejected = app.generate(&org.with_forged_access(), r#"{"email":"c@outage.example"}"#);
    assert_eq!(
        (rejected.status, rejected.body.as_str()),
        (401, "Invalid API credentials")
    );

    // It comes back; the service recovers by itself.
    admin(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/readyz").map(|a| a.status).unwrap_or(0) != 200 {
        assert!(
            Instant::now() < deadline,
            "did not recover; log:\n{}",
            app.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        app.generate(&org, r#"{"email":"b@outage.example"}"#).status,
        201
    );
    let log = app.log();
    assert!(
        !log.contains(&org.secret) && !log.contains(&org.access),
        "no token in the log"
    );
}
