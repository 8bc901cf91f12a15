//! Generate: the seed's `POST /api/v1/emails/domains/generate`, steps 2–8 of DESIGN.md
//! (step 1, authentication, is [`super::authenticate::Authenticate`]: this use case
//! takes an [`OrganizationId`], which only authentication produces).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ownership::{self, Ownership};
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::dns::Dns;
use crate::ports::keys::KeyGenerator;
use crate::ports::store::{
    CreationRules, DomainStore, RegisterError, Registered, SenderRegistration,
};
use crate::usecases::verify::VerifySchedule;
use crate::{DkimKey, DomainName, EmailAddress, OrganizationId, RecordPolicy, RecordSet};

/// Creates or reuses a sender domain, registers and activates a sender on it, and
/// returns the records to publish.
#[derive(Clone)]
pub struct GenerateRecords {
    pub(super) store: Arc<dyn DomainStore>,
    keys: Arc<dyn KeyGenerator>,
    dns: Arc<dyn Dns>,
    pub(super) policy: Arc<RecordPolicy>,
    pub(super) ownership: Arc<Ownership>,
    pub(super) schedule: Arc<VerifySchedule>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) rate_limited: Arc<RateLimitMemo>,
    known: Arc<KnownDomains>,
}

/// How long a domain this instance registered a sender on is taken as its
/// organization's without reading it first ([`KnownDomains`]).
const KNOWN_FOR: chrono::Duration = chrono::Duration::seconds(60);

/// How many domains [`KnownDomains`] holds at most.
const KNOWN_AT_MOST: usize = 4096;

/// Domains this instance registered a sender on lately, with their organization: a
/// reuse registration of one of them (inbound not asked) goes to the store without
/// the read that otherwise precedes it. Nothing is decided on this memory alone:
/// the store checks the domain's owner in the registration's own transaction, so a
/// domain deleted since is a `KeyRequired` (the call then starts over with the
/// read, as a new domain), and one claimed by another organization since is
/// `DomainTaken`, as the read would have said.
#[derive(Debug, Default)]
struct KnownDomains(Mutex<HashMap<(OrganizationId, DomainName), DateTime<Utc>>>);

impl KnownDomains {
    fn knows(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> bool {
        let Ok(known) = self.0.lock() else {
            return false;
        };
        known
            .get(&(organization.clone(), domain.clone()))
            .is_some_and(|until| *until > now)
    }

    fn remember(&self, organization: &OrganizationId, domain: &DomainName, now: DateTime<Utc>) {
        if let Ok(mut known) = self.0.lock() {
            if known.len() >= KNOWN_AT_MOST {
                known.retain(|_, until| *until > now);
                if known.len() >= KNOWN_AT_MOST {
                    known.clear();
                }
            }
            known.insert((organization.clone(), domain.clone()), now + KNOWN_FOR);
        }
    }

    fn forget(&self, organization: &OrganizationId, domain: &DomainName) {
        if let Ok(mut known) = self.0.lock() {
            known.remove(&(organization.clone(), domain.clone()));
        }
    }
}

/// Organizations this instance has seen refused by the new-domain rate, and until
/// when. The window frees only with time (deleting a domain refunds nothing, and no
/// instance can create one for the organization meanwhile), so until then the answer
/// is known without asking the store: a flood of new domains from one organization
/// costs two reads a call (its token, the domain), not five.
#[derive(Debug, Default)]
pub(super) struct RateLimitMemo(Mutex<HashMap<OrganizationId, DateTime<Utc>>>);

impl RateLimitMemo {
    /// How long `organization` must still wait at `now`, if it is known to.
    pub(super) fn wait(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let until = *self.0.lock().ok()?.get(organization)?;
        let left = until.signed_duration_since(now).to_std().ok()?;
        (!left.is_zero())
            .then(|| Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0)))
    }

    fn remember(&self, organization: &OrganizationId, now: DateTime<Utc>, wait: Duration) {
        let Ok(wait) = chrono::Duration::from_std(wait) else {
            return;
        };
        if let Ok(mut known) = self.0.lock() {
            // Forget the waits that are over: the map holds only organizations
            // refused within the last minute.
            known.retain(|_, until| *until > now);
            known.insert(organization.clone(), now + wait);
        }
    }
}

/// The request body, as received: nothing here has been validated yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateInput {
    /// `email`: the sender address to register; absent is an invalid sender.
    pub email: Option<String>,
    /// `replyTo`: the reply-to address, if given.
    pub reply_to: Option<String>,
    /// `inbound`: turn inbound mail on, honoured only when an MX record already points
    /// at one of our inbound hosts.
    pub inbound: bool,
}

