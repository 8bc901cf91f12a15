//! Idempotency port: a request made with an `Idempotency-Key` lives in phases. The
//! key is taken first, with a lease, in a short write of its own; the request then
//! runs with no transaction open while it waits on the network; its change and its
//! answer commit together at the end. So a change that commits is always replayable,
//! one that does not never is, and no lock is held across DNS or a webhook.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
use super::keys::KeyError;
use super::store::{RegisterError, Registered};
use crate::OrganizationId;

/// An `Idempotency-Key` header value: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, if `value` has the shape.
    #[must_use]
    pub fn parse(value: &[u8]) -> Option<Self> {
        let printable = value.iter().all(|b| (0x20..=0x7e).contains(b));
        (!value.is_empty() && value.len() <= 255 && printable)
            .then(|| Self(String::from_utf8_lossy(value).into_owned()))
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A response as kept for replay: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The request a key guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// The caller.
    pub organization: OrganizationId,
    /// The key.
    pub key: IdempotencyKey,
    /// SHA-256 of method, path and body: the same key with another request is refused.
    pub fingerprint: Vec<u8>,
    /// Now.
    pub now: DateTime<Utc>,
    /// Until when the request holds the key while it runs: a holder that crashed
    /// frees it when the lease runs out.
    pub lease_until: DateTime<Utc>,
    /// Until when a kept answer is replayed.
    pub expires_at: DateTime<Utc>,
    /// When a fresh key is taken.
    pub taking: Taking,
}

/// When a fresh key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taking {
    /// Up front, in a short write of its own with a lease, before the request runs:
    /// for a request that waits on the network (DNS, a webhook's address) before it
    /// writes, so that a retry made meanwhile answers 409 at once instead of doing
    /// that work a second time.
    UpFront,
    /// With the request's change, in its transaction (a registration: in its
    /// group-commit member), after a read that finds an answer to replay: for a
    /// request whose work before its write is short. A duplicate that runs meanwhile
    /// is stopped at its write: its change is rolled back and it answers what the
    /// first kept ([`UnitOfWork::superseded`]). A keyed request then costs one read
    /// and one statement more than an unkeyed one, not a transaction of its own.
    WithChange,
}

/// What holds a key that this request could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// An unexpired answer for the same request: replay it.
    Replay(StoredResponse),
    /// An unexpired answer for another request.
    Mismatch,
    /// A request with this key is running now (its lease has not run out).
    InProgress,
}

impl From<Held> for Begun {
    fn from(held: Held) -> Self {
        match held {
            Held::Replay(kept) => Self::Replay(kept),
            Held::Mismatch => Self::Mismatch,
            Held::InProgress => Self::InProgress,
        }
    }
}

/// What a key found.
pub enum Begun {
    /// An unexpired answer for the same request: replay it.
    Replay(StoredResponse),
    /// An unexpired answer for another request.
    Mismatch,
    /// A request with this key is running now (its lease has not run out).
    InProgress,
    /// The key is taken for this request: run it in this unit of work.
    Fresh(Box<dyn UnitOfWork>),
    /// The organization's kept answers take all the room they may
    /// (`DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`): the request does not run; room
    /// frees when the first of them expires, about `retry_after` from now. Given by
    /// [`crate::usecases::idempotency::GuardRetries`], never by a store.
    Full {
        /// Until the organization's first kept answer expires.
        retry_after: std::time::Duration,
    },
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Replay(response) => f.debug_tuple("Replay").field(response).finish(),
            Self::Mismatch => f.write_str("Mismatch"),
            Self::InProgress => f.write_str("InProgress"),
            Self::Fresh(_) => f.write_str("Fresh"),
            Self::Full { retry_after } => f
                .debug_struct("Full")
                .field("retry_after", retry_after)
                .finish(),
        }
    }
}

/// The request's work, run inside a unit of work.
pub type Work<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

/// How a keyed request answers the outcome of a sender registration: `None` when
/// the outcome is not an answer that is kept (a failure of the store, a registration
/// that must run again).
pub type RenderRegistration =
    Arc<dyn Fn(&Result<Registered, RegisterError>) -> Option<StoredResponse> + Send + Sync>;

/// Where a keyed request leaves how it answers a registration, so that a batch of
/// registrations (group commit) keeps the answer with the change, in the member's
/// own savepoint, instead of the request holding a transaction of its own. Set by
/// the handler while the request runs; read by the store when the registration runs.
#[derive(Clone, Default)]
pub struct RegistrationAnswer(Arc<OnceLock<RenderRegistration>>);

