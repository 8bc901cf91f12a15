//! Safe retries: a request made with an `Idempotency-Key` takes its key first (with
//! a lease, in a short write of its own), runs, and keeps its answer with its change
//! until the key expires. Kept answers are sealed under the master key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use async_trait::async_trait;

use crate::OrganizationId;
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::idempotency::{
    AnswerSealer, Begun, Guarded, Held, IdempotencyKey, IdempotencyStore, KeptAnswers,
    RegistrationAnswer, StoredResponse, Taking, UnitOfWork, Work,
};

/// The default time a key's answer is kept (`DOMAIN_API_IDEMPOTENCY_TTL`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The default lease of a running request on its key
/// (`DOMAIN_API_IDEMPOTENCY_LEASE`): longer than any request runs, so only a holder
/// that crashed loses its key to a retry.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The first bytes of a sealed body. Answers kept before sealing began (plain JSON
/// or text, which never starts with a NUL) are replayed as they are until they
/// expire; `master-key rotate` seals them.
pub const SEALED_MAGIC: &[u8] = b"\0das1";

/// The default bound on one organization's kept answers, in bytes
/// (`DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`).
pub const DEFAULT_MAX_BYTES_PER_ORG: u64 = 64 * 1024 * 1024;

/// How long an organization's stored bytes, as read, stand for the bound: one read a
/// second per organization and instance, whatever the rate of keyed requests.
const ROOM_READ_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// Sweep organizations whose reading is stale once the map holds this many.
const ROOM_SWEEP_AT: usize = 4096;

/// Looks keys up and opens the units of work of new ones.
#[derive(Clone)]
pub struct GuardRetries {
    store: Arc<dyn IdempotencyStore>,
    sealer: Arc<dyn AnswerSealer>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    lease: Duration,
    room: Option<Arc<AnswerRoom>>,
}

/// The bound on the bytes of an organization's kept answers, read from the store at
/// most once a second per organization: the bound may be passed by what one second
/// of keyed requests keeps, never by more.
struct AnswerRoom {
    kept: Arc<dyn KeptAnswers>,
    max_bytes: u64,
    read: Mutex<HashMap<OrganizationId, (DateTime<Utc>, Room)>>,
}

/// An organization's room for answers, as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Free,
    /// Full until about then.
    FullUntil(DateTime<Utc>),
}

impl AnswerRoom {
    /// The organization's room at `now`: as last read within a second, or read.
    async fn at(
        &self,
        organization: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<Room, InfraError> {
        {
            let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, room)) = read.get(organization)
                && now - *at < ROOM_READ_EVERY
            {
                return Ok(*room);
            }
        }
        let room = if self.kept.stored_bytes(organization).await? < self.max_bytes {
            Room::Free
        } else {
            // An answer expires a TTL after it was kept at the latest; the prune
            // removes it within its round.
            let until = self.kept.first_expiry(organization).await?.unwrap_or(now);
            Room::FullUntil(until.max(now))
        };
        let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        if read.len() >= ROOM_SWEEP_AT {
            read.retain(|_, (at, _)| now - *at < ROOM_READ_EVERY);
        }
        read.insert(organization.clone(), (now, room));
        Ok(room)
    }
}

impl GuardRetries {
    /// The use case; an answer is replayed for `ttl` after it was kept, and a running
    /// request holds its key for at most `lease`.
    #[must_use]
    pub fn new(
        store: Arc<dyn IdempotencyStore>,
        sealer: Arc<dyn AnswerSealer>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        lease: Duration,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            ttl,
            lease,
            room: None,
        }
    }

    /// Bounds each organization's kept answers to `max_bytes` (as stored, sealed):
    /// past it, a request whose key would keep a new answer is refused
    /// ([`Begun::Full`]) until expiry frees room; replays are still served.
    #[must_use]
    pub fn with_max_bytes_per_org(mut self, kept: Arc<dyn KeptAnswers>, max_bytes: u64) -> Self {
        self.room = Some(Arc::new(AnswerRoom {
            kept,
            max_bytes,
            read: Mutex::new(HashMap::new()),
        }));
        self
    }

    /// What `key` found for this request of `organization` (`fingerprint`: SHA-256 of
    /// method, path and body). A fresh key is taken as `taking` says: up front, with
    /// a lease, before this returns, or with the request's change. Either way a
    /// request whose key cannot be recorded changes nothing.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails or a kept answer does not open: the
    /// request must not run.
    pub async fn begin(
        &self,
        organization: &OrganizationId,
        key: IdempotencyKey,
        fingerprint: Vec<u8>,
        taking: Taking,
    ) -> Result<Begun, InfraError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.ttl).map_err(InfraError::unexpected)?;
        let lease = chrono::Duration::from_std(self.lease).map_err(InfraError::unexpected)?;
        let guarded = Guarded {
            organization: organization.clone(),
            key,
            fingerprint,
            now,
            lease_until: now + lease,
            expires_at: now + ttl,
            taking,
        };
        let full_until = match &self.room {
            Some(room) => match room.at(organization, now).await? {
                Room::Free => None,
                Room::FullUntil(until) => Some(until),
            },
            None => None,
        };
        let mut answers = Answers {
            sealer: Arc::clone(&self.sealer),
            guarded,
        };
        if let Some(until) = full_until {
            // No room for a new answer: only a read, which takes nothing, to serve
            // what the key already holds.
            answers.guarded.taking = Taking::WithChange;
            return Ok(match self.store.begin(&answers.guarded).await? {
                Begun::Fresh(unit) => {
                    unit.rollback().await;
                    Begun::Full {
                        retry_after: (until - now).to_std().unwrap_or_default(),
                    }
                }
                Begun::Replay(kept) => answers.open(Held::Replay(kept))?.into(),
                other => other,
            });
        }
        Ok(match self.store.begin(&answers.guarded).await? {
            Begun::Fresh(unit) => Begun::Fresh(Box::new(SealingUnit { unit, answers })),
            Begun::Replay(kept) => answers.open(Held::Replay(kept))?.into(),
            other => other,
        })
    }
}

