use actix_web::body::to_bytes;

use super::*;
use domain_core::usecases::validate::Tally;

async fn render(error: ApiError) -> (u16, String, String) {
    let response = error.error_response();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body = to_bytes(response.into_body()).await.unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

const TEXT: &str = "text/plain; charset=utf-8";

fn unexpected() -> InfraError {
    InfraError::Unexpected("db exploded: password=hunter2".into())
}

#[tokio::test]
async fn renders_the_seed_error_table_exactly() {
    let rows = [
        (
            ApiError::Generate(GenerateError::InvalidSender("bob@".into())),
            400,
            TEXT,
            "Invalid sender address: bob@",
        ),
        (
            ApiError::Generate(GenerateError::InvalidReplyTo("x".into())),
            400,
            TEXT,
            "Invalid reply-to address: x",
        ),
        (
            ApiError::Auth(AuthError::Missing, Operation::Generate),
            401,
            TEXT,
            "Missing API credentials",
        ),
        (
            ApiError::Auth(AuthError::Invalid, Operation::Generate),
            401,
            TEXT,
            "Invalid API credentials",
        ),
        (
            ApiError::Generate(GenerateError::DomainTaken),
            409,
            TEXT,
            "Domain is already taken",
        ),
        (
            ApiError::Generate(GenerateError::EmailTaken),
            409,
            TEXT,
            "Email is already taken",
        ),
        (ApiError::BodyTimeout, 408, TEXT, "Request body timeout"),
        (
            ApiError::IdempotencyMismatch,
            422,
            TEXT,
            "Idempotency-Key reused with a different request",
        ),
        (
            ApiError::IdempotencyInProgress,
            409,
            TEXT,
            "A request with this Idempotency-Key is in progress",
        ),
        (
            ApiError::Generate(GenerateError::Infra(unexpected())),
            500,
            "application/json",
            r#"{"error":"Failed to generate DNS records."}"#,
        ),
        (
            ApiError::Auth(AuthError::Infra(unexpected()), Operation::Generate),
            500,
            "application/json",
            r#"{"error":"Failed to generate DNS records."}"#,
        ),
    ];
    for (error, status, content_type, body) in rows {
        assert_eq!(
            render(error).await,
            (status, content_type.to_owned(), body.to_owned())
        );
    }
}

#[tokio::test]
async fn a_failed_credential_lookup_on_a_read_route_answers_with_that_route_s_body() {
    // Regression: it answered the generate endpoint's "Failed to generate DNS records."
    let (status, _, body) = render(ApiError::Auth(
        AuthError::Infra(unexpected()),
        Operation::ReadDomains,
    ))
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"error":"Failed to read domains."}"#)
    );
    let (_, _, body) = render(ApiError::Read(ReadError::Infra(unexpected()))).await;
    assert_eq!(body, r#"{"error":"Failed to read domains."}"#);
    let (_, _, body) = render(ApiError::Validate(ValidateError::Infra(unexpected()))).await;
    assert_eq!(body, r#"{"error":"Failed to validate DNS records."}"#);
}

#[tokio::test]
async fn answers_503_without_the_cause_when_the_database_is_down() {
    for error in [
        ApiError::Auth(
            AuthError::Infra(InfraError::Unavailable(
                "connection refused to db.internal".into(),
            )),
            Operation::ReadDomains,
        ),
        ApiError::Generate(GenerateError::Infra(InfraError::Unavailable(
            "pool timed out".into(),
        ))),
    ] {
        let (status, content_type, body) = render(error).await;
        assert_eq!(
            (status, content_type.as_str(), body.as_str()),
            (503, TEXT, "Service temporarily unavailable")
        );
    }
}

#[tokio::test]
async fn echoes_rejected_input_escaped_and_whole() {
    let long = format!("{}@", "x".repeat(600));
    let (_, _, body) = render(ApiError::Generate(GenerateError::InvalidSender(
        long.clone(),
    )))
    .await;
    assert_eq!(body, format!("Invalid sender address: {long}"));
    let (_, _, body) = render(ApiError::Read(ReadError::InvalidDomain(
        "a\r\nb.com".into(),
    )))
    .await;
    assert_eq!(body, "Invalid domain: a\\r\\nb.com");
}

#[test]
fn the_core_s_errors_speak_the_domain_not_the_wire() {
    let wire = [
        "Invalid sender address",
        "Domain is already taken",
        "Email is already taken",
        "Missing API credentials",
        "Failed to",
        "Service temporarily unavailable",
        "Domain not found",
        "A DKIM rotation is already in progress",
        "Inbound requires",
        "Sender not found",
    ];
    let core_texts = [
        GenerateError::InvalidSender("x".into()).to_string(),
        GenerateError::DomainTaken.to_string(),
        GenerateError::EmailTaken.to_string(),
        GenerateError::Infra(unexpected()).to_string(),
        AuthError::Missing.to_string(),
        AuthError::Infra(InfraError::Unavailable("x".into())).to_string(),
        ReadError::NotFound.to_string(),
        ValidateError::NotFound.to_string(),
        ManageError::RotationInProgress.to_string(),
        ManageError::MxNotReady(vec!["a.example".into()]).to_string(),
        SenderError::NotFound.to_string(),
    ];
    for text in core_texts {
        assert!(
            !wire.iter().any(|sentence| text.contains(sentence)),
            "{text:?} is a wire sentence"
        );
    }
}

#[tokio::test]
async fn renders_the_lifecycle_sentences_exactly() {
    let hosts = vec![
        "inbound.sendtrim.com".to_owned(),
        "smtp.sendtrim.com".to_owned(),
    ];
    let rows = [
        (
            ApiError::Manage(ManageError::RotationInProgress, Operation::RotateKey),
            409,
            "A DKIM rotation is already in progress",
        ),
        (
            ApiError::Manage(ManageError::MxNotReady(hosts), Operation::UpdateDomain),
            409,
            "Inbound requires an MX record pointing at inbound.sendtrim.com or smtp.sendtrim.com",
        ),
        (
            ApiError::Manage(ManageError::NotFound, Operation::DeleteDomain),
            404,
            "Domain not found",
        ),
        (
            ApiError::Manage(
                ManageError::InvalidDomain("a b".into()),
                Operation::RotateKey,
            ),
            400,
            "Invalid domain: a b",
        ),
        (
            ApiError::Verify(ValidateError::NotFound),
            404,
            "Domain not found",
        ),
        (
            ApiError::Sender(SenderError::NotFound, Operation::ActivateSender),
            404,
            "Sender not found",
        ),
    ];
    for (error, status, body) in rows {
        assert_eq!(
            render(error).await,
            (status, TEXT.to_owned(), body.to_owned())
        );
    }
}

#[test]
fn joins_the_inbound_hosts_with_commas_and_a_final_or() {
    let hosts = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>();
    assert_eq!(or_list(&hosts(&["a"])), "a");
    assert_eq!(or_list(&hosts(&["a", "b"])), "a or b");
    assert_eq!(or_list(&hosts(&["a", "b", "c"])), "a, b or c");
    assert_eq!(or_list(&hosts(&["a", "b", "c", "d"])), "a, b, c or d");
}

#[test]
fn every_operation_has_its_own_500_sentence() {
    let operations = [
        Operation::Generate,
        Operation::ReadDomains,
        Operation::Validate,
        Operation::RotateKey,
        Operation::UpdateDomain,
        Operation::DeleteDomain,
        Operation::VerifyDomain,
        Operation::ReadSenders,
        Operation::ActivateSender,
        Operation::DeleteSender,
        Operation::ReadEvents,
        Operation::Other,
    ];
    let sentences: std::collections::HashSet<&str> =
        operations.iter().map(|o| o.failure()).collect();
    assert_eq!(sentences.len(), operations.len());
}

#[tokio::test]
async fn renders_the_ownership_answers_of_the_contract() {
    let rows = [
        (
            ApiError::Generate(GenerateError::DomainLimit),
            403,
            "Domain limit reached",
        ),
        (
            ApiError::Generate(GenerateError::SenderLimit),
            403,
            "Sender limit reached",
        ),
        (
            ApiError::Generate(GenerateError::RateLimited(std::time::Duration::from_secs(
                17,
            ))),
            429,
            "Too many new domains; retry later",
        ),
        (
            ApiError::Claim(ClaimError::NotFound, Operation::OpenClaim),
            404,
            "Domain not found",
        ),
        (
            ApiError::Claim(ClaimError::OwnDomain, Operation::OpenClaim),
            409,
            "Domain already belongs to this organization",
        ),
        (
            ApiError::Claim(ClaimError::NoOpenClaim, Operation::VerifyClaim),
            404,
            "No open claim for this domain",
        ),
        (
            ApiError::Claim(
                ClaimError::RecordNotFound("_domain-api-claim.example.com".into()),
                Operation::VerifyClaim,
            ),
            409,
            "Claim record not found at _domain-api-claim.example.com",
        ),
        (
            ApiError::Claim(
                ClaimError::NotOnEveryNameserver {
                    name: "_domain-api-claim.example.com".into(),
                    tally: Tally {
                        published: 2,
                        total: 3,
                        lagging: vec!["ns3.example.com (192.0.2.4)".into()],
                        unanswered: Vec::new(),
                    },
                },
                Operation::VerifyClaim,
            ),
            409,
            "Claim record not found at _domain-api-claim.example.com on every nameserver: published on 2 of 3 nameservers; ns3.example.com (192.0.2.4) does not serve it yet",
        ),
        (
            ApiError::Claim(
                ClaimError::NotValidated {
                    name: "_domain-api-claim.example.com".into(),
                    zone: "example.com".into(),
                },
                Operation::VerifyClaim,
            ),
            409,
            "Claim record at _domain-api-claim.example.com is not DNSSEC-validated: the zone example.com is signed",
        ),
        (
            ApiError::Claim(
                ClaimError::InvalidDomain("a b".into()),
                Operation::OpenClaim,
            ),
            400,
            "Invalid domain: a b",
        ),
    ];
    for (error, status, body) in rows {
        assert_eq!(
            render(error).await,
            (status, TEXT.to_owned(), body.to_owned())
        );
    }
    for (operation, sentence) in [
        (Operation::OpenClaim, "Failed to open the claim."),
        (Operation::VerifyClaim, "Failed to verify the claim."),
    ] {
        let (status, _, body) =
            render(ApiError::Claim(ClaimError::Infra(unexpected()), operation)).await;
        assert_eq!(status, 500);
        assert_eq!(body, serde_json::json!({ "error": sentence }).to_string());
    }
}

#[test]
fn a_rate_limited_answer_says_when_to_retry_in_whole_seconds() {
    let response = ApiError::Generate(GenerateError::RateLimited(std::time::Duration::from_secs(
        17,
    )))
    .error_response();
    assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "17");
}

