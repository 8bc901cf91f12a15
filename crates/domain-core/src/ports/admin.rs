//! Administration port: organizations, token pairs, and the sealed DKIM keys an
//! operator exports or re-seals. The admin use cases (`usecases::admin`) drive it;
//! the CLI only calls those use cases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::idempotency::IdempotencyKey;
use super::{BoxError, InfraError};
use crate::webhooks::WebhookId;
use crate::{DomainName, IssuedToken, OrganizationId, OrganizationName, SealedKey};

/// Re-seals one key: `(domain, sealed) -> sealed again`, or why it could not.
pub type Resealer = dyn Fn(&DomainName, &SealedKey) -> Result<SealedKey, BoxError> + Send + Sync;

/// Re-seals one webhook endpoint's signing secret: `(endpoint, sealed) -> sealed
/// again`, or why it could not.
pub type SecretResealer = dyn Fn(&WebhookId, &[u8]) -> Result<Vec<u8>, BoxError> + Send + Sync;

/// Re-seals the body of one kept Idempotency-Key answer: `(organization, key, kept)
/// -> kept again`, or why it could not.
pub type AnswerResealer =
    dyn Fn(&OrganizationId, &IdempotencyKey, &[u8]) -> Result<Vec<u8>, BoxError> + Send + Sync;

/// What a re-sealing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResealCount {
    /// DKIM private keys.
    pub keys: usize,
    /// Webhook signing secrets.
    pub webhook_secrets: usize,
    /// Kept Idempotency-Key answers.
    pub answers: usize,
}

/// An organization as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSummary {
    /// Its id.
    pub id: OrganizationId,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A token pair as an operator lists it: never a token, a secret or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// The pair's id in the store.
    pub id: i64,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; `None` while it is live.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Organizations, tokens and sealed keys, for operators.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Administration: Send + Sync {
    /// Creates an organization and its first token pair, atomically.
    ///
    /// # Errors
    /// [`InfraError`] when the store or the random number generator fails.
    async fn create_organization(
        &self,
        name: &OrganizationName,
    ) -> Result<(OrganizationId, IssuedToken), InfraError>;

    /// Issues another token pair; `None` when no organization has that id.
    ///
    /// # Errors
    /// [`InfraError`] when the store or the random number generator fails.
    async fn create_token(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<IssuedToken>, InfraError>;

    /// Every organization, oldest first.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_organizations(&self) -> Result<Vec<OrganizationSummary>, InfraError>;

    /// The organization's token pairs, oldest first, revoked ones included; `None`
    /// when no organization has that id.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_tokens(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Vec<TokenSummary>>, InfraError>;

    /// Whether an organization has this id.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn organization_exists(&self, organization: &OrganizationId) -> Result<bool, InfraError>;

    /// Revokes the live pair whose access token this is; whether one was revoked.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn revoke_token(&self, access_token: &str) -> Result<bool, InfraError>;

    /// The domain's signing (active) DKIM key, sealed; `None` for an unknown domain.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn sealed_key(&self, domain: &DomainName) -> Result<Option<SealedKey>, InfraError>;

    /// Up to `limit` stored DKIM private keys (any state whose private half still
    /// exists), sealed, with their domains: what a start checks its master key on.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn sample_sealed_keys(
        &self,
        limit: usize,
    ) -> Result<Vec<(DomainName, SealedKey)>, InfraError>;

    /// Replaces every stored sealed key with `reseal(domain, sealed)`, every
    /// webhook secret with `reseal_secret(endpoint, sealed)` and every kept
    /// Idempotency-Key answer with `reseal_answer(organization, key, kept)` in one
    /// unit of work: everything is re-sealed, or nothing is. Returns how many of each.
    ///
    /// # Errors
    /// [`ResealError::Key`], [`ResealError::WebhookSecret`] or
    /// [`ResealError::Answer`] naming the first that could not be re-sealed (nothing
    /// changed), or [`ResealError::Infra`].
    async fn reseal_keys(
        &self,
        reseal: &Resealer,
        reseal_secret: &SecretResealer,
        reseal_answer: &AnswerResealer,
    ) -> Result<ResealCount, ResealError>;
}

/// Re-sealing stopped; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// One key could not be opened or sealed again.
    #[error("re-sealing the key of {domain} failed")]
    Key {
        /// The domain whose key failed.
        domain: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// One webhook secret could not be opened or sealed again.
    #[error("re-sealing the secret of webhook {endpoint} failed")]
    WebhookSecret {
        /// The endpoint whose secret failed.
        endpoint: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// One kept Idempotency-Key answer could not be opened or sealed again.
    #[error("re-sealing a kept Idempotency-Key answer of organization {organization} failed")]
    Answer {
        /// The organization whose answer failed.
        organization: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The store failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}
