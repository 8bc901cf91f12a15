//! The live-check budget (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`): how many requests
//! that query DNS on the caller's behalf — validate, verify, claim verify, turning
//! inbound on, webhook creation — one organization may make in any 60 seconds, per
//! instance. One validate can send dozens of queries to names the caller chose; a
//! budget keeps one tenant from turning the service into its DNS amplifier or
//! spending the resolver every tenant shares. The background verifier does not draw
//! on it.
//!
//! An admitted check also gets one deadline for all its DNS work
//! (`DOMAIN_API_CHECK_DEADLINE_MS`): [`Admitted::within`] runs the request's work with
//! the deadline in scope, and [`DeadlineDns`], the decorator every lookup goes
//! through, ends each lookup by it at the latest ([`DnsError::Timeout`], which the
//! checks report as not determined). Work outside such a scope — the background
//! verifier's — is bounded by the resolver's own per-lookup timeout only.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain_core::ownership::retry_after;
use domain_core::ports::dns::{Dns, DnsError, MxRecord, Nameserver, TxtRecord, ValidatedTxt};
use domain_core::{DomainName, OrganizationId};

/// The window the budget counts over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The default budget per organization and minute.
pub const DEFAULT_PER_MINUTE: u32 = 120;

/// Sweep organizations with no check in the window once the map holds this many.
const SWEEP_AT: usize = 4096;

/// The default deadline of one check's DNS work: twice the default DNS timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(4);

tokio::task_local! {
    /// When the DNS work of the check running on this task must end.
    static CHECK_DEADLINE: tokio::time::Instant;
}

/// Live checks per organization in a sliding 60-second window.
#[derive(Debug)]
pub struct LiveChecks {
    per_minute: u32,
    deadline: Duration,
    recent: Mutex<HashMap<OrganizationId, VecDeque<Instant>>>,
}

/// An admitted live check: the request's DNS work runs [`Admitted::within`] its
/// deadline.
#[derive(Debug)]
#[must_use = "the check's DNS work runs within its deadline only inside `within`"]
pub struct Admitted {
    deadline: tokio::time::Instant,
}

impl Admitted {
    /// Runs `work` with this check's deadline in scope: every lookup through
    /// [`DeadlineDns`] ends by it.
    pub async fn within<F: Future>(self, work: F) -> F::Output {
        CHECK_DEADLINE.scope(self.deadline, work).await
    }
}

