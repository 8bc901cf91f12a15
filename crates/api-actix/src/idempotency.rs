//! `Idempotency-Key` on every `POST`, `PATCH` and `DELETE` under `/api/v1`: the same
//! key with the same request replays the first answer (`Idempotent-Replayed: true`),
//! with another request answers 422, while the first runs answers 409. A new request
//! runs inside the store's unit of work for the key, which keeps the answer in the
//! same transaction as the change; a 5xx keeps nothing. Without the header nothing
//! changes.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use domain_core::OrganizationId;
use domain_core::ports::idempotency::{Begun, IdempotencyKey, StoredResponse};

use crate::AppState;
use crate::error::ApiError;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// The header of a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The largest body the key fingerprints (every route's limit); a larger one is
/// answered 413 by its route, unguarded.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The middleware (`middleware::from_fn`).
///
/// # Errors
/// What the inner service returns.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let guarded = matches!(*req.method(), Method::POST | Method::PATCH | Method::DELETE)
        && req.path().starts_with("/api/v1/");
    let mut values = req.headers().get_all(KEY_HEADER);
    let (Some(raw), true) = (values.next(), guarded) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match (IdempotencyKey::parse(raw.as_bytes()), values.next()) {
        (Some(key), None) => key,
        _ => {
            let refusal = ApiError::BadRequest(
                "Invalid Idempotency-Key: one header of 1 to 255 printable ASCII characters".into(),
            );
            return Ok(req.into_response(refusal.error_response()));
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // A request nobody can be found for is not guarded: its route answers 401.
    let Some(organization) = caller(&req, &state).await else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let body = match tokio::time::timeout(state.body_timeout, req.extract::<web::Bytes>()).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return Ok(
                req.into_response(ApiError::PayloadTooLarge(MAX_BODY_BYTES).error_response())
            );
        }
        Err(_) => return Ok(req.into_response(ApiError::BodyTimeout.error_response())),
    };
    req.set_payload(body.clone().into());
    if body.len() > MAX_BODY_BYTES {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let fingerprint = fingerprint(&req, &body);
    let begun = match state
        .idempotency
        .begin(&organization, key, fingerprint)
        .await
    {
        Ok(begun) => begun,
        Err(error) => {
            let failure = ApiError::Unavailable(Box::new(error));
            return Ok(req.into_response(failure.error_response()));
        }
    };
    match begun {
        Begun::Replay(stored) => Ok(req.into_response(
            HttpResponse::build(
                actix_web::http::StatusCode::from_u16(stored.status)
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
            )
            .content_type(stored.content_type)
            .insert_header((REPLAYED_HEADER, "true"))
            .body(stored.body),
        )),
        Begun::Mismatch => Ok(req.into_response(ApiError::IdempotencyMismatch.error_response())),
        Begun::InProgress => {
            Ok(req.into_response(ApiError::IdempotencyInProgress.error_response()))
        }
        Begun::Fresh(mut unit) => {
            let mut outcome = None;
            unit.run(Box::pin(async {
                outcome = Some(next.call(req).await);
            }))
            .await;
            let response = match outcome {
                Some(Ok(response)) => response,
                Some(Err(error)) => {
                    unit.rollback().await;
                    return Err(error);
                }
                None => {
                    unit.rollback().await;
                    return Err(actix_web::error::ErrorInternalServerError(
                        "request not run",
                    ));
                }
            };
            if response.status().is_server_error() {
                // Not kept: the change (if any) is undone and a retry runs again.
                unit.rollback().await;
                return Ok(response.map_into_boxed_body());
            }
            let (request, response) = response.into_parts();
            let (response, body) = response.into_parts();
            let Ok(body) = to_bytes(body).await else {
                unit.rollback().await;
                let failure = ApiError::Unexpected(
                    "response body unreadable".into(),
                    crate::error::Operation::Other,
                );
                return Ok(ServiceResponse::new(request, failure.error_response()));
            };
            let stored = StoredResponse {
                status: response.status().as_u16(),
                content_type: response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: body.to_vec(),
            };
            if let Err(error) = unit.commit(&stored).await {
                // Neither the change nor the answer is kept (or, if the database
                // could not say, a retry finds out which).
                let failure = ApiError::Unavailable(Box::new(error));
                return Ok(ServiceResponse::new(request, failure.error_response()));
            }
            Ok(ServiceResponse::new(
                request,
                response.set_body(BoxBody::new(body)),
            ))
        }
    }
}

/// The caller of a guarded request: API tokens, or on `PATCH` (the inbound toggle,
/// which takes it) a dashboard JWT alone.
async fn caller(req: &ServiceRequest, state: &AppState) -> Option<OrganizationId> {
    let http = req.request();
    let has_tokens = http
        .headers()
        .contains_key(crate::auth::ACCESS_TOKEN_HEADER)
        || http
            .headers()
            .contains_key(crate::auth::SECRET_TOKEN_HEADER);
    if has_tokens {
        return crate::auth::token_org(http).await.ok();
    }
    if *req.method() == Method::PATCH {
        let secret = state.jwt.as_ref()?;
        let token = crate::auth::bearer(http)?;
        return crate::auth::verify_bearer(secret, token).ok();
    }
    None
}

/// SHA-256 of method, path with query, and body, each length-prefixed.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> Vec<u8> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    for part in [req.method().as_str().as_bytes(), target.as_bytes(), body] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}
