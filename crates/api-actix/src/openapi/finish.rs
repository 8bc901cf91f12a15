//! The parts of the document the handlers' annotations cannot say, or would say 23
//! times over: the headers every answer carries, the `Idempotency-Key` every
//! changing request may carry (and the answers it adds), the declared error bodies
//! (plain and RFC 9457) with an example produced by [`ApiError`] itself, a
//! description on every response,
//! `date-time` on every time, and `servers`.

use actix_web::ResponseError as _;
use actix_web::body::MessageBody as _;
use domain_core::ports::InfraError;
use domain_core::usecases::authenticate::AuthError;
use domain_core::usecases::claim::ClaimError;
use domain_core::usecases::create::CreateError;
use domain_core::usecases::generate::GenerateError;
use domain_core::usecases::manage::ManageError;
use domain_core::usecases::read::ReadError;
use domain_core::usecases::senders::SenderError;
use domain_core::usecases::webhooks::WebhookError;
use serde_json::{Value, json};

use crate::error::{ApiError, Operation};

/// The default `DOMAIN_API_BIND`, as a base URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Every operation, with the operation its 500 sentence names.
const OPERATIONS: &[(&str, Operation)] = &[
    ("generateDomain", Operation::Generate),
    ("createDomain", Operation::CreateDomain),
    ("listDomains", Operation::ReadDomains),
    ("getDomain", Operation::ReadDomains),
    ("getDomainZone", Operation::ReadDomains),
    ("updateDomain", Operation::UpdateDomain),
    ("deleteDomain", Operation::DeleteDomain),
    ("rotateDkimKey", Operation::RotateKey),
    ("verifyDomain", Operation::VerifyDomain),
    ("openClaim", Operation::OpenClaim),
    ("verifyClaim", Operation::VerifyClaim),
    ("listSenders", Operation::ReadSenders),
    ("activateSender", Operation::ActivateSender),
    ("deleteSender", Operation::DeleteSender),
    ("listEvents", Operation::ReadEvents),
    ("createWebhook", Operation::CreateWebhook),
    ("listWebhooks", Operation::ReadWebhooks),
    ("deleteWebhook", Operation::DeleteWebhook),
    ("listWebhookDeliveries", Operation::ReadWebhooks),
    ("validateDomain", Operation::Validate),
    ("checkHealth", Operation::Other),
    ("checkReadiness", Operation::Other),
    ("getMetrics", Operation::Other),
    ("getOpenApiDocument", Operation::Other),
];

fn infra_down() -> InfraError {
    InfraError::Unavailable("database unavailable".into())
}

/// The failure whose real answer is the example of `status` on operation `id`.
fn example_error(id: &str, operation: Operation, status: &str) -> Option<ApiError> {
    let domain_op = matches!(
        id,
        "getDomain"
            | "getDomainZone"
            | "getDomainConnect"
            | "updateDomain"
            | "deleteDomain"
            | "rotateDkimKey"
            | "verifyDomain"
            | "validateDomain"
    );
    Some(match status {
        "400" => match id {
            "generateDomain" => {
                ApiError::Generate(GenerateError::InvalidSender("noreply@co.uk".into()))
            }
            "openClaim" | "verifyClaim" => {
                ApiError::Claim(ClaimError::InvalidDomain("exa mple.com".into()), operation)
            }
            "createDomain" => ApiError::Create(CreateError::InvalidDomain("co.uk".into())),
            _ if domain_op => ApiError::Read(ReadError::InvalidDomain("exa mple.com".into())),
            "createWebhook" => ApiError::Webhook(
                WebhookError::InvalidUrl("ftp://hooks.example.com/".into()),
                operation,
            ),
            "listDomains" | "listSenders" | "listEvents" | "listWebhookDeliveries" => {
                ApiError::BadRequest("Invalid limit: expected a whole number from 1 to 1000".into())
            }
            _ => ApiError::BadRequest(
                "Invalid Idempotency-Key: one header of 1 to 255 printable ASCII characters".into(),
            ),
        },
        "401" if id == "validateDomain" => ApiError::BearerRejected,
        "401" => ApiError::Auth(AuthError::Missing, operation),
        "403" if id == "createWebhook" => ApiError::Webhook(WebhookError::LimitReached, operation),
        "403" if id == "verifyClaim" => ApiError::Claim(ClaimError::DomainLimit, operation),
        "403" => ApiError::Generate(GenerateError::DomainLimit),
        "404" => match id {
            "activateSender" | "deleteSender" => ApiError::Sender(SenderError::NotFound, operation),
            "deleteWebhook" | "listWebhookDeliveries" => {
                ApiError::Webhook(WebhookError::NotFound, operation)
            }
            "verifyClaim" => ApiError::Claim(ClaimError::NoOpenClaim, operation),
            "openClaim" => ApiError::Claim(ClaimError::NotFound, operation),
            _ => ApiError::Read(ReadError::NotFound),
        },
        "408" => ApiError::BodyTimeout,
        "409" => match id {
            "generateDomain" => ApiError::Generate(GenerateError::DomainTaken),
            "createDomain" => ApiError::Create(CreateError::DomainTaken),
            "rotateDkimKey" => ApiError::Manage(ManageError::RotationInProgress, operation),
            "updateDomain" => ApiError::Manage(
                ManageError::MxNotReady(vec!["mx1.example.net".into(), "mx2.example.net".into()]),
                operation,
            ),
            "openClaim" => ApiError::Claim(ClaimError::OwnDomain, operation),
            "verifyClaim" => ApiError::Claim(
                ClaimError::RecordNotFound("_domain-api-claim.example.com".into()),
                operation,
            ),
            _ => ApiError::IdempotencyInProgress,
        },
        "413" => ApiError::PayloadTooLarge(crate::routes::generate::MAX_BODY_BYTES),
        "415" => ApiError::UnsupportedMediaType,
        "422" => ApiError::IdempotencyMismatch,
        "429" if id == "rotateDkimKey" => ApiError::Manage(
            ManageError::TooManyKeys(std::time::Duration::from_secs(30)),
            operation,
        ),
        "429" if id == "verifyClaim" => ApiError::Claim(
            ClaimError::TooManyKeys(std::time::Duration::from_secs(30)),
            operation,
        ),
        "429"
            if matches!(
                id,
                "validateDomain"
                    | "verifyDomain"
                    | "updateDomain"
                    | "createWebhook"
                    | "getDomainConnect"
            ) =>
        {
            ApiError::TooManyLiveChecks(std::time::Duration::from_secs(30))
        }
        "429" if id == "createDomain" => {
            ApiError::Create(CreateError::RateLimited(std::time::Duration::from_secs(30)))
        }
        "429" if id != "generateDomain" => {
            ApiError::TooManyStoredAnswers(std::time::Duration::from_secs(30))
        }
        "429" => ApiError::Generate(GenerateError::RateLimited(std::time::Duration::from_secs(
            30,
        ))),
        "500" => ApiError::Unexpected("example".into(), operation),
        "503" => ApiError::Generate(GenerateError::Infra(infra_down())),
        _ => return None,
    })
}

