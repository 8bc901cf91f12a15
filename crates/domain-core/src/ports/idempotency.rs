//! Idempotency port: a request made with an `Idempotency-Key` runs as one unit of
//! work with the record of its answer, so a retry replays what committed and re-runs
//! what did not.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::InfraError;
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
    /// Until when a kept answer is replayed.
    pub expires_at: DateTime<Utc>,
}

/// What a key found.
pub enum Begun {
    /// An unexpired answer for the same request: replay it.
    Replay(StoredResponse),
    /// An unexpired answer for another request.
    Mismatch,
    /// A request with this key is running now.
    InProgress,
    /// Nothing yet: run the request in this unit of work.
    Fresh(Box<dyn UnitOfWork>),
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Replay(response) => f.debug_tuple("Replay").field(response).finish(),
            Self::Mismatch => f.write_str("Mismatch"),
            Self::InProgress => f.write_str("InProgress"),
            Self::Fresh(_) => f.write_str("Fresh"),
        }
    }
}

/// The request's work, run inside a unit of work.
pub type Work<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

/// An open unit of work (a database transaction) that every store call made by the
/// work passed to [`UnitOfWork::run`] joins.
#[async_trait(?Send)]
pub trait UnitOfWork {
    /// Runs `work`; the store calls it makes join this unit of work.
    async fn run<'a>(&'a mut self, work: Work<'a>);

    /// Keeps `response` for the key and commits everything.
    ///
    /// # Errors
    /// [`InfraError`] when the commit failed: nothing was kept or changed (or, if the
    /// database could not say, a retry finds out).
    async fn commit(self: Box<Self>, response: &StoredResponse) -> Result<(), InfraError>;

    /// Undoes everything (a 5xx is not kept).
    async fn rollback(self: Box<Self>);
}

/// Idempotency records.
#[async_trait(?Send)]
pub trait IdempotencyStore: Send + Sync {
    /// Looks the key up and, when it is new, opens the unit of work that will keep
    /// the answer. Expired records are removed on the way (a few per call).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    async fn begin(&self, guarded: &Guarded) -> Result<Begun, InfraError>;
}
