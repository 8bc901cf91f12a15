//! The admin CLI and start-up behaviour of the binary.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{BIN, Options, bound_addr, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread")]
async fn dkim_export_prints_the_private_half_of_the_published_key() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let org = app.create_org("Acme");
        let json = app
            .generate(&org, r#"{"email":"noreply@example.com"}"#)
            .json();
        let (name, value) = json.as_object().unwrap().iter().nth(1).unwrap();
        assert!(name.ends_with("._domainkey.example.com"));
        let published = value
            .as_str()
            .unwrap()
            .strip_prefix("v=DKIM1; k=rsa; p=")
            .unwrap();

        let (ok, pem, stderr) = app.cli(&["dkim", "export", "--domain", "Example.COM"]);

        assert!(ok, "{kind:?}: {stderr}");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let private = rsa::PrivateKey::from_pkcs8_der(&STANDARD.decode(body).unwrap()).unwrap();
        let public = private.to_public_key().to_public_key_der().unwrap();
        assert_eq!(STANDARD.encode(public.as_bytes()), published);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_export_of_an_unknown_domain_fails_clearly() {
    let app = spawn_app(BackendKind::Sqlite).await;
    let (ok, stdout, stderr) = app.cli(&["dkim", "export", "--domain", "nowhere.example"]);
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("no domain nowhere.example"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_issues_a_working_pair_and_rejects_unknown_orgs() {
    let app = spawn_app(BackendKind::Sqlite).await;
    let org = app.create_org("Acme");

    let (ok, stdout, _) = app.cli(&["token", "create", "--org", &org.id]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["organizationId"], org.id.as_str());
    let second = crate::helpers::Org {
        id: org.id.clone(),
        access: json["accessToken"].as_str().unwrap().into(),
        secret: json["secretToken"].as_str().unwrap().into(),
    };
    assert_eq!(
        app.generate(&second, r#"{"email":"a@example.com"}"#).status,
        201
    );

    let (ok, _, stderr) = app.cli(&["token", "create", "--org", "no-such-org"]);
    assert!(!ok);
    assert!(stderr.contains("no organization has that id"), "{stderr}");
}

#[test]
fn bad_configuration_fails_at_start_with_one_line_naming_the_variable() {
    let output = Command::new(BIN)
        .env_clear()
        .env("DOMAIN_API_DNS_TIMEOUT_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DOMAIN_API_DNS_TIMEOUT_MS"), "{stderr}");

    let output = Command::new(BIN)
        .env_clear()
        .env("DOMAIN_API_DATABASE_URL", "postgres://u:p@127.0.0.1:1/db")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DOMAIN_API_MASTER_KEY") && stderr.contains("required"),
        "{stderr}"
    );
}

#[test]
fn with_no_configuration_but_the_address_it_serves_the_embedded_default() {
    // The default address itself (127.0.0.1:8080) is `config::defaults_to_the_embedded_sqlite_setup`;
    // binding it here would need the port free on the test machine.
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("DOMAIN_API_BIND", "127.0.0.1:0")
        .env("DOMAIN_API_ADDR_FILE", &addr_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = bound_addr(&mut child, &addr_file, dir.path());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut healthy = false;
    while Instant::now() < deadline && !healthy {
        healthy = agent
            .get(&format!("http://{addr}/readyz"))
            .call()
            .is_ok_and(|r| r.status() == 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();

    assert!(healthy, "the default server did not answer on {addr}");
    assert!(dir.path().join("data/domain-api.db").exists());
    let key = dir.path().join("data/master.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

fn published_key(json: &serde_json::Value) -> String {
    let value = json
        .as_object()
        .unwrap()
        .iter()
        .nth(1)
        .unwrap()
        .1
        .as_str()
        .unwrap();
    value.strip_prefix("v=DKIM1; k=rsa; p=").unwrap().to_owned()
}

fn public_half_of(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let private = rsa::PrivateKey::from_pkcs8_der(&STANDARD.decode(body).unwrap()).unwrap();
    STANDARD.encode(
        private
            .to_public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn master_key_rotation_reseals_every_key_under_the_new_key() {
    for kind in backends() {
        let options = Options {
            env: [
                ("DOMAIN_API_WEBHOOK_ALLOW_HTTP", "1"),
                ("DOMAIN_API_WEBHOOK_ALLOW_PRIVATE", "1"),
                ("DOMAIN_API_WEBHOOK_SENDER", "off"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        };
        let app = spawn_app_with(kind, options).await;
        let org = app.create_org("Acme");
        // A webhook's signing secret is sealed under the master key too.
        let webhook = app.request(
            "POST",
            "/api/v1/webhooks",
            &[
                ("X-Api-Access-Token", org.access.as_str()),
                ("X-Api-Secret-Token", org.secret.as_str()),
                ("Content-Type", "application/json"),
            ],
            br#"{"url":"http://127.0.0.1:1024/hook"}"#,
        );
        assert_eq!(webhook.status, 201, "{}", webhook.body);
        let one = published_key(
            &app.generate(&org, r#"{"email":"a@rot-one.example"}"#)
                .json(),
        );
        let two = published_key(
            &app.generate(&org, r#"{"email":"b@rot-two.example"}"#)
                .json(),
        );
        let db_dir = std::path::Path::new(
            app.env_value("DOMAIN_API_DATABASE_URL")
                .trim_start_matches("sqlite://"),
        )
        .parent()
        .unwrap()
        .to_path_buf();
        let old_key = match kind {
            BackendKind::Postgres => app.env_value("DOMAIN_API_MASTER_KEY").to_owned(),
            BackendKind::Sqlite => std::fs::read_to_string(db_dir.join("master.key"))
                .unwrap()
                .trim()
                .to_owned(),
        };
        let new_key = STANDARD.encode([42u8; 32]);
        let new_key_file = app.dir.path().join("new.key");
        std::fs::write(&new_key_file, format!("{new_key}\n")).unwrap();

        let (ok, stdout, stderr) = app.cli(&[
            "master-key",
            "rotate",
            "--new-key-file",
            new_key_file.to_str().unwrap(),
        ]);

        assert!(ok, "{kind:?}: {stderr}");
        assert_eq!(
            stdout.trim(),
            r#"{"resealed":2,"webhookSecrets":1,"answers":0}"#
        );
        assert!(
            !stderr.contains(&new_key) && !stderr.contains(&old_key),
            "no key is printed"
        );
        if kind == BackendKind::Sqlite {
            let file = std::fs::read_to_string(db_dir.join("master.key")).unwrap();
            assert_eq!(file.trim(), new_key, "the key file now holds the new key");
            assert_eq!(
                std::fs::metadata(db_dir.join("master.key"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600
            );
        }
        for (domain, published) in [("rot-one.example", &one), ("rot-two.example", &two)] {
            let (ok, pem, stderr) = app.cli_with(
                &[("DOMAIN_API_MASTER_KEY", &new_key)],
                &["dkim", "export", "--domain", domain],
            );
            assert!(ok, "{kind:?} {domain}: {stderr}");
            assert_eq!(
                &public_half_of(&pem),
                published,
                "{domain}: the same key, re-sealed"
            );
            let (ok, _, stderr) = app.cli_with(
                &[("DOMAIN_API_MASTER_KEY", &old_key)],
                &["dkim", "export", "--domain", domain],
            );
            assert!(!ok, "{kind:?}: the old key no longer opens it");
            assert!(
                stderr.contains("does not open under this master key"),
                "{stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_with_a_bad_new_key_changes_nothing() {
    let app = spawn_app(BackendKind::Sqlite).await;
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@rot.example"}"#).status,
        201
    );
    let bad = app.dir.path().join("bad.key");
    std::fs::write(&bad, "not-a-key").unwrap();

    let (ok, _, stderr) = app.cli(&[
        "master-key",
        "rotate",
        "--new-key-file",
        bad.to_str().unwrap(),
    ]);

    assert!(!ok);
    assert!(stderr.contains("not valid base64"), "{stderr}");
    let (ok, _, _) = app.cli(&["dkim", "export", "--domain", "rot.example"]);
    assert!(ok, "the current key still opens everything");
}

#[tokio::test(flavor = "multi_thread")]
async fn org_list_and_token_list_print_json_lines_without_a_secret() {
    for kind in backends() {
        let app = spawn_app(kind).await;
        let acme = app.create_org("Acme");
        let other = app.create_org("Other");
        let (ok, second, _) = app.cli(&["token", "create", "--org", &acme.id]);
        assert!(ok);
        let (ok, _, stderr) = app.cli(&["token", "revoke", "--access-token", &acme.access]);
        assert!(ok, "{stderr}");

        let (ok, stdout, stderr) = app.cli(&["org", "list"]);
        assert!(ok, "{kind:?}: {stderr}");
        let orgs: Vec<serde_json::Value> = stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(orgs.len(), 2, "{stdout}");
        assert_eq!(orgs[0]["organizationId"], acme.id.as_str());
        assert_eq!(orgs[0]["name"], "Acme");
        assert_eq!(orgs[1]["organizationId"], other.id.as_str());
        assert_eq!(orgs[1]["name"], "Other");
        for org in &orgs {
            let created = org["createdAt"].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(created).is_ok(),
                "{created}"
            );
        }

        let (ok, stdout, stderr) = app.cli(&["token", "list", "--org", &acme.id]);
        assert!(ok, "{kind:?}: {stderr}");
        let tokens: Vec<serde_json::Value> = stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(tokens.len(), 2, "{stdout}");
        assert!(
            tokens[0]["revokedAt"].is_string(),
            "the first pair was revoked"
        );
        assert!(tokens[1]["revokedAt"].is_null(), "the second is live");
        assert!(
            tokens
                .iter()
                .all(|t| t["organizationId"] == acme.id.as_str()
                    && t["tokenId"].is_i64()
                    && t["createdAt"].is_string())
        );
        let second: serde_json::Value = serde_json::from_str(&second).unwrap();
        for secret in [
            acme.access.as_str(),
            acme.secret.as_str(),
            second["accessToken"].as_str().unwrap(),
            second["secretToken"].as_str().unwrap(),
            "dak_",
            "das_",
        ] {
            assert!(!stdout.contains(secret), "{stdout}");
        }

        let (ok, _, stderr) = app.cli(&["token", "list", "--org", "no-such-org"]);
        assert!(!ok);
        assert!(stderr.contains("no organization has that id"), "{stderr}");
    }
}

/// A start's command line, its variables, and what is expected of it.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// Runs the binary in `dir` with only `env` (and PATH), waiting for it to end.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    crate::helpers::clear_env(&mut command);
    let output = command
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_setting_from_the_command_line_or_the_file_stops_the_start_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "bind = \"127.0.0.1:0\"\nwebhook_timeout_ms = 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("unknown.toml"),
        "bind = \"127.0.0.1:0\"\nbnid = 1\n",
    )
    .unwrap();
    let cases: [Case; 4] = [
        (
            &["serve", "--dns-timeout-ms", "soon"],
            &[],
            "DOMAIN_API_DNS_TIMEOUT_MS: expected a whole number",
        ),
        (
            &["--config", "config.toml"],
            &[],
            "DOMAIN_API_WEBHOOK_TIMEOUT_MS: must be between 1 and 60000 (webhook_timeout_ms in config.toml)",
        ),
        (
            &[],
            &[("DOMAIN_API_CONFIG", "unknown.toml")],
            "DOMAIN_API_CONFIG: unknown.toml: unknown setting \"bnid\"",
        ),
        (
            &[
                "org",
                "list",
                "--master-key",
                "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0",
            ],
            &[],
            "DOMAIN_API_MASTER_KEY: ",
        ),
    ];
    for (args, env, expected) in cases {
        let (code, stderr) = run_in(dir.path(), args, env);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("domain-api: invalid configuration: {expected}")),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("c2VjcmV0"), "a secret is never echoed");
    }
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["config.toml", "unknown.toml"], "nothing was created");
}

#[test]
fn the_command_line_wins_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "bind = \"127.0.0.1:0\"\nkey_pool_size = 0\naddr_file = \"file.addr\"\n",
    )
    .unwrap();
    let config = [("DOMAIN_API_CONFIG", "config.toml"), ("RUST_LOG", "warn")];
    let env_too = [config[0], config[1], ("DOMAIN_API_ADDR_FILE", "env.addr")];
    let cases: [Case; 3] = [
        (&[], &config, "file.addr"),
        (&[], &env_too, "env.addr"),
        (&["serve", "--addr-file", "cli.addr"], &env_too, "cli.addr"),
    ];
    for (args, env, written) in cases {
        let mut command = Command::new(BIN);
        crate::helpers::clear_env(&mut command);
        let mut child = command
            .current_dir(dir.path())
            .args(args)
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = bound_addr(&mut child, &dir.path().join(written), dir.path());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(addr.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
        for other in ["file.addr", "env.addr", "cli.addr"] {
            assert_eq!(
                dir.path().join(other).exists(),
                other == written,
                "{args:?} {env:?}: {other}"
            );
        }
        std::fs::remove_file(dir.path().join(written)).unwrap();
    }
}

#[test]
fn serve_help_lists_every_variable_of_the_readme_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    crate::helpers::clear_env(&mut command);
    let output = command
        .current_dir(dir.path())
        .args(["serve", "--help"])
        .env(
            "DOMAIN_API_MASTER_KEY",
            "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let variables: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .filter(|variable| *variable != "RUST_LOG")
        .collect();
    assert!(variables.len() > 40, "{variables:?}");
    for variable in variables {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable}:\n{help}"
        );
    }
    assert!(
        !help.contains("KioqKioq"),
        "a secret's value is not shown: {help}"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
