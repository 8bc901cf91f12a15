//! The ports the use cases need. Adapters implement them; `mocks` exposes mockall
//! doubles (`MockCredentials`, `MockKeyGenerator`, `MockDns`, `MockDomainStore`,
//! `MockDkimSigner`, …).

pub mod admin;
pub mod claims;
pub mod clock;
pub mod credentials;
pub mod dns;
pub mod idempotency;
pub mod keys;
pub mod lifecycle;
pub mod signing;
pub mod store;
pub mod webhooks;

/// The cause behind an [`InfraError`]: logged, never shown.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A port failed for a reason outside the domain. Every use case's error has one
/// variant carrying this, so the edge maps infrastructure failures in one place.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The backing service cannot be reached right now; retrying later may succeed.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, corrupt data, a failed invariant.
    #[error("a backing service failed")]
    Unexpected(#[source] BoxError),
}

impl InfraError {
    /// An unexpected failure from any error.
    pub fn unexpected(error: impl Into<BoxError>) -> Self {
        Self::Unexpected(error.into())
    }
}