/// Why no records were generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// `email` is missing or not a valid sender address; carries the value as received.
    #[error("the sender address is invalid")]
    InvalidSender(String),
    /// `replyTo` is present but not a valid address; carries the value as received.
    #[error("the reply-to address is invalid")]
    InvalidReplyTo(String),
    /// The domain belongs to another organization, is under one of its domains, or
    /// is reserved.
    #[error("the domain belongs to another organization")]
    DomainTaken,
    /// Another sender already has this address.
    #[error("the email is already registered")]
    EmailTaken,
    /// The domain is new and the organization owns as many domains as it may.
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    /// The domain has as many senders as one domain may have.
    #[error("the domain's sender limit is reached")]
    SenderLimit,
    /// The domain is new and the organization created its quota of domains within
    /// the last minute; carries the wait until a slot frees.
    #[error("too many new domains; retry later")]
    RateLimited(Duration),
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl GenerateRecords {
    /// The use case over its ports, the platform's record policy, the rules new
    /// domains are held to, and the verification schedule (a new domain's first
    /// check).
    #[must_use]
    pub fn new(
        store: Arc<dyn DomainStore>,
        keys: Arc<dyn KeyGenerator>,
        dns: Arc<dyn Dns>,
        policy: Arc<RecordPolicy>,
        ownership: Arc<Ownership>,
        schedule: Arc<VerifySchedule>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            keys,
            dns,
            policy,
            ownership,
            schedule,
            clock,
            rate_limited: Arc::default(),
            known: Arc::default(),
        }
    }

    /// Runs the use case for an authenticated organization.
    ///
    /// # Errors
    /// [`GenerateError`], checked in the seed's order: invalid sender (a public
    /// suffix or special-use name included), invalid reply-to, domain taken (reserved,
    /// owned by another organization, or under one of its domains), email taken; a new
    /// domain then meets the quotas; then infrastructure failures.
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        input: GenerateInput,
    ) -> Result<RecordSet, GenerateError> {
        // 2. Validate.
        let raw_email = input.email.unwrap_or_default();
        let email = EmailAddress::parse(&raw_email)
            .map_err(|_| GenerateError::InvalidSender(raw_email.clone()))?;
        let reply_to = input
            .reply_to
            .map(|raw| {
                EmailAddress::parse(&raw).map_err(|_| GenerateError::InvalidReplyTo(raw.clone()))
            })
            .transpose()?;
        let domain = email.domain().clone();
        if domain.as_ascii().len() > MAX_SENDER_DOMAIN_OCTETS
            || !ownership::is_sender_domain(&domain)
        {
            return Err(GenerateError::InvalidSender(raw_email));
        }

        // 3. Reserved, or owned by another organization.
        if self.ownership.reserved.contains(&domain) {
            return Err(GenerateError::DomainTaken);
        }
        // A domain registered on here lately: straight to the store, which checks
        // its owner (the read below would say the same, a round trip earlier).
        if !input.inbound && self.known.knows(organization, &domain, self.clock.now()) {
            let registration = SenderRegistration {
                organization: organization.clone(),
                email: email.clone(),
                reply_to: reply_to.clone(),
                new_key: None,
                enable_inbound: false,
                creation: self.creation_rules(&domain),
            };
            match self.store.register_sender(registration).await {
                Ok(registered) => {
                    self.known.remember(organization, &domain, self.clock.now());
                    return Ok(self.records(&registered));
                }
                // Gone since: the whole way, as a new domain.
                Err(RegisterError::KeyRequired) => self.known.forget(organization, &domain),
                Err(error) => {
                    if matches!(error, RegisterError::DomainTaken) {
                        self.known.forget(organization, &domain);
                    }
                    return Err(self.refused(organization, self.clock.now(), error));
                }
            }
        }
        let existing = self.store.find_domain(&domain).await?;
        if existing
            .as_ref()
            .is_some_and(|d| &d.organization != organization)
        {
            return Err(GenerateError::DomainTaken);
        }

        // 5. A new domain must be admitted (no ancestor of another organization's,
        // within the quotas) before it costs a key; a domain we own keeps its key.
        let mut creation = self.creation_rules(&domain);
        let new_key = match existing {
            Some(_) => None,
            None => {
                let now = self.clock.now();
                if let Some(wait) = self.rate_limited.wait(organization, now) {
                    return Err(GenerateError::RateLimited(wait));
                }
                self.store
                    .admit_creation(organization, &creation)
                    .await
                    .map_err(|error| self.refused(organization, now, error))?;
                Some(self.generate_key(&domain).await?)
            }
        };

        // 6. Inbound: only a live MX pointing at our relay turns it on.
        let already_inbound = existing.as_ref().is_some_and(|d| d.inbound_enabled);
        let enable_inbound =
            input.inbound && !already_inbound && self.mx_points_at_relay(&domain).await;
        // The first check is counted from the domain's creation, not from the start of
        // the request (a key drawn cold takes its time).
        creation.first_check_at = self.schedule.first_check(&domain, self.clock.now());

        // 4 and 7. Store atomically; the store reports email and ownership conflicts.
        let mut registration = SenderRegistration {
            organization: organization.clone(),
            email,
            reply_to,
            new_key,
            enable_inbound,
            creation,
        };
        let registered = match self.store.register_sender(registration.clone()).await {
            // The domain vanished between our read and the write: create it after all.
            Err(RegisterError::KeyRequired) => {
                registration.new_key = Some(self.generate_key(&domain).await?);
                registration.creation.first_check_at =
                    self.schedule.first_check(&domain, self.clock.now());
                self.store.register_sender(registration).await
            }
            other => other,
        }
        .map_err(|error| self.refused(organization, self.clock.now(), error))?;
        self.known.remember(organization, &domain, self.clock.now());

        // 8. Records from the stored domain, so racing callers all see the winning key.
        Ok(self.records(&registered))
    }

    /// The records of a registration's outcome: what [`Self::execute`] answers once
    /// the store registered the sender (a keyed request's answer is kept from it in
    /// the registration's own unit of work).
    #[must_use]
    pub fn records(&self, registered: &Registered) -> RecordSet {
        let stored = &registered.domain;
        RecordSet::render(
            &self.policy,
            &stored.name,
            &stored.selector,
            &stored.public_key,
        )
    }

    /// The rules `domain` is created under if it is new, its first check counted
    /// from now.
    pub(super) fn creation_rules(&self, domain: &DomainName) -> CreationRules {
        CreationRules {
            ancestors: ownership::ancestors(domain),
            limits: self.ownership.limits,
            first_check_at: self.schedule.first_check(domain, self.clock.now()),
        }
    }

    /// The store's refusal in the use case's terms, remembering a rate limit.
    pub(super) fn refused(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
        error: RegisterError,
    ) -> GenerateError {
        if let RegisterError::RateLimited { retry_after } = &error {
            self.rate_limited.remember(organization, now, *retry_after);
        }
        GenerateError::from_register(error)
    }

    pub(super) async fn generate_key(&self, domain: &DomainName) -> Result<DkimKey, GenerateError> {
        self.keys
            .generate(domain)
            .await
            .map_err(|e| InfraError::unexpected(e).into())
    }

    pub(super) async fn mx_points_at_relay(&self, domain: &DomainName) -> bool {
        match self.dns.mx(domain).await {
            Ok(records) => {
                let matched = records
                    .iter()
                    .any(|mx| self.policy.is_inbound_host(&mx.exchange));
                tracing::info!(%domain, matched, mx = records.len(), "inbound MX check");
                matched
            }
            Err(outcome) => {
                tracing::info!(%domain, %outcome, "inbound MX check found no usable MX; inbound stays off");
                false
            }
        }
    }
}

