//! ClaimStore port: open claims on another organization's domain, and the transfer a
//! proven claim makes, as one unit of work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
use crate::{DkimKey, DomainName, OrganizationId};

/// An open claim: the claimant publishes `_domain-api-claim.<domain>` with
/// `domain-api-claim=<token>` before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claimed domain.
    pub domain: DomainName,
    /// The random part of the record's value; not a secret (it is published in DNS),
    /// but unguessable, so only the claimant's own record proves its claim.
    pub token: String,
    /// When the claim closes unproven.
    pub expires_at: DateTime<Utc>,
}

/// Why no claim was opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenClaimError {
    /// Nobody owns the domain.
    #[error("no such domain")]
    NotFound,
    /// The claimant owns it already.
    #[error("the domain already belongs to this organization")]
    OwnDomain,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Why a proven claim did not transfer the domain.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The claim is gone: expired, another claim won, or the owner deleted the domain.
    #[error("no open claim for this domain")]
    NoOpenClaim,
    /// The domain would take the claimant past its domain limit.
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Persistent claims.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// The organization's open claim on `domain` at `now`, or a new one (with a fresh
    /// random token, closing at `expires_at`) when it has none or its last expired.
    ///
    /// # Errors
    /// [`OpenClaimError`].
    async fn open_claim(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, OpenClaimError>;

    /// The organization's claim on `domain` if still open at `now`.
    ///
    /// # Errors
    /// [`InfraError`] when the read failed.
    async fn find_claim(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, InfraError>;

    /// In one unit of work, if `claim` is still open at `now` and the domain still
    /// has the owner it had: the owner's keys destroyed, its senders on the domain
    /// removed, the domain given to `organization` with `new_key` as its active key
    /// (pending verification from scratch, first check at `first_check_at`, inbound
    /// off), every open claim on it closed, and the
    /// events `domain.claimed` (to the claimant) and `domain.transferred` (to the
    /// previous owner) recorded. Concurrent claims, rotations and deletions of the
    /// domain take turns with it: one of them wins whole. Refused, changing nothing,
    /// when the claimant already owns `max_domains` domains.
    ///
    /// # Errors
    /// [`TransferError::NoOpenClaim`] when the claim is no longer open,
    /// [`TransferError::DomainLimit`].
    async fn transfer(
        &self,
        organization: &OrganizationId,
        claim: &Claim,
        new_key: DkimKey,
        now: DateTime<Utc>,
        first_check_at: DateTime<Utc>,
        max_domains: u32,
    ) -> Result<(), TransferError>;
}
