//! Problem details by negotiation, through the routes: the same error answers its
//! plain sentence without `Accept: application/problem+json` and RFC 9457 with it.

use actix_web::test::TestRequest;

use super::test_app::*;

const PROBLEM: (&str, &str) = ("Accept", "application/problem+json");

#[tokio::test]
async fn an_invalid_domain_is_a_problem_echoing_the_input_when_asked_for() {
    let uri = "/api/v1/emails/domains/exa%20mple.com";
    let plain = call(Mocks::new().state(), as_org_a(TestRequest::get().uri(uri))).await;
    assert_eq!(plain.text(), (400, "Invalid domain: exa mple.com"));

    let answer = call(
        Mocks::new().state(),
        as_org_a(TestRequest::get().uri(uri).insert_header(PROBLEM)),
    )
    .await;

    assert_eq!(answer.status, 400);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(
        answer.body,
        r#"{"type":"urn:domain-api:problem:invalid_domain","title":"Invalid domain: exa mple.com","status":400,"detail":"exa mple.com","code":"invalid_domain"}"#
    );
}

#[tokio::test]
async fn missing_credentials_keep_their_sentence_as_the_title_and_have_no_detail() {
    let request = TestRequest::get()
        .uri("/api/v1/emails/senders")
        .insert_header(("Accept", "application/json, application/problem+json;q=0.5"));

    let answer = call(Mocks::new().state(), request).await;

    assert_eq!(answer.status, 401);
    assert_eq!(answer.content_type, "application/problem+json");
    let problem = answer.json();
    assert_eq!(problem["title"], "Missing API credentials");
    assert_eq!(problem["code"], "missing_credentials");
    assert_eq!(problem["status"], 401);
    assert!(problem.get("detail").is_none(), "{problem}");
}

#[tokio::test]
async fn a_refused_media_range_or_any_other_accept_keeps_the_plain_sentence() {
    for accept in ["application/problem+json;q=0", "application/json", "*/*"] {
        let request = TestRequest::get()
            .uri("/api/v1/emails/senders")
            .insert_header(("Accept", accept));

        let answer = call(Mocks::new().state(), request).await;

        assert_eq!(answer.text(), (401, "Missing API credentials"), "{accept}");
    }
}

#[tokio::test]
async fn an_unknown_route_and_a_wrong_method_are_problems_too() {
    let missing = TestRequest::get().uri("/nowhere").insert_header(PROBLEM);
    let answer = call(Mocks::new().state(), missing).await;
    assert_eq!(
        (answer.status, answer.json()["code"].clone()),
        (404, "not_found".into())
    );

    let wrong = TestRequest::put()
        .uri("/api/v1/emails/domains/generate")
        .insert_header(PROBLEM);
    let answer = call(Mocks::new().state(), wrong).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.json()["title"], "Method not allowed");
    assert_eq!(answer.allow.as_deref(), Some("POST"));
}
