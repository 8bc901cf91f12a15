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
