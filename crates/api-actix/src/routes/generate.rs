//! `POST /api/v1/emails/domains/generate` — the seed endpoint.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, web};
use domain_core::RecordSet;
use domain_core::ports::idempotency::RegistrationAnswer;
use domain_core::usecases::generate::{GenerateError, GenerateInput};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::body::authenticated_json;
use crate::error::{ApiError, Operation};
use crate::idempotency::stored;

/// Bodies are small JSON objects; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(serde::Deserialize)]
struct GenerateBody {
    email: Option<Value>,
    #[serde(rename = "replyTo")]
    reply_to: Option<Value>,
    inbound: Option<Value>,
}

/// The request body as documented (the handler reads it leniently, see
/// [`parse_body`]).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = GenerateRequest)]
#[expect(dead_code, reason = "documentation only")]
pub struct GenerateRequestDoc {
    /// Sender address; its domain is the one provisioned.
    #[schema(
        example = "noreply@example.com",
        pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$"
    )]
    email: String,
    /// Optional reply-to address.
    #[schema(
        rename = "replyTo",
        example = "support@example.com",
        pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$"
    )]
    reply_to: Option<String>,
    /// Enable inbound mail if the domain's MX already points at our relay.
    #[schema(default = false)]
    inbound: Option<bool>,
}

/// Check order: 401 (extractor) → 415 → 413 / 408 (body) → 400 body → 400 fields → 409.
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains/generate",
    operation_id = "generateDomain",
    tag = "domains",
    summary = "Create or reuse a sender domain, register a sender, return the records to publish",
    request_body(content = GenerateRequestDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Record name → TXT value, keys in the order SPF, DKIM, _dmarc",
            body = std::collections::HashMap<String, String>, content_type = "application/json",
            example = json!({
                "SPF": "v=spf1 ip4:51.79.43.241 -all",
                "abc123._domainkey.example.com": "v=DKIM1; k=rsa; p=MIIBIjANBgkqhki...",
                "_dmarc": "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
            })),
        (status = 400, description = "Invalid sender or reply-to address (a public suffix such as `co.uk` or a special-use name such as `foo.local` included), malformed body", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 403, description = "`Domain limit reached`: a new domain beyond `DOMAIN_API_MAX_DOMAINS_PER_ORG`; or `Sender limit reached`: the domain has `DOMAIN_API_MAX_SENDERS_PER_DOMAIN` senders already", body = String, content_type = "text/plain"),
        (status = 408, description = "The body did not arrive whole within the body timeout (`DOMAIN_API_BODY_TIMEOUT_MS`, default 10 s); `Request body timeout`", body = String, content_type = "text/plain"),
        (status = 409, description = "Domain or email already taken (a reserved domain, another organization's, or one under another organization's domain: `Domain is already taken`)", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than 16 KiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Content-Type is not application/json", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many new domains; retry later`: more new domains within 60 s than `DOMAIN_API_NEW_DOMAINS_PER_MINUTE`", body = String, content_type = "text/plain",
            headers(("Retry-After" = u64, description = "Whole seconds until a slot frees"))),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "generate", skip_all, fields(domain))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn generate(
    auth: Result<AuthenticatedOrg, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (AuthenticatedOrg(organization), bytes) =
        authenticated_json(auth, &req, payload, MAX_BODY_BYTES, state.body_timeout).await?;
    let input = parse_body(&bytes)?;
    if let Some(answer) = req.extensions().get::<RegistrationAnswer>() {
        // A keyed request: the registration's batch keeps this answer with it.
        let state = state.clone();
        answer.set(Arc::new(move |outcome| {
            let answer = match outcome {
                Ok(registered) => created(&state.generate.records(registered)),
                Err(error) => Err(GenerateError::refused(error)?.into()),
            };
            stored(answer.unwrap_or_else(|error| error.error_response()))
        }));
    }

    let records = match state.generate.execute(&organization, input).await {
        Err(GenerateError::RateLimited(wait)) => return Err(tarpit(wait).await),
        other => other?,
    };
    created(&records)
}

/// The 201 of a generate call: the record map.
fn created(records: &RecordSet) -> Result<HttpResponse, ApiError> {
    let json = serde_json::to_string(&RecordMap(records))
        .map_err(|e| ApiError::Unexpected(Box::new(e), Operation::Generate))?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(json))
}

