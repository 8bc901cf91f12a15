//! Route tests of the senders and events routes and their pagination, over
//! domain-core's mocks.

use actix_web::test::TestRequest;
use domain_core::lifecycle::{Event, EventType, Page, Paged};
use domain_core::ports::InfraError;
use domain_core::ports::lifecycle::SenderView;
use mockall::predicate::eq;
use serde_json::json;

use super::test_app::*;

fn sender(email: &str, active: bool) -> SenderView {
    SenderView {
        email: email.into(),
        domain: email.rsplit('@').next().unwrap_or_default().into(),
        reply_to: None,
        active,
        created_at: now(),
    }
}

#[tokio::test]
async fn lists_senders_a_page_at_a_time() {
    let mut mocks = Mocks::new();
    mocks
        .senders
        .expect_list_senders()
        .with(
            eq(org_a()),
            eq(Page {
                after: Some("a@example.com".to_owned()),
                limit: 2,
            }),
        )
        .times(1)
        .returning(|_, _| {
            Ok(Paged {
                items: vec![
                    sender("b@example.com", true),
                    sender("c@example.com", false),
                ],
                next: Some("c@example.com".into()),
            })
        });

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::get().uri("/api/v1/emails/senders?limit=2&after=a@example.com")),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({
            "senders": [
                {"email": "b@example.com", "domain": "example.com", "replyTo": null, "active": true, "createdAt": "2026-11-26T16:15:47Z"},
                {"email": "c@example.com", "domain": "example.com", "replyTo": null, "active": false, "createdAt": "2026-11-26T16:15:47Z"}
            ],
            "next": "c@example.com"
        })
    );
}

#[tokio::test]
async fn list_routes_refuse_a_limit_outside_1_to_1000_and_an_unreadable_after() {
    for path in [
        "/api/v1/emails/senders?limit=0",
        "/api/v1/emails/senders?limit=1001",
        "/api/v1/events?limit=0",
        "/api/v1/events?limit=ten",
        "/api/v1/emails/domains?limit=1001",
    ] {
        let answer = call(Mocks::new().state(), as_org_a(TestRequest::get().uri(path))).await;
        assert_eq!(
            answer.text(),
            (400, "Invalid limit: expected a whole number from 1 to 1000"),
            "{path}"
        );
    }
    for path in ["/api/v1/events?after=abc", "/api/v1/events?after=1.5"] {
        let answer = call(Mocks::new().state(), as_org_a(TestRequest::get().uri(path))).await;
        assert_eq!(
            answer.text(),
            (400, "Invalid after: not a value from next"),
            "{path}"
        );
    }
    let answer = call(
        Mocks::new().state(),
        as_org_a(TestRequest::get().uri("/api/v1/events?limit=1&limit=2")),
    )
    .await;
    assert_eq!(answer.text(), (400, "Invalid query string"));
}

#[tokio::test]
async fn activate_answers_the_sender_now_active() {
    let mut mocks = Mocks::new();
    mocks
        .senders
        .expect_activate_sender()
        .with(eq(org_a()), eq("billing@example.com"))
        .times(1)
        .returning(|_, email| Ok(Some(sender(email, true))));

    // The domain part is canonicalised (lower-cased) before the store sees it.
    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::post().uri("/api/v1/emails/senders/billing@EXAMPLE.com/activate")),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"email": "billing@example.com", "domain": "example.com", "replyTo": null, "active": true, "createdAt": "2026-11-26T16:15:47Z"})
    );
}

#[tokio::test]
async fn a_sender_of_another_organization_or_none_is_not_found() {
    for path in [
        "/api/v1/emails/senders/theirs@example.com",
        "/api/v1/emails/senders/not-an-address",
    ] {
        for request in [
            TestRequest::post().uri(&format!("{path}/activate")),
            TestRequest::delete().uri(path),
        ] {
            let mut mocks = Mocks::new();
            mocks
                .senders
                .expect_activate_sender()
                .returning(|_, _| Ok(None));
            mocks
                .senders
                .expect_delete_sender()
                .returning(|_, _| Ok(false));
            let answer = call(mocks.state(), as_org_b(request)).await;
            assert_eq!(answer.text(), (404, "Sender not found"), "{path}");
        }
    }
}

