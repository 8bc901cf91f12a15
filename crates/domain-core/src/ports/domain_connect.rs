//! Domain Connect ports: one HTTPS `GET` to an address the use case checked (the DNS
//! provider's settings and template-support answers), and the signature of an apply
//! URL's query with the service's Domain Connect key.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::BoxError;
use crate::webhooks::WebhookUrl;

/// One `GET`: to `url`'s host by name (`Host`, TLS server name), connected to
/// `address`, the one the caller checked (never looked up again).
#[derive(Debug, Clone)]
pub struct HttpsGet {
    /// What to fetch.
    pub url: WebhookUrl,
    /// The checked address to connect to.
    pub address: SocketAddr,
    /// The bound on the whole exchange.
    pub timeout: Duration,
    /// The most body bytes read: a longer body is a failure.
    pub max_body: usize,
}

/// What a `GET` came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A response, whole, in time.
    Answered {
        /// Its status code.
        status: u16,
        /// Its body (at most the request's `max_body` bytes).
        body: Vec<u8>,
    },
    /// None: a short closed reason (`timeout`, `tls`, `too large`, …).
    Failed(&'static str),
}

/// Makes one HTTPS `GET`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HttpsFetcher: Send + Sync {
    /// Fetches `request` within its timeout; redirects are not followed.
    async fn get(&self, request: &HttpsGet) -> FetchOutcome;
}

/// Signs apply URLs (RSA-SHA256, PKCS#1 v1.5), as the spec's "Digitally Sign
/// Requests" says.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ApplyUrlSigner: Send + Sync {
    /// The signature of `query`'s bytes, base64 (standard, padded).
    ///
    /// # Errors
    /// The cause, when the key could not sign.
    fn sign(&self, query: &str) -> Result<String, BoxError>;
}
