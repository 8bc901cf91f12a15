//! Validate: `GET /api/v1/domains/validate?domain=D` — resolves, live, each record the
//! customer should have published (SPF, DKIM, DMARC, and MX for inbound) and says in
//! plain words exactly what is wrong with each.
//!
//! This module holds the use case, its report and the orchestration; each record kind
//! has its own module with its lookup, its parser and its judge: `spf` (RFC 7208),
//! `dkim` (RFC 6376), `dmarc` (RFC 7489) and `inbound` (MX); `cidr` matches the
//! `ip4:`/`ip6:` networks SPF names, and `verdict` holds what the checks share.

mod authoritative;
mod changeset;
mod cidr;
mod claim_record;
mod dkim;
mod dmarc;
mod inbound;
mod spf;
mod verdict;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use crate::lifecycle::KeyRecord;
use crate::ports::InfraError;
use crate::ports::dns::{Dns, DnsError, TxtRecord};
use crate::ports::store::{DomainDetail, DomainStore, StoredDomain};
use crate::{DomainName, OrganizationId, RecordPolicy, RecordSet, Zone, find_zone};
pub use authoritative::{MAX_NAMESERVERS, Server, Tally};
pub use changeset::{ChangeAction, ChangeSet, MAX_SPF_LOOKUPS, merge_spf};
pub use claim_record::{ClaimDnssec, ClaimRecordCheck};
use verdict::{Verdict, txt_failure};

/// Checks a domain's published records against the ones it should publish.
#[derive(Clone)]
pub struct ValidateDomain {
    store: Arc<dyn DomainStore>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
    /// The nameserver every TXT lookup asks directly; `None`: the resolver.
    at: Option<std::net::IpAddr>,
}

/// Why no report was produced.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// The domain does not exist or belongs to another organization: the two are
    /// indistinguishable on purpose, so nobody can probe for other customers' domains.
    #[error("no such domain for this organization")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl ValidationReport {
    /// `verified` recomputed from the records and inbound, and each record's host
    /// from the zone.
    #[must_use]
    pub(crate) fn judged(mut self) -> Self {
        self.verified = self.records.iter().all(|c| c.status == CheckStatus::Ok)
            && (!self.inbound.enabled || self.inbound.status == CheckStatus::Ok);
        for check in &mut self.records {
            check.host = self.zone.host(&check.name);
        }
        self
    }
}

/// The live state of a domain's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    /// The domain's A-label form.
    pub domain: String,
    /// SPF, DKIM and DMARC are all ok, and so is inbound when it is enabled.
    pub verified: bool,
    /// The zone the records belong in: the one this check's SOA lookup found, else
    /// the one an earlier check found, else the registrable domain.
    pub zone: Zone,
    /// The TTL to publish each record with, in seconds.
    pub ttl: u32,
    /// The zone's authoritative nameservers the records were checked at; empty when
    /// none could be found (the resolver was asked).
    pub servers: Vec<Server>,
    /// SPF, DKIM and DMARC, in that order.
    pub records: Vec<RecordCheck>,
    /// The MX check, judged only when inbound is enabled.
    pub inbound: InboundCheck,
}

/// The TXT records a sender domain publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// SPF (RFC 7208), at the domain itself.
    Spf,
    /// DKIM (RFC 6376), at `<selector>._domainkey.<domain>`.
    Dkim,
    /// DMARC (RFC 7489), at `_dmarc.<domain>`.
    Dmarc,
    /// A claim's proof, at `_domain-api-claim.<domain>`: checked by claim
    /// verification only, never part of a report.
    Claim,
}

impl RecordKind {
    /// The name on the wire: `SPF`, `DKIM`, `DMARC`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spf => "SPF",
            Self::Dkim => "DKIM",
            Self::Dmarc => "DMARC",
            Self::Claim => "CLAIM",
        }
    }
}

/// One TXT record: what should be published at `name` and what is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    /// Which record this is.
    pub kind: RecordKind,
    /// The fully-qualified name queried, e.g. `s1._domainkey.example.com`.
    pub name: String,
    /// `name` relative to the report's zone, e.g. `s1._domainkey.mail`.
    pub host: String,
    /// The value the customer should publish there.
    pub expected: String,
    /// Each TXT record found, its strings joined.
    pub found: Vec<String>,
    /// The verdict on what was found.
    pub status: CheckStatus,
    /// A sentence the customer understands; `None` when the record is ok.
    pub reason: Option<String>,
    /// SPF and DMARC: what is there now and the one value to publish; `None` for DKIM
    /// and when the lookup failed.
    pub change: Option<ChangeSet>,
    /// How the record stands at each of the zone's nameservers; `None` when the
    /// resolver was asked instead.
    pub nameservers: Option<Tally>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Published as it should be.
    Ok,
    /// Nothing of this kind is published.
    Missing,
    /// Something is published, but not what it should be.
    Mismatch,
    /// The lookup itself failed; the record may well be fine.
    Error,
}

impl CheckStatus {
    /// The name on the wire: `ok`, `missing`, `mismatch`, `error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Mismatch => "mismatch",
            Self::Error => "error",
        }
    }
}

/// Whether the domain's MX records route inbound mail to our relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCheck {
    /// The stored flag: inbound was turned on for this domain.
    pub enabled: bool,
    /// Some MX exchange is one of our inbound hosts.
    pub mx_ready: bool,
    /// The exchanges found, by preference, without the trailing dot.
    pub mx_hosts: Vec<String>,
    /// The verdict on the MX records.
    pub status: CheckStatus,
    /// A sentence the customer understands; `None` when MX points at our relay.
    pub reason: Option<String>,
}