/// The body `error` answers with, as the document shows it: text, or JSON for 500.
fn answer_example(error: &ApiError) -> Value {
    let response = error.error_response();
    let json = response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let bytes = response
        .into_body()
        .try_into_bytes()
        .unwrap_or_default()
        .to_vec();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if json {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "400" => "Bad request: one plain sentence says what is wrong",
        "401" => "Missing or invalid credentials",
        "403" => "Forbidden by a limit",
        "404" => "Not found",
        "408" => "`Request body timeout`",
        "409" => "Conflict",
        "413" => "Body larger than 16 KiB",
        "415" => "Content-Type is not application/json",
        "422" => "`Idempotency-Key reused with a different request`",
        "429" => "Too many requests; retry after `Retry-After` seconds",
        "500" => "Unexpected server error",
        "503" => "`Service temporarily unavailable`: retry after `Retry-After` seconds",
        _ => "Answer",
    }
}

fn components(doc: &mut Value) {
    let components = &mut doc["components"];
    components["headers"] = json!({
        "X-Request-Id": {
            "description": "The request's id, as logged: the caller's `X-Request-Id` when it sent a usable one, else a new one",
            "schema": {"type": "string"},
            "example": "3f2c1e0a9b8d4c7e"
        },
        "Retry-After": {
            "description": "Whole seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 1},
            "example": 1
        },
        "Idempotent-Replayed": {
            "description": "`true` when this answer is the stored first answer to the same `Idempotency-Key` and request",
            "schema": {"type": "string", "enum": ["true"]},
            "example": "true"
        }
    });
    components["parameters"] = json!({
        "Idempotency-Key": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes the request safe to retry: the same key with the same request replays the first answer (`Idempotent-Replayed: true`), with another request answers 422, while the first runs answers 409; a new key while the organization's kept answers take `DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG` answers 429. One header of 1 to 255 printable ASCII characters, else 400.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]{1,255}$"},
            "example": "3c5b2c8e-6f1a-4c1e-9a54-2f1d7c0e8b11"
        }
    });
    components["schemas"]["Problem"] = json!({
        "type": "object",
        "description": "RFC 9457 problem details, answered instead of the plain body when the request's `Accept` names `application/problem+json`",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "A stable URI per error: `urn:domain-api:problem:` and the code"},
            "title": {"type": "string", "description": "The sentence of the plain answer"},
            "status": {"type": "integer", "description": "The HTTP status"},
            "detail": {"type": "string", "description": "The echoed input, where the sentence carries one"},
            "code": {"type": "string", "pattern": "^[a-z_]+$", "description": "A stable snake_case identifier (docs/api.md lists every one)"}
        }
    });
    components["schemas"]["ErrorText"] = json!({
        "type": "string",
        "description": "One plain sentence (`text/plain; charset=utf-8`); where the input is echoed it is truncated and control characters are escaped",
        "example": "Domain not found"
    });
}