/// Reads a generate request body: a JSON object whose `email`, `replyTo` and
/// `inbound` fields become the use case's input; unknown fields are ignored.
///
/// # Errors
/// [`ApiError::BadRequest`] with a short reason that never echoes the body.
pub fn parse_body(bytes: &[u8]) -> Result<GenerateInput, ApiError> {
    let body: GenerateBody = json_object(bytes)?;
    Ok(GenerateInput {
        email: body.email.and_then(as_text),
        reply_to: body.reply_to.and_then(as_text),
        inbound: match body.inbound {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => flag,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "Invalid inbound flag: expected true or false".into(),
                ));
            }
        },
    })
}

/// A JSON string is the value; `null` is absence; any other JSON value is kept as
/// its text, so that `{"email": 5}` answers "Invalid sender address: 5".
fn as_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A request body that must be a JSON object, read as `T`.
///
/// # Errors
/// [`ApiError::BadRequest`] `Malformed JSON body: …` for anything else, never
/// echoing the body.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from a JSON array too (`["a@b.c"]` as `{"email": "a@b.c"}`);
    // the contract's bodies are objects, so anything else is refused.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let reason = match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(error) => json_reason(&error),
            Ok(_) => "the body is not a JSON object".to_owned(),
        };
        return Err(ApiError::BadRequest(format!(
            "Malformed JSON body: {reason}"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON body: {}", json_reason(&e))))
}

/// serde_json's message without echoing input: category and position only.
pub(crate) fn json_reason(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "could not be read",
        Category::Syntax => "is not valid JSON",
        Category::Data => "is not a JSON object with the expected fields",
        Category::Eof => "ended unexpectedly",
    };
    format!(
        "the body {what} (line {}, column {})",
        error.line(),
        error.column()
    )
}

/// The seed's response: record name → TXT value, keys in the order
/// `SPF`, `<selector>._domainkey.<domain>`, `_dmarc`.
struct RecordMap<'a>(&'a RecordSet);

impl serde::Serialize for RecordMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.0.entries();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// How long a rate-limited new-domain call is held before its 429.
pub const TARPIT: Duration = Duration::from_secs(1);

/// Holds a rate-limited call for up to [`TARPIT`] (no CPU: a timer) before answering,
/// and takes the time held off its `Retry-After`. A client retrying in a tight loop
/// (a hostile flood, or just a buggy retry) then sends a call a second per connection
/// instead of hundreds, and leaves the machine to other organizations; a client that
/// honours `Retry-After` waits no longer in all.
pub(crate) async fn tarpit(wait: Duration) -> ApiError {
    let held = wait.min(TARPIT);
    tokio::time::sleep(held).await;
    let left = wait.saturating_sub(held).max(Duration::from_secs(1));
    ApiError::Generate(GenerateError::RateLimited(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_body_that_is_not_a_json_object() {
        for body in [
            &br#"["noreply@example.com", null, true]"#[..],
            br#""noreply@example.com""#,
            b"5",
            b"null",
        ] {
            let error = parse_body(body).unwrap_err();
            assert!(
                matches!(&error, ApiError::BadRequest(reason) if reason == "Malformed JSON body: the body is not a JSON object"),
                "{}: {error:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            parse_body(b"[1,"),
            Err(ApiError::BadRequest(reason)) if reason.starts_with("Malformed JSON body: the body ended unexpectedly")
        ));
        let input = parse_body(b" \n {\"email\": \"a@example.com\"}").unwrap();
        assert_eq!(input.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn serializes_records_in_the_seed_key_order() {
        let records = RecordSet {
            spf: "v=spf1 ip4:51.79.43.241 -all".into(),
            dkim_name: "abc123._domainkey.example.com".into(),
            dkim_value: "v=DKIM1; k=rsa; p=MIIB".into(),
            dmarc: "v=DMARC1; p=none; rua=mailto:dmarc@example.com".into(),
        };
        assert_eq!(
            serde_json::to_string(&RecordMap(&records)).unwrap(),
            r#"{"SPF":"v=spf1 ip4:51.79.43.241 -all","abc123._domainkey.example.com":"v=DKIM1; k=rsa; p=MIIB","_dmarc":"v=DMARC1; p=none; rua=mailto:dmarc@example.com"}"#
        );
    }

    #[test]
    fn keeps_non_string_values_as_their_text() {
        assert_eq!(as_text(Value::Null), None);
        assert_eq!(as_text(Value::from("a@b.c")), Some("a@b.c".into()));
        assert_eq!(as_text(Value::from(5)), Some("5".into()));
    }
}