#[tokio::test]
async fn delete_sender_answers_204_without_a_body() {
    let mut mocks = Mocks::new();
    mocks
        .senders
        .expect_delete_sender()
        .with(eq(org_a()), eq("a@example.com"))
        .times(1)
        .returning(|_, _| Ok(true));

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::delete().uri("/api/v1/emails/senders/a@example.com")),
    )
    .await;

    assert_eq!((answer.status, answer.body.as_str()), (204, ""));
}

fn event(id: i64, kind: EventType, selector: Option<&str>, email: Option<&str>) -> Event {
    Event {
        id,
        kind,
        domain: Some("example.com".into()),
        selector: selector.map(Into::into),
        email: email.map(Into::into),
        created_at: now(),
    }
}

#[tokio::test]
async fn lists_events_oldest_first_with_their_data() {
    let mut mocks = Mocks::new();
    mocks
        .events
        .expect_list_events()
        .with(
            eq(org_a()),
            eq(Page {
                after: Some(4),
                limit: 3,
            }),
        )
        .times(1)
        .returning(|_, _| {
            Ok(Paged {
                items: vec![
                    event(5, EventType::DomainCreated, None, None),
                    event(6, EventType::DkimRotationStarted, Some("s2"), None),
                    event(7, EventType::SenderActivated, None, Some("a@example.com")),
                ],
                next: Some(7),
            })
        });

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::get().uri("/api/v1/events?after=4&limit=3")),
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({
            "events": [
                {"id": 5, "type": "domain.created", "domain": "example.com", "createdAt": "2026-11-26T16:15:47Z",
                 "data": {"domain": "example.com"}},
                {"id": 6, "type": "dkim.rotation_started", "domain": "example.com", "createdAt": "2026-11-26T16:15:47Z",
                 "data": {"domain": "example.com", "selector": "s2"}},
                {"id": 7, "type": "sender.activated", "domain": "example.com", "createdAt": "2026-11-26T16:15:47Z",
                 "data": {"domain": "example.com", "email": "a@example.com"}}
            ],
            "next": 7
        })
    );
}

#[tokio::test]
async fn the_last_page_of_events_has_a_null_next() {
    let mut mocks = Mocks::new();
    mocks
        .events
        .expect_list_events()
        .with(
            eq(org_a()),
            eq(Page {
                after: None,
                limit: 100,
            }),
        )
        .returning(|_, _| {
            Ok(Paged {
                items: Vec::new(),
                next: None,
            })
        });

    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::get().uri("/api/v1/events")),
    )
    .await;

    assert_eq!(answer.json(), json!({"events": [], "next": null}));
}

#[tokio::test]
async fn a_store_failure_answers_the_list_routes_own_500_sentence() {
    let mut mocks = Mocks::new();
    mocks
        .senders
        .expect_list_senders()
        .returning(|_, _| Err(InfraError::Unexpected("boom".into())));
    mocks
        .senders
        .expect_activate_sender()
        .returning(|_, _| Err(InfraError::Unexpected("boom".into())));
    mocks
        .senders
        .expect_delete_sender()
        .returning(|_, _| Err(InfraError::Unexpected("boom".into())));
    mocks
        .events
        .expect_list_events()
        .returning(|_, _| Err(InfraError::Unexpected("boom".into())));
    let state = actix_web::web::Data::new(mocks.state());
    for (request, sentence) in [
        (
            TestRequest::get().uri("/api/v1/emails/senders"),
            "Failed to read senders.",
        ),
        (
            TestRequest::post().uri("/api/v1/emails/senders/a@example.com/activate"),
            "Failed to activate the sender.",
        ),
        (
            TestRequest::delete().uri("/api/v1/emails/senders/a@example.com"),
            "Failed to delete the sender.",
        ),
        (
            TestRequest::get().uri("/api/v1/events"),
            "Failed to read events.",
        ),
    ] {
        let answer = call_shared(&state, as_org_a(request)).await;
        assert_eq!(answer.status, 500, "{sentence}");
        assert_eq!(answer.json(), json!({ "error": sentence }));
    }
    let mut mocks = Mocks::new();
    mocks
        .events
        .expect_list_events()
        .returning(|_, _| Err(InfraError::Unavailable("pool timed out".into())));
    let answer = call(
        mocks.state(),
        as_org_a(TestRequest::get().uri("/api/v1/events")),
    )
    .await;
    assert_eq!(answer.text(), (503, "Service temporarily unavailable"));
}
