//! Route tests of the webhook routes over domain-core's mocks.

use std::time::Duration;

use actix_web::test::TestRequest;
use domain_core::lifecycle::{Event, EventType, Paged};
use domain_core::ports::webhooks::{
    Attempt, CreateEndpointError, DeliveryState, DeliveryView, Endpoint, Health,
};
use domain_core::webhooks::WebhookId;
use serde_json::json;

use super::test_app::*;

fn id() -> WebhookId {
    WebhookId::from_random([1; 16])
}

fn create(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/v1/webhooks")
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_owned())
}

#[tokio::test]
async fn create_answers_201_with_the_secret_once_and_every_type_by_default() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_create_endpoint()
        .withf(|new, _| new.organization == org_a() && new.endpoint.events.is_none())
        .times(1)
        .returning(|_, _| Ok(()));
    let answer = call(
        mocks.state(),
        as_org_a(create(r#"{"url":"https://hooks.example.com/in"}"#)),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["id"], json!(id().as_str()));
    assert_eq!(body["url"], json!("https://hooks.example.com/in"));
    assert_eq!(body["events"].as_array().map(Vec::len), Some(14));
    // 24 bytes of 7, base64.
    assert_eq!(
        body["secret"],
        json!("whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH")
    );
    assert_eq!(body["createdAt"], json!("2026-11-26T16:15:47Z"));
}

#[tokio::test]
async fn create_refuses_bad_urls_event_types_and_bodies_with_one_sentence() {
    for (body, expected) in [
        (
            r#"{"url":"http://hooks.example.com/"}"#,
            "Invalid webhook URL: http://hooks.example.com/",
        ),
        (
            r#"{"url":"https://127.0.0.1/"}"#,
            "Invalid webhook URL: https://127.0.0.1/",
        ),
        (
            r#"{"url":"https://[::1]/"}"#,
            "Invalid webhook URL: https://[::1]/",
        ),
        (
            r#"{"url":"https://169.254.169.254/latest"}"#,
            "Invalid webhook URL: https://169.254.169.254/latest",
        ),
        (
            r#"{"url":"https://10.1.2.3/"}"#,
            "Invalid webhook URL: https://10.1.2.3/",
        ),
        (
            r#"{"url":"https://hooks.example.com/","events":["domain.nope"]}"#,
            "Unknown event type: domain.nope",
        ),
        (
            r#"{"url":"https://hooks.example.com/","events":[]}"#,
            "events must name at least one event type",
        ),
        (
            r#"{"url":"https://hooks.example.com/","events":"domain.verified"}"#,
            "events must be a list of event types",
        ),
        (r#"{"events":null}"#, "Missing webhook URL"),
        (r#"{"url":7}"#, "url must be a string"),
        (
            r#"["https://hooks.example.com/"]"#,
            "Malformed JSON body: the body is not a JSON object",
        ),
    ] {
        let answer = call(Mocks::new().state(), as_org_a(create(body))).await;
        assert_eq!(answer.text(), (400, expected), "{body}");
    }
}

#[tokio::test]
async fn create_answers_403_at_the_limit_and_401_without_tokens() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_create_endpoint()
        .returning(|_, _| Err(CreateEndpointError::LimitReached));
    let answer = call(
        mocks.state(),
        as_org_a(create(r#"{"url":"https://hooks.example.com/"}"#)),
    )
    .await;
    assert_eq!(answer.text(), (403, "Webhook limit reached"));

    let answer = call(
        Mocks::new().state(),
        create(r#"{"url":"https://hooks.example.com/"}"#),
    )
    .await;
    assert_eq!(answer.text(), (401, "Missing API credentials"));
    let answer = call(
        Mocks::new().state(),
        with_jwt(TestRequest::get().uri("/api/v1/webhooks"), &org_a()),
    )
    .await;
    assert_eq!(answer.text(), (401, "Missing API credentials"));
}

#[tokio::test]
async fn list_shows_endpoints_without_secrets() {
    let mut mocks = Mocks::new();
    mocks.webhooks.expect_list_endpoints().returning(|_| {
        Ok(vec![Endpoint {
            id: id(),
            url: "https://hooks.example.com/".into(),
            events: Some(vec![EventType::DomainVerified]),
            created_at: now(),
            health: Health::Degraded,
        }])
    });
    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::get().uri("/api/v1/webhooks")),
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"webhooks": [{
            "id": id().as_str(),
            "url": "https://hooks.example.com/",
            "events": ["domain.verified"],
            "createdAt": "2026-11-26T16:15:47Z",
            "health": "degraded"
        }]})
    );
}

#[tokio::test]
async fn delete_answers_204_or_404_for_another_organizations_or_a_malformed_id() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_delete_endpoint()
        .returning(|organization, _| Ok(organization == &org_a()));
    let state = actix_web::web::Data::new(mocks.state());
    let path = format!("/api/v1/webhooks/{}", id());
    let answer = call_shared(&state, as_org_a(TestRequest::delete().uri(&path))).await;
    assert_eq!(answer.status, 204);
    let answer = call_shared(&state, as_org_b(TestRequest::delete().uri(&path))).await;
    assert_eq!(answer.text(), (404, "Webhook not found"));
    let answer = call_shared(
        &state,
        as_org_a(TestRequest::delete().uri("/api/v1/webhooks/wh_nope")),
    )
    .await;
    assert_eq!(answer.text(), (404, "Webhook not found"));
}

#[tokio::test]
async fn deliveries_list_each_attempt_with_its_status_and_time() {
    let mut mocks = Mocks::new();
    mocks
        .webhooks
        .expect_list_deliveries()
        .returning(|_, _, _| {
            Ok(Some(Paged {
                items: vec![DeliveryView {
                    id: 3,
                    event: Event {
                        id: 42,
                        kind: EventType::DomainVerified,
                        domain: Some("example.com".into()),
                        selector: None,
                        email: None,
                        created_at: now(),
                    },
                    state: DeliveryState::Delivered,
                    next_attempt_at: None,
                    created_at: now(),
                    attempts: vec![
                        Attempt {
                            at: now(),
                            status_code: Some(500),
                            error: None,
                            duration: Duration::from_millis(12),
                        },
                        Attempt {
                            at: now(),
                            status_code: None,
                            error: Some("timeout".into()),
                            duration: Duration::from_millis(5000),
                        },
                    ],
                }],
                next: None,
            }))
        });
    let path = format!("/api/v1/webhooks/{}/deliveries?limit=10", id());
    let answer = call(mocks.state(), as_org_a(TestRequest::get().uri(&path))).await;
    assert_eq!(
        answer.json(),
        json!({"deliveries": [{
            "id": 3,
            "state": "delivered",
            "event": {"id": 42, "type": "domain.verified", "domain": "example.com", "createdAt": "2026-11-26T16:15:47Z", "data": {"domain": "example.com"}},
            "createdAt": "2026-11-26T16:15:47Z",
            "nextAttemptAt": null,
            "attempts": [
                {"at": "2026-11-26T16:15:47Z", "statusCode": 500, "error": null, "durationMs": 12},
                {"at": "2026-11-26T16:15:47Z", "statusCode": null, "error": "timeout", "durationMs": 5000}
            ]
        }], "next": null})
    );
}
