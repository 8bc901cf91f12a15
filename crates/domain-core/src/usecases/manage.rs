//! Commands on one of an organization's domains after `generate`: rotate its DKIM
//! key, toggle inbound mail, delete it. Another organization's domain is reported
//! exactly like one that does not exist.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::InfraError;
use crate::ports::dns::Dns;
use crate::ports::keys::KeyGenerator;
use crate::ports::lifecycle::{KeyLifecycleStore, RotateError};
use crate::usecases::key_budget::KeyBudget;
use crate::usecases::read::{DomainView, ReadDomains, ReadError};
use crate::{DomainName, OrganizationId, RecordPolicy};

/// The default least time between two rotations of one domain
/// (`DOMAIN_API_DKIM_ROTATION_INTERVAL`).
pub const DEFAULT_ROTATION_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Why a command on a domain did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// No such domain for this organization.
    #[error("no such domain for this organization")]
    NotFound,
    /// A key is already pending (rotation).
    #[error("a rotation is already in progress")]
    RotationInProgress,
    /// The organization's key-generation budget is spent, or the domain rotated
    /// less than the rotation interval ago; carries how long until it may.
    #[error("too many DKIM keys generated")]
    TooManyKeys(Duration),
    /// Inbound was asked for but no MX record points at one of these hosts.
    #[error("no MX record points at the inbound hosts")]
    MxNotReady(Vec<String>),
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<ReadError> for ManageError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::InvalidDomain(raw) => Self::InvalidDomain(raw),
            ReadError::NotFound => Self::NotFound,
            ReadError::Infra(e) => Self::Infra(e),
        }
    }
}

fn parse(domain: &str) -> Result<DomainName, ManageError> {
    DomainName::parse(domain).map_err(|_| ManageError::InvalidDomain(domain.to_owned()))
}

/// Rotation, the inbound toggle and deletion.
#[derive(Clone)]
pub struct ManageDomain {
    store: Arc<dyn KeyLifecycleStore>,
    keys: Arc<dyn KeyGenerator>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
    read: ReadDomains,
    clock: Arc<dyn crate::ports::clock::Clock>,
    budget: Option<KeyBudget>,
    rotation_interval: Duration,
}

impl ManageDomain {
    /// The use case over its ports; `read` renders the domain after a change.
    #[must_use]
    pub fn new(
        store: Arc<dyn KeyLifecycleStore>,
        keys: Arc<dyn KeyGenerator>,
        dns: Arc<dyn Dns>,
        policy: Arc<RecordPolicy>,
        read: ReadDomains,
        clock: Arc<dyn crate::ports::clock::Clock>,
    ) -> Self {
        Self {
            store,
            keys,
            dns,
            policy,
            read,
            clock,
            budget: None,
            rotation_interval: Duration::ZERO,
        }
    }

    /// Rotations drawing on `budget`, each domain at most once per
    /// `rotation_interval` (none, and no interval, until this is called).
    #[must_use]
    pub fn with_key_budget(mut self, budget: KeyBudget, rotation_interval: Duration) -> Self {
        self.budget = Some(budget);
        self.rotation_interval = rotation_interval;
        self
    }

