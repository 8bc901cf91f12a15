//! Claims: the rightful owner of a domain another organization holds takes it back
//! by publishing a TXT record only it was given.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ownership::{claim_record_name, claim_record_value};
use crate::ports::InfraError;
use crate::ports::claims::{ClaimStore, OpenClaimError, TransferError};
use crate::ports::clock::Clock;
use crate::ports::keys::KeyGenerator;
use crate::usecases::key_budget::KeyBudget;
use crate::usecases::read::{DomainView, ReadDomains, ReadError};
use crate::usecases::validate::{CheckStatus, ClaimDnssec, Tally, ValidateDomain};
use crate::usecases::verify::VerifySchedule;
use crate::{DomainName, OrganizationId};

/// The record a claimant publishes, and until when the claim is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimChallenge {
    /// The claimed domain.
    pub domain: DomainName,
    /// `_domain-api-claim.<domain>`.
    pub record_name: String,
    /// `domain-api-claim=<random>`.
    pub record_value: String,
    /// When the claim closes unproven.
    pub expires_at: DateTime<Utc>,
}

/// Why a claim was not opened or not proven.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// Nobody owns the domain: there is nothing to claim.
    #[error("no such domain")]
    NotFound,
    /// The claimant owns the domain already.
    #[error("the domain already belongs to this organization")]
    OwnDomain,
    /// The claimant has no open claim on the domain (never opened, expired, or
    /// another claim or a deletion got there first).
    #[error("no open claim for this domain")]
    NoOpenClaim,
    /// The claim record is not published (or not yet visible, or no nameserver
    /// answered); carries its name.
    #[error("the claim record is not published")]
    RecordNotFound(String),
    /// The claim record is served by some of the zone's authoritative nameservers
    /// but not by every one that answers (a secondary lags): nothing is transferred
    /// yet. Carries its name and how it stands at the nameservers.
    #[error("the claim record is not published on every nameserver")]
    NotOnEveryNameserver {
        /// `_domain-api-claim.<domain>`.
        name: String,
        /// On how many nameservers it is published, and which lag.
        tally: Tally,
    },
    /// The organization's key-generation budget is spent; carries how long until
    /// it may generate another key.
    #[error("too many DKIM keys generated")]
    TooManyKeys(Duration),
    /// The domain would take the organization past its domain limit.
    #[error("the organization's domain limit is reached")]
    DomainLimit,
    /// The claim record is served by the nameservers, but the zone is signed and no
    /// DNSSEC-validated answer holds it (bogus, or not validated): nothing is
    /// transferred. Carries its name and the zone.
    #[error("the claim record is not DNSSEC-validated")]
    NotValidated {
        /// `_domain-api-claim.<domain>`.
        name: String,
        /// The signed zone.
        zone: String,
    },
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Opens and proves claims.
#[derive(Clone)]
pub struct ClaimDomain {
    claims: Arc<dyn ClaimStore>,
    checks: ValidateDomain,
    keys: Arc<dyn KeyGenerator>,
    read: ReadDomains,
    clock: Arc<dyn Clock>,
    schedule: Arc<VerifySchedule>,
    ttl: Duration,
    budget: Option<KeyBudget>,
}

impl ClaimDomain {
    /// The use case over its ports; the claim record is checked by `checks` as
    /// validate checks records (at the zone's authoritative nameservers), a claim
    /// stays open for `ttl`, and a claimed domain is checked from scratch on
    /// `schedule`.
    #[must_use]
    pub fn new(
        claims: Arc<dyn ClaimStore>,
        checks: ValidateDomain,
        keys: Arc<dyn KeyGenerator>,
        read: ReadDomains,
        clock: Arc<dyn Clock>,
        schedule: Arc<VerifySchedule>,
        ttl: Duration,
    ) -> Self {
        Self {
            claims,
            checks,
            keys,
            read,
            clock,
            schedule,
            ttl,
            budget: None,
        }
    }

