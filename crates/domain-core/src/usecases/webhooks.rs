//! Webhooks: endpoints an organization manages (create with a secret shown once, list,
//! delete, deliveries), and the delivery of one leased event to one endpoint, signed
//! per Standard Webhooks, to an address checked at that moment.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::OrganizationId;
use crate::lifecycle::{EventType, Page, Paged};
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::dns::{Dns, DnsError};
use crate::ports::webhooks::{
    Attempt, CreateEndpointError, DeliveryQueue, DeliveryView, DueDelivery, Endpoint, Health,
    NewEndpoint, NextStep, Reach, RecordedAttempt, SendOutcome, WebhookRequest, WebhookSecrets,
    WebhookSender, WebhookStore,
};
use crate::webhooks::{
    AddressPolicy, EventFilter, RetrySchedule, WebhookHost, WebhookId, WebhookUrl, payload,
    signed_content,
};

/// The default bound on an organization's endpoints.
pub const DEFAULT_MAX_ENDPOINTS: usize = 20;

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not allowed (shape, scheme, or an address it resolves to); carries
    /// the URL as received.
    #[error("the webhook URL is not allowed")]
    InvalidUrl(String),
    /// An event type that does not exist; carries it as received.
    #[error("unknown event type")]
    UnknownEvent(String),
    /// `events` was given but empty: the endpoint would receive nothing.
    #[error("no event types")]
    NoEvents,
    /// The organization has the most endpoints it may have.
    #[error("the organization has reached its webhook limit")]
    LimitReached,
    /// No such endpoint for this organization (or not an endpoint id).
    #[error("no such webhook")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// A created endpoint and its secret (`whsec_…`), shown this once.
#[derive(Debug)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The signing secret as the customer keeps it.
    pub secret: Zeroizing<String>,
}

/// Resolves a URL's host and checks every address against the policy; the first
/// permitted address to connect to, or why not.
pub(crate) async fn checked_address(
    url: &WebhookUrl,
    dns: &dyn Dns,
    policy: &AddressPolicy,
) -> Result<IpAddr, Refusal> {
    let addresses = match url.host() {
        WebhookHost::Ip(ip) => vec![*ip],
        WebhookHost::Name(name) => match dns.addresses(name).await {
            Ok(addresses) => addresses,
            Err(DnsError::NxDomain | DnsError::NoRecords) => {
                return Err(Refusal::Unresolved);
            }
            Err(error) => return Err(Refusal::Lookup(error)),
        },
    };
    if !policy.permits_all(&addresses) {
        return Err(Refusal::Forbidden);
    }
    addresses.first().copied().ok_or(Refusal::Unresolved)
}

/// Why a URL's host gave no address to use.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The name has no address.
    Unresolved,
    /// An address is one webhooks must not reach.
    Forbidden,
    /// The lookup failed; the name may well be fine.
    Lookup(DnsError),
}

impl Refusal {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Unresolved => "host not found",
            Self::Forbidden => "address not allowed",
            Self::Lookup(DnsError::Timeout) => "dns timeout",
            Self::Lookup(_) => "dns failure",
        }
    }
}

/// The endpoints an organization manages.
#[derive(Clone)]
pub struct ManageWebhooks {
    store: Arc<dyn WebhookStore>,
    secrets: Arc<dyn WebhookSecrets>,
    dns: Arc<dyn Dns>,
    clock: Arc<dyn Clock>,
    policy: Arc<AddressPolicy>,
    max_endpoints: usize,
}

impl ManageWebhooks {
    /// The use case; an organization has at most `max_endpoints` endpoints.
    #[must_use]
    pub fn new(
        store: Arc<dyn WebhookStore>,
        secrets: Arc<dyn WebhookSecrets>,
        dns: Arc<dyn Dns>,
        clock: Arc<dyn Clock>,
        policy: Arc<AddressPolicy>,
        max_endpoints: usize,
    ) -> Self {
        Self {
            store,
            secrets,
            dns,
            clock,
            policy,
            max_endpoints,
        }
    }

    /// Creates an endpoint for `url` receiving `events` (`None`: every type). The URL
    /// must be allowed by the policy, and so must every address its host resolves to
    /// now (checked again at every delivery).
    ///
    /// # Errors
    /// [`WebhookError::InvalidUrl`], [`WebhookError::UnknownEvent`],
    /// [`WebhookError::LimitReached`], or a port failure (a DNS lookup that failed is
    /// [`InfraError::Unavailable`]).
    pub async fn create(
        &self,
        organization: &OrganizationId,
        url: &str,
        events: Option<&[String]>,
    ) -> Result<CreatedWebhook, WebhookError> {
        let invalid = || WebhookError::InvalidUrl(url.to_owned());
        let parsed = WebhookUrl::parse(url, &self.policy).map_err(|_| invalid())?;
        let events = parse_events(events)?;
        match checked_address(&parsed, self.dns.as_ref(), &self.policy).await {
            Ok(_) => {}
            Err(Refusal::Lookup(error)) => {
                return Err(InfraError::Unavailable(Box::new(error)).into());
            }
            Err(Refusal::Unresolved | Refusal::Forbidden) => return Err(invalid()),
        }
        let issued = self.secrets.issue().map_err(InfraError::unexpected)?;
        let endpoint = Endpoint {
            id: issued.id,
            url: parsed.as_str().to_owned(),
            events,
            created_at: self.clock.now(),
            health: Health::Ok,
        };
        let new = NewEndpoint {
            organization: organization.clone(),
            endpoint,
            secret_sealed: issued.sealed,
        };
        self.store
            .create_endpoint(&new, self.max_endpoints)
            .await
            .map_err(|error| match error {
                CreateEndpointError::LimitReached => WebhookError::LimitReached,
                CreateEndpointError::Infra(error) => WebhookError::Infra(error),
            })?;
        Ok(CreatedWebhook {
            endpoint: new.endpoint,
            secret: issued.secret.to_whsec(),
        })
    }

