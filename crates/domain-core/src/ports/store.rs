//! DomainStore port: domains and their senders, with registration as one unit of work.
//! Every change a method makes records its events (`lifecycle::NewEvent`) in the same
//! unit of work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
use crate::lifecycle::{DomainStatus, KeyRecord, Page, Paged};
use crate::ownership::CreationLimits;
use crate::{DkimKey, DomainName, EmailAddress, OrganizationId, SealedKey, Selector};

/// A domain as stored: owner, active DKIM key (public half), inbound state, status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDomain {
    /// The domain (A-labels); one row per name across all organizations.
    pub name: DomainName,
    /// The organization that owns it.
    pub organization: OrganizationId,
    /// The active key's selector.
    pub selector: Selector,
    /// The active key: SubjectPublicKeyInfo DER, base64.
    pub public_key: String,
    /// Whether inbound mail is on; turned on only while an MX record points at one
    /// of our inbound hosts.
    pub inbound_enabled: bool,
    /// When `generate` created the domain.
    pub created_at: DateTime<Utc>,
    /// Whether the records have been seen published.
    pub status: DomainStatus,
    /// When the records were first seen correct.
    pub verified_at: Option<DateTime<Utc>>,
    /// When the records were last checked.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// When the next check is due; `None` when none is scheduled.
    pub next_check_at: Option<DateTime<Utc>>,
    /// Checks in a row that found a record missing or wrong.
    pub failed_checks: u32,
    /// What the last check (at `last_checked_at`) found, record by record; `None`
    /// before the first check (or one made before the findings were kept).
    pub last_check: Option<crate::last_check::LastCheck>,
    /// The zone a check's SOA lookup last found the domain in ([`crate::find_zone`]);
    /// `None` until one did. [`crate::Zone::of`] makes it the zone of the records.
    pub zone: Option<DomainName>,
}

impl StoredDomain {
    /// A domain as created: pending, never checked.
    #[must_use]
    pub fn new(
        name: DomainName,
        organization: OrganizationId,
        selector: Selector,
        public_key: String,
        inbound_enabled: bool,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            name,
            organization,
            selector,
            public_key,
            inbound_enabled,
            created_at,
            status: DomainStatus::Pending,
            verified_at: None,
            last_checked_at: None,
            next_check_at: None,
            failed_checks: 0,
            last_check: None,
            zone: None,
        }
    }
}

/// What one generate call asks the store to record, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRegistration {
    /// The calling organization, which must own the domain or will create it.
    pub organization: OrganizationId,
    /// The sender to register; its domain is the one created or reused.
    pub email: EmailAddress,
    /// The reply-to address to store with the sender, if any.
    pub reply_to: Option<EmailAddress>,
    /// The key for the domain if it has to be created; `None` when the caller
    /// already saw the domain owned by its organization.
    pub new_key: Option<DkimKey>,
    /// Turn inbound on. `false` never turns an enabled domain off.
    pub enable_inbound: bool,
    /// What creating the domain must respect (ignored when the domain exists), and
    /// the sender limit every registration respects.
    pub creation: CreationRules,
}

/// What creating a domain on its own (`POST /api/v1/emails/domains`) asks the store
/// to record, atomically: the domain, or the organization's own one as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCreation {
    /// The calling organization, which must own the domain or will create it.
    pub organization: OrganizationId,
    /// The domain to create or reuse.
    pub name: DomainName,
    /// The key for the domain if it has to be created; `None` when the caller
    /// already saw the domain owned by its organization.
    pub new_key: Option<DkimKey>,
    /// Turn inbound on. `false` never turns an enabled domain off.
    pub enable_inbound: bool,
    /// What creating the domain must respect (ignored when the domain exists).
    pub creation: CreationRules,
}

