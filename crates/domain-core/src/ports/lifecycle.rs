//! Lifecycle ports: what happens to a domain after `generate` — key rotation, the
//! outcome of a check, the inbound toggle, deletion — and its senders and events.
//! Every change records its events in the same unit of work.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
use crate::lifecycle::{DomainStatus, Event, KeyState, NewEvent, Page, Paged};
use crate::{DkimKey, DomainName, OrganizationId, Selector};

/// A move of one key, applied only if the key is still in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMove {
    /// The key.
    pub selector: Selector,
    /// The state it must be in for the move to apply.
    pub from: KeyState,
    /// Where it goes.
    pub to: KeyTarget,
}

/// Where a key moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTarget {
    /// Becomes the active key (`activated_at` = the check's time).
    Active,
    /// Stops being active (`retired_at` = the check's time).
    Retiring,
    /// Revoked (`revoked_at` = the check's time); its sealed private key is destroyed.
    Revoked,
    /// Removed from the store.
    Removed,
}

/// Everything one check changes, computed by `usecases::verify::plan_check` and
/// applied by the store as one unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// The organization owning the domain when the check began.
    pub organization: OrganizationId,
    /// The domain.
    pub domain: DomainName,
    /// When the check ran.
    pub checked_at: DateTime<Utc>,
    /// The status after the check.
    pub status: DomainStatus,
    /// When the domain was first verified, after the check.
    pub verified_at: Option<DateTime<Utc>>,
    /// Failed checks in a row, after the check.
    pub failed_checks: u32,
    /// When the next check is due, if one is scheduled.
    pub next_check_at: Option<DateTime<Utc>>,
    /// Key moves, in order (an active key retires before a pending one activates).
    pub key_moves: Vec<KeyMove>,
    /// Events to record with the change.
    pub events: Vec<NewEvent>,
    /// What the check found, record by record, kept with the domain.
    pub last_check: Option<crate::last_check::LastCheck>,
    /// The zone the check found the domain in; `None` leaves the stored one as it is
    /// (the lookup failed, or found none).
    pub zone: Option<DomainName>,
}

/// Why a rotation did not start.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// No such domain for this organization.
    #[error("no such domain for this organization")]
    NotFound,
    /// A key is already pending.
    #[error("a rotation is already in progress")]
    InProgress,
    /// The store failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// The times of an organization's latest DKIM key generations — new domains
/// (`domain.created`), rotations (`dkim.rotation_started`) and claims
/// (`domain.claimed`) — which share one budget.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyGenerations: Send + Sync {
    /// The times of the organization's latest `limit` key generations, newest first.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn latest_key_generations(
        &self,
        organization: &OrganizationId,
        limit: u32,
    ) -> Result<Vec<DateTime<Utc>>, InfraError>;
}

/// The log of live DNS checks — the requests that query DNS on a caller's behalf —
/// which holds each organization to its budget across every instance
/// (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LiveCheckLog: Send + Sync {
    /// Records one live check of `organization` at `now` if fewer than `limit` were
    /// recorded in the `window` before `now`, atomically across instances: `Ok(None)`.
    /// Otherwise records nothing and returns when the oldest of those checks was
    /// recorded (one check frees at that time plus `window`).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn take_live_check(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
        window: std::time::Duration,
        limit: u32,
    ) -> Result<Option<DateTime<Utc>>, InfraError>;
}

/// Rotation, checks, inbound and deletion.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyLifecycleStore: Send + Sync {
    /// Adds `key` as the domain's pending key and records `dkim.rotation_started`.
    /// At most one key is pending per domain, across instances.
    ///
    /// # Errors
    /// [`RotateError::NotFound`] (also for another organization's domain),
    /// [`RotateError::InProgress`], or a store failure.
    async fn start_rotation(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        key: DkimKey,
        at: DateTime<Utc>,
    ) -> Result<(), RotateError>;

    /// Applies `plan` as one unit of work. Returns `false`, changing nothing, when the
    /// domain is gone, changed owner, or a key is no longer in a move's `from` state
    /// (a concurrent change won; the next check starts from what it left).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn apply_check(&self, plan: &CheckPlan) -> Result<bool, InfraError>;

    /// Sets inbound, recording `domain.inbound_enabled`/`_disabled` when it changes.
    /// `false` when the organization has no such domain.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn set_inbound(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        enabled: bool,
    ) -> Result<bool, InfraError>;

    /// Deletes the domain, its senders and its keys (the sealed private keys are
    /// overwritten, then deleted) and records `domain.deleted`. `false` when the
    /// organization has no such domain.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn delete_domain(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
    ) -> Result<bool, InfraError>;
}

/// A sender with its domain, for the senders list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderView {
    /// The address, canonical (lower-cased domain).
    pub email: String,
    /// Its domain (A-label).
    pub domain: String,
    /// The reply-to address, if any.
    pub reply_to: Option<String>,
    /// Whether it is the organization's active sender.
    pub active: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The organization's senders.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SenderStore: Send + Sync {
    /// One page of senders, by address; the cursor is an address.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_senders(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<SenderView, String>, InfraError>;

    /// Makes `email` (canonical) the organization's only active sender and records
    /// `sender.activated`; `None` when the organization has no such sender.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn activate_sender(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<Option<SenderView>, InfraError>;

    /// Deletes `email` (canonical) and records `sender.deleted`; `false` when the
    /// organization has no such sender.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn delete_sender(
        &self,
        organization: &OrganizationId,
        email: &str,
    ) -> Result<bool, InfraError>;
}

/// The organization's events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// One page of the organization's events, oldest first; the cursor is an id.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_events(
        &self,
        organization: &OrganizationId,
        page: &Page<i64>,
    ) -> Result<Paged<Event, i64>, InfraError>;
}

/// Events past their retention, for the background task that removes them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OldEvents: Send + Sync {
    /// Removes up to `batch` of the oldest events recorded before `before`, with
    /// their webhook deliveries and attempts, in one transaction; how many events it
    /// removed.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn prune_events(&self, before: DateTime<Utc>, batch: usize) -> Result<usize, InfraError>;
}

/// A domain whose check is due, leased to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    /// Its owner when leased.
    pub organization: OrganizationId,
    /// The domain.
    pub domain: DomainName,
}

/// The background verifier's queue: domains whose next check is due.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CheckQueue: Send + Sync {
    /// Leases up to `limit` domains whose check is due at `now` (earliest first) and
    /// that no one else holds, each until `lease_until` or until a check's plan is
    /// applied (which clears the lease). Two callers, on any instances, never lease
    /// the same domain at once.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueCheck>, InfraError>;

    /// Gives a lease back without checking (the domain is checked again when it is
    /// next due).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn release(&self, check: &DueCheck) -> Result<(), InfraError>;
}
