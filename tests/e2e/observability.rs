//! `/metrics`, request ids and logs: what operators see, and that no secret is in it.

use store_diesel::BackendKind;

use crate::helpers::{Options, spawn_app_with};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_expose_requests_the_key_pool_dns_and_the_database_pool() {
    let options = Options {
        env: vec![("DOMAIN_API_KEY_POOL_SIZE".into(), "2".into())],
    };
    let app = spawn_app_with(BackendKind::Sqlite, options).await;
    let org = app.create_org("Acme");
    assert_eq!(
        app.generate(&org, r#"{"email":"a@metrics.example","inbound":true}"#)
            .status,
        201
    );
    assert_eq!(app.generate(&org, r#"{"email":"bad"}"#).status, 400);

    let metrics = app.get("/metrics").unwrap();

    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .content_type
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    for needle in [
        "domain_api_http_requests_total{route=\"/api/v1/emails/domains/generate\",method=\"POST\",status=\"201\"} 1",
        "domain_api_http_requests_total{route=\"/api/v1/emails/domains/generate\",method=\"POST\",status=\"400\"} 1",
        "domain_api_http_request_duration_seconds_count{route=\"/api/v1/emails/domains/generate\"} 2",
        "domain_api_key_pool_capacity 2",
        "domain_api_dns_lookups_total{type=\"MX\",outcome=",
        "domain_api_db_pool_max 4",
        "domain_api_db_pool_waiting 0",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "domain_api_build_info{version=\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains(&org.access) && !text.contains(&org.secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_request_ids_and_never_a_token_or_key() {
    let options = Options {
        env: vec![("DOMAIN_API_LOG_FORMAT".into(), "json".into())],
    };
    let app = spawn_app_with(BackendKind::Sqlite, options).await;
    let org = app.create_org("Acme");
    let created = app.generate(&org, r#"{"email":"a@logs.example"}"#);
    assert_eq!(created.status, 201);
    let request_id = created.header("x-request-id").unwrap().to_owned();
    let wrong = crate::helpers::Org {
        id: String::new(),
        access: org.access.clone(),
        secret: "das_wrong-secret-value".into(),
    };
    assert_eq!(app.generate(&wrong, "{}").status, 401);
    let (ok, pem, _) = app.cli(&["dkim", "export", "--domain", "logs.example"]);
    assert!(ok);
    let key_line = pem.lines().nth(1).unwrap().to_owned();

    let log = app.log();

    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "every line is JSON:\n{log}"
    );
    assert!(log.contains(&request_id), "the request id is logged");
    for secret in [
        &org.access,
        &org.secret,
        "das_wrong-secret-value",
        &key_line,
    ] {
        assert!(!log.contains(secret), "a secret leaked into the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_scrapes_are_logged_at_debug_only() {
    let app = spawn_app_with(BackendKind::Sqlite, Options::default()).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(path).unwrap().status, 200, "{path}");
    }
    assert_eq!(app.get("/no-such-page").unwrap().status, 404);

    let log = app.log();
    assert!(
        log.lines()
            .any(|l| l.contains("/no-such-page") && l.contains("handled")),
        "other requests are logged at INFO:\n{log}"
    );
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(
            !log.lines()
                .any(|l| l.contains(&format!("path={path}")) && l.contains("handled")),
            "{path} logged at INFO:\n{log}"
        );
    }
}

/// The address the server logged for its admin listener.
fn admin_addr(log: &str) -> Option<std::net::SocketAddr> {
    let line = log.lines().find(|l| l.contains("admin listening"))?;
    let at = line.find("addr=")? + "addr=".len();
    line[at..].split_whitespace().next()?.parse().ok()
}

#[test]
fn an_admin_listener_takes_the_operations_routes_off_the_public_one() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let log_file = dir.path().join("server.log");
    let mut child = Command::new(crate::helpers::BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "info")
        .env("DOMAIN_API_BIND", "127.0.0.1:0")
        .env("DOMAIN_API_ADMIN_BIND", "127.0.0.1:0")
        .env("DOMAIN_API_ADDR_FILE", &addr_file)
        .env("DOMAIN_API_VERIFIER", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log_file).unwrap()))
        .spawn()
        .unwrap();
    let public = crate::helpers::bound_addr(&mut child, &addr_file, dir.path());
    let log = std::fs::read_to_string(&log_file).unwrap();
    let admin = admin_addr(&log).unwrap_or_else(|| panic!("no admin address logged:\n{log}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = |addr: std::net::SocketAddr, path: &str| -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match agent.get(&format!("http://{addr}{path}")).call() {
                Ok(mut response) => {
                    let body = response.body_mut().read_to_string().unwrap_or_default();
                    return (response.status().as_u16(), body);
                }
                Err(error) if Instant::now() > deadline => panic!("{addr}{path}: {error}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
            assert_eq!(status(admin, path).0, 200, "admin {path}");
            assert_eq!(status(public, path).0, 404, "public {path}");
        }
        let (_, metrics) = status(admin, "/metrics");
        assert!(metrics.contains("process_open_fds "), "{metrics}");
        assert!(metrics.contains("domain_api_build_info{"), "{metrics}");
        let (_, document) = status(admin, "/api/v1/openapi.json");
        assert!(
            serde_json::from_str::<serde_json::Value>(&document).unwrap()["openapi"].is_string()
        );
        // The API and the Setup page stay on the public listener only.
        assert_eq!(status(admin, "/api/v1/emails/domains").0, 404);
        assert_eq!(status(public, "/api/v1/emails/domains").0, 401);
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
