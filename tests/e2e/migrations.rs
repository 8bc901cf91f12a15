//! Migrations as a step of their own: `DOMAIN_API_MIGRATE=auto|off|check`, and no
//! command but `migrate` (and `serve` under `auto`) runs one.

use std::process::{Command, Stdio};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use store_diesel::BackendKind;
use store_diesel::test_support::{TestDatabase, postgres_url};

use crate::helpers::{BIN, Options, exit_within_30s, spawn_app_on};

/// The last migration before the lifecycle one.
const OLD_SCHEMA: &str = "20261127000001";
/// 32 fixed bytes, base64: a test-only key.
const MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

/// Runs the binary with `env` until it exits (30 s at most): (exit code, stderr).
fn run(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command.current_dir(dir.path()).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let child = command
        .envs(env.iter().copied())
        .env("DOMAIN_API_BIND", "127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    exit_within_30s(child, &format!("{args:?} did not exit"))
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_start_with_pending_migrations_and_commands_never_migrate() {
    let db = TestDatabase::new(BackendKind::Sqlite).await;
    let old = db.store_migrated_through(OLD_SCHEMA).await;
    let pending = old.pending_migrations().await.unwrap();
    assert!(pending.contains(&"2026-11-29-000001_lifecycle".to_owned()));
    let env = [
        ("DOMAIN_API_DATABASE_URL", db.url.as_str()),
        ("DOMAIN_API_MASTER_KEY", MASTER_KEY),
        ("DOMAIN_API_MIGRATE", "check"),
    ];

    let (code, stderr) = run(&env, &["serve"]);
    assert_eq!(code, Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.starts_with("domain-api:"))
        .unwrap_or_else(|| panic!("no line says why: {stderr}"));
    assert!(line.contains("DOMAIN_API_MIGRATE=check"), "{line}");
    for name in &pending {
        assert!(line.contains(name.as_str()), "{name} not named: {line}");
    }

    // A command other than `migrate` runs none, whatever DOMAIN_API_MIGRATE says.
    for mode in ["auto", "off", "check"] {
        let env = [
            ("DOMAIN_API_DATABASE_URL", db.url.as_str()),
            ("DOMAIN_API_MASTER_KEY", MASTER_KEY),
            ("DOMAIN_API_MIGRATE", mode),
        ];
        let (code, stderr) = run(&env, &["org", "create", "--name", "Acme"]);
        assert_eq!(code, Some(1), "{mode}: {stderr}");
        assert!(
            stderr.contains("pending migration") && stderr.contains("domain-api migrate"),
            "{mode}: {stderr}"
        );
        assert_eq!(
            old.pending_migrations().await.unwrap(),
            pending,
            "{mode}: nothing migrated"
        );
    }

    let (code, stderr) = run(&env, &["migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(old.pending_migrations().await.unwrap().is_empty());
    let app = spawn_app_on(
        BackendKind::Sqlite,
        &db.url,
        Options {
            env: vec![
                ("DOMAIN_API_MASTER_KEY".into(), MASTER_KEY.into()),
                ("DOMAIN_API_MIGRATE".into(), "check".into()),
            ],
        },
    );
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@check.example"}"#).status,
        201
    );
}

#[test]
fn off_and_check_create_no_sqlite_database() {
    for mode in ["off", "check"] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}",
            dir.path().join("data/domain-api.db").display()
        );
        let (code, stderr) = run(
            &[
                ("DOMAIN_API_DATABASE_URL", &url),
                ("DOMAIN_API_MIGRATE", mode),
            ],
            &["serve"],
        );
        assert_eq!(code, Some(2), "{mode}: {stderr}");
        assert!(stderr.contains("domain-api migrate"), "{mode}: {stderr}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{mode}: nothing created"
        );
    }
    let (code, stderr) = run(&[("DOMAIN_API_MIGRATE", "sometimes")], &["serve"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("DOMAIN_API_MIGRATE"), "{stderr}");
}

/// `url` (a `postgres://user:password@host/db` URL) as `user`/`password`.
fn as_role(url: &str, user: &str, password: &str) -> String {
    let start = url.find("://").unwrap() + 3;
    let at = url[start..].find('@').map_or(start, |i| start + i + 1);
    format!("{}{user}:{password}@{}", &url[..start], &url[at..])
}

#[tokio::test(flavor = "multi_thread")]
async fn off_serves_under_a_role_that_may_only_read_and_write_rows() {
    if postgres_url().is_none() {
        eprintln!(
            "note: DOMAIN_API_TEST_POSTGRES_URL is not set; this PostgreSQL test did not run"
        );
        return;
    }
    let db = TestDatabase::new(BackendKind::Postgres).await;
    drop(db.store().await); // migrated by the owner
    let database = db.postgres_name().unwrap().to_owned();
    let role = format!("dml_{}", &database["domain_api_test_".len()..]);
    let mut owner = AsyncPgConnection::establish(&db.url).await.unwrap();
    owner
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'dml-only';
             GRANT CONNECT ON DATABASE {database} TO {role};
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};"
        ))
        .await
        .expect("create a DML-only role (the test role needs CREATEROLE: scripts/dev-postgres.sh)");
    let url = as_role(&db.url, &role, "dml-only");
    let mut dml = AsyncPgConnection::establish(&url).await.unwrap();
    assert!(
        dml.batch_execute("CREATE TABLE probe (x INTEGER)")
            .await
            .is_err(),
        "the role must not be able to run DDL"
    );
    drop(dml);

    let served = {
        let app = spawn_app_on(
            BackendKind::Postgres,
            &url,
            Options {
                env: vec![("DOMAIN_API_MIGRATE".into(), "off".into())],
            },
        );
        let org = app.create_org("Acme");
        let generated = app.generate(&org, r#"{"email":"a@least-privilege.example"}"#);
        assert_eq!(app.get("/readyz").unwrap().status, 200);
        generated.status
    };
    owner
        .batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
             REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role};
             REVOKE ALL ON SCHEMA public FROM {role};
             REVOKE ALL ON DATABASE {database} FROM {role};
             DROP ROLE {role};"
        ))
        .await
        .unwrap();
    assert_eq!(served, 201);
}