    /// Starts a rotation: a new key, pending until a check sees its record. Refused
    /// before a key is generated when the domain rotated less than the rotation
    /// interval ago or the organization's key budget is spent.
    ///
    /// # Errors
    /// [`ManageError::InvalidDomain`], [`ManageError::NotFound`],
    /// [`ManageError::RotationInProgress`], [`ManageError::TooManyKeys`], or a port
    /// failure.
    pub async fn rotate(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<DomainView, ManageError> {
        self.rotate_checked(organization, domain, true).await
    }

    /// Starts a rotation for the operator (`domain-api dkim rotate`: a compromised
    /// key), past the rotation interval and the organization's key budget.
    ///
    /// # Errors
    /// As [`ManageDomain::rotate`], never [`ManageError::TooManyKeys`].
    pub async fn rotate_as_operator(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<DomainView, ManageError> {
        self.rotate_checked(organization, domain, false).await
    }

    async fn rotate_checked(
        &self,
        organization: &OrganizationId,
        domain: &str,
        budgeted: bool,
    ) -> Result<DomainView, ManageError> {
        let name = parse(domain)?;
        // Refuse cheaply before spending a key on a domain we cannot rotate.
        let view = self.read.detail(organization, name.as_ascii()).await?;
        if view
            .dkim
            .iter()
            .any(|k| k.key.state == crate::lifecycle::KeyState::Pending)
        {
            return Err(ManageError::RotationInProgress);
        }
        if budgeted {
            self.admit(organization, &view).await?;
        }
        let key = self
            .keys
            .generate(&name)
            .await
            .map_err(InfraError::unexpected)?;
        self.store
            .start_rotation(organization, &name, key, self.clock.now())
            .await
            .map_err(|error| match error {
                RotateError::NotFound => ManageError::NotFound,
                RotateError::InProgress => ManageError::RotationInProgress,
                RotateError::Infra(e) => ManageError::Infra(e),
            })?;
        Ok(self.read.detail(organization, name.as_ascii()).await?)
    }

    /// The rotation interval (since the domain's last rotation: the newest of two or
    /// more keys; a domain's first key is its creation, not a rotation) and the key
    /// budget.
    async fn admit(
        &self,
        organization: &OrganizationId,
        view: &DomainView,
    ) -> Result<(), ManageError> {
        let now = self.clock.now();
        let interval =
            chrono::Duration::from_std(self.rotation_interval).map_err(InfraError::unexpected)?;
        let last_rotation = (view.dkim.len() > 1)
            .then(|| view.dkim.iter().map(|k| k.key.created_at).max())
            .flatten();
        if let Some(last) = last_rotation
            && now < last + interval
        {
            let wait = (last + interval - now).to_std().unwrap_or_default();
            return Err(ManageError::TooManyKeys(crate::ownership::retry_after(
                wait,
            )));
        }
        if let Some(budget) = &self.budget
            && let Some(wait) = budget.wait(organization, now).await?
        {
            return Err(ManageError::TooManyKeys(wait));
        }
        Ok(())
    }

    /// Turns inbound on (only with a live MX at one of our inbound hosts) or off.
    ///
    /// # Errors
    /// [`ManageError::MxNotReady`] when turning on without the MX in place,
    /// [`ManageError::InvalidDomain`], [`ManageError::NotFound`], or a port failure.
    pub async fn set_inbound(
        &self,
        organization: &OrganizationId,
        domain: &str,
        enabled: bool,
    ) -> Result<DomainView, ManageError> {
        let name = parse(domain)?;
        // Ownership first: another organization's domain is never looked up in DNS.
        self.read.detail(organization, name.as_ascii()).await?;
        if enabled && !self.mx_points_at_relay(&name).await {
            return Err(ManageError::MxNotReady(
                self.policy.inbound_hosts().to_vec(),
            ));
        }
        if !self.store.set_inbound(organization, &name, enabled).await? {
            return Err(ManageError::NotFound);
        }
        Ok(self.read.detail(organization, name.as_ascii()).await?)
    }

    /// Deletes the domain, its senders and its keys (the private keys destroyed).
    ///
    /// # Errors
    /// [`ManageError::InvalidDomain`], [`ManageError::NotFound`], or a port failure.
    pub async fn delete(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<(), ManageError> {
        let name = parse(domain)?;
        if self.store.delete_domain(organization, &name).await? {
            tracing::info!(domain = %name, "domain deleted");
            Ok(())
        } else {
            Err(ManageError::NotFound)
        }
    }

    async fn mx_points_at_relay(&self, domain: &DomainName) -> bool {
        match self.dns.mx(domain).await {
            Ok(records) => records
                .iter()
                .any(|mx| self.policy.is_inbound_host(&mx.exchange)),
            Err(outcome) => {
                tracing::info!(%domain, %outcome, "inbound MX check found no usable MX");
                false
            }
        }
    }
}

impl std::fmt::Debug for ManageDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageDomain").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