impl GenerateError {
    /// What [`GenerateRecords::execute`] answers when the store refused the
    /// registration; `None` when it failed instead, or wants a key (the use case
    /// then goes on).
    #[must_use]
    pub fn refused(error: &RegisterError) -> Option<Self> {
        Some(match error {
            RegisterError::DomainTaken => Self::DomainTaken,
            RegisterError::EmailTaken => Self::EmailTaken,
            RegisterError::DomainLimit => Self::DomainLimit,
            RegisterError::SenderLimit => Self::SenderLimit,
            RegisterError::RateLimited { retry_after } => Self::RateLimited(*retry_after),
            RegisterError::KeyRequired | RegisterError::Infra(_) => return None,
        })
    }

    fn from_register(error: RegisterError) -> Self {
        if let Some(refused) = Self::refused(&error) {
            return refused;
        }
        match error {
            RegisterError::Infra(e) => Self::Infra(e),
            _ => InfraError::unexpected("store demanded a key it was given").into(),
        }
    }
}

impl std::fmt::Debug for GenerateRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateRecords")
            .field("policy", &self.policy)
            .field("ownership", &self.ownership)
            .finish_non_exhaustive()
    }
}

/// The longest sender domain whose records still fit DNS's 253-octet names:
/// `<selector>._domainkey.<domain>` with selectors of up to 12 characters (what
/// keys-rsa draws) leaves 253 − 12 − 12 = 229 octets for the domain.
pub const MAX_SENDER_DOMAIN_OCTETS: usize = 253 - 12 - "._domainkey.".len();

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
