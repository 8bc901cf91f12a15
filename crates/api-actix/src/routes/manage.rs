//! Commands on one of the organization's domains after `generate`:
//! `POST …/{domain}/dkim/rotate`, `PATCH …/{domain}` (the inbound toggle),
//! `DELETE …/{domain}` and `POST …/{domain}/verify`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::AppState;
use crate::auth::{AuthenticatedOrg, OrgOrDashboard};
use crate::body::authenticated_json;
use crate::error::{ApiError, Operation};
use crate::routes::domains::DomainDetailJson;
use crate::routes::generate::{MAX_BODY_BYTES, json_reason};
use crate::routes::validate::ReportJson;
use crate::telemetry::{LOGGED_PATH_CHARS, bounded};

/// Starts a DKIM key rotation: a new key, `pending` with a new selector, until a
/// check (`verify`, or the background verifier) sees its record published.
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains/{domain}/dkim/rotate",
    operation_id = "rotateDkimKey",
    tag = "lifecycle",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 202, description = "Rotation started: the domain's detail with the new pending key", body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found` (also another organization's domain)", body = String, content_type = "text/plain"),
        (status = 409, description = "`A DKIM rotation is already in progress`", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many DKIM keys generated; retry later`: the domain rotated less than `DOMAIN_API_DKIM_ROTATION_INTERVAL` ago, or the organization generated `DOMAIN_API_NEW_DOMAINS_PER_MINUTE` keys (new domains, rotations, claims) within 60 s; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "rotate", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn rotate(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .manage
        .rotate(&organization, &path)
        .await
        .map_err(|e| ApiError::Manage(e, Operation::RotateKey))?;
    Ok(HttpResponse::Accepted().json(DomainDetailJson::from(view)))
}

/// The body of `PATCH …/{domain}`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = DomainUpdate)]
#[expect(dead_code, reason = "documentation only")]
pub struct DomainUpdateDoc {
    /// Turn inbound mail on (needs a live MX at one of the inbound hosts) or off.
    inbound: bool,
}

/// A JSON object's `inbound` member; other members are skipped unread.
///
/// Read by hand rather than derived: a derived struct also accepts a JSON array
/// (`[true]` would read as `{"inbound": true}`), and a body must be an object.
struct UpdateBody {
    inbound: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for UpdateBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = UpdateBody;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UpdateBody, A::Error> {
                let mut inbound = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "inbound" {
                        if inbound.is_some() {
                            return Err(serde::de::Error::duplicate_field("inbound"));
                        }
                        inbound = Some(map.next_value::<Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(UpdateBody { inbound })
            }
        }

        deserializer.deserialize_map(Members)
    }
}

/// Reads a `PATCH …/{domain}` body: a JSON object whose `inbound` is a JSON boolean;
/// unknown fields are ignored.
///
/// # Errors
/// [`ApiError::BadRequest`] with a short reason that never echoes the body.
pub fn parse_update(bytes: &[u8]) -> Result<bool, ApiError> {
    let body: UpdateBody = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON body: {}", json_reason(&e))))?;
    match body.inbound {
        Some(Value::Bool(flag)) => Ok(flag),
        None | Some(Value::Null) => Err(ApiError::BadRequest(
            "Missing inbound flag: expected true or false".into(),
        )),
        Some(_) => Err(ApiError::BadRequest(
            "Invalid inbound flag: expected true or false".into(),
        )),
    }
}

