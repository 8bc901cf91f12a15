//! Running the service as an operator does: no command but `serve` and `migrate`
//! creates a database, the start names its database and master key, and refuses a
//! master key that does not belong to the database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use store_diesel::BackendKind;

use crate::helpers::{BIN, Options, TestApp, clear_env, exit_within_30s, spawn_app, spawn_app_on};

/// A dashboard JWT secret (≥ 32 bytes), so that `jwt issue` gets as far as the
/// database.
const JWT_SECRET: &str = "test-only-jwt-secret-of-at-least-32-bytes";

/// Every command but `serve` and `migrate`, with the arguments it needs.
fn commands(new_key_file: &Path) -> Vec<Vec<String>> {
    let backup = new_key_file.with_extension("backup").display().to_string();
    let new_key_file = new_key_file.display().to_string();
    [
        vec!["org", "create", "--name", "Acme"],
        vec!["org", "list"],
        vec!["token", "list", "--org", "org-1"],
        vec!["token", "create", "--org", "org-1"],
        vec!["token", "revoke", "--access-token", "dak_x"],
        vec!["dkim", "export", "--domain", "example.com"],
        vec!["dkim", "sign", "--domain", "example.com"],
        vec!["jwt", "issue", "--org", "org-1"],
        vec!["master-key", "rotate", "--new-key-file", &new_key_file],
        vec!["backup", "--to", &backup],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(str::to_owned).collect())
    .collect()
}

/// The binary with `env` only (and PATH), in `dir`.
fn domain_api(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir);
    clear_env(&mut command);
    command.envs(env.iter().copied());
    command
}

#[test]
fn no_command_but_serve_and_migrate_creates_a_database_or_a_master_key() {
    let elsewhere = tempfile::tempdir().unwrap();
    let new_key_file = elsewhere.path().join("new.key");
    std::fs::write(
        &new_key_file,
        "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\n",
    )
    .unwrap();
    for args in commands(&new_key_file) {
        let dir = tempfile::tempdir().unwrap();
        let output = domain_api(dir.path(), &[("DOMAIN_API_JWT_SECRET", JWT_SECRET)])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let expected = format!(
            "no database at {}; set DOMAIN_API_DATABASE_URL",
            dir.path()
                .canonicalize()
                .unwrap()
                .join("data/domain-api.db")
                .display()
        );
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let left: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
}

#[test]
fn migrate_creates_the_database_and_its_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = domain_api(dir.path(), &[]).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("data/domain-api.db").exists());
    assert!(dir.path().join("data/master.key").exists());
    // …and the database then serves: the key beside it is its own.
    let output = domain_api(dir.path(), &[])
        .args(["org", "create", "--name", "Acme"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts the binary with `app`'s settings and waits for it to exit on its own
/// (a refused start); panics if it is still running after 30 s.
fn refused_start(app: &TestApp) -> (Option<i32>, String) {
    let env: Vec<(&str, &str)> = app
        .env
        .iter()
        .filter(|(k, _)| k != "DOMAIN_API_ADDR_FILE")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let child = domain_api(app.dir.path(), &env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    exit_within_30s(child, "the start was not refused")
}

/// The directory of `app`'s SQLite database.
fn database_dir(app: &TestApp) -> PathBuf {
    Path::new(
        app.env_value("DOMAIN_API_DATABASE_URL")
            .strip_prefix("sqlite://")
            .unwrap(),
    )
    .parent()
    .unwrap()
    .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_names_its_database_and_refuses_a_master_key_that_is_not_the_databases() {
    let mut app = spawn_app(BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@keys.example"}"#).status,
        201
    );
    let dir = database_dir(&app);
    let log = app.log();
    assert!(
        log.contains(&format!("{}", dir.join("test.db").display()))
            && log.contains(&format!("file {}", dir.join("master.key").display())),
        "the start names the database's absolute path and the master key's source:\n{log}"
    );
    app.kill();

    // The key file is gone: the start stops, and makes no new key.
    let key = dir.join("master.key");
    let original = std::fs::read_to_string(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let (code, stderr) = refused_start(&app);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("exists, but its master key cannot be loaded"),
        "{stderr}"
    );
    assert!(!key.exists(), "no new master key beside the database");

    // Another key: it opens none of the stored DKIM keys, so the start stops.
    std::fs::write(&key, "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\n").unwrap();
    let (code, stderr) = refused_start(&app);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("opens none of the 1 DKIM keys"), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("domain-api:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line says why: {stderr}");

    // The right key back: it serves again.
    std::fs::write(&key, original).unwrap();
    let again = crate::helpers::spawn_sibling(&app);
    assert_eq!(again.get("/readyz").unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_credentials_and_one_given_twice_stops_the_start() {
    let state = tempfile::tempdir().unwrap();
    let credentials = tempfile::tempdir().unwrap();
    let database = state.path().join("db/domain-api.db");
    let key = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
    for (name, value) in [
        ("master-key", key.to_owned()),
        ("jwt-secret", JWT_SECRET.to_owned()),
        ("database-url", format!("sqlite://{}", database.display())),
    ] {
        std::fs::write(credentials.path().join(name), format!("{value}\n")).unwrap();
    }
    let directory = credentials.path().display().to_string();
    let app = spawn_app_on(
        BackendKind::Sqlite,
        // Unset: the URL comes from the credential.
        "",
        Options {
            env: vec![("CREDENTIALS_DIRECTORY".into(), directory.clone())],
        },
    );
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@credentials.example"}"#)
            .status,
        201
    );
    let (ok, token, stderr) = app.cli(&["jwt", "issue", "--org", &org.id]);
    assert!(ok && token.starts_with("ey"), "{stderr}");
    assert!(
        database.exists(),
        "the database is where the credential says"
    );
    assert!(
        !database.parent().unwrap().join("master.key").exists(),
        "the key came from the credential: no key file"
    );
    let log = app.log();
    assert!(
        log.contains(&format!("credential master-key ({directory}/master-key)")),
        "{log}"
    );

    let output = domain_api(
        app.dir.path(),
        &[
            ("CREDENTIALS_DIRECTORY", directory.as_str()),
            ("DOMAIN_API_MASTER_KEY", key),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("DOMAIN_API_MASTER_KEY: given more than once"),
        "{stderr}"
    );
    assert!(!stderr.contains(key), "the key is never printed");
}