    /// The organization's endpoints, oldest first.
    ///
    /// # Errors
    /// A store failure.
    pub async fn list(&self, organization: &OrganizationId) -> Result<Vec<Endpoint>, WebhookError> {
        Ok(self.store.list_endpoints(organization).await?)
    }

    /// Deletes an endpoint and its deliveries.
    ///
    /// # Errors
    /// [`WebhookError::NotFound`] or a store failure.
    pub async fn delete(
        &self,
        organization: &OrganizationId,
        id: &str,
    ) -> Result<(), WebhookError> {
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound)?;
        if self.store.delete_endpoint(organization, &id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// One page of an endpoint's deliveries with their attempts.
    ///
    /// # Errors
    /// [`WebhookError::NotFound`] or a store failure.
    pub async fn deliveries(
        &self,
        organization: &OrganizationId,
        id: &str,
        page: &Page<i64>,
    ) -> Result<Paged<DeliveryView, i64>, WebhookError> {
        let id = WebhookId::parse(id).ok_or(WebhookError::NotFound)?;
        self.store
            .list_deliveries(organization, &id, page)
            .await?
            .ok_or(WebhookError::NotFound)
    }
}

impl std::fmt::Debug for ManageWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageWebhooks")
            .field("policy", &self.policy)
            .field("max_endpoints", &self.max_endpoints)
            .finish_non_exhaustive()
    }
}

fn parse_events(events: Option<&[String]>) -> Result<EventFilter, WebhookError> {
    let Some(events) = events else {
        return Ok(None);
    };
    let mut kinds = Vec::with_capacity(events.len());
    for name in events {
        let kind =
            EventType::parse(name).ok_or_else(|| WebhookError::UnknownEvent(name.clone()))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        // An empty list would receive nothing: say so rather than store a dead endpoint.
        return Err(WebhookError::NoEvents);
    }
    Ok(Some(kinds))
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx: delivered.
    Delivered,
    /// No 2xx; another attempt is scheduled.
    Retry,
    /// No 2xx and the schedule ran out: failed for good.
    Failed,
    /// The attempt could not be recorded (the store); the lease runs out and the
    /// delivery is attempted again.
    Error,
}

impl DeliveryOutcome {
    /// A closed label for metrics.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }
}

/// An attempt made and not yet recorded ([`DeliverWebhooks::attempt`]).
#[derive(Debug, Clone)]
pub struct Attempted {
    recorded: RecordedAttempt,
    outcome: DeliveryOutcome,
}

impl Attempted {
    /// What the attempt says about its endpoint: an attempt without an HTTP answer
    /// counts towards the endpoint's degraded health once recorded.
    #[must_use]
    pub fn reach(&self) -> Reach {
        self.recorded.reach
    }

    /// Whether the endpoint gave an HTTP answer (any status).
    #[must_use]
    pub fn answered(&self) -> bool {
        self.reach() == Reach::Answered
    }
}

/// Leases due deliveries and delivers them.
#[derive(Clone)]
pub struct DeliverWebhooks {
    queue: Arc<dyn DeliveryQueue>,
    secrets: Arc<dyn WebhookSecrets>,
    dns: Arc<dyn Dns>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn Clock>,
    policy: Arc<AddressPolicy>,
    retry: Arc<RetrySchedule>,
    timeout: Duration,
}

/// How a delivery is made: the address policy, the retry schedule, and the bound on
/// one request.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Which addresses may be reached.
    pub policy: Arc<AddressPolicy>,
    /// The delays between attempts.
    pub retry: Arc<RetrySchedule>,
    /// The bound on one request (`DOMAIN_API_WEBHOOK_TIMEOUT_MS`).
    pub timeout: Duration,
}

