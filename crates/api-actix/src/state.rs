//! What handlers share: the use cases (generate, reads, validate and the lifecycle),
//! the dashboard JWT secret, metrics, and the probes the binary supplies for
//! readiness and scrape-time gauges.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain_core::ports::BoxError;
use domain_core::usecases::authenticate::Authenticate;
use domain_core::usecases::claim::ClaimDomain;
use domain_core::usecases::connect::DomainConnect;
use domain_core::usecases::create::CreateDomain;
use domain_core::usecases::generate::GenerateRecords;
use domain_core::usecases::idempotency::GuardRetries;
use domain_core::usecases::manage::ManageDomain;
use domain_core::usecases::read::ReadDomains;
use domain_core::usecases::senders::{ListEvents, ManageSenders};
use domain_core::usecases::validate::ValidateDomain;
use domain_core::usecases::verify::VerifyDomain;
use domain_core::usecases::webhooks::ManageWebhooks;

use crate::frame_ancestors::FrameAncestors;
use crate::jwt::JwtSecret;
use crate::live_checks::LiveChecks;
use crate::metrics::{Gauges, Metrics};

/// Readiness and gauges, implemented by the composition root over its adapters, so
/// the edge needs no adapter crate.
#[async_trait]
pub trait Probes: Send + Sync {
    /// `Ok` when the process can serve now (its database answers).
    ///
    /// # Errors
    /// The reason it cannot, logged by the caller and never shown.
    async fn ready(&self) -> Result<(), BoxError>;

    /// Gauges as they stand now, for a scrape.
    fn gauges(&self) -> Gauges;
}

/// What handlers share.
pub struct AppState {
    pub authenticate: Authenticate,
    pub generate: GenerateRecords,
    /// A domain on its own (`POST /api/v1/emails/domains`).
    pub create: CreateDomain,
    pub read: ReadDomains,
    pub validate: ValidateDomain,
    /// Rotate, the inbound toggle, delete.
    pub manage: ManageDomain,
    /// The senders list, activate, delete.
    pub senders: ManageSenders,
    /// The events list.
    pub events: ListEvents,
    /// The check that also moves a domain's lifecycle on.
    pub verify: VerifyDomain,
    /// Claims on another organization's domain.
    pub claim: ClaimDomain,
    /// Domain Connect's apply URLs.
    pub connect: DomainConnect,
    /// Webhook endpoints and their deliveries.
    pub webhooks: ManageWebhooks,
    /// `Idempotency-Key`: lookups and the units of work of new requests.
    pub idempotency: GuardRetries,
    /// `None`: the validate endpoint is disabled and answers 404.
    pub jwt: Option<JwtSecret>,
    pub probes: Arc<dyn Probes>,
    pub metrics: Arc<Metrics>,
    /// Bound on reading a whole request body (`DOMAIN_API_BODY_TIMEOUT_MS`); past
    /// it the request is answered 408.
    pub body_timeout: Duration,
    /// Who may frame the Domain Setup page (`DOMAIN_API_SETUP_FRAME_ANCESTORS`).
    pub frame_ancestors: FrameAncestors,
    /// Each organization's budget of requests that query DNS on its behalf
    /// (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`).
    pub live_checks: Arc<LiveChecks>,
}

impl AppState {
    /// Gauges as they stand now, for a scrape.
    #[must_use]
    pub fn gauges(&self) -> Gauges {
        self.probes.gauges()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