impl ValidateDomain {
    /// Builds the use case over its ports and the policy that says what to expect.
    #[must_use]
    pub fn new(store: Arc<dyn DomainStore>, dns: Arc<dyn Dns>, policy: Arc<RecordPolicy>) -> Self {
        Self {
            store,
            dns,
            policy,
            at: None,
        }
    }

    /// Checks the organization's `domain` (raw user input) against live DNS.
    ///
    /// # Errors
    /// [`ValidateError`]: an unparsable domain, a domain this organization does not
    /// own, or a store failure. DNS failures are not errors: they are reported per
    /// record with [`CheckStatus::Error`].
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<ValidationReport, ValidateError> {
        let detail = self.load(organization, domain).await?;
        let report = self.report(&detail.domain).await;
        Ok(self.with_change_sets(report).await)
    }

    /// The organization's `domain` (raw input) as stored.
    pub(crate) async fn load(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<DomainDetail, ValidateError> {
        let name = DomainName::parse(domain)
            .map_err(|_| ValidateError::InvalidDomain(domain.to_owned()))?;
        self.store
            .domain_detail(organization, &name)
            .await?
            .ok_or(ValidateError::NotFound)
    }

    /// The live report for a stored domain: SPF, its active key, DMARC, inbound.
    /// First the zone (SOA lookups), then its nameservers (NS lookups): the TXT
    /// records are asked at each of them; MX through the resolver.
    pub(crate) async fn report(&self, stored: &StoredDomain) -> ValidationReport {
        let expected = RecordSet::render(
            &self.policy,
            &stored.name,
            &stored.selector,
            &stored.public_key,
        );
        let expected = &expected;
        let found = find_zone(self.dns.as_ref(), &stored.name).await;
        let zone = Zone::of(&stored.name, found.as_ref().or(stored.zone.as_ref()));

        // The lookups are independent: the slowest one, not their sum, bounds the call.
        let (servers, inbound) = join(self.servers(&zone), self.check_inbound(stored)).await;
        let ((spf, dkim), dmarc) = join(
            join(
                self.at_each(&servers, |v| async move {
                    v.check_spf(&stored.name, &expected.spf).await
                }),
                self.at_each(
                    &servers,
                    |v| async move { v.check_dkim(stored, expected).await },
                ),
            ),
            self.at_each(&servers, |v| async move {
                v.check_dmarc(&stored.name, &expected.dmarc).await
            }),
        )
        .await;

        let report = ValidationReport {
            domain: stored.name.as_ascii().to_owned(),
            verified: false,
            zone,
            ttl: self.policy.ttl(),
            servers,
            records: vec![spf, dkim, dmarc],
            inbound,
        }
        .judged();
        tracing::info!(domain = %stored.name, verified = report.verified, "validated published records");
        report
    }

    /// The live check of one key's record, as if it were the active key, at
    /// `servers` (the resolver when there are none).
    pub(crate) async fn check_key(
        &self,
        stored: &StoredDomain,
        key: &KeyRecord,
        servers: &[Server],
    ) -> RecordCheck {
        let mut as_active = stored.clone();
        as_active.selector = key.selector.clone();
        as_active.public_key = key.public_key.clone();
        let expected = RecordSet::render(
            &self.policy,
            &as_active.name,
            &as_active.selector,
            &as_active.public_key,
        );
        let (as_active, expected) = (&as_active, &expected);
        self.at_each(servers, |v| async move {
            v.check_dkim(as_active, expected).await
        })
        .await
    }

    /// The TXT records at `name`, joined; an empty answer counts as no records.
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = match self.at {
            Some(server) => self.dns.txt_at(server, name).await?,
            None => self.dns.txt(name).await?,
        };
        if records.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(records.iter().map(TxtRecord::joined).collect())
    }

    /// Looks up the TXT records at `name` and lets `judge` rule on them.
    async fn check_txt(
        &self,
        kind: RecordKind,
        name: &str,
        expected: &str,
        judge: impl FnOnce(&[String]) -> Verdict,
    ) -> RecordCheck {
        let (found, verdict) = match self.txt(name).await {
            Ok(found) => {
                let verdict = judge(&found);
                (found, verdict)
            }
            Err(error) => (Vec::new(), txt_failure(name, &error)),
        };
        RecordCheck::new(kind, name, expected, found, verdict)
    }
}

impl std::fmt::Debug for ValidateDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateDomain")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RecordCheck {
    fn new(
        kind: RecordKind,
        name: &str,
        expected: &str,
        found: Vec<String>,
        verdict: Verdict,
    ) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            // Relative to the report's zone once the report is judged.
            host: name.to_owned(),
            expected: expected.to_owned(),
            found,
            status: verdict.status,
            reason: verdict.reason,
            change: None,
            nameservers: None,
        }
    }
}

/// Polls both futures until both finish. `std::future::join!` is unstable and this
/// crate takes no futures dependency for one combinator.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_out, mut b_out) = (None, None);
    poll_fn(move |cx| {
        if a_out.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            a_out = Some(out);
        }
        if b_out.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            b_out = Some(out);
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (a_out, b_out) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// Polls every future until all finish; the outputs in the futures' order.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    poll_fn(move |cx| {
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(out) = future.as_mut().poll(cx)
            {
                *output = Some(out);
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
