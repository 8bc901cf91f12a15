//! `Idempotency-Key` on every `POST`, `PATCH` and `DELETE` under `/api/v1`: the same
//! key with the same request replays the first answer (`Idempotent-Replayed: true`),
//! with another request answers 422, while the first runs answers 409. A new request
//! takes its key first (a request that cannot is answered 503 and does not run),
//! runs inside the store's unit of work for the key, whose first write opens the
//! transaction that keeps the answer with the change; a 5xx keeps nothing and frees
//! the key. Without the header nothing changes.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse, ResponseError, web};
use domain_core::OrganizationId;
use domain_core::ports::idempotency::{
    Begun, Held, IdempotencyKey, RegistrationAnswer, StoredResponse, Taking,
};

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
    // A request nobody can be found for is not guarded: its route answers 401. One
    // whose caller cannot be looked up now cannot take its key, and does not run.
    let organization = match caller(&req, &state).await {
        Ok(Some(organization)) => organization,
        Ok(None) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Err(failure) => return Ok(req.into_response(failure.error_response())),
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
    let taking = taking(&req);
    let begun = match state
        .idempotency
        .begin(&organization, key, fingerprint, taking)
        .await
    {
        Ok(begun) => begun,
        Err(error) => {
            let failure = ApiError::Unavailable(Box::new(error));
            return Ok(req.into_response(failure.error_response()));
        }
    };
    match begun {
        Begun::Replay(stored) => Ok(req.into_response(held_response(Held::Replay(stored)))),
        Begun::Mismatch => Ok(req.into_response(held_response(Held::Mismatch))),
        Begun::InProgress => Ok(req.into_response(held_response(Held::InProgress))),
        Begun::Full { retry_after } => {
            let wait = domain_core::ownership::retry_after(retry_after);
            Ok(req.into_response(ApiError::TooManyStoredAnswers(wait).error_response()))
        }
        Begun::Fresh(mut unit) => {
            let answer = RegistrationAnswer::default();
            req.extensions_mut().insert(answer.clone());
            let mut outcome = None;
            unit.run(
                answer,
                Box::pin(async {
                    outcome = Some(next.call(req).await);
                }),
            )
            .await;
            if let Some(held) = unit.superseded() {
                // Another request with the key kept its answer first (a key taken
                // with the change): this one's write was refused; it answers that.
                unit.rollback().await;
                return match outcome {
                    Some(Ok(response)) => {
                        let (request, _) = response.into_parts();
                        Ok(ServiceResponse::new(request, held_response(held)))
                    }
                    Some(Err(error)) => Err(error),
                    None => Err(actix_web::error::ErrorInternalServerError(
                        "request not run",
                    )),
                };
            }
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
            match unit.commit(&stored).await {
                Ok(None) => Ok(ServiceResponse::new(
                    request,
                    response.set_body(BoxBody::new(body)),
                )),
                // Another request with the key kept its answer first.
                Ok(Some(held)) => Ok(ServiceResponse::new(request, held_response(held))),
                Err(error) => {
                    // Neither the change nor the answer is kept (or, if the database
                    // could not say, a retry finds out which).
                    let failure = ApiError::Unavailable(Box::new(error));
                    Ok(ServiceResponse::new(request, failure.error_response()))
                }
            }
        }
    }
}

/// The answer to a request whose key another request holds: the kept answer again
/// (`Idempotent-Replayed: true`), 422 for another request's key, 409 while it runs.
fn held_response(held: Held) -> HttpResponse {
    match held {
        Held::Replay(stored) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(stored.status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .content_type(stored.content_type)
        .insert_header((REPLAYED_HEADER, "true"))
        .body(stored.body),
        Held::Mismatch => ApiError::IdempotencyMismatch.error_response(),
        Held::InProgress => ApiError::IdempotencyInProgress.error_response(),
    }
}

/// When a request's fresh key is taken. generate, whose work before its one write
/// (the registration) is short — at most one MX lookup — takes its key with the
/// change, in its registration's group-commit member, so a keyed generate costs one
/// read and one statement more than an unkeyed one. Every other route waits on the
/// network before it writes (a DNS check, a webhook's address) and takes its key up
/// front, so a retry made while it runs answers 409 at once.
fn taking(req: &ServiceRequest) -> Taking {
    if *req.method() == Method::POST && req.path() == crate::routes::GENERATE_PATH {
        Taking::WithChange
    } else {
        Taking::UpFront
    }
}

/// The caller of a guarded request: API tokens, or on `PATCH` (the inbound toggle,
/// which takes it) a dashboard JWT alone; `None` for credentials that name nobody.
///
/// # Errors
/// The route's answer when the tokens could not be looked up (the store is
/// unavailable): the key cannot be taken, so the request must not run.
async fn caller(
    req: &ServiceRequest,
    state: &AppState,
) -> Result<Option<OrganizationId>, ApiError> {
    let http = req.request();
    let has_tokens = http
        .headers()
        .contains_key(crate::auth::ACCESS_TOKEN_HEADER)
        || http
            .headers()
            .contains_key(crate::auth::SECRET_TOKEN_HEADER);
    if has_tokens {
        return match crate::auth::token_org(http).await {
            Ok(organization) => Ok(Some(organization)),
            Err(failure) if failure.status_code().is_server_error() => Err(failure),
            Err(_) => Ok(None),
        };
    }
    if *req.method() == Method::PATCH {
        let verified = state
            .jwt
            .as_ref()
            .zip(crate::auth::bearer(http))
            .and_then(|(secret, token)| crate::auth::verify_bearer(secret, token).ok());
        return Ok(verified);
    }
    Ok(None)
}

/// A response as kept for replay, when it is whole in memory and not a 5xx (which
/// is never kept).
pub(crate) fn stored(response: HttpResponse) -> Option<StoredResponse> {
    if response.status().is_server_error() {
        return None;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = response.status().as_u16();
    let body = response.into_body().try_into_bytes().ok()?;
    Some(StoredResponse {
        status,
        content_type,
        body: body.to_vec(),
    })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, middleware};
    use domain_core::ports::InfraError;
    use domain_core::ports::credentials::MockCredentials;
    use domain_core::usecases::authenticate::Authenticate;

    use super::*;
    use crate::routes::test_app::{Mocks, as_org_a, org_a};

    /// A keyed request whose caller cannot be looked up (the pool is exhausted, the
    /// database resets) cannot take its key, so it must not run: before, it ran
    /// unguarded, its handler's own lookup succeeded a moment later, and a retry of
    /// the same key ran it a second time.
    #[tokio::test]
    async fn a_keyed_request_that_cannot_take_its_key_does_not_run() {
        let mut credentials = MockCredentials::new();
        credentials
            .expect_organization_for()
            .times(1)
            .returning(|_| Err(InfraError::Unavailable("pool timed out".into())));
        credentials
            .expect_organization_for()
            .returning(|_| Ok(Some(org_a())));
        // The store has no expectation: any call of generate's fails the test.
        let mut state = Mocks::new().state();
        state.authenticate = Authenticate::new(Arc::new(credentials));
        let app = init_service(
            App::new()
                .app_data(web::Data::new(state))
                .configure(crate::routes::configure)
                .wrap(middleware::from_fn(guard)),
        )
        .await;

        let request = as_org_a(
            TestRequest::post()
                .uri("/api/v1/emails/domains/generate")
                .insert_header(("Content-Type", "application/json"))
                .insert_header((KEY_HEADER, "order-1"))
                .set_payload(r#"{"email":"x@example.com"}"#),
        );
        let response = call_service(&app, request.to_request()).await;

        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap_or_default()),
            Some("1")
        );
    }
}