impl DeliverWebhooks {
    /// The use case over its ports.
    #[must_use]
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        secrets: Arc<dyn WebhookSecrets>,
        dns: Arc<dyn Dns>,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn Clock>,
        settings: DeliverySettings,
    ) -> Self {
        Self {
            queue,
            secrets,
            dns,
            sender,
            clock,
            policy: settings.policy,
            retry: settings.retry,
            timeout: settings.timeout,
        }
    }

    /// How long a leased delivery is held: longer than an attempt can take (a DNS
    /// lookup, then the request's timeout), so a live sender never loses its lease,
    /// and short enough that a crashed one's deliveries soon go to another.
    #[must_use]
    pub fn lease_length(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(30)
    }

    /// Leases up to `limit` due deliveries round-robin over their organizations, at
    /// most `per_organization` of one, skipping the organizations in `skip`
    /// ([`DeliveryQueue::lease_deliveries`]).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn lease(
        &self,
        limit: usize,
        per_organization: usize,
        skip: &[OrganizationId],
    ) -> Result<Vec<DueDelivery>, InfraError> {
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.lease_length()).map_err(InfraError::unexpected)?;
        self.queue
            .lease_deliveries(now, now + lease, limit, per_organization, skip)
            .await
    }

    /// Deletes one batch (at most `batch`) of deliveries delivered or failed more than
    /// `retention` ago; how many went.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn prune(&self, retention: Duration, batch: usize) -> Result<usize, InfraError> {
        let retention = chrono::Duration::from_std(retention).map_err(InfraError::unexpected)?;
        self.queue
            .prune_deliveries(self.clock.now() - retention, batch)
            .await
    }

    /// Makes one attempt of a leased delivery and records it ([`Self::attempt`], then
    /// [`Self::record`]).
    pub async fn deliver(&self, due: &DueDelivery) -> DeliveryOutcome {
        let attempted = self.attempt(due).await;
        self.record(attempted).await
    }

    /// Makes one attempt of a leased delivery: the endpoint's host is resolved and
    /// every address checked now (so a name that has come to point somewhere
    /// forbidden is refused, not connected to), the body signed, and the request sent
    /// to the checked address. Nothing is recorded yet: the delivery stays leased
    /// until [`Self::record`] commits, so no other sender takes it meanwhile.
    pub async fn attempt(&self, due: &DueDelivery) -> Attempted {
        let at = self.clock.now();
        let started = Instant::now();
        let (status_code, error, reach) = match self.send_once(due).await {
            Ok(SendOutcome::Status(code)) => (Some(code), None, Reach::Answered),
            Ok(SendOutcome::Failed(reason)) => (None, Some(reason.to_owned()), Reach::Unreachable),
            Err(reason) => (None, Some(reason.to_owned()), Reach::NotTried),
        };
        let delivered = status_code.is_some_and(|code| (200..300).contains(&code));
        let attempts = due.attempts.saturating_add(1);
        let (next, outcome) = if delivered {
            (NextStep::Delivered, DeliveryOutcome::Delivered)
        } else {
            match self
                .retry
                .after(attempts)
                .and_then(|delay| chrono::Duration::from_std(delay).ok())
            {
                Some(delay) => (NextStep::RetryAt(at + delay), DeliveryOutcome::Retry),
                None => (NextStep::Failed, DeliveryOutcome::Failed),
            }
        };
        let attempt = Attempt {
            at,
            status_code,
            error,
            duration: started.elapsed(),
        };
        Attempted {
            recorded: RecordedAttempt {
                delivery: due.id,
                endpoint: due.endpoint.clone(),
                attempt,
                next,
                reach,
            },
            outcome,
        }
    }

    /// Records an attempt: the delivery moves on (delivered, retried later, or
    /// failed) and its lease ends.
    pub async fn record(&self, attempted: Attempted) -> DeliveryOutcome {
        let Attempted { recorded, outcome } = attempted;
        match self
            .queue
            .record_attempts(std::slice::from_ref(&recorded))
            .await
        {
            Ok(()) => outcome,
            Err(error) => {
                tracing::warn!(delivery = recorded.delivery, %error, "could not record a webhook attempt");
                DeliveryOutcome::Error
            }
        }
    }

    async fn send_once(&self, due: &DueDelivery) -> Result<SendOutcome, &'static str> {
        // The stored URL passed these rules at creation; the policy may have changed.
        let url = WebhookUrl::parse(&due.url, &self.policy).map_err(|_| "url not allowed")?;
        let ip = checked_address(&url, self.dns.as_ref(), &self.policy)
            .await
            .map_err(|refusal| refusal.reason())?;
        let secret = self
            .secrets
            .open(&due.endpoint, &due.secret_sealed)
            .map_err(|error| {
                tracing::error!(endpoint = %due.endpoint, %error, "a webhook secret does not open");
                "secret unavailable"
            })?;
        let body = payload(&due.event);
        let message_id = due.event.id.to_string();
        let timestamp = self.clock.now().timestamp();
        let mac = self.secrets.sign(
            &secret,
            signed_content(&message_id, timestamp, &body).as_bytes(),
        );
        let signature = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        );
        let request = WebhookRequest {
            address: SocketAddr::new(ip, url.port()),
            url,
            headers: vec![
                ("webhook-id", message_id),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body,
            timeout: self.timeout,
        };
        Ok(self.sender.send(&request).await)
    }
}

impl std::fmt::Debug for DeliverWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverWebhooks")
            .field("policy", &self.policy)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;