/// The rules a new domain is admitted under, checked by the store in the unit of work
/// that creates it (so instances sharing a database hold them together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationRules {
    /// The domain's ancestors below its public suffix, nearest the suffix first
    /// ([`crate::ownership::ancestors`]): if another organization owns one, the
    /// domain is taken. Creations under one registrable domain take turns.
    pub ancestors: Vec<DomainName>,
    /// The organization's quotas.
    pub limits: CreationLimits,
    /// When the new domain's first check is due.
    pub first_check_at: DateTime<Utc>,
}

/// The outcome of a registration: the domain as it stands after the unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The domain as stored; when calls raced, it carries the key that won.
    pub domain: StoredDomain,
    /// Whether this call created the domain (and so stored `new_key`).
    pub domain_created: bool,
}

/// A sender address registered on a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRecord {
    /// The address, canonical: lower-cased local part, A-label domain.
    pub email: String,
    /// The reply-to address as registered (local part's case kept, A-label domain).
    pub reply_to: Option<String>,
    /// Whether it is the organization's active sender; at most one is.
    pub active: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A domain with its senders (oldest first) and its DKIM keys (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDetail {
    /// The domain as stored.
    pub domain: StoredDomain,
    /// Its sender addresses, oldest first.
    pub senders: Vec<SenderRecord>,
    /// Every key still stored: active, pending, retiring, revoked.
    pub keys: Vec<KeyRecord>,
}

/// The key a domain signs with: its selector and sealed private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The selector published in the signature's `s=` tag.
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

    /// In one unit of work: create the domain with `new_key` unless it exists (no
    /// sender), check it belongs to the organization, and enable inbound if asked.
    /// Records `domain.created` and `domain.inbound_enabled` when they happen.
    /// Concurrent calls converge on one domain row and one key, as registrations do.
    ///
    /// # Errors
    /// [`RegisterError`]: [`RegisterError::DomainTaken`],
    /// [`RegisterError::DomainLimit`], [`RegisterError::RateLimited`],
    /// [`RegisterError::KeyRequired`] (the domain is gone and no key was supplied),
    /// or a store failure; never [`RegisterError::EmailTaken`] or
    /// [`RegisterError::SenderLimit`].
    async fn create_domain(&self, creation: DomainCreation) -> Result<Registered, RegisterError>;

    /// Whether `organization` may create a domain under `rules` right now: the same
    /// checks [`DomainStore::register_sender`] makes when it creates one, read without
    /// taking any lock, so a caller can refuse before it draws a key. `Ok` is no
    /// promise: the registration checks again.
    ///
    /// # Errors
    /// [`RegisterError::DomainTaken`] (an ancestor belongs to another organization),
    /// [`RegisterError::DomainLimit`], [`RegisterError::RateLimited`], or a failed read.
    async fn admit_creation(
        &self,
        organization: &OrganizationId,
        rules: &CreationRules,
    ) -> Result<(), RegisterError>;

    /// One page of the organization's domains, by name (A-label); the cursor is a
    /// domain name.
    ///
    /// # Errors
    /// [`StoreError`] when the read failed.
    async fn list_domains(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<StoredDomain, String>, StoreError>;

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

/// A read failed: the store's infrastructure error.
pub type StoreError = InfraError;

/// A registration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The domain belongs to another organization.
    #[error("the domain belongs to another organization")]
    DomainTaken,
    /// Another sender already has this address (compared case-insensitively).
    #[error("the email is already registered")]
    EmailTaken,
    /// The organization owns [`CreationLimits::max_domains`] domains already.
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    /// The domain has [`CreationLimits::max_senders_per_domain`] senders already.
    #[error("the domain's sender limit is reached")]
    SenderLimit,
    /// The organization created [`CreationLimits::per_minute`] domains within the
    /// last minute; a slot frees after `retry_after`.
    #[error("too many new domains; retry later")]
    RateLimited {
        /// Until the oldest creation in the window leaves it.
        retry_after: std::time::Duration,
    },
    /// The domain does not exist and no key was supplied to create it.
    #[error("the domain does not exist and no key was supplied")]
    KeyRequired,
    /// The store failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}
