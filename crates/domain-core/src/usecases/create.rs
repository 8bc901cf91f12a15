//! Create a domain on its own (`POST /api/v1/emails/domains`): the domain and its
//! DKIM key without a sender, under generate's rules — ownership, reserved names,
//! quotas and the key budget — so that a later generate on it reuses it and its key.
//! The organization's own domain is answered as it stands (`created` false).

use std::time::Duration;

use crate::ownership;
use crate::ports::store::{DomainCreation, RegisterError, Registered};
use crate::usecases::generate::{GenerateError, GenerateRecords, MAX_SENDER_DOMAIN_OCTETS};
use crate::usecases::read::{DomainView, ReadDomains, ReadError};
use crate::{DomainName, OrganizationId};

/// Creates a domain without a sender, or finds the organization's own.
#[derive(Clone)]
pub struct CreateDomain {
    generate: GenerateRecords,
    read: ReadDomains,
}

/// The request body, as received: nothing here has been validated yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateInput {
    /// `name`: the domain, Unicode or A-labels; absent is an invalid domain.
    pub name: Option<String>,
    /// `inbound`: turn inbound mail on, which needs a live MX record pointing at one
    /// of our inbound hosts (as the inbound toggle does).
    pub inbound: bool,
}

/// The domain after the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The domain's detail, as `GET …/domains/{domain}` gives it.
    pub view: DomainView,
    /// Whether this call created it (else the organization had it already).
    pub created: bool,
}

/// Why no domain was created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// `name` is missing, not a domain name, too long for its DKIM record's name, a
    /// public suffix or a special-use name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// The domain belongs to another organization, is under one of its domains, or
    /// is reserved.
    #[error("the domain belongs to another organization")]
    DomainTaken,
    /// The domain is new and the organization owns as many domains as it may.
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    /// The domain is new and the organization spent its key-generation budget;
    /// carries the wait until a slot frees.
    #[error("too many new domains; retry later")]
    RateLimited(Duration),
    /// Inbound was asked for but no MX record points at one of these hosts.
    #[error("no MX record points at the inbound hosts")]
    MxNotReady(Vec<String>),
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] crate::ports::InfraError),
}

impl From<GenerateError> for CreateError {
    fn from(error: GenerateError) -> Self {
        match error {
            GenerateError::DomainTaken => Self::DomainTaken,
            GenerateError::DomainLimit => Self::DomainLimit,
            GenerateError::RateLimited(wait) => Self::RateLimited(wait),
            GenerateError::Infra(e) => Self::Infra(e),
            // A creation registers no sender: the store never answers these.
            other @ (GenerateError::InvalidSender(_)
            | GenerateError::InvalidReplyTo(_)
            | GenerateError::EmailTaken
            | GenerateError::SenderLimit) => {
                Self::Infra(crate::ports::InfraError::unexpected(other))
            }
        }
    }
}

impl From<ReadError> for CreateError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::InvalidDomain(raw) => Self::InvalidDomain(raw),
            // Created or found a moment ago, and gone (deleted, or claimed) since:
            // the domain is not this organization's now.
            ReadError::NotFound => Self::DomainTaken,
            ReadError::Infra(e) => Self::Infra(e),
        }
    }
}

impl CreateDomain {
    /// The use case over generate's ports and rules (one rate-limit memo with it),
    /// and the read that renders the domain's detail.
    #[must_use]
    pub fn new(generate: GenerateRecords, read: ReadDomains) -> Self {
        Self { generate, read }
    }

    /// Creates `input.name` for the organization, or finds its own.
    ///
    /// # Errors
    /// [`CreateError`], checked in this order: invalid domain, taken (reserved,
    /// another organization's, or under one of its domains); for a new domain the
    /// domain limit, then the key budget; inbound without the MX; then
    /// infrastructure failures.
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        input: CreateInput,
    ) -> Result<Created, CreateError> {
        let g = &self.generate;
        // 1. Validate: the same names generate accepts as a sender's domain.
        let raw = input.name.unwrap_or_default();
        let name = DomainName::parse(&raw).map_err(|_| CreateError::InvalidDomain(raw.clone()))?;
        if name.as_ascii().len() > MAX_SENDER_DOMAIN_OCTETS || !ownership::is_sender_domain(&name) {
            return Err(CreateError::InvalidDomain(raw));
        }

        // 2. Reserved, or owned by another organization.
        if g.ownership.reserved.contains(&name) {
            return Err(CreateError::DomainTaken);
        }
        let existing = g.store.find_domain(&name).await?;
        if existing
            .as_ref()
            .is_some_and(|d| &d.organization != organization)
        {
            return Err(CreateError::DomainTaken);
        }
        let already_inbound = existing.as_ref().is_some_and(|d| d.inbound_enabled);
        let enable_inbound = input.inbound && !already_inbound;

        // 3. The organization's own, as it stands (inbound turned on if asked).
        let creation = g.creation_rules(&name);
        if existing.is_some() && !enable_inbound {
            return self.created(organization, &name, false).await;
        }

        // 4. A new domain is admitted (no ancestor of another organization's, within
        // the quotas) before the MX lookup and before it costs a key.
        let new_key = if existing.is_none() {
            let now = g.clock.now();
            if let Some(wait) = g.rate_limited.wait(organization, now) {
                return Err(CreateError::RateLimited(wait));
            }
            g.store
                .admit_creation(organization, &creation)
                .await
                .map_err(|error| g.refused(organization, now, error))?;
            true
        } else {
            false
        };

        // 5. Inbound: only a live MX pointing at our relay turns it on.
        if enable_inbound && !g.mx_points_at_relay(&name).await {
            return Err(CreateError::MxNotReady(g.policy.inbound_hosts().to_vec()));
        }

        // 6. Store atomically.
        let mut request = DomainCreation {
            organization: organization.clone(),
            name: name.clone(),
            new_key: if new_key {
                Some(g.generate_key(&name).await?)
            } else {
                None
            },
            enable_inbound,
            creation,
        };
        // The first check is counted from the domain's creation, not from the start of
        // the request (a key drawn cold takes its time).
        request.creation.first_check_at = g.schedule.first_check(&name, g.clock.now());
        let registered: Registered = match g.store.create_domain(request.clone()).await {
            // The domain vanished between our read and the write: create it after all.
            Err(RegisterError::KeyRequired) => {
                request.new_key = Some(g.generate_key(&name).await?);
                request.creation.first_check_at = g.schedule.first_check(&name, g.clock.now());
                g.store.create_domain(request).await
            }
            other => other,
        }
        .map_err(|error| g.refused(organization, g.clock.now(), error))?;
        self.created(organization, &name, registered.domain_created)
            .await
    }

    async fn created(
        &self,
        organization: &OrganizationId,
        name: &DomainName,
        created: bool,
    ) -> Result<Created, CreateError> {
        let view = self.read.detail(organization, name.as_ascii()).await?;
        Ok(Created { view, created })
    }
}

impl std::fmt::Debug for CreateDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateDomain").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
