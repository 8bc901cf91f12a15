//! The ports the use cases need. Adapters implement them; `mocks` (feature `mocks`) gathers the mockall
//! doubles (`MockCredentials`, `MockKeyGenerator`, `MockDns`, `MockDomainStore`,
//! `MockDkimSigner`, …).

pub mod admin;
pub mod claims;
pub mod clock;
pub mod credentials;
pub mod dns;
pub mod domain_connect;
pub mod idempotency;
pub mod keys;
pub mod lifecycle;
pub mod signing;
pub mod store;
pub mod webhooks;

/// The cause behind an [`InfraError`]: logged, never shown.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A port failed for a reason outside the domain. Every use case's error has one
/// variant carrying this, so the edge maps infrastructure failures in one place.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The backing service cannot be reached right now; retrying later may succeed.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, corrupt data, a failed invariant.
    #[error("a backing service failed")]
    Unexpected(#[source] BoxError),
}

impl InfraError {
    /// An unexpected failure from any error.
    pub fn unexpected(error: impl Into<BoxError>) -> Self {
        Self::Unexpected(error.into())
    }
}

/// mockall doubles of every port, in one place, for tests of code that uses the use
/// cases (`features = ["mocks"]`).
///
/// Running [`GenerateRecords`](crate::usecases::generate::GenerateRecords) against
/// them, as a consumer's test would:
///
/// ```
/// use std::sync::Arc;
///
/// use domain_core::chrono::Utc;
/// use domain_core::ownership::Ownership;
/// use domain_core::ports::clock::SystemClock;
/// use domain_core::ports::mocks::{MockDns, MockDomainStore, MockKeyGenerator};
/// use domain_core::ports::store::{Registered, StoredDomain};
/// use domain_core::usecases::generate::{GenerateInput, GenerateRecords};
/// use domain_core::usecases::verify::VerifySchedule;
/// use domain_core::{DkimKey, OrganizationId, RecordPolicy, SealedKey, Selector};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A store with no domain yet, which keeps what it is given.
/// let mut store = MockDomainStore::new();
/// store.expect_find_domain().returning(|_| Ok(None));
/// store.expect_admit_creation().returning(|_, _| Ok(()));
/// store.expect_register_sender().returning(|registration| {
///     let key = registration.new_key.expect("a new domain brings its key");
///     Ok(Registered {
///         domain: StoredDomain::new(
///             registration.email.domain().clone(),
///             registration.organization,
///             key.selector,
///             key.public_key,
///             registration.enable_inbound,
///             Utc::now(),
///         ),
///         domain_created: true,
///     })
/// });
/// let selector = Selector::new("s2026a")?;
/// let mut keys = MockKeyGenerator::new();
/// keys.expect_generate().times(1).returning(move |_| {
///     Ok(DkimKey {
///         selector: selector.clone(),
///         public_key: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".into(),
///         sealed_private_key: SealedKey(vec![0; 16]),
///     })
/// });
/// let mut dns = MockDns::new();
/// dns.expect_mx().never(); // inbound is not asked for
///
/// let generate = GenerateRecords::new(
///     Arc::new(store),
///     Arc::new(keys),
///     Arc::new(dns),
///     Arc::new(RecordPolicy::new(
///         vec!["192.0.2.10".parse()?],
///         &["mx1.example.net".to_owned()],
///     )?),
///     Arc::new(Ownership::default()),
///     Arc::new(VerifySchedule::default()),
///     Arc::new(SystemClock),
/// );
/// let input = GenerateInput {
///     email: Some("noreply@example.com".into()),
///     ..GenerateInput::default()
/// };
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let records = runtime.block_on(generate.execute(&OrganizationId::new("org-1"), input))?;
/// let [spf, dkim, dmarc] = records.entries();
/// assert_eq!(spf, ("SPF", "v=spf1 ip4:192.0.2.10 -all"));
/// assert_eq!(dkim.0, "s2026a._domainkey.example.com");
/// assert_eq!(dmarc.0, "_dmarc");
/// # Ok(())
/// # }
/// ```
#[cfg(any(test, feature = "mocks"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mocks")))]
pub mod mocks {
    pub use super::admin::MockAdministration;
    pub use super::claims::MockClaimStore;
    pub use super::clock::MockClock;
    pub use super::credentials::MockCredentials;
    pub use super::dns::MockDns;
    pub use super::domain_connect::{MockApplyUrlSigner, MockHttpsFetcher};
    pub use super::idempotency::{MockAnswerSealer, MockKeptAnswers};
    pub use super::keys::{MockKeyGenerator, MockKeyVault};
    pub use super::lifecycle::{
        MockCheckQueue, MockEventStore, MockKeyLifecycleStore, MockLiveCheckLog, MockSenderStore,
    };
    pub use super::signing::MockDkimSigner;
    pub use super::store::MockDomainStore;
    pub use super::webhooks::{
        MockDeliveryQueue, MockWebhookSecrets, MockWebhookSender, MockWebhookStore,
    };
}
