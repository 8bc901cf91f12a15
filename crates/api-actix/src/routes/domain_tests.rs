//! Route tests of one domain: the detail JSON, rotate, the inbound toggle, delete,
//! verify, the JWT-or-tokens rule and route precedence, over domain-core's mocks.

use actix_web::test::TestRequest;
use domain_core::lifecycle::KeyState;
use domain_core::ports::InfraError;
use domain_core::ports::lifecycle::RotateError;
use domain_core::{DkimKey, SealedKey, Selector};
use mockall::predicate::{always, eq};
use serde_json::json;

use super::test_app::*;

const DOMAIN: &str = "/api/v1/emails/domains/example.com";

fn patch(body: &str) -> TestRequest {
    TestRequest::patch()
        .uri(DOMAIN)
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_owned())
}

#[tokio::test]
async fn the_detail_shows_status_times_every_key_and_every_record_to_publish() {
    let mut mocks = Mocks::new();
    let mut pending = key("s2", KeyState::Pending, "MIIBNEW");
    pending.created_at = now() + chrono::TimeDelta::seconds(60);
    let mut active = key("s1", KeyState::Active, "MIIBOLD");
    active.activated_at = Some(now());
    let mut revoked = key("s0", KeyState::Revoked, "MIIBGONE");
    revoked.retired_at = Some(now() - chrono::TimeDelta::days(40));
    revoked.revoked_at = Some(now() - chrono::TimeDelta::days(31));
    let mut detail = detail(vec![pending, active, revoked]);
    detail.domain.last_checked_at = Some(now());
    mocks.serve(detail);

    let answer = call(mocks.state(), as_org_a(TestRequest::get().uri(DOMAIN))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["verifiedAt"], serde_json::Value::Null);
    assert_eq!(body["lastCheckedAt"], "2026-11-26T16:15:47Z");
    assert_eq!(body["nextCheckAt"], serde_json::Value::Null);
    assert_eq!(body["inboundEnabled"], false);
    // No check has found the zone: the registrable domain, said so.
    assert_eq!(body["zone"], "example.com");
    assert_eq!(body["zoneSource"], "registrable");
    assert_eq!(body["senders"][0]["email"], "noreply@example.com");
    let dkim = body["dkim"].as_array().unwrap();
    let states: Vec<&str> = dkim.iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending", "active", "revoked"]);
    assert_eq!(
        dkim[1],
        json!({
            "selector": "s1",
            "state": "active",
            "record": {
                "type": "TXT",
                "host": "s1._domainkey",
                "zone": "example.com",
                "name": "s1._domainkey.example.com",
                "ttl": 3600,
                "value": "v=DKIM1; k=rsa; p=MIIBOLD",
                "strings": ["v=DKIM1; k=rsa; p=MIIBOLD"]
            },
            "createdAt": "2026-11-26T16:15:47Z",
            "activatedAt": "2026-11-26T16:15:47Z",
            "retiredAt": null,
            "revokedAt": null,
            "safeToRemove": false
        })
    );
    assert_eq!(dkim[0]["createdAt"], "2026-11-26T16:16:47Z");
    assert_eq!(dkim[2]["record"]["value"], "v=DKIM1; k=rsa; p=");
    assert_eq!(dkim[2]["revokedAt"], "2026-10-26T16:15:47Z");
    assert_eq!(dkim[2]["safeToRemove"], true);
    let names: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "example.com",
            "s2._domainkey.example.com",
            "s1._domainkey.example.com",
            "s0._domainkey.example.com",
            "_dmarc.example.com",
        ]
    );
}

#[tokio::test]
async fn the_detail_takes_a_dashboard_jwt_when_no_token_header_is_sent() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());

    let answer = call(
        mocks.state(),
        with_jwt(TestRequest::get().uri(DOMAIN), &org_a()),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["domain"], "example.com");
}

/// The Setup page downloads the zone file with the dashboard JWT.
#[tokio::test]
async fn the_zone_file_takes_a_dashboard_jwt_and_refuses_other_organizations() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    let state = actix_web::web::Data::new(mocks.state());
    let zone = || TestRequest::get().uri("/api/v1/emails/domains/example.com/zone");

    let answer = call_shared(&state, with_jwt(zone(), &org_a())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.content_type, TEXT);
    assert!(
        answer.body.contains("example.com. 3600 IN TXT"),
        "{}",
        answer.body
    );

    let other = call_shared(&state, with_jwt(zone(), &org_b())).await;
    assert_eq!(other.text(), (404, "Domain not found"));
    let none = call_shared(&state, zone()).await;
    assert_eq!(none.text(), (401, "Missing API credentials"));
}