fn changes_state(method: &str, path: &str) -> bool {
    matches!(method, "post" | "patch" | "delete") && path.starts_with("/api/v1/")
}

/// Finishes every operation's responses (and its `Idempotency-Key`).
fn operations(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let keyed = changes_state(method, path);
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            let operation = OPERATIONS
                .iter()
                .find(|(name, _)| *name == id)
                .map_or(Operation::Other, |(_, operation)| *operation);
            if keyed {
                let params = op["parameters"].as_array_mut().map(std::mem::take);
                let mut params = params.unwrap_or_default();
                params.push(json!({"$ref": "#/components/parameters/Idempotency-Key"}));
                op["parameters"] = Value::Array(params);
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            if keyed {
                const FULL: &str = "`Too many stored Idempotency-Key answers; retry later`: a new key while the organization's kept answers take `DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`; `Retry-After` says when the first expires";
                match responses.get_mut("429") {
                    Some(limited) => {
                        let theirs = limited["description"].as_str().unwrap_or_default();
                        limited["description"] = Value::String(format!("{theirs}; or {FULL}"));
                    }
                    None => {
                        responses.insert(
                            "429".to_owned(),
                            json!({"description": FULL, "content": {"text/plain": {"schema": {"type": "string"}}}}),
                        );
                    }
                }
                for status in ["400", "409", "422"] {
                    if !responses.contains_key(status) {
                        let description = match status {
                            "400" => {
                                "`Invalid Idempotency-Key: one header of 1 to 255 printable ASCII characters`"
                            }
                            "409" => "`A request with this Idempotency-Key is in progress`",
                            _ => default_description(status),
                        };
                        responses.insert(
                            status.to_owned(),
                            json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}),
                        );
                    }
                }
                responses.sort_keys();
            }
            for (status, response) in responses.iter_mut() {
                finish_response(&id, operation, status, keyed, response);
            }
        }
    }
}

fn finish_response(
    id: &str,
    operation: Operation,
    status: &str,
    keyed: bool,
    response: &mut Value,
) {
    let missing = response["description"].as_str().is_none_or(str::is_empty);
    if missing {
        response["description"] = Value::String(default_description(status).to_owned());
    }
    let mut headers = serde_json::Map::new();
    headers.insert(
        "X-Request-Id".into(),
        json!({"$ref": "#/components/headers/X-Request-Id"}),
    );
    if matches!(status, "429" | "503") {
        headers.insert(
            "Retry-After".into(),
            json!({"$ref": "#/components/headers/Retry-After"}),
        );
    }
    if keyed && status.starts_with('2') {
        headers.insert(
            "Idempotent-Replayed".into(),
            json!({"$ref": "#/components/headers/Idempotent-Replayed"}),
        );
    }
    response["headers"] = Value::Object(headers);
    let error = status.starts_with('4') || status.starts_with('5');
    if !error {
        return;
    }
    let error = example_error(id, operation, status);
    let example = error.as_ref().map(answer_example);
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    let mut problem = json!({"schema": {"$ref": "#/components/schemas/Problem"}});
    if let Some(error) = &error {
        problem["example"] = error.row().problem();
    }
    content.insert(crate::problem::PROBLEM_JSON.to_owned(), problem);
    if let Some(text) = content.get_mut("text/plain") {
        *text = json!({"schema": {"$ref": "#/components/schemas/ErrorText"}});
        if let Some(example) = example.clone().filter(Value::is_string) {
            text["example"] = example;
        }
    }
    if let (Some(body), Some(example)) = (
        content.get_mut("application/json"),
        example.filter(Value::is_object),
    ) {
        body["example"] = example;
    }
}

/// `format: date-time` on every `…At` property (RFC 3339 UTC on the wire).
fn times(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, property) in properties.iter_mut() {
            if !name.ends_with("At") && name != "at" {
                continue;
            }
            let text = match &property["type"] {
                Value::String(t) => t == "string",
                Value::Array(types) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            if text {
                property["format"] = Value::String("date-time".into());
            }
        }
    }
}

/// Real answers of a live server, one per operation with a success body, captured by
/// `scripts/openapi-examples.sh`.
const SUCCESS_EXAMPLES: &str = include_str!("examples.json");

/// The captured answer as the example of each operation's success response.
fn success_examples(doc: &mut Value) {
    let examples: Value = serde_json::from_str(SUCCESS_EXAMPLES).unwrap_or_default();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(example) = op["operationId"]
            .as_str()
            .and_then(|id| examples.get(id))
            .cloned()
        else {
            continue;
        };
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if !status.starts_with('2') {
                continue;
            }
            if let Some(media) = response
                .get_mut("content")
                .and_then(Value::as_object_mut)
                .and_then(|content| content.values_mut().next())
            {
                media["example"] = example.clone();
            }
        }
    }
}

/// The document as served.
pub fn finish(doc: &mut Value) {
    doc["servers"] = json!([{
        "url": DEFAULT_SERVER,
        "description": "The default bind (`DOMAIN_API_BIND`); set yours"
    }]);
    components(doc);
    operations(doc);
    success_examples(doc);
    times(doc);
}
