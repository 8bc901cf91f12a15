//! The live-check budget (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`): how many requests
//! that query DNS on the caller's behalf — validate, verify, claim verify, turning
//! inbound on, webhook creation — one organization may make in any 60 seconds,
//! across every instance (the store's [`LiveCheckLog`] counts them). One validate can
//! send dozens of queries to names the caller chose; a budget keeps one tenant from
//! turning the service into its DNS amplifier or spending the resolver every tenant
//! shares. The background verifier does not draw on it.
//!
//! A refused organization is remembered by the instance that refused it until its
//! oldest check leaves the window, so its further calls are refused without a
//! write to the store.
//!
//! An admitted check also gets one deadline for all its DNS work
//! (`DOMAIN_API_CHECK_DEADLINE_MS`): [`Admitted::within`] runs the request's work with
//! the deadline in scope, and [`DeadlineDns`], the decorator every lookup goes
//! through, ends each lookup by it at the latest ([`DnsError::Timeout`], which the
//! checks report as not determined). Work outside such a scope — the background
//! verifier's — is bounded by the resolver's own per-lookup timeout only.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain_core::ownership::retry_after;
use domain_core::ports::InfraError;
use domain_core::ports::dns::{Dns, DnsError, MxRecord, Nameserver, TxtRecord, ValidatedTxt};
use domain_core::ports::domain_connect::{FetchOutcome, HttpsFetcher, HttpsGet};
use domain_core::ports::lifecycle::LiveCheckLog;
use domain_core::{DomainName, OrganizationId};

use crate::error::{ApiError, Operation};

/// The window the budget counts over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The default budget per organization and minute.
pub const DEFAULT_PER_MINUTE: u32 = 120;

/// Forget refused organizations whose refusal has passed once the memo holds this
/// many.
const SWEEP_AT: usize = 4096;

/// The default deadline of one check's DNS work: twice the default DNS timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(4);

tokio::task_local! {
    /// When the DNS work of the check running on this task must end.
    static CHECK_DEADLINE: tokio::time::Instant;
}