/// One sample of every row of the table.
fn every_row() -> Vec<ApiError> {
    let infra_down = || InfraError::Unavailable("db down".into());
    vec![
        ApiError::Auth(AuthError::Missing, Operation::Generate),
        ApiError::Auth(AuthError::Invalid, Operation::Generate),
        ApiError::BearerRejected,
        ApiError::Generate(GenerateError::InvalidSender("bob@".into())),
        ApiError::Generate(GenerateError::InvalidReplyTo("x".into())),
        ApiError::Generate(GenerateError::DomainTaken),
        ApiError::Generate(GenerateError::EmailTaken),
        ApiError::Generate(GenerateError::DomainLimit),
        ApiError::Generate(GenerateError::RateLimited(std::time::Duration::from_secs(
            7,
        ))),
        ApiError::Claim(ClaimError::OwnDomain, Operation::OpenClaim),
        ApiError::Claim(ClaimError::NoOpenClaim, Operation::VerifyClaim),
        ApiError::Claim(
            ClaimError::RecordNotFound("_domain-api-claim.example.com".into()),
            Operation::VerifyClaim,
        ),
        ApiError::Read(ReadError::InvalidDomain("exa mple".into())),
        ApiError::Read(ReadError::NotFound),
        ApiError::Manage(ManageError::RotationInProgress, Operation::RotateKey),
        ApiError::Manage(
            ManageError::TooManyKeys(std::time::Duration::from_secs(61)),
            Operation::RotateKey,
        ),
        ApiError::Claim(
            ClaimError::TooManyKeys(std::time::Duration::from_secs(3)),
            Operation::VerifyClaim,
        ),
        ApiError::Claim(ClaimError::DomainLimit, Operation::VerifyClaim),
        ApiError::TooManyLiveChecks(std::time::Duration::from_secs(12)),
        ApiError::TooManyStoredAnswers(std::time::Duration::from_secs(86_000)),
        ApiError::Generate(GenerateError::SenderLimit),
        ApiError::Manage(
            ManageError::MxNotReady(vec!["a.example".into(), "b.example".into()]),
            Operation::UpdateDomain,
        ),
        ApiError::Sender(SenderError::NotFound, Operation::DeleteSender),
        ApiError::Webhook(
            WebhookError::InvalidUrl("ftp://x".into()),
            Operation::CreateWebhook,
        ),
        ApiError::Webhook(
            WebhookError::UnknownEvent("x.y".into()),
            Operation::CreateWebhook,
        ),
        ApiError::Webhook(WebhookError::NoEvents, Operation::CreateWebhook),
        ApiError::Webhook(WebhookError::LimitReached, Operation::CreateWebhook),
        ApiError::Webhook(WebhookError::NotFound, Operation::DeleteWebhook),
        ApiError::BadRequest("Invalid limit: expected a whole number from 1 to 1000".into()),
        ApiError::BadRequest("Malformed JSON body: the body is not a JSON object".into()),
        ApiError::UnsupportedMediaType,
        ApiError::PayloadTooLarge(16384),
        ApiError::BodyTimeout,
        ApiError::IdempotencyMismatch,
        ApiError::IdempotencyInProgress,
        ApiError::NotFound,
        ApiError::DomainConnectUnsupported,
        ApiError::Generate(GenerateError::Infra(infra_down())),
        ApiError::Unexpected("boom".into(), Operation::RotateKey),
    ]
}

