//! The ports the use cases need. Adapters implement them; `mocks` exposes mockall
//! doubles (`MockCredentials`, `MockKeyGenerator`, `MockDns`, `MockDomainStore`,
//! `MockDkimSigner`).

pub mod credentials;
pub mod dns;
pub mod keys;
pub mod signing;
pub mod store;

/// The cause behind an `Unexpected` or `Unavailable` variant: logged, never shown.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
