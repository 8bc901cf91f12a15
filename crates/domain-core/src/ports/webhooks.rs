//! Webhook ports: the endpoints and their deliveries (the store, next to the events
//! outbox), the signing secrets (sealed under the master key), and the sender that
//! makes one HTTP request.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
use super::keys::KeyError;
use crate::OrganizationId;
use crate::lifecycle::{Event, Page, Paged};
use crate::webhooks::{EventFilter, WebhookId, WebhookSecret, WebhookUrl};

/// An endpoint as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id.
    pub id: WebhookId,
    /// Where deliveries go.
    pub url: String,
    /// The event types it receives.
    pub events: EventFilter,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Whether it answers ([`Health`]).
    pub health: Health,
}

/// An endpoint to store, with its sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    /// Its owner.
    pub organization: OrganizationId,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The signing secret, sealed for this endpoint's id.
    pub secret_sealed: Vec<u8>,
}

/// Why an endpoint was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateEndpointError {
    /// The organization has the most endpoints it may have.
    #[error("the organization has reached its webhook limit")]
    LimitReached,
    /// The store failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; an attempt is due at `next_attempt_at`.
    Pending,
    /// An attempt got a 2xx.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryState {
    /// The wire and storage name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The state of a stored name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// The response's status code, when one came.
    pub status_code: Option<u16>,
    /// Why no (successful) response came: a short closed description, e.g.
    /// `timeout`, `connection refused`, `address not allowed`.
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// A delivery with its attempts, for the deliveries list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// Its id (the list's cursor).
    pub id: i64,
    /// The event delivered.
    pub event: Event,
    /// Where it stands.
    pub state: DeliveryState,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was created (with its event).
    pub created_at: DateTime<Utc>,
    /// Its attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

/// An organization's endpoints and what was delivered to them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores `new` unless its organization already has `limit` endpoints (checked
    /// under the organization's lock, so concurrent creations cannot pass it).
    ///
    /// # Errors
    /// [`CreateEndpointError`].
    async fn create_endpoint(
        &self,
        new: &NewEndpoint,
        limit: usize,
    ) -> Result<(), CreateEndpointError>;

    /// The organization's endpoints, oldest first.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_endpoints(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<Endpoint>, InfraError>;

    /// Deletes the endpoint and its deliveries; `false` when the organization has no
    /// such endpoint.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn delete_endpoint(
        &self,
        organization: &OrganizationId,
        id: &WebhookId,
    ) -> Result<bool, InfraError>;

    /// One page of the endpoint's deliveries, oldest first, each with its attempts;
    /// `None` when the organization has no such endpoint.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn list_deliveries(
        &self,
        organization: &OrganizationId,
        id: &WebhookId,
        page: &Page<i64>,
    ) -> Result<Option<Paged<DeliveryView, i64>>, InfraError>;
}

/// A delivery leased to the caller, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery.
    pub id: i64,
    /// The endpoint's owner.
    pub organization: OrganizationId,
    /// The endpoint.
    pub endpoint: WebhookId,
    /// Its URL as stored.
    pub url: String,
    /// Its sealed secret.
    pub secret_sealed: Vec<u8>,
    /// The event.
    pub event: Event,
    /// Attempts made so far.
    pub attempts: u32,
    /// The endpoint's consecutive attempts without an HTTP answer when leased.
    pub failures: u32,
}

impl DueDelivery {
    /// The endpoint was degraded when leased ([`DEGRADED_AFTER`]): one attempt in
    /// flight at a time.
    #[must_use]
    pub fn degraded(&self) -> bool {
        Health::of(self.failures) == Health::Degraded
    }
}

/// The consecutive attempts without an HTTP answer (a timeout, a connection refused,
/// reset or failed: [`Reach::Unreachable`]) after which an endpoint is `degraded`:
/// its deliveries are leased one at a time, across every instance, until an attempt
/// gets any HTTP answer again, which makes it `ok`.
pub const DEGRADED_AFTER: u32 = 3;

/// What an attempt says about its endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// An HTTP answer came (any status): the endpoint is `ok` again.
    Answered,
    /// No answer: a timeout or a connection refused, reset or failed; one more
    /// consecutive failure.
    Unreachable,
    /// No request was made (the URL, its address or the secret was refused): says
    /// nothing about the endpoint.
    NotTried,
}

/// An endpoint's health as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answering, or fewer than [`DEGRADED_AFTER`] consecutive attempts unanswered.
    Ok,
    /// [`DEGRADED_AFTER`] or more consecutive attempts unanswered.
    Degraded,
}

impl Health {
    /// The health of an endpoint with `failures` consecutive unanswered attempts.
    #[must_use]
    pub fn of(failures: u32) -> Self {
        if failures >= DEGRADED_AFTER {
            Self::Degraded
        } else {
            Self::Ok
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
        }
    }
}