/// Removes expired answers, in batches: run in the background, so an answer (and any
/// secret in it) does not outlive its expiry by more than a round.
#[derive(Clone)]
pub struct PruneExpiredAnswers {
    store: Arc<dyn KeptAnswers>,
    clock: Arc<dyn Clock>,
}

impl PruneExpiredAnswers {
    /// The use case.
    #[must_use]
    pub fn new(store: Arc<dyn KeptAnswers>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Removes up to `batch` answers that have expired; how many it removed.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn execute(&self, batch: usize) -> Result<usize, InfraError> {
        self.store.prune_expired(self.clock.now(), batch).await
    }
}

impl std::fmt::Debug for PruneExpiredAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PruneExpiredAnswers")
            .finish_non_exhaustive()
    }
}

/// A body as kept: sealed, bound to the organization and the key.
///
/// # Errors
/// [`InfraError`] when the cipher fails.
pub fn seal(
    sealer: &dyn AnswerSealer,
    organization: &OrganizationId,
    key: &IdempotencyKey,
    body: &[u8],
) -> Result<Vec<u8>, InfraError> {
    let sealed = sealer
        .seal(organization, key, body)
        .map_err(InfraError::unexpected)?;
    Ok([SEALED_MAGIC, &sealed].concat())
}

/// A kept body, opened (one kept before sealing began, as it is).
///
/// # Errors
/// [`InfraError`] when it does not open (another master key, another key).
pub fn open_kept(
    sealer: &dyn AnswerSealer,
    organization: &OrganizationId,
    key: &IdempotencyKey,
    kept: &[u8],
) -> Result<Vec<u8>, InfraError> {
    match kept.strip_prefix(SEALED_MAGIC) {
        Some(sealed) => sealer
            .open(organization, key, sealed)
            .map_err(InfraError::unexpected),
        None => Ok(kept.to_vec()),
    }
}

/// The store's unit of work, with every answer sealed before the store sees it.
struct SealingUnit {
    unit: Box<dyn UnitOfWork>,
    answers: Answers,
}

/// Seals and opens the answers of one key.
#[derive(Clone)]
struct Answers {
    sealer: Arc<dyn AnswerSealer>,
    guarded: Guarded,
}

impl Answers {
    fn seal(&self, mut response: StoredResponse) -> Result<StoredResponse, InfraError> {
        let guarded = &self.guarded;
        response.body = seal(
            &*self.sealer,
            &guarded.organization,
            &guarded.key,
            &response.body,
        )?;
        Ok(response)
    }

    /// A held answer with its body opened (another request's answer, kept sealed).
    fn open(&self, held: Held) -> Result<Held, InfraError> {
        let guarded = &self.guarded;
        Ok(match held {
            Held::Replay(mut kept) => {
                kept.body = open_kept(
                    &*self.sealer,
                    &guarded.organization,
                    &guarded.key,
                    &kept.body,
                )?;
                Held::Replay(kept)
            }
            other => other,
        })
    }
}

#[async_trait(?Send)]
impl UnitOfWork for SealingUnit {
    async fn run<'a>(&'a mut self, answer: RegistrationAnswer, work: Work<'a>) {
        let answers = self.answers.clone();
        let sealed = answer.then(move |response| {
            // A body that cannot be sealed is not kept by the batch: the request
            // then keeps its answer itself, or fails with the store unavailable.
            answers
                .seal(response)
                .inspect_err(|error| tracing::error!(%error, "could not seal a kept answer"))
                .ok()
        });
        self.unit.run(sealed, work).await;
    }

    fn superseded(&self) -> Option<Held> {
        let held = self.unit.superseded()?;
        Some(self.answers.open(held).unwrap_or_else(|error| {
            // Not this request's answer either way; the client retries.
            tracing::error!(%error, "an answer kept by another request does not open");
            Held::InProgress
        }))
    }

    async fn commit(
        self: Box<Self>,
        response: &StoredResponse,
    ) -> Result<Option<Held>, InfraError> {
        let Self { unit, answers } = *self;
        let sealed = match answers.seal(response.clone()) {
            Ok(sealed) => sealed,
            Err(error) => {
                unit.rollback().await;
                return Err(error);
            }
        };
        unit.commit(&sealed)
            .await?
            .map(|held| answers.open(held))
            .transpose()
    }

    async fn rollback(self: Box<Self>) {
        self.unit.rollback().await;
    }
}

impl std::fmt::Debug for GuardRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardRetries")
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_1_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_some());
        assert!(IdempotencyKey::parse(b"order-42 retry #1 ~!").is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_none());
        assert!(IdempotencyKey::parse(b"").is_none());
        assert!(IdempotencyKey::parse(b"tab\\there").is_some());
        assert!(IdempotencyKey::parse(b"tab\there").is_none());
        assert!(IdempotencyKey::parse("café".as_bytes()).is_none());
        assert!(IdempotencyKey::parse(b"del\x7f").is_none());
    }
}