impl RegistrationAnswer {
    /// Sets how the request answers (the first call wins).
    pub fn set(&self, render: RenderRegistration) {
        let _ = self.0.set(render);
    }

    /// Whether the request said how it answers.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// The answer to `outcome`, if the request said how it answers and the outcome
    /// is kept.
    #[must_use]
    pub fn render(&self, outcome: &Result<Registered, RegisterError>) -> Option<StoredResponse> {
        self.0.get().and_then(|render| render(outcome))
    }

    /// An answer that passes what this one renders through `then` (sealing), read
    /// when it renders: this one may be set later.
    #[must_use]
    pub fn then(
        &self,
        then: impl Fn(StoredResponse) -> Option<StoredResponse> + Send + Sync + 'static,
    ) -> Self {
        let first = self.clone();
        let chained = Self::default();
        chained.set(Arc::new(move |outcome| {
            first.render(outcome).and_then(&then)
        }));
        chained
    }
}

impl std::fmt::Debug for RegistrationAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegistrationAnswer")
            .field(&self.is_set())
            .finish()
    }
}

/// A keyed request's unit of work. While [`UnitOfWork::run`] runs, the store calls
/// of the work join it: reads go to the pool as usual; the first write opens the
/// unit's transaction, which later writes join (as savepoints) and which
/// [`UnitOfWork::commit`] commits with the answer. A registration may instead join a
/// batch that keeps the answer with it ([`RegistrationAnswer`]).
#[async_trait(?Send)]
pub trait UnitOfWork {
    /// Runs `work`; the store calls it makes join this unit of work, and a
    /// registration it makes answers as `answer` says.
    async fn run<'a>(&'a mut self, answer: RegistrationAnswer, work: Work<'a>);

    /// After [`UnitOfWork::run`], for a key taken with the change
    /// ([`Taking::WithChange`]): another request with the same key kept its answer
    /// first, so this one's write was refused and whatever it answers is not its
    /// answer; `Held` is (roll back, then answer it).
    fn superseded(&self) -> Option<Held>;

    /// Keeps `response` for the key and commits the change with it (nothing to write
    /// when a batch kept the answer already). `Some` when the key turned out to be
    /// another request's ([`Taking::WithChange`]): nothing was kept or changed, and
    /// `Held` is what to answer instead.
    ///
    /// # Errors
    /// [`InfraError`] when the commit failed or the key's lease was lost to another
    /// request: nothing was kept or changed (or, if the database could not say, a
    /// retry finds out).
    async fn commit(self: Box<Self>, response: &StoredResponse)
    -> Result<Option<Held>, InfraError>;

    /// Undoes the change and frees the key (a 5xx is not kept).
    async fn rollback(self: Box<Self>);
}

/// Idempotency records.
#[async_trait(?Send)]
pub trait IdempotencyStore: Send + Sync {
    /// Takes the key for this request in a short write of its own, with a lease, or
    /// says what it found: an answer to replay, another request's answer, a request
    /// still running. A key whose answer expired, or whose holder's lease ran out,
    /// is taken afresh.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails: the request must not run.
    async fn begin(&self, guarded: &Guarded) -> Result<Begun, InfraError>;
}

/// Kept answers, for the background task that removes the expired ones.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeptAnswers: Send + Sync {
    /// Removes up to `batch` answers that expired by `now`; how many it removed.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn prune_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize, InfraError>;

    /// The bytes of `organization`'s kept answer bodies, as stored.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn stored_bytes(&self, organization: &OrganizationId) -> Result<u64, InfraError>;

    /// When `organization`'s first kept answer (or running key) expires (`None`:
    /// it holds no key).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn first_expiry(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<DateTime<Utc>>, InfraError>;
}

/// Kept answers are sealed under the master key, bound to their organization and
/// key: an answer may hold a secret shown once (a webhook's signing secret).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait AnswerSealer: Send + Sync {
    /// Seals `body` for `key` of `organization`.
    ///
    /// # Errors
    /// [`KeyError`] when the random source or the cipher fails.
    fn seal(
        &self,
        organization: &OrganizationId,
        key: &IdempotencyKey,
        body: &[u8],
    ) -> Result<Vec<u8>, KeyError>;

    /// Opens a body sealed for `key` of `organization`.
    ///
    /// # Errors
    /// [`KeyError`] when it does not open (another master key, key or organization).
    fn open(
        &self,
        organization: &OrganizationId,
        key: &IdempotencyKey,
        sealed: &[u8],
    ) -> Result<Vec<u8>, KeyError>;
}
