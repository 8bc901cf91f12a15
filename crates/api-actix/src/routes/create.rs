//! `POST /api/v1/emails/domains`: a domain on its own, without a sender. 201 with
//! the domain's detail when this call created it, 200 with it when the organization
//! had it already; generate on it later reuses it and its key.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::usecases::create::{CreateError, CreateInput};
use serde_json::Value;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::body::authenticated_json;
use crate::error::{ApiError, Operation};
use crate::routes::domains::DomainDetailJson;
use crate::routes::generate::{MAX_BODY_BYTES, json_object, tarpit};

#[derive(serde::Deserialize)]
struct CreateBody {
    name: Option<Value>,
    inbound: Option<Value>,
}

/// The request body as documented (the handler reads it leniently, see
/// [`parse_create`]).
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = DomainCreate)]
#[expect(dead_code, reason = "documentation only")]
pub struct DomainCreateDoc {
    /// The domain, Unicode or A-labels: two labels at least, each of 1 to 63 octets,
    /// at most 229 octets in A-label form (its DKIM record's name must fit DNS); not
    /// a public suffix (`co.uk`) nor a special-use name (`foo.local`).
    #[schema(example = "example.com", pattern = r"^[^@]+$")]
    name: String,
    /// Turn inbound mail on: needs a live MX record pointing at one of the inbound
    /// hosts, as `PATCH …/{domain}` does (else 409). `false` never turns it off.
    #[schema(default = false)]
    inbound: Option<bool>,
}

/// Reads a create body: a JSON object whose `name` (a string) and `inbound` (a
/// boolean, optional) become the use case's input; unknown fields are ignored.
///
/// # Errors
/// [`ApiError::BadRequest`] with a short reason that never echoes the body.
pub fn parse_create(bytes: &[u8]) -> Result<CreateInput, ApiError> {
    let body: CreateBody = json_object(bytes)?;
    let name = match body.name {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest(
                "Missing domain name: expected \"name\" as a JSON string".into(),
            ));
        }
        Some(Value::String(name)) => name,
        // Kept as its text, so that `{"name": 5}` answers "Invalid domain: 5".
        Some(other) => other.to_string(),
    };
    let inbound = match body.inbound {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Invalid inbound flag: expected true or false".into(),
            ));
        }
    };
    Ok(CreateInput {
        name: Some(name),
        inbound,
    })
}

/// Creates a sender domain on its own: its DKIM key and the records to publish, no
/// sender (register senders on it later with generate, which reuses the domain and
/// its key). The organization's own domain is answered 200 as it stands.
///
/// Check order: 401 → 415 → 413 / 408 (body) → 400 body → 400 name → 409 taken →
/// (a new domain) 403 → 429 → (inbound) 409 MX.
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains",
    operation_id = "createDomain",
    tag = "domains",
    summary = "Create a sender domain without a sender, or find the organization's own",
    request_body(content = DomainCreateDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "The organization has this domain already: its detail, as it stands (inbound turned on if asked)", body = DomainDetailJson, content_type = "application/json"),
        (status = 201, description = "Created: the domain's detail (pending, no senders, its DKIM key and every record to publish)", body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "Malformed body; `name` missing; `inbound` not a boolean; `Invalid domain: <name>` (not a domain name, longer than 229 octets, a public suffix such as `co.uk`, or a special-use name such as `foo.local`)", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 403, description = "`Domain limit reached`: a new domain beyond `DOMAIN_API_MAX_DOMAINS_PER_ORG`", body = String, content_type = "text/plain"),
        (status = 408, description = "The body did not arrive whole within the body timeout; `Request body timeout`", body = String, content_type = "text/plain"),
        (status = 409, description = "`Domain is already taken` (a reserved domain, another organization's, or one under another organization's domain); or, with `inbound: true`, `Inbound requires an MX record pointing at <host> or <host>`", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than 16 KiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Content-Type is not application/json", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many new domains; retry later`: the organization generated `DOMAIN_API_NEW_DOMAINS_PER_MINUTE` DKIM keys (new domains, rotations, claims) within 60 s; or, with `inbound: true`, `Too many live DNS checks; retry later`", body = String, content_type = "text/plain",
            headers(("Retry-After" = u64, description = "Whole seconds until a slot frees"))),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "create_domain", skip_all)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn create(
    auth: Result<AuthenticatedOrg, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (AuthenticatedOrg(organization), bytes) =
        authenticated_json(auth, &req, payload, MAX_BODY_BYTES, state.body_timeout).await?;
    let input = parse_create(&bytes)?;
    let inbound = input.inbound;
    let work = state.create.execute(&organization, input);
    // Turning inbound on looks the MX up, within the live-check budget.
    let outcome = if inbound {
        state
            .live_checks
            .admit(&organization, Operation::CreateDomain)
            .await?
            .within(work)
            .await
    } else {
        work.await
    };
    let created = match outcome {
        Err(CreateError::RateLimited(wait)) => return Err(tarpit(wait).await),
        other => other.map_err(ApiError::Create)?,
    };
    let body = DomainDetailJson::from(created.view);
    Ok(if created.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match parse_create(body.as_bytes()) {
            Err(ApiError::BadRequest(reason)) => reason,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn reads_the_name_and_the_inbound_flag_and_ignores_other_fields() {
        let input = parse_create(br#"{"name":"example.com","inbound":true,"x":1}"#).unwrap();
        assert_eq!(input.name.as_deref(), Some("example.com"));
        assert!(input.inbound);
        let input = parse_create(br#"{"name":5}"#).unwrap();
        assert_eq!(input.name.as_deref(), Some("5"));
        assert!(!input.inbound);
    }

    #[test]
    fn refuses_a_missing_name_a_bad_flag_and_a_body_that_is_not_an_object() {
        for body in ["{}", r#"{"name":null}"#] {
            assert_eq!(
                reason(body),
                "Missing domain name: expected \"name\" as a JSON string"
            );
        }
        assert_eq!(
            reason(r#"{"name":"example.com","inbound":"yes"}"#),
            "Invalid inbound flag: expected true or false"
        );
        assert_eq!(
            reason(r#"["example.com"]"#),
            "Malformed JSON body: the body is not a JSON object"
        );
        assert!(reason("{").starts_with("Malformed JSON body: the body ended unexpectedly"));
    }
}