#[tokio::test]
async fn both_wire_forms_come_from_the_same_row() {
    for error in every_row() {
        let row = error.row();
        let (status, content_type, body) = render(error).await;

        assert_eq!(status, row.status.as_u16(), "{}", row.code);
        if status == 500 {
            assert_eq!(content_type, "application/json");
            assert_eq!(body, format!(r#"{{"error":"{}"}}"#, row.sentence));
        } else {
            assert_eq!(
                (content_type.as_str(), body.as_str()),
                (TEXT, row.sentence.as_str())
            );
        }
        let problem = row.problem();
        assert_eq!(problem["title"], row.sentence.as_str());
        assert_eq!(problem["status"], status);
        assert_eq!(problem["code"], row.code);
        assert_eq!(
            problem["type"],
            format!("urn:domain-api:problem:{}", row.code)
        );
        let code_ok = row
            .code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_');
        assert!(code_ok && !row.code.is_empty(), "{}", row.code);
        match &row.detail {
            Some(detail) => {
                assert!(row.sentence.ends_with(detail.as_str()), "{}", row.sentence);
                assert_eq!(problem["detail"], detail.as_str());
            }
            None => assert!(problem.get("detail").is_none(), "{problem}"),
        }
    }
}

#[test]
fn every_code_is_in_the_table_of_docs_api_md() {
    let docs = include_str!("../../../docs/api.md");
    let mut codes: Vec<&str> = every_row().iter().map(|e| e.row().code).collect();
    codes.extend([
        "method_not_allowed",
        "invalid_query",
        "invalid_after",
        "invalid_idempotency_key",
    ]);
    for code in codes {
        assert!(
            docs.contains(&format!("| `{code}` |")),
            "{code} is not in docs/api.md's table"
        );
    }
}

#[test]
fn a_bad_request_sentence_has_its_own_code() {
    for (sentence, code) in [
        ("Invalid query string", "invalid_query"),
        ("Invalid after: not a value from next", "invalid_after"),
        (
            "Missing inbound flag: expected true or false",
            "invalid_inbound_flag",
        ),
        (
            "Malformed JSON body: the body ended unexpectedly",
            "malformed_body",
        ),
    ] {
        assert_eq!(ApiError::BadRequest(sentence.into()).row().code, code);
    }
}

/// Rotations and claims answer the one key budget's 429 with how long to wait.
#[tokio::test]
async fn too_many_keys_is_429_with_retry_after() {
    let error = ApiError::Manage(
        ManageError::TooManyKeys(std::time::Duration::from_secs(61)),
        Operation::RotateKey,
    );
    let response = error.error_response();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("61")
    );
    let (_, _, body) = render(error).await;
    assert_eq!(body, "Too many DKIM keys generated; retry later");
}
