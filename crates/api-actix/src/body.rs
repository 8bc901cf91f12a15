//! Reading a request body, bounded in size and in time: a client can neither send
//! more than a route accepts nor hold a connection (and a worker's attention) by
//! announcing a body and sending it slowly or not at all.

use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage as _, HttpRequest};

use crate::error::ApiError;

/// The whole body, read within `timeout` from the first byte asked for to the last
/// one: the bound is on the total, so a client dripping a byte at a time hits it as
/// surely as one that sends nothing.
///
/// # Errors
/// [`ApiError::BodyTimeout`] when the body is not complete within `timeout`;
/// [`ApiError::PayloadTooLarge`] when it is longer than `max_bytes`;
/// [`ApiError::BadRequest`] when it cannot be read (a broken chunked encoding…).
pub async fn read_body(
    payload: web::Payload,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, payload.to_bytes_limited(max_bytes)).await {
        Err(_elapsed) => Err(ApiError::BodyTimeout),
        Ok(Err(_too_large)) => Err(ApiError::PayloadTooLarge(max_bytes)),
        Ok(Ok(Err(_unreadable))) => Err(ApiError::BadRequest(
            "Could not read the request body".into(),
        )),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
    }
}

/// `refusal`, answered only after the body has been read (bounded as in
/// [`read_body`]) — or 408 when it does not arrive in time.
///
/// A route that refuses before it wants the body (a 401) still reads it first:
/// actix-http closes a keep-alive connection whose request body is still unread, so
/// every rejected call would cost the client a new connection (and a TLS handshake
/// behind a proxy). Without the time bound a client without credentials could hold
/// the connection forever.
pub async fn refuse_after_body(
    payload: web::Payload,
    max_bytes: usize,
    timeout: Duration,
    refusal: ApiError,
) -> ApiError {
    match read_body(payload, max_bytes, timeout).await {
        Err(timeout @ ApiError::BodyTimeout) => timeout,
        _ => refusal,
    }
}

/// The caller and the JSON body of a route that takes one, in the order every such
/// route answers: a refused authentication (after reading the body, see
/// [`refuse_after_body`]), then 415 unless the body is declared `application/json`,
/// then the body within the limits of [`read_body`].
///
/// # Errors
/// The authentication error, [`ApiError::UnsupportedMediaType`], or [`read_body`]'s.
pub async fn authenticated_json<A>(
    auth: Result<A, ApiError>,
    req: &HttpRequest,
    payload: web::Payload,
    max_bytes: usize,
    timeout: Duration,
) -> Result<(A, Bytes), ApiError> {
    let caller = match auth {
        Ok(caller) => caller,
        Err(refusal) => return Err(refuse_after_body(payload, max_bytes, timeout, refusal).await),
    };
    // `content_type()` is the media type without its parameters (`; charset=…`).
    if !req.content_type().eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok((caller, read_body(payload, max_bytes, timeout).await?))
}