#[tokio::test]
async fn api_tokens_decide_whenever_a_token_header_is_sent() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    let state = mocks.state();
    let request = with_jwt(TestRequest::get().uri(DOMAIN), &org_a())
        .insert_header(("X-Api-Access-Token", "acc-a"))
        .insert_header(("X-Api-Secret-Token", "wrong"));

    let answer = call(state, request).await;

    assert_eq!(answer.text(), (401, "Invalid API credentials"));
}

#[tokio::test]
async fn only_the_access_token_header_is_missing_credentials_even_with_a_valid_jwt() {
    let state = Mocks::new().state();
    let request = with_jwt(TestRequest::get().uri(DOMAIN), &org_a())
        .insert_header(("X-Api-Access-Token", "acc-a"));

    assert_eq!(
        call(state, request).await.text(),
        (401, "Missing API credentials")
    );
}

#[tokio::test]
async fn a_bad_bearer_token_is_refused_as_a_bearer_token() {
    let state = Mocks::new().state();
    let request = TestRequest::get()
        .uri(DOMAIN)
        .insert_header(("Authorization", "Bearer not.a.jwt"));

    let answer = call(state, request).await;

    assert_eq!(answer.text(), (401, "Invalid or missing bearer token"));
    assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"));
}

#[tokio::test]
async fn without_a_jwt_secret_a_bearer_token_is_no_credential() {
    let mut mocks = Mocks::new();
    mocks.jwt = false;
    let request = with_jwt(TestRequest::get().uri(DOMAIN), &org_a());

    assert_eq!(
        call(mocks.state(), request).await.text(),
        (401, "Missing API credentials")
    );
}

#[tokio::test]
async fn no_credentials_at_all_is_missing_api_credentials() {
    for request in [
        TestRequest::get().uri(DOMAIN),
        TestRequest::post().uri("/api/v1/emails/domains/example.com/verify"),
        patch(r#"{"inbound":false}"#),
        TestRequest::get()
            .uri(DOMAIN)
            .insert_header(("Authorization", "Basic YTpi")),
    ] {
        assert_eq!(
            call(Mocks::new().state(), request).await.text(),
            (401, "Missing API credentials")
        );
    }
}

#[tokio::test]
async fn a_jwt_alone_is_no_credential_on_the_token_only_routes() {
    for request in [
        TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate"),
        TestRequest::delete().uri(DOMAIN),
        TestRequest::get().uri("/api/v1/emails/domains"),
        TestRequest::get().uri("/api/v1/emails/senders"),
        TestRequest::post().uri("/api/v1/emails/senders/a@example.com/activate"),
        TestRequest::delete().uri("/api/v1/emails/senders/a@example.com"),
        TestRequest::get().uri("/api/v1/events"),
    ] {
        let answer = call(Mocks::new().state(), with_jwt(request, &org_a())).await;
        assert_eq!(answer.text(), (401, "Missing API credentials"));
    }
}

fn new_key() -> DkimKey {
    DkimKey {
        selector: Selector::new("s2").unwrap(),
        public_key: "MIIBNEW".into(),
        sealed_private_key: SealedKey(vec![1, 2, 3]),
    }
}

#[tokio::test]
async fn rotate_answers_202_with_the_new_pending_key() {
    let mut mocks = Mocks::new();
    let served = mocks.serve(active_only());
    mocks
        .keys
        .expect_generate()
        .times(1)
        .returning(|_| Ok(new_key()));
    mocks
        .lifecycle
        .expect_start_rotation()
        .with(
            eq(org_a()),
            eq(domain_core::DomainName::parse("example.com").unwrap()),
            always(),
            eq(now()),
        )
        .times(1)
        .returning(move |_, _, key, at| {
            let mut detail = served.lock().unwrap();
            let mut pending = key_record(&key);
            pending.created_at = at;
            detail.as_mut().unwrap().keys.insert(0, pending);
            Ok(())
        });

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate")),
    )
    .await;

    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.json();
    assert_eq!(body["dkim"][0]["selector"], "s2");
    assert_eq!(body["dkim"][0]["state"], "pending");
    assert_eq!(body["dkim"][1]["state"], "active");
    assert_eq!(body["records"].as_array().unwrap().len(), 4);
}