/// Live checks per organization in a sliding 60-second window, counted by the
/// store across instances.
pub struct LiveChecks {
    per_minute: u32,
    deadline: Duration,
    log: Arc<dyn LiveCheckLog>,
    /// Organizations this instance refused, until the time a check frees.
    refused: Mutex<HashMap<OrganizationId, DateTime<Utc>>>,
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

/// Why a live check was not admitted.
#[derive(Debug)]
pub enum Refused {
    /// The budget is spent: how long until a check is free (whole seconds, at least
    /// one, as `Retry-After` carries it).
    Wait(Duration),
    /// The store could not count or record the check.
    Store(InfraError),
}

impl LiveChecks {
    /// A budget of `per_minute` live checks per organization, counted in `log`, each
    /// check's DNS work bounded by `deadline` in all.
    #[must_use]
    pub fn new(per_minute: u32, deadline: Duration, log: Arc<dyn LiveCheckLog>) -> Self {
        Self {
            per_minute: per_minute.max(1),
            deadline,
            log,
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// The default budget and deadline, counted in `log`.
    #[must_use]
    pub fn with_defaults(log: Arc<dyn LiveCheckLog>) -> Self {
        Self::new(DEFAULT_PER_MINUTE, DEFAULT_DEADLINE, log)
    }

    fn refused_until(&self) -> std::sync::MutexGuard<'_, HashMap<OrganizationId, DateTime<Utc>>> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spends one check of `organization`'s budget at `now`.
    ///
    /// # Errors
    /// [`Refused::Wait`] when the budget is spent (nothing is spent then), or
    /// [`Refused::Store`].
    pub async fn admit_at(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let wait = |until: DateTime<Utc>| retry_after((until - now).to_std().unwrap_or_default());
        if let Some(until) = self.refused_until().get(organization).copied()
            && until > now
        {
            return Err(Refused::Wait(wait(until)));
        }
        let oldest = self
            .log
            .take_live_check(organization, now, WINDOW, self.per_minute)
            .await
            .map_err(Refused::Store)?;
        let Some(oldest) = oldest else {
            return Ok(());
        };
        let frees_at = oldest + chrono::Duration::from_std(WINDOW).unwrap_or_default();
        let mut refused = self.refused_until();
        if refused.len() >= SWEEP_AT {
            refused.retain(|_, until| *until > now);
        }
        refused.insert(organization.clone(), frees_at);
        Err(Refused::Wait(wait(frees_at)))
    }

    /// [`LiveChecks::admit_at`] now, for a route doing `operation`; the admitted
    /// check's DNS work must end within the deadline from now.
    ///
    /// # Errors
    /// [`ApiError::TooManyLiveChecks`] when the budget is spent,
    /// [`ApiError::LiveCheckBudget`] when the store fails.
    pub async fn admit(
        &self,
        organization: &OrganizationId,
        operation: Operation,
    ) -> Result<Admitted, ApiError> {
        let started = tokio::time::Instant::now();
        self.admit_at(organization, Utc::now())
            .await
            .map_err(|refused| match refused {
                Refused::Wait(wait) => ApiError::TooManyLiveChecks(wait),
                Refused::Store(e) => ApiError::LiveCheckBudget(e, operation),
            })?;
        Ok(Admitted {
            deadline: started + self.deadline,
        })
    }
}

impl std::fmt::Debug for LiveChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChecks")
            .field("per_minute", &self.per_minute)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
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

/// `work`, ended at the deadline of the check in scope (then `timed_out`), or whole
/// outside a check.
async fn within_check<T>(work: impl Future<Output = T>, timed_out: T) -> T {
    match CHECK_DEADLINE.try_with(|deadline| *deadline) {
        Ok(deadline) => tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(timed_out),
        Err(_outside_a_check) => work.await,
    }
}

/// `lookup`, ended at the deadline in scope (a timeout), or whole without one.
async fn by_deadline<T>(lookup: impl Future<Output = Result<T, DnsError>>) -> Result<T, DnsError> {
    within_check(lookup, Err(DnsError::Timeout)).await
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

/// An [`HttpsFetcher`] whose requests end by the deadline of the check in scope at
/// the latest (`timeout`), as [`DeadlineDns`] ends lookups: a Domain Connect
/// discovery (a lookup and up to two HTTPS requests, each with its own timeout) then
/// takes one deadline in all, not one per request.
pub struct DeadlineFetcher {
    inner: Arc<dyn HttpsFetcher>,
}

impl DeadlineFetcher {
    #[must_use]
    pub fn new(inner: Arc<dyn HttpsFetcher>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl HttpsFetcher for DeadlineFetcher {
    async fn get(&self, request: &HttpsGet) -> FetchOutcome {
        within_check(self.inner.get(request), FetchOutcome::Failed("timeout")).await
    }
}

impl std::fmt::Debug for DeadlineFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineFetcher").finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The store's log in memory, as one instance sees it: a sliding window per
    /// organization; counts the calls that reached it.
    #[derive(Default)]
    pub(crate) struct MemoryLog {
        recent: Mutex<HashMap<OrganizationId, VecDeque<DateTime<Utc>>>>,
        pub(crate) calls: AtomicUsize,
    }

    #[async_trait]
    impl LiveCheckLog for MemoryLog {
        async fn take_live_check(
            &self,
            organization: &OrganizationId,
            now: DateTime<Utc>,
            window: Duration,
            limit: u32,
        ) -> Result<Option<DateTime<Utc>>, InfraError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut recent = self.recent.lock().unwrap();
            let times = recent.entry(organization.clone()).or_default();
            let since = now - chrono::Duration::from_std(window).unwrap();
            while times.front().is_some_and(|t| *t <= since) {
                times.pop_front();
            }
            if times.len() >= usize::try_from(limit).unwrap() {
                return Ok(times.front().copied());
            }
            times.push_back(now);
            Ok(None)
        }
    }

    fn seconds(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    fn waited(refused: Result<(), Refused>) -> Option<Duration> {
        match refused {
            Err(Refused::Wait(wait)) => Some(wait),
            Ok(()) | Err(Refused::Store(_)) => None,
        }
    }

    #[tokio::test]
    async fn an_organization_gets_its_budget_per_minute_and_no_more() {
        let log = Arc::new(MemoryLog::default());
        let checks = LiveChecks::new(3, DEFAULT_DEADLINE, log.clone());
        let (acme, other) = (OrganizationId::new("acme"), OrganizationId::new("other"));
        let start = Utc::now();
        for second in 0..3 {
            assert!(
                checks
                    .admit_at(&acme, start + seconds(second))
                    .await
                    .is_ok()
            );
        }
        // Spent: the first check frees a slot 60 s after it was made.
        assert_eq!(
            waited(checks.admit_at(&acme, start + seconds(10)).await),
            Some(Duration::from_secs(50))
        );
        // Another organization's budget is its own.
        assert!(checks.admit_at(&other, start + seconds(10)).await.is_ok());
        // A refusal spends nothing, and further ones until the first check frees are
        // answered from memory, without the store.
        let asked = log.calls.load(Ordering::SeqCst);
        assert_eq!(
            waited(checks.admit_at(&acme, start + seconds(30)).await),
            Some(Duration::from_secs(30))
        );
        assert_eq!(log.calls.load(Ordering::SeqCst), asked);
        // The window slides.
        assert!(checks.admit_at(&acme, start + seconds(60)).await.is_ok());
        assert!(checks.admit_at(&acme, start + seconds(60)).await.is_err());
        assert!(checks.admit_at(&acme, start + seconds(62)).await.is_ok());
    }

    #[tokio::test]
    async fn instances_sharing_one_log_share_one_budget() {
        let log = Arc::new(MemoryLog::default());
        let (one, two) = (
            LiveChecks::new(2, DEFAULT_DEADLINE, log.clone()),
            LiveChecks::new(2, DEFAULT_DEADLINE, log),
        );
        let acme = OrganizationId::new("acme");
        let now = Utc::now();
        assert!(one.admit_at(&acme, now).await.is_ok());
        assert!(two.admit_at(&acme, now).await.is_ok());
        assert!(one.admit_at(&acme, now).await.is_err());
        assert!(two.admit_at(&acme, now).await.is_err());
    }

    #[tokio::test]
    async fn refusals_remembered_are_swept() {
        let checks = LiveChecks::new(1, DEFAULT_DEADLINE, Arc::new(MemoryLog::default()));
        let start = Utc::now();
        for i in 0..SWEEP_AT {
            let org = OrganizationId::new(format!("org-{i}"));
            assert!(checks.admit_at(&org, start).await.is_ok());
            assert!(checks.admit_at(&org, start).await.is_err());
        }
        assert_eq!(checks.refused_until().len(), SWEEP_AT);
        let later = start + seconds(61);
        let late = OrganizationId::new("late");
        assert!(checks.admit_at(&late, later).await.is_ok());
        assert!(checks.admit_at(&late, later).await.is_err());
        assert_eq!(checks.refused_until().len(), 1);
    }

    #[tokio::test]
    async fn a_lookup_ends_at_the_deadline_of_its_check_and_only_within_one() {
        let dns = DeadlineDns::new(Arc::new(Hanging));
        let checks = LiveChecks::new(10, Duration::from_secs(1), Arc::new(MemoryLog::default()));
        let admitted = checks
            .admit(&OrganizationId::new("acme"), Operation::Validate)
            .await
            .unwrap();

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

    /// A provider that answers its first request after 100 ms, the others after
    /// 1.5 s (each within the request's own timeout of 5 s).
    #[derive(Default)]
    struct SlowProvider(AtomicUsize);

    #[async_trait]
    impl HttpsFetcher for SlowProvider {
        async fn get(&self, _: &HttpsGet) -> FetchOutcome {
            let delay = match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => Duration::from_millis(100),
                _ => Duration::from_millis(1500),
            };
            tokio::time::sleep(delay).await;
            FetchOutcome::Answered {
                status: 200,
                body: Vec::new(),
            }
        }
    }

    fn get() -> HttpsGet {
        let policy = domain_core::webhooks::AddressPolicy {
            allow_http: false,
            allow_nets: vec!["127.0.0.1/32".parse().expect("a network")],
            allow_private: false,
        };
        HttpsGet {
            url: domain_core::webhooks::WebhookUrl::parse("https://provider.example/v2", &policy)
                .expect("a URL"),
            address: "127.0.0.1:443".parse().expect("an address"),
            timeout: Duration::from_secs(5),
            max_body: 1024,
        }
    }

    #[tokio::test]
    async fn a_checks_https_requests_share_its_one_deadline() {
        // In a check of 1 s, a request of 100 ms then one of 1.5 s (each within its
        // own 5 s timeout): the second is cut at the check's deadline.
        let fetcher = DeadlineFetcher::new(Arc::new(SlowProvider::default()));
        let admitted = Admitted {
            deadline: tokio::time::Instant::now() + Duration::from_secs(1),
        };
        let (first, second) = admitted
            .within(async { (fetcher.get(&get()).await, fetcher.get(&get()).await) })
            .await;
        assert!(matches!(first, FetchOutcome::Answered { status: 200, .. }));
        assert!(
            matches!(second, FetchOutcome::Failed("timeout")),
            "{second:?}"
        );
        // Outside a check, each request has only its own timeout.
        assert!(matches!(
            fetcher.get(&get()).await,
            FetchOutcome::Answered { .. }
        ));
    }
}
