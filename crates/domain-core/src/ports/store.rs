//! DomainStore port: domains and their senders, with registration as one unit of work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::BoxError;
use crate::{DkimKey, DomainName, EmailAddress, OrganizationId, SealedKey, Selector};

/// A domain as stored: owner, DKIM public half, inbound state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDomain {
    pub name: DomainName,
    pub organization: OrganizationId,
    pub selector: Selector,
    /// SubjectPublicKeyInfo DER, base64.
    pub public_key: String,
    pub inbound_enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// What one generate call asks the store to record, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRegistration {
    pub organization: OrganizationId,
    pub email: EmailAddress,
    pub reply_to: Option<EmailAddress>,
    /// The key for the domain if it has to be created; `None` when the caller
    /// already saw the domain owned by its organization.
    pub new_key: Option<DkimKey>,
    /// Turn inbound on. `false` never turns an enabled domain off.
    pub enable_inbound: bool,
}

/// The outcome of a registration: the domain as it stands after the unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub domain: StoredDomain,
    /// Whether this call created the domain (and so stored `new_key`).
    pub domain_created: bool,
}

/// A sender address registered on a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRecord {
    pub email: String,
    pub reply_to: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// A domain with its senders, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDetail {
    pub domain: StoredDomain,
    pub senders: Vec<SenderRecord>,
}

/// The key a domain signs with: its selector and sealed private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub selector: Selector,
    /// Opaque outside the adapter that sealed it; its `Debug` shows only the length.
    pub sealed_private_key: SealedKey,
}

/// Persistent domains and senders.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DomainStore: Send + Sync {
    /// The domain called `name`, whoever owns it.
    ///
    /// # Errors
    /// [`StoreError`] when the read failed.
    async fn find_domain(&self, name: &DomainName) -> Result<Option<StoredDomain>, StoreError>;

    /// In one unit of work: create the domain with `new_key` unless it exists, check
    /// it belongs to the organization, insert the sender, make it the organization's
    /// only active sender, and enable inbound if asked. Concurrent calls converge:
    /// one domain row, one key, one active sender per organization.
    ///
    /// # Errors
    /// [`RegisterError`]: conflicts are typed variants, never driver errors.
    async fn register_sender(
        &self,
        registration: SenderRegistration,
    ) -> Result<Registered, RegisterError>;

    /// The organization's domains, by name.
    ///
    /// # Errors
    /// [`StoreError`] when the read failed.
    async fn list_domains(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<StoredDomain>, StoreError>;

    /// One of the organization's domains with its senders; `None` when it does not
    /// exist *or* belongs to another organization.
    ///
    /// # Errors
    /// [`StoreError`] when the read failed.
    async fn domain_detail(
        &self,
        organization: &OrganizationId,
        name: &DomainName,
    ) -> Result<Option<DomainDetail>, StoreError>;

    /// The key the domain called `name` signs with, whoever owns it; `None` when the
    /// domain does not exist. (One key per domain today; with rotation, the active
    /// one.)
    ///
    /// # Errors
    /// [`StoreError`] when the read failed.
    async fn signing_key(&self, name: &DomainName) -> Result<Option<SigningKey>, StoreError>;
}

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now; retrying later may succeed.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("the store failed")]
    Unexpected(#[source] BoxError),
}

/// A registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the domain belongs to another organization")]
    DomainTaken,
    #[error("the email is already registered")]
    EmailTaken,
    /// The domain does not exist and no key was supplied to create it.
    #[error("the domain does not exist and no key was supplied")]
    KeyRequired,
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("the registration failed")]
    Unexpected(#[source] BoxError),
}

impl From<StoreError> for RegisterError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(e) => Self::Unavailable(e),
            StoreError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}