fn key_record(key: &DkimKey) -> domain_core::lifecycle::KeyRecord {
    let mut record = super::test_app::key(key.selector.as_str(), KeyState::Pending, "");
    record.public_key.clone_from(&key.public_key);
    record
}

#[tokio::test]
async fn rotate_refuses_while_a_key_is_pending() {
    let mut mocks = Mocks::new();
    let mut active = key("s1", KeyState::Active, "MIIBOLD");
    active.activated_at = Some(now());
    mocks.serve(detail(vec![
        key("s2", KeyState::Pending, "MIIBNEW"),
        active,
    ]));
    mocks.keys.expect_generate().never();

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate")),
    )
    .await;

    assert_eq!(
        answer.text(),
        (409, "A DKIM rotation is already in progress")
    );
}

#[tokio::test]
async fn rotate_losing_a_race_in_the_store_is_the_same_409() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    mocks.keys.expect_generate().returning(|_| Ok(new_key()));
    mocks
        .lifecycle
        .expect_start_rotation()
        .returning(|_, _, _, _| Err(RotateError::InProgress));

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate")),
    )
    .await;

    assert_eq!(
        answer.text(),
        (409, "A DKIM rotation is already in progress")
    );
}

/// Domain Connect not configured (as in these mocks): the domain's own organization
/// gets the sentence with either credential, another organization the usual 404,
/// a bad name the usual 400.
#[tokio::test]
async fn connect_answers_the_unsupported_sentence_and_refuses_other_organizations() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    let state = actix_web::web::Data::new(mocks.state());
    let connect = || TestRequest::get().uri("/api/v1/emails/domains/example.com/connect");

    let answer = call_shared(&state, with_jwt(connect(), &org_a())).await;
    assert_eq!(
        answer.text(),
        (
            404,
            "DNS provider does not support Domain Connect for this domain"
        )
    );
    let answer = call_shared(&state, as_org_a(connect())).await;
    assert_eq!(
        answer.text(),
        (
            404,
            "DNS provider does not support Domain Connect for this domain"
        )
    );
    let other = call_shared(&state, with_jwt(connect(), &org_b())).await;
    assert_eq!(other.text(), (404, "Domain not found"));
    let none = call_shared(&state, connect()).await;
    assert_eq!(none.text(), (401, "Missing API credentials"));
    let bad = TestRequest::get().uri("/api/v1/emails/domains/not_a_domain/connect");
    let answer = call_shared(&state, as_org_a(bad)).await;
    assert_eq!(answer.text(), (400, "Invalid domain: not_a_domain"));
    let post = TestRequest::post().uri("/api/v1/emails/domains/example.com/connect");
    assert_eq!(call_shared(&state, as_org_a(post)).await.status, 405);
}

