//! A typed client of domain-api, generated at build time by
//! [progenitor](https://github.com/oxidecomputer/progenitor) from `docs/openapi.json`,
//! the committed copy of the document the service serves. One method per
//! `operationId` (`generate_domain`, `get_domain`, `rotate_dkim_key`, …) on [`Client`].
//!
//! The API token pair goes on every request as two headers; build the
//! `reqwest::Client` with them:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use domain_api_client::{Client, with_api_tokens};
//!
//! let client = Client::new_with_client(
//!     "http://127.0.0.1:8080",
//!     with_api_tokens("dak_…", "das_…")?,
//! );
//! let detail = client.get_domain(&"example.com".parse()?).await?;
//! println!("{:?}", detail.status);
//! # Ok(())
//! # }
//! ```
#![expect(
    clippy::pedantic,
    clippy::unwrap_used,
    unused_qualifications,
    reason = "generated code"
)]

include!(concat!(env!("OUT_DIR"), "/client.rs"));

/// The whole body of a raw answer as text: an error's sentence (or the 500's JSON), the
/// zone file, the metrics.
///
/// # Errors
/// When the body cannot be read, or is not UTF-8.
pub async fn text(body: ByteStream) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = body.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(String::from_utf8(bytes)?)
}

/// A `reqwest::Client` sending `X-Api-Access-Token` and `X-Api-Secret-Token` on every
/// request.
///
/// # Errors
/// When a token is not a valid header value, or the client cannot be built.
pub fn with_api_tokens(
    access: &str,
    secret: &str,
) -> Result<reqwest::Client, Box<dyn std::error::Error + Send + Sync>> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut sensitive =
        |name: &'static str, value: &str| -> Result<(), reqwest::header::InvalidHeaderValue> {
            let mut value = reqwest::header::HeaderValue::from_str(value)?;
            value.set_sensitive(true);
            headers.insert(name, value);
            Ok(())
        };
    sensitive("x-api-access-token", access)?;
    sensitive("x-api-secret-token", secret)?;
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}