impl LiveChecks {
    /// A budget of `per_minute` live checks per organization, each check's DNS work
    /// bounded by `deadline` in all.
    #[must_use]
    pub fn new(per_minute: u32, deadline: Duration) -> Self {
        Self {
            per_minute: per_minute.max(1),
            deadline,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one check of `organization`'s budget at `now`, or says how long until
    /// one is free (whole seconds, at least one, as `Retry-After` carries it).
    ///
    /// # Errors
    /// The wait, when the budget is spent; nothing is spent then.
    pub fn admit_at(&self, organization: &OrganizationId, now: Instant) -> Result<(), Duration> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= SWEEP_AT {
            recent.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let times = recent.entry(organization.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        let quota = usize::try_from(self.per_minute).unwrap_or(usize::MAX);
        if times.len() >= quota {
            let oldest = times.front().copied().unwrap_or(now);
            let frees_in = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(retry_after(frees_in));
        }
        times.push_back(now);
        Ok(())
    }

    /// [`LiveChecks::admit_at`] now; the admitted check's DNS work must end within
    /// the deadline from now.
    ///
    /// # Errors
    /// As [`LiveChecks::admit_at`].
    pub fn admit(&self, organization: &OrganizationId) -> Result<Admitted, crate::error::ApiError> {
        let now = Instant::now();
        self.admit_at(organization, now)
            .map_err(crate::error::ApiError::TooManyLiveChecks)?;
        Ok(Admitted {
            deadline: tokio::time::Instant::from_std(now + self.deadline),
        })
    }
}

impl Default for LiveChecks {
    fn default() -> Self {
        Self::new(DEFAULT_PER_MINUTE, DEFAULT_DEADLINE)
    }
}

/// A [`Dns`] decorator that ends each lookup by the deadline of the check it runs
/// for, if any ([`Admitted::within`]).
pub struct DeadlineDns {
    inner: Arc<dyn Dns>,
}

impl DeadlineDns {
    #[must_use]
    pub fn new(inner: Arc<dyn Dns>) -> Self {
        Self { inner }
    }
}

/// `lookup`, ended at the deadline in scope (a timeout), or whole without one.
async fn by_deadline<T>(lookup: impl Future<Output = Result<T, DnsError>>) -> Result<T, DnsError> {
    match CHECK_DEADLINE.try_with(|deadline| *deadline) {
        Ok(deadline) => tokio::time::timeout_at(deadline, lookup)
            .await
            .unwrap_or(Err(DnsError::Timeout)),
        Err(_outside_a_check) => lookup.await,
    }
}

#[async_trait]
impl Dns for DeadlineDns {
    async fn mx(&self, domain: &DomainName) -> Result<Vec<MxRecord>, DnsError> {
        by_deadline(self.inner.mx(domain)).await
    }

    async fn txt(&self, name: &str) -> Result<Vec<TxtRecord>, DnsError> {
        by_deadline(self.inner.txt(name)).await
    }

    async fn addresses(&self, name: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
        by_deadline(self.inner.addresses(name)).await
    }

    async fn soa(&self, name: &str) -> Result<(), DnsError> {
        by_deadline(self.inner.soa(name)).await
    }

    async fn nameservers(&self, zone: &str) -> Result<Vec<Nameserver>, DnsError> {
        by_deadline(self.inner.nameservers(zone)).await
    }

    async fn txt_at(
        &self,
        server: std::net::IpAddr,
        name: &str,
    ) -> Result<Vec<TxtRecord>, DnsError> {
        by_deadline(self.inner.txt_at(server, name)).await
    }

    async fn signed(&self, zone: &str) -> Result<bool, DnsError> {
        by_deadline(self.inner.signed(zone)).await
    }

    async fn txt_validated(&self, name: &str) -> Result<ValidatedTxt, DnsError> {
        by_deadline(self.inner.txt_validated(name)).await
    }
}

impl std::fmt::Debug for DeadlineDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineDns").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_gets_its_budget_per_minute_and_no_more() {
        let checks = LiveChecks::new(3, DEFAULT_DEADLINE);
        let (acme, other) = (OrganizationId::new("acme"), OrganizationId::new("other"));
        let start = Instant::now();
        for second in 0..3 {
            assert!(
                checks
                    .admit_at(&acme, start + Duration::from_secs(second))
                    .is_ok()
            );
        }
        // Spent: the first check frees a slot 60 s after it was made.
        assert_eq!(
            checks.admit_at(&acme, start + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        // Another organization's budget is its own.
        assert!(
            checks
                .admit_at(&other, start + Duration::from_secs(10))
                .is_ok()
        );
        // A refusal spends nothing; the window slides.
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(60))
                .is_ok()
        );
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(60))
                .is_err()
        );
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(62))
                .is_ok()
        );
    }

    #[test]
    fn idle_organizations_are_swept() {
        let checks = LiveChecks::new(1, DEFAULT_DEADLINE);
        let start = Instant::now();
        for i in 0..SWEEP_AT {
            let org = OrganizationId::new(format!("org-{i}"));
            assert!(checks.admit_at(&org, start).is_ok());
        }
        let later = start + WINDOW + Duration::from_secs(1);
        assert!(checks.admit_at(&OrganizationId::new("late"), later).is_ok());
        assert_eq!(checks.recent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lookup_ends_at_the_deadline_of_its_check_and_only_within_one() {
        let dns = DeadlineDns::new(Arc::new(Hanging));
        let checks = LiveChecks::new(10, Duration::from_secs(1));
        let admitted = checks.admit(&OrganizationId::new("acme")).unwrap();

        let started = tokio::time::Instant::now();
        let (first, second) = admitted
            .within(async { (dns.txt("a.example").await, dns.txt("b.example").await) })
            .await;

        // One deadline for the whole check: the second lookup gets what is left,
        // nothing (a deadline of 1 s for each lookup would make 2 s in all).
        assert_eq!(
            (first, second),
            (Err(DnsError::Timeout), Err(DnsError::Timeout))
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_millis(1900), "{took:?}");
        // Outside a check, the lookup is the resolver's to bound.
        let outside = tokio::time::timeout(Duration::from_millis(400), dns.txt("c.example")).await;
        assert!(outside.is_err(), "no deadline outside a check");
    }

    /// A resolver whose lookups never end.
    struct Hanging;

    #[async_trait]
    impl Dns for Hanging {
        async fn mx(&self, _: &DomainName) -> Result<Vec<MxRecord>, DnsError> {
            std::future::pending().await
        }
        async fn txt(&self, _: &str) -> Result<Vec<TxtRecord>, DnsError> {
            std::future::pending().await
        }
        async fn addresses(&self, _: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
            std::future::pending().await
        }
        async fn soa(&self, _: &str) -> Result<(), DnsError> {
            std::future::pending().await
        }
        async fn nameservers(&self, _: &str) -> Result<Vec<Nameserver>, DnsError> {
            std::future::pending().await
        }
        async fn txt_at(&self, _: std::net::IpAddr, _: &str) -> Result<Vec<TxtRecord>, DnsError> {
            std::future::pending().await
        }
        async fn signed(&self, _: &str) -> Result<bool, DnsError> {
            std::future::pending().await
        }
        async fn txt_validated(&self, _: &str) -> Result<ValidatedTxt, DnsError> {
            std::future::pending().await
        }
    }
}