#[tokio::test]
async fn another_organization_s_domain_is_not_found_on_every_domain_route() {
    let requests = || {
        [
            TestRequest::get().uri(DOMAIN),
            TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate"),
            TestRequest::post().uri("/api/v1/emails/domains/example.com/verify"),
            patch(r#"{"inbound":false}"#),
            TestRequest::delete().uri(DOMAIN),
        ]
    };
    for request in requests() {
        let mut mocks = Mocks::new();
        mocks.serve(active_only());
        mocks
            .lifecycle
            .expect_delete_domain()
            .with(eq(org_b()), always())
            .returning(|_, _| Ok(false));
        let answer = call(mocks.state(), as_org_b(request)).await;
        assert_eq!(answer.text(), (404, "Domain not found"));
    }
    // …and exactly like a domain nobody has.
    let missing = "/api/v1/emails/domains/missing.example";
    for request in [
        TestRequest::get().uri(missing),
        TestRequest::post().uri(&format!("{missing}/dkim/rotate")),
        TestRequest::post().uri(&format!("{missing}/verify")),
    ] {
        let mut mocks = Mocks::new();
        mocks.serve(active_only());
        let answer = call(mocks.state(), as_org_a(request)).await;
        assert_eq!(answer.text(), (404, "Domain not found"));
    }
}

#[tokio::test]
async fn an_invalid_domain_is_echoed_on_every_domain_route() {
    let bad = "/api/v1/emails/domains/not_a_domain";
    for request in [
        TestRequest::get().uri(bad),
        TestRequest::post().uri(&format!("{bad}/dkim/rotate")),
        TestRequest::post().uri(&format!("{bad}/verify")),
        TestRequest::delete().uri(bad),
        TestRequest::patch()
            .uri(bad)
            .insert_header(("Content-Type", "application/json"))
            .set_payload(r#"{"inbound":true}"#),
    ] {
        let answer = call(Mocks::new().state(), as_org_a(request)).await;
        assert_eq!(answer.text(), (400, "Invalid domain: not_a_domain"));
    }
}

#[tokio::test]
async fn patch_turns_inbound_off_and_answers_the_detail() {
    let mut mocks = Mocks::new();
    let mut on = active_only();
    on.domain.inbound_enabled = true;
    let served = mocks.serve(on);
    mocks
        .lifecycle
        .expect_set_inbound()
        .with(eq(org_a()), always(), eq(false))
        .times(1)
        .returning(move |_, _, enabled| {
            served
                .lock()
                .unwrap()
                .as_mut()
                .unwrap()
                .domain
                .inbound_enabled = enabled;
            Ok(true)
        });

    let answer = call(mocks.state(), as_org_a(patch(r#"{"inbound":false}"#))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["inboundEnabled"], false);
    assert_eq!(answer.json()["domain"], "example.com");
}

#[tokio::test]
async fn patch_takes_a_dashboard_jwt() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    mocks
        .lifecycle
        .expect_set_inbound()
        .with(eq(org_a()), always(), eq(false))
        .times(1)
        .returning(|_, _, _| Ok(true));

    let answer = call(
        mocks.state(),
        with_jwt(patch(r#"{"inbound":false}"#), &org_a()),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn patch_refuses_inbound_without_the_mx_naming_the_configured_hosts() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    mocks.lifecycle.expect_set_inbound().never();

    let answer = call(mocks.state(), as_org_a(patch(r#"{"inbound":true}"#))).await;

    assert_eq!(
        answer.text(),
        (
            409,
            "Inbound requires an MX record pointing at inbound.sendtrim.com or smtp.sendtrim.com"
        )
    );
}

#[tokio::test]
async fn patch_reads_only_a_json_boolean() {
    for (body, sentence) in [
        ("{}", "Missing inbound flag: expected true or false"),
        (
            r#"{"inbound":null}"#,
            "Missing inbound flag: expected true or false",
        ),
        (
            r#"{"inbound":"yes"}"#,
            "Invalid inbound flag: expected true or false",
        ),
        (
            r#"{"inbound":0}"#,
            "Invalid inbound flag: expected true or false",
        ),
        (
            "nope",
            "Malformed JSON body: the body is not valid JSON (line 1, column 2)",
        ),
    ] {
        let answer = call(Mocks::new().state(), as_org_a(patch(body))).await;
        assert_eq!(answer.text(), (400, sentence), "{body}");
    }
}

#[tokio::test]
async fn patch_wants_json_of_at_most_16_kib() {
    let wrong_type = TestRequest::patch()
        .uri(DOMAIN)
        .insert_header(("Content-Type", "text/plain"))
        .set_payload(r#"{"inbound":false}"#);
    assert_eq!(
        call(Mocks::new().state(), as_org_a(wrong_type))
            .await
            .text(),
        (415, "Content-Type must be application/json")
    );
    let large = format!(r#"{{"inbound":false,"pad":"{}"}}"#, "x".repeat(16 * 1024));
    assert_eq!(
        call(Mocks::new().state(), as_org_a(patch(&large)))
            .await
            .text(),
        (413, "Request body is larger than 16384 bytes")
    );
}

#[tokio::test]
async fn delete_answers_204_without_a_body() {
    let mut mocks = Mocks::new();
    mocks
        .lifecycle
        .expect_delete_domain()
        .with(
            eq(org_a()),
            eq(domain_core::DomainName::parse("example.com").unwrap()),
        )
        .times(1)
        .returning(|_, _| Ok(true));

    let answer = call(mocks.state(), as_org_a(TestRequest::delete().uri(DOMAIN))).await;

    assert_eq!((answer.status, answer.body.as_str()), (204, ""));
}

#[tokio::test]
async fn verify_answers_the_validate_report_and_applies_the_check() {
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    mocks
        .lifecycle
        .expect_apply_check()
        .times(1)
        .returning(|_| Ok(true));

    let answer = call(
        mocks.state(),
        with_jwt(
            TestRequest::post().uri("/api/v1/emails/domains/example.com/verify"),
            &org_a(),
        ),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["domain"], "example.com");
    assert_eq!(body["verified"], false);
    let kinds: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["SPF", "DKIM", "DMARC"]);
    assert_eq!(body["records"][1]["status"], "missing");
    assert_eq!(body["inbound"]["enabled"], false);
}

#[tokio::test]
async fn a_store_failure_answers_each_route_s_own_500_sentence() {
    let failing = || InfraError::Unexpected("db exploded".into());
    let mut mocks = Mocks::new();
    mocks.serve(active_only());
    mocks.keys.expect_generate().returning(|_| Ok(new_key()));
    mocks
        .lifecycle
        .expect_start_rotation()
        .returning(move |_, _, _, _| Err(RotateError::Infra(failing())));
    mocks
        .lifecycle
        .expect_delete_domain()
        .returning(move |_, _| Err(failing()));
    mocks
        .lifecycle
        .expect_set_inbound()
        .returning(move |_, _, _| Err(failing()));
    mocks
        .lifecycle
        .expect_apply_check()
        .returning(move |_| Err(failing()));
    let state = actix_web::web::Data::new(mocks.state());
    for (request, sentence) in [
        (
            TestRequest::post().uri("/api/v1/emails/domains/example.com/dkim/rotate"),
            "Failed to rotate the DKIM key.",
        ),
        (
            TestRequest::delete().uri(DOMAIN),
            "Failed to delete the domain.",
        ),
        (
            patch(r#"{"inbound":false}"#),
            "Failed to update the domain.",
        ),
        (
            TestRequest::post().uri("/api/v1/emails/domains/example.com/verify"),
            "Failed to verify DNS records.",
        ),
    ] {
        let answer = call_shared(&state, as_org_a(request)).await;
        assert_eq!(answer.status, 500, "{sentence}");
        assert_eq!(answer.content_type, "application/json");
        assert_eq!(answer.json(), json!({ "error": sentence }));
    }
}

#[tokio::test]
async fn generate_keeps_its_path_and_the_domain_path_lists_its_methods() {
    // POST …/generate is generate's (401 before its body), never a domain's verify.
    let answer = call(
        Mocks::new().state(),
        TestRequest::post().uri("/api/v1/emails/domains/generate"),
    )
    .await;
    assert_eq!(answer.text(), (401, "Missing API credentials"));
    for method in ["GET", "PATCH", "DELETE"] {
        let request = TestRequest::default()
            .method(method.parse().unwrap())
            .uri("/api/v1/emails/domains/generate");
        let answer = call(Mocks::new().state(), as_org_a(request)).await;
        assert_eq!(answer.text(), (405, "Method not allowed"), "{method}");
        assert_eq!(answer.allow.as_deref(), Some("POST"));
    }
    let answer = call(Mocks::new().state(), TestRequest::put().uri(DOMAIN)).await;
    assert_eq!(answer.text(), (405, "Method not allowed"));
    assert_eq!(answer.allow.as_deref(), Some("GET, PATCH, DELETE"));
    for (path, allow) in [
        ("/api/v1/emails/domains/example.com/dkim/rotate", "POST"),
        ("/api/v1/emails/domains/example.com/verify", "POST"),
        ("/api/v1/emails/senders", "GET"),
        ("/api/v1/emails/senders/a@example.com/activate", "POST"),
        ("/api/v1/emails/senders/a@example.com", "DELETE"),
        ("/api/v1/events", "GET"),
    ] {
        let answer = call(Mocks::new().state(), TestRequest::put().uri(path)).await;
        assert_eq!(answer.status, 405, "{path}");
        assert_eq!(answer.allow.as_deref(), Some(allow), "{path}");
    }
}