    /// Claims drawing on `budget`'s key generations, and held to its domain limit
    /// (neither until this is called).
    #[must_use]
    pub fn with_key_budget(mut self, budget: KeyBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Opens the organization's claim on another organization's domain, or returns
    /// the one already open (the same record until it expires).
    ///
    /// # Errors
    /// [`ClaimError::InvalidDomain`], [`ClaimError::NotFound`],
    /// [`ClaimError::OwnDomain`], or a port failure.
    pub async fn open(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<ClaimChallenge, ClaimError> {
        let name = parse(domain)?;
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.ttl)
            .map_err(|e| InfraError::unexpected(format!("claim TTL: {e}")))?;
        let claim = self
            .claims
            .open_claim(organization, &name, now, now + ttl)
            .await
            .map_err(|error| match error {
                OpenClaimError::NotFound => ClaimError::NotFound,
                OpenClaimError::OwnDomain => ClaimError::OwnDomain,
                OpenClaimError::Infra(e) => ClaimError::Infra(e),
            })?;
        Ok(ClaimChallenge {
            record_name: claim_record_name(&claim.domain),
            record_value: claim_record_value(&claim.token),
            domain: claim.domain,
            expires_at: claim.expires_at,
        })
    }

    /// Looks for the claim record at every authoritative nameserver of the
    /// domain's zone (the resolver only when none can be found); when every one that
    /// answers serves it, transfers the domain to the organization with a new key
    /// and returns it.
    ///
    /// # Errors
    /// [`ClaimError::InvalidDomain`], [`ClaimError::OwnDomain`],
    /// [`ClaimError::NoOpenClaim`], [`ClaimError::RecordNotFound`],
    /// [`ClaimError::NotOnEveryNameserver`], [`ClaimError::NotValidated`],
    /// [`ClaimError::TooManyKeys`], [`ClaimError::DomainLimit`] (nothing
    /// transferred), or a port failure.
    pub async fn verify(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<DomainView, ClaimError> {
        let name = parse(domain)?;
        let Some(claim) = self
            .claims
            .find_claim(organization, &name, self.clock.now())
            .await?
        else {
            // A retry after the transfer answered: say so rather than "no claim".
            return match self.read.detail(organization, name.as_ascii()).await {
                Ok(_) => Err(ClaimError::OwnDomain),
                Err(ReadError::Infra(e)) => Err(ClaimError::Infra(e)),
                Err(_) => Err(ClaimError::NoOpenClaim),
            };
        };
        let record_name = claim_record_name(&name);
        let expected = claim_record_value(&claim.token);
        self.proven(&name, &record_name, &expected).await?;
        if let Some(budget) = &self.budget
            && let Some(wait) = budget.wait(organization, self.clock.now()).await?
        {
            return Err(ClaimError::TooManyKeys(wait));
        }
        let max_domains = self
            .budget
            .as_ref()
            .map_or(u32::MAX, |budget| budget.limits().max_domains);
        let key = self
            .keys
            .generate(&name)
            .await
            .map_err(InfraError::unexpected)?;
        let now = self.clock.now();
        self.claims
            .transfer(
                organization,
                &claim,
                key,
                now,
                self.schedule.first_check(&name, now),
                max_domains,
            )
            .await
            .map_err(|error| match error {
                TransferError::NoOpenClaim => ClaimError::NoOpenClaim,
                TransferError::DomainLimit => ClaimError::DomainLimit,
                TransferError::Infra(e) => ClaimError::Infra(e),
            })?;
        tracing::info!(domain = %name, "domain transferred by a proven claim");
        self.read
            .detail(organization, name.as_ascii())
            .await
            .map_err(|error| match error {
                ReadError::Infra(e) => ClaimError::Infra(e),
                // Deleted by its new owner between the transfer and this read.
                ReadError::InvalidDomain(_) | ReadError::NotFound => ClaimError::NoOpenClaim,
            })
    }
}

impl ClaimDomain {
    /// `Ok` when the claim record is published: at every authoritative nameserver
    /// that answers, or, when none can be found, at the resolver; and, where the
    /// zone is signed, in a DNSSEC-validated answer.
    async fn proven(
        &self,
        name: &DomainName,
        record_name: &str,
        expected: &str,
    ) -> Result<(), ClaimError> {
        let found = self
            .checks
            .check_claim_record(name, record_name, expected)
            .await;
        let check = found.check;
        let zone = found.zone.name();
        if let Some(dnssec) = &found.dnssec {
            if let ClaimDnssec::NotValidated(why) = dnssec {
                tracing::warn!(domain = %name, %zone, reason = %why, "claim record served, but not DNSSEC-validated in a signed zone");
                return Err(ClaimError::NotValidated {
                    name: record_name.to_owned(),
                    zone: zone.as_ascii().to_owned(),
                });
            }
            tracing::info!(domain = %name, %zone, dnssec = ?dnssec, "claim record DNSSEC standing");
        }
        match (check.status, check.nameservers) {
            (CheckStatus::Ok, Some(tally)) => {
                tracing::info!(domain = %name, %zone, nameservers = tally.total, "claim record served by every answering nameserver");
                Ok(())
            }
            (CheckStatus::Ok, None) => {
                tracing::warn!(domain = %name, %zone, "claim record seen through the resolver only: the zone's nameservers could not be found");
                Ok(())
            }
            (CheckStatus::Missing | CheckStatus::Mismatch, Some(tally)) if tally.published > 0 => {
                tracing::info!(domain = %name, %zone, summary = %tally.summary(), "claim record not on every nameserver yet");
                Err(ClaimError::NotOnEveryNameserver {
                    name: record_name.to_owned(),
                    tally,
                })
            }
            (status, _) => {
                tracing::info!(domain = %name, %zone, status = status.as_str(), reason = ?check.reason, "claim record not found");
                Err(ClaimError::RecordNotFound(record_name.to_owned()))
            }
        }
    }
}

fn parse(domain: &str) -> Result<DomainName, ClaimError> {
    DomainName::parse(domain).map_err(|_| ClaimError::InvalidDomain(domain.to_owned()))
}

impl std::fmt::Debug for ClaimDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimDomain")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
