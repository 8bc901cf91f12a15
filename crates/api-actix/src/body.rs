//! Reading a request body, bounded in size and in time: a client can neither send
//! more than a route accepts nor hold a connection (and a worker's attention) by
//! announcing a body and sending it slowly or not at all.

use std::time::Duration;

use actix_web::web::{self, Bytes};

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