/// The inbound toggle. `true` needs a live MX record pointing at one of the inbound
/// hosts; `false` always succeeds. API tokens or the dashboard JWT.
///
/// Check order: 401 → 415 → 413 / 408 (body) → 400 body → 400 domain → 404 → 409.
#[utoipa::path(
    patch,
    path = "/api/v1/emails/domains/{domain}",
    operation_id = "updateDomain",
    tag = "lifecycle",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    request_body(content = DomainUpdateDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "The domain's detail after the change", body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "Malformed body, `inbound` missing or not a boolean, or `Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials or bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found` (also another organization's domain)", body = String, content_type = "text/plain"),
        (status = 408, description = "The body did not arrive whole within the body timeout; `Request body timeout`", body = String, content_type = "text/plain"),
        (status = 409, description = "`Inbound requires an MX record pointing at <host> or <host>`", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than 16 KiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Content-Type is not application/json", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many live DNS checks; retry later`: the organization made `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS (validate, verify, claim verify, turning inbound on, webhook creation) within 60 s on this instance; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []), ("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "update_domain", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn update(
    auth: Result<OrgOrDashboard, ApiError>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (OrgOrDashboard(organization), bytes) =
        authenticated_json(auth, &req, payload, MAX_BODY_BYTES, state.body_timeout).await?;
    let inbound = parse_update(&bytes)?;
    let change = state.manage.set_inbound(&organization, &path, inbound);
    // Turning inbound on looks the MX up; turning it off queries nothing.
    let view = if inbound {
        state
            .live_checks
            .admit(&organization, Operation::UpdateDomain)
            .await?
            .within(change)
            .await
    } else {
        change.await
    }
    .map_err(|e| ApiError::Manage(e, Operation::UpdateDomain))?;
    Ok(HttpResponse::Ok().json(DomainDetailJson::from(view)))
}

/// Deletes the domain, its senders and its DKIM keys (the private keys destroyed).
/// The name is free again afterwards.
#[utoipa::path(
    delete,
    path = "/api/v1/emails/domains/{domain}",
    operation_id = "deleteDomain",
    tag = "lifecycle",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found` (also another organization's domain)", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "delete_domain", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn delete(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state
        .manage
        .delete(&organization, &path)
        .await
        .map_err(|e| ApiError::Manage(e, Operation::DeleteDomain))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Checks the domain's published records now (the same report as
/// `/api/v1/domains/validate`) and moves its lifecycle on: status, promotion of a
/// published pending key, retiring → revoked → removed on time. API tokens or the
/// dashboard JWT.
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains/{domain}/verify",
    operation_id = "verifyDomain",
    tag = "lifecycle",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, description = "The live report, judged on the key active after the check", body = ReportJson, content_type = "application/json"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials or bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found` (also another organization's domain)", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many live DNS checks; retry later`: the organization made `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS (validate, verify, claim verify, turning inbound on, webhook creation) within 60 s on this instance; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []), ("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "verify", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn verify(
    OrgOrDashboard(organization): OrgOrDashboard,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let report = state
        .live_checks
        .admit(&organization, Operation::VerifyDomain)
        .await?
        .within(state.verify.execute(&organization, &path))
        .await
        .map_err(ApiError::Verify)?;
    Ok(HttpResponse::Ok().json(ReportJson::from(report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match parse_update(body.as_bytes()) {
            Err(ApiError::BadRequest(reason)) => reason,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn reads_the_inbound_flag_and_ignores_other_fields() {
        assert!(parse_update(br#"{"inbound":true}"#).unwrap());
        assert!(!parse_update(br#"{"inbound":false,"other":1}"#).unwrap());
    }

    #[test]
    fn refuses_a_missing_null_or_non_boolean_flag() {
        for body in ["{}", r#"{"inbound":null}"#] {
            assert_eq!(reason(body), "Missing inbound flag: expected true or false");
        }
        for body in [
            r#"{"inbound":"true"}"#,
            r#"{"inbound":1}"#,
            r#"{"inbound":[]}"#,
        ] {
            assert_eq!(reason(body), "Invalid inbound flag: expected true or false");
        }
        assert!(reason("[true]").starts_with(
            "Malformed JSON body: the body is not a JSON object with the expected fields"
        ));
        assert!(reason(r#"{"inbound":true,"inbound":false}"#).starts_with(
            "Malformed JSON body: the body is not a JSON object with the expected fields"
        ));
        assert!(reason("").starts_with("Malformed JSON body: the body ended unexpectedly"));
    }
}