/// An attempt to record, with where it leads and what it says of its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAttempt {
    /// The delivery.
    pub delivery: i64,
    /// Its endpoint.
    pub endpoint: WebhookId,
    /// The attempt.
    pub attempt: Attempt,
    /// Where the delivery goes next.
    pub next: NextStep,
    /// What it says of the endpoint's health.
    pub reach: Reach,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered: no more attempts.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// The schedule ran out: failed, no more attempts.
    Failed,
}

/// How much waits in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Deliveries not yet delivered nor failed.
    pub pending: u64,
    /// When the oldest of them was created.
    pub oldest: Option<DateTime<Utc>>,
}

/// The delivery queue the webhook sender works from.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Leases up to `limit` pending deliveries due at `now` that nobody holds, fairly:
    /// round-robin over the organizations with due deliveries (every one's oldest
    /// due, then every one's second, …), at most `per_organization` of one, skipping
    /// the organizations in `skip` (those with enough in flight here), and at most one
    /// at a time of a degraded endpoint (none while one of its deliveries is leased).
    /// Each is held until `lease_until` or until its attempt is recorded. Two
    /// callers, on any instances, never lease the same delivery at once.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn lease_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        per_organization: usize,
        skip: &[OrganizationId],
    ) -> Result<Vec<DueDelivery>, InfraError>;

    /// Records `attempt` of delivery `id` and moves it on to `next`, releasing the
    /// lease — if it is still pending: an attempt on a delivery that was deleted (with
    /// its endpoint) or finished by another sender meanwhile is dropped.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn record_attempt(
        &self,
        id: i64,
        attempt: &Attempt,
        next: NextStep,
    ) -> Result<(), InfraError>;

    /// Records every attempt of `batch` as [`DeliveryQueue::record_attempt`] does, in
    /// one transaction (all or none), and moves each endpoint's health on: an
    /// [`Reach::Answered`] attempt resets its consecutive failures, an
    /// [`Reach::Unreachable`] one adds one (an attempt dropped because its delivery
    /// is gone or finished still counts: the endpoint did or did not answer).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails; nothing of the batch is then recorded.
    async fn record_attempts(&self, batch: &[RecordedAttempt]) -> Result<(), InfraError>;

    /// Deletes up to `batch` delivered or failed deliveries completed before `before`
    /// (their attempts with them); how many were deleted.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, InfraError>;

    /// The outbox's depth and its oldest pending delivery.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn outbox_stats(&self) -> Result<OutboxStats, InfraError>;
}

/// A new endpoint's id and secret, the secret also sealed for that id.
#[derive(Debug)]
pub struct IssuedSecret {
    /// The endpoint's id.
    pub id: WebhookId,
    /// The secret, shown once.
    pub secret: WebhookSecret,
    /// The secret sealed under the master key, bound to `id`.
    pub sealed: Vec<u8>,
}

/// Endpoint secrets: made from the system's random source, sealed under the master
/// key, and the HMAC-SHA256 that signs a delivery.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebhookSecrets: Send + Sync {
    /// A new endpoint id and signing secret (24 random bytes), sealed.
    ///
    /// # Errors
    /// [`KeyError`] when the random source or the cipher fails.
    fn issue(&self) -> Result<IssuedSecret, KeyError>;

    /// Seals `secret` for endpoint `id` (a master-key rotation re-seals every secret).
    ///
    /// # Errors
    /// [`KeyError`] when the random source or the cipher fails.
    fn seal(&self, id: &WebhookId, secret: &WebhookSecret) -> Result<Vec<u8>, KeyError>;

    /// Opens the secret sealed for endpoint `id`.
    ///
    /// # Errors
    /// [`KeyError`] when it does not open (another master key, another id, tampered).
    fn open(&self, id: &WebhookId, sealed: &[u8]) -> Result<WebhookSecret, KeyError>;

    /// HMAC-SHA256 of `content` keyed with `secret`.
    fn sign(&self, secret: &WebhookSecret, content: &[u8]) -> Vec<u8>;
}

/// One signed request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The endpoint's URL (its host goes in `Host` and the TLS server name).
    pub url: WebhookUrl,
    /// The checked address to connect to: never looked up again by the sender.
    pub address: SocketAddr,
    /// Headers besides `Host`, `Content-Type` and `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
    /// The bound on the whole exchange.
    pub timeout: Duration,
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// A response arrived in time with this status code.
    Status(u16),
    /// None did: a short closed reason (`timeout`, `connection refused`, `tls`, …).
    Failed(&'static str),
}

/// Sends one request to an already checked address.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `request` and reads the response's status line, within its timeout.
    /// Redirects are not followed.
    async fn send(&self, request: &WebhookRequest) -> SendOutcome;
}
