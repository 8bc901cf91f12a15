//! The ambient unit of work (IdempotencyStore port), and Idempotency-Key in phases.
//!
//! An ambient unit of work is a transaction that the store calls of one task join
//! (`with_conn!`, `in_transaction!`; nested transactions become savepoints), set in a
//! task-local: a batch of registrations (`group_commit`), open from the start; or a
//! keyed request, opened by its **first write**, so that the reads and the network
//! work before it (DNS, a webhook's address) hold no transaction, no connection and
//! no SQLite write lock.
//!
//! A keyed request's life:
//! 1. **take** — one statement of its own (an upsert) records the key as running,
//!    with a lease and a random holder; or finds an answer to replay, another
//!    request's answer, or a holder still running. A key whose answer expired, or
//!    whose holder's lease ran out (it crashed), is taken afresh.
//! 2. **run** — with no transaction open until the request writes.
//! 3. **keep** — the answer is written over the running record, checked against the
//!    holder, in the transaction of the change, which then commits: a change that
//!    commits is always replayable, one that does not never is. A registration keeps
//!    it in its own savepoint of a group-commit batch instead (`domains`). A 5xx
//!    rolls the change back and frees the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use domain_core::ports::InfraError;
use domain_core::ports::idempotency::{
    Begun, Guarded, Held, IdempotencyStore, KeptAnswers, RegistrationAnswer, StoredResponse,
    Taking, UnitOfWork, Work,
};
use ring::rand::SecureRandom as _;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::backend::{
    Backend, DbError, Pools, SqliteConn, WriteTurn, Writer, begin_immediate, bounded, pool_error,
    with_conn,
};
use crate::shares::UnitShare;
use crate::{BackendKind, Store};

/// The connection of an ambient unit of work, held in place (boxing the larger one
/// buys nothing).
#[expect(
    clippy::large_enum_variant,
    reason = "one per unit of work, never moved around"
)]
pub(crate) enum AmbientConn {
    Postgres(Object<AsyncPgConnection>),
    /// With this process's turn at the write lock, held until the transaction ends.
    Sqlite(
        Object<SqliteConn>,
        #[expect(dead_code, reason = "held, never read: the turn ends with the value")] WriteTurn,
    ),
}

/// A unit of work that store calls join.
pub(crate) struct Ambient {
    conn: Arc<Mutex<Option<AmbientConn>>>,
    /// Opens the transaction at the first write (a keyed request); `None`: it was
    /// open from the start (a batch).
    opens: Option<Backend>,
    /// A call on the connection ran past its deadline: the connection is in an
    /// unknown state and is dropped, never committed or returned to the pool.
    poisoned: AtomicBool,
    /// The keyed request this unit of work belongs to.
    pub(crate) claim: Option<Arc<KeyClaim>>,
    /// The organization's place in the pool while the transaction is open
    /// (`crate::shares`), taken before its connection.
    share: std::sync::Mutex<Option<UnitShare>>,
}

tokio::task_local! {
    static AMBIENT: Arc<Ambient>;
}

/// The ambient unit of work of the running task, if any.
pub(crate) fn current() -> Option<Arc<Ambient>> {
    AMBIENT.try_with(Arc::clone).ok()
}

/// The ambient connection, locked for one store call.
pub(crate) type Joined = OwnedMappedMutexGuard<Option<AmbientConn>, AmbientConn>;

/// The ambient unit of work's connection, locked for one store call: `None` outside
/// one, and for a read (`write` false) of a keyed request that has not written yet,
/// which goes to the pool. A keyed request's first write opens its transaction.
///
/// # Errors
/// [`DbError`] when the transaction cannot be opened.
pub(crate) async fn joined(write: bool) -> Result<Option<Joined>, DbError> {
    let Some(ambient) = current() else {
        return Ok(None);
    };
    let mut conn = Arc::clone(&ambient.conn).lock_owned().await;
    if conn.is_none() {
        match (&ambient.opens, write) {
            (Some(backend), true) => {
                if let Some(claim) = ambient.claim.as_deref() {
                    let share = backend
                        .unit_shares
                        .enter(claim.guarded.organization.as_str(), backend.deadline())
                        .await?;
                    *ambient
                        .share
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(share);
                }
                let writer = ambient.claim.as_deref().map_or(Writer::Other, |claim| {
                    Writer::Organization(claim.guarded.organization.as_str().to_owned())
                });
                let opened = conn.insert(AmbientConn::open(backend, writer).await?);
                // A key taken with the change is taken first thing in its
                // transaction (the row is this request's until it commits).
                if let Some(claim) = ambient.claim.as_deref().filter(|c| !c.is_taken()) {
                    take_in(opened, claim).await?;
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(OwnedMutexGuard::try_map(conn, Option::as_mut).ok())
}

/// Takes `claim`'s key in the transaction open on `conn`, for its holder:
/// [`DbError::Superseded`] (and the claim says so) when another request kept it.
async fn take_in(conn: &mut AmbientConn, claim: &KeyClaim) -> Result<(), DbError> {
    let held = match conn {
        AmbientConn::Postgres(c) => {
            use crate::schema::pg::*;
            let c = &mut **c;
            take_key!(c, &claim.guarded, &claim.holder, None)?
        }
        AmbientConn::Sqlite(c, _) => {
            use crate::schema::sqlite::*;
            let c = &mut **c;
            take_key!(c, &claim.guarded, &claim.holder, None)?
        }
    };
    match held {
        None => {
            claim.mark_taken();
            Ok(())
        }
        Some(held) => {
            // Read from a committed row: the other request's answer stands.
            claim.supersede(held.clone());
            Err(DbError::Superseded(held))
        }
    }
}

/// Marks the running task's unit of work as poisoned (a call on it overran its
/// deadline).
pub(crate) fn poison_current() {
    if let Some(ambient) = current() {
        AtomicBool::store(&ambient.poisoned, true, Ordering::Relaxed);
    }
}

impl Ambient {
    /// A batch's unit of work, on a connection whose transaction is open.
    pub(crate) fn open_now(conn: AmbientConn) -> Arc<Self> {
        Arc::new(Self {
            conn: Arc::new(Mutex::new(Some(conn))),
            opens: None,
            poisoned: AtomicBool::new(false),
            claim: None,
            share: std::sync::Mutex::new(None),
        })
    }

    /// The connection back, once the unit's store calls have returned: `None` when
    /// none was opened, or when a call overran its deadline (the connection is then
    /// dropped here, not returned to the pool).
    pub(crate) async fn take(&self) -> Option<AmbientConn> {
        let conn = self.conn.lock().await.take()?;
        if AtomicBool::load(&self.poisoned, Ordering::Relaxed) {
            conn.discard();
            return None;
        }
        Some(conn)
    }
}

impl AmbientConn {
    /// A pooled connection with a transaction opened on it: PostgreSQL's `BEGIN`,
    /// SQLite's `BEGIN IMMEDIATE` (the write lock up front, as every SQLite unit of
    /// work takes it). Bounded by the store call that opens it.
    /// `writer`: whose write it is, for SQLite's write gate.
    pub(crate) async fn open(backend: &Backend, writer: Writer) -> Result<Self, DbError> {
        match &backend.pools {
            Pools::Postgres(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                <AsyncPgConnection as AsyncConnection>::TransactionManager::begin_transaction(
                    &mut *conn,
                )
                .await?;
                Ok(Self::Postgres(conn))
            }
            Pools::Sqlite(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                let turn = begin_immediate(backend, &mut conn, writer).await?;
                Ok(Self::Sqlite(conn, turn))
            }
        }
    }

    /// Commits the transaction within `backend`'s deadline. A connection whose
    /// commit failed is dropped (the server rolls back what it has not committed
    /// when the connection closes): no further wait on a database that just failed.
    pub(crate) async fn commit(mut self, backend: &Backend) -> Result<(), DbError> {
        let committed = self.end(backend, true).await;
        if committed.is_err() {
            self.discard();
        }
        committed
    }

    /// Rolls the transaction back within `backend`'s deadline; a connection that
    /// fails to (or does not answer) is dropped, not returned to the pool.
    pub(crate) async fn rollback(mut self, backend: &Backend) {
        if let Err(error) = self.end(backend, false).await {
            tracing::warn!(%error, "could not roll back a unit of work's transaction; its connection is dropped");
            self.discard();
        }
    }

    /// Commits (`commit`) or rolls back the transaction, within the deadline.
    async fn end(&mut self, backend: &Backend, commit: bool) -> Result<(), DbError> {
        type Pg = <AsyncPgConnection as AsyncConnection>::TransactionManager;
        type Lite = <SqliteConn as AsyncConnection>::TransactionManager;
        bounded(backend.deadline(), async {
            match (self, commit) {
                (Self::Postgres(c), true) => Pg::commit_transaction(&mut **c).await?,
                (Self::Postgres(c), false) => Pg::rollback_transaction(&mut **c).await?,
                (Self::Sqlite(c, _), true) => Lite::commit_transaction(&mut **c).await?,
                (Self::Sqlite(c, _), false) => Lite::rollback_transaction(&mut **c).await?,
            }
            Ok(())
        })
        .await
    }

    /// Drops the connection without a word to the server (its transaction ends
    /// with it), never returning it to the pool.
    pub(crate) fn discard(self) {
        match self {
            Self::Postgres(c) => drop(Object::take(c)),
            Self::Sqlite(c, _) => drop(Object::take(c)),
        }
    }
}

/// Runs `work` with `ambient` as the task's unit of work: every store call in it
/// joins that transaction.
pub(crate) async fn scope<F: Future>(ambient: Arc<Ambient>, work: F) -> F::Output {
    AMBIENT.scope(ambient, work).await
}

/// A keyed request's hold on its key.
pub(crate) struct KeyClaim {
    /// The request the key guards, and when it is taken.
    pub(crate) guarded: Guarded,
    /// Random, per take: only this holder can keep an answer or free the key.
    pub(crate) holder: Vec<u8>,
    /// How the request answers a registration, for a batch that keeps it.
    pub(crate) answer: RegistrationAnswer,
    /// The key is this holder's: taken up front, or taken with the change in the
    /// transaction now open.
    taken: AtomicBool,
    /// A registration of the request kept the answer already, and its batch
    /// committed.
    kept: AtomicBool,
    /// Another request with the key kept its answer first (a key taken with the
    /// change), and this is what it holds.
    superseded: std::sync::Mutex<Option<Held>>,
}

impl KeyClaim {
    fn new(guarded: &Guarded, holder: Vec<u8>, answer: RegistrationAnswer) -> Self {
        Self {
            guarded: guarded.clone(),
            holder,
            answer,
            taken: AtomicBool::new(guarded.taking == Taking::UpFront),
            kept: AtomicBool::new(false),
            superseded: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn is_taken(&self) -> bool {
        AtomicBool::load(&self.taken, Ordering::Relaxed)
    }

    fn mark_taken(&self) {
        AtomicBool::store(&self.taken, true, Ordering::Relaxed);
    }

    pub(crate) fn mark_kept(&self) {
        AtomicBool::store(&self.kept, true, Ordering::Relaxed);
    }

    fn is_kept(&self) -> bool {
        AtomicBool::load(&self.kept, Ordering::Relaxed)
    }

    /// Records what holds the key, once the write that found it is known to stand
    /// (its batch committed, or the row it read was committed).
    pub(crate) fn supersede(&self, held: Held) {
        *self
            .superseded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(held);
    }

    fn superseded(&self) -> Option<Held> {
        self.superseded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The keyed request running in this task, if any.
pub(crate) fn claim() -> Option<Arc<KeyClaim>> {
    current().and_then(|ambient| ambient.claim.clone())
}

/// Whether this task's keyed request has opened its transaction (written).
pub(crate) async fn has_written() -> bool {
    match current() {
        Some(ambient) => ambient.conn.lock().await.is_some(),
        None => false,
    }
}

/// Keeps `$response` as `$claim`'s answer on `$conn`: written over the running
/// record (checked against the holder) when the key is taken, or, for a key taken
/// with the change, written whole in one upsert that takes it. Evaluates to
/// `Result<(), DbError>`: [`DbError::LeaseLost`] when another request took the key
/// meanwhile (its lease ran out), [`DbError::Superseded`] when another request kept
/// it first. Expands inside a `with_conn!`/`in_transaction!` body.
macro_rules! keep_answer {
    ($conn:ident, $claim:expr, $response:expr) => {
        async {
            let claim: &$crate::ambient::KeyClaim = $claim;
            let response: &domain_core::ports::idempotency::StoredResponse = $response;
            if !claim.is_taken() {
                return match $crate::ambient::take_key!(
                    $conn,
                    &claim.guarded,
                    &claim.holder,
                    Some(response)
                )? {
                    None => Ok(()),
                    Some(held) => Err($crate::backend::DbError::Superseded(held)),
                };
            }
            let kept = diesel::update(
                idempotency_keys::table
                    .find((
                        claim.guarded.organization.as_str(),
                        claim.guarded.key.as_str(),
                    ))
                    .filter(idempotency_keys::holder.eq(&claim.holder))
                    .filter(idempotency_keys::status.is_null()),
            )
            .set((
                idempotency_keys::status.eq(Some(i32::from(response.status))),
                idempotency_keys::content_type.eq(Some(&response.content_type)),
                idempotency_keys::body.eq(Some(&response.body)),
                idempotency_keys::holder.eq(None::<Vec<u8>>),
                idempotency_keys::lease_until.eq(None::<chrono::DateTime<chrono::Utc>>),
            ))
            .execute(&mut *$conn)
            .await?;
            if kept == 1 {
                Ok::<(), $crate::backend::DbError>(())
            } else {
                Err($crate::backend::DbError::LeaseLost)
            }
        }
        .await
    };
}
pub(crate) use keep_answer;

/// A kept or running record: fingerprint, status (none while running), content
/// type, body, expiry, lease.
pub(crate) type Found = (
    Vec<u8>,
    Option<i32>,
    Option<String>,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// What holds the key in `row`, for `guarded`: `None` when nothing does (the answer
/// expired, or the holder's lease ran out).
pub(crate) fn held(guarded: &Guarded, row: Found) -> Option<Held> {
    let (fingerprint, status, content_type, body, expires_at, lease_until) = row;
    let now = guarded.now;
    let lapsed = status.is_none() && lease_until.is_none_or(|until| until <= now);
    if expires_at <= now || lapsed {
        return None;
    }
    if fingerprint != guarded.fingerprint {
        return Some(Held::Mismatch);
    }
    Some(match (status, content_type, body) {
        (Some(status), Some(content_type), Some(body)) => Held::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            content_type,
            body,
        }),
        _ => Held::InProgress,
    })
}

/// Reads `$guarded`'s key; evaluates to `Result<Option<Found>, DbError>`. Expands
/// inside a `with_conn!` body.
macro_rules! read_key {
    ($conn:ident, $guarded:expr) => {
        idempotency_keys::table
            .find(($guarded.organization.as_str(), $guarded.key.as_str()))
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::status,
                idempotency_keys::content_type,
                idempotency_keys::body,
                idempotency_keys::expires_at,
                idempotency_keys::lease_until,
            ))
            .first::<$crate::ambient::Found>(&mut *$conn)
            .await
            .optional()
            .map_err($crate::backend::DbError::from)
    };
}
pub(crate) use read_key;

/// Takes the key (an upsert that succeeds only on a new key, an expired answer or a
/// lapsed lease), else reads what holds it; evaluates to
/// `Result<Option<Held>, DbError>`, `None` when taken. Without `$answer` the key is
/// recorded as running, for `$holder`, with a lease; with it, the answer is written
/// whole (a key taken with the change, in the change's transaction). Expands inside
/// a `with_conn!` body.
macro_rules! take_key {
    ($conn:ident, $guarded:expr, $holder:expr, $answer:expr) => {
        async {
            let guarded: &domain_core::ports::idempotency::Guarded = $guarded;
            let answer: Option<&domain_core::ports::idempotency::StoredResponse> = $answer;
            let holder: Option<&[u8]> = answer.is_none().then_some($holder);
            let lease_until = answer.is_none().then_some(guarded.lease_until);
            let status = answer.map(|a| i32::from(a.status));
            let content_type = answer.map(|a| a.content_type.as_str());
            let body = answer.map(|a| a.body.as_slice());
            let org = guarded.organization.as_str();
            let key = guarded.key.as_str();
            let now = guarded.now;
            let upsert = diesel::insert_into(idempotency_keys::table)
                .values((
                    idempotency_keys::organization_id.eq(org),
                    idempotency_keys::key.eq(key),
                    idempotency_keys::fingerprint.eq(&guarded.fingerprint),
                    idempotency_keys::holder.eq(holder),
                    idempotency_keys::lease_until.eq(lease_until),
                    idempotency_keys::status.eq(status),
                    idempotency_keys::content_type.eq(content_type),
                    idempotency_keys::body.eq(body),
                    idempotency_keys::created_at.eq(now),
                    idempotency_keys::expires_at.eq(guarded.expires_at),
                ))
                .on_conflict((idempotency_keys::organization_id, idempotency_keys::key))
                .do_update()
                .set((
                    idempotency_keys::fingerprint.eq(&guarded.fingerprint),
                    idempotency_keys::holder.eq(holder),
                    idempotency_keys::lease_until.eq(lease_until),
                    idempotency_keys::status.eq(status),
                    idempotency_keys::content_type.eq(content_type),
                    idempotency_keys::body.eq(body),
                    idempotency_keys::created_at.eq(now),
                    idempotency_keys::expires_at.eq(guarded.expires_at),
                ));
            // `ON CONFLICT … DO UPDATE … WHERE`: only an expired answer or a lapsed
            // lease is taken over.
            let taken: Option<Vec<u8>> = diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                idempotency_keys::expires_at
                    .le(now)
                    .or(idempotency_keys::status
                        .is_null()
                        .and(idempotency_keys::lease_until.le(now))),
            )
            .returning(idempotency_keys::fingerprint)
            .get_result(&mut *$conn)
            .await
            .optional()?;
            if taken.is_some() {
                return Ok::<_, $crate::backend::DbError>(None);
            }
            let row = $crate::ambient::read_key!($conn, guarded)?;
            // Gone between the two statements (pruned): another take decides.
            Ok(Some(
                row.and_then(|row| $crate::ambient::held(guarded, row))
                    .unwrap_or(domain_core::ports::idempotency::Held::InProgress),
            ))
        }
        .await
    };
}
pub(crate) use take_key;

/// Takes `guarded`'s key for `holder` once (in the task's unit of work when one is
/// open: a batch's): `None` when taken, else what holds it.
pub(crate) async fn take_key_once(
    backend: &Backend,
    guarded: &Guarded,
    holder: &[u8],
) -> Result<Option<Held>, DbError> {
    with_conn!(backend, |c| { take_key!(c, guarded, holder, None) })
}

/// A random holder id for one take.
fn new_holder() -> Result<Vec<u8>, DbError> {
    let mut holder = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut holder)
        .map_err(|_| DbError::Aborted("the system random number generator failed".into()))?;
    Ok(holder)
}

#[async_trait(?Send)]
impl IdempotencyStore for Store {
    async fn begin(&self, guarded: &Guarded) -> Result<Begun, InfraError> {
        let holder = new_holder()?;
        let held = match guarded.taking {
            Taking::UpFront => {
                // In the next group-commit batch of takes: a shared commit, not one
                // of its own. PostgreSQL: the organization's takes have a queue of
                // their own, beside its registrations' (a take needs no organization
                // lock, and must not wait for a batch of registrations to finish);
                // SQLite: the one writer's queue.
                let turn = match self.kind() {
                    BackendKind::Postgres => format!("take:{}", guarded.organization.as_str()),
                    BackendKind::Sqlite => self.turn(&guarded.organization),
                };
                self.group_commit
                    .take(&self.backend, &turn, guarded.clone(), holder.clone())
                    .await?
            }
            // A read; the key is taken by the change's own write.
            Taking::WithChange => {
                let row = with_conn!(&self.backend, |c| { read_key!(c, guarded) })?;
                row.and_then(|row| held(guarded, row))
            }
        };
        if let Some(held) = held {
            return Ok(held.into());
        }
        Ok(Begun::Fresh(Box::new(Unit {
            backend: self.backend.clone(),
            claim: Arc::new(KeyClaim::new(
                guarded,
                holder,
                RegistrationAnswer::default(),
            )),
            ambient: None,
        })))
    }
}

#[async_trait]
impl KeptAnswers for Store {
    async fn prune_expired(&self, now: DateTime<Utc>, batch: usize) -> Result<usize, InfraError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let pruned = with_conn!(&self.backend, |c| {
            // One batch by primary key: neither backend deletes with LIMIT.
            let expired: Vec<(String, String)> = idempotency_keys::table
                .filter(idempotency_keys::expires_at.le(now))
                .select((idempotency_keys::organization_id, idempotency_keys::key))
                .limit(batch)
                .load(c)
                .await?;
            let mut pruned = 0;
            for (organization, key) in &expired {
                pruned += diesel::delete(
                    idempotency_keys::table
                        .find((organization, key))
                        .filter(idempotency_keys::expires_at.le(now)),
                )
                .execute(c)
                .await?;
            }
            Ok(pruned)
        })?;
        Ok(pruned)
    }

    async fn stored_bytes(
        &self,
        organization: &domain_core::OrganizationId,
    ) -> Result<u64, InfraError> {
        let bytes: Option<i64> = with_conn!(&self.backend, |c| {
            idempotency_usage::table
                .find(organization.as_str())
                .select(idempotency_usage::bytes)
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        Ok(bytes.map_or(0, |b| u64::try_from(b).unwrap_or(0)))
    }

    async fn first_expiry(
        &self,
        organization: &domain_core::OrganizationId,
    ) -> Result<Option<DateTime<Utc>>, InfraError> {
        let first: Option<DateTime<Utc>> = with_conn!(&self.backend, |c| {
            idempotency_keys::table
                // Running keys too: their expiry is no earlier than an answer's
                // would be, and leaving them in keeps the read to the index.
                .filter(idempotency_keys::organization_id.eq(organization.as_str()))
                .select(idempotency_keys::expires_at)
                .order(idempotency_keys::expires_at.asc())
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        Ok(first)
    }
}

/// A keyed request's unit of work.
struct Unit {
    backend: Backend,
    claim: Arc<KeyClaim>,
    /// Set by `run`.
    ambient: Option<Arc<Ambient>>,
}

impl Unit {
    /// The transaction the request's writes opened, if any (dropped if a call on it
    /// overran its deadline).
    async fn opened(&self) -> Option<AmbientConn> {
        match &self.ambient {
            Some(ambient) => ambient.take().await,
            None => None,
        }
    }

    fn poisoned(&self) -> bool {
        self.ambient
            .as_ref()
            .is_some_and(|a| AtomicBool::load(&a.poisoned, Ordering::Relaxed))
    }

    /// Undoes the request's change (`opened`) and frees the key for a retry. When a
    /// call of the request overran its deadline (the database is stalled or gone),
    /// that happens in the background: the request's 503 answers now, not after two
    /// more round trips to the database that is the reason for it.
    async fn abandon(&self, opened: Option<AmbientConn>) {
        let (backend, claim) = (self.backend.clone(), Arc::clone(&self.claim));
        let undo = async move {
            if let Some(conn) = opened {
                conn.rollback(&backend).await;
            }
            release(&backend, &claim).await;
        };
        if self.poisoned() {
            tokio::spawn(undo);
        } else {
            undo.await;
        }
    }
}

/// Frees `claim`'s key for a retry, unless an answer was kept meanwhile (a batch that
/// committed after the request gave up on it). A key taken with the change is freed
/// by the change's rollback.
async fn release(backend: &Backend, claim: &KeyClaim) {
    if claim.guarded.taking == Taking::WithChange {
        return;
    }
    let released: Result<usize, DbError> = with_conn!(backend, |c| {
        diesel::delete(
            idempotency_keys::table
                .find((
                    claim.guarded.organization.as_str(),
                    claim.guarded.key.as_str(),
                ))
                .filter(idempotency_keys::holder.eq(&claim.holder))
                .filter(idempotency_keys::status.is_null()),
        )
        .execute(c)
        .await
        .map_err(DbError::from)
    });
    if let Err(error) = released {
        tracing::warn!(%error, "could not free an Idempotency-Key; it frees when its lease runs out");
    }
}

#[async_trait(?Send)]
impl UnitOfWork for Unit {
    async fn run<'a>(&'a mut self, answer: RegistrationAnswer, work: Work<'a>) {
        let claim = Arc::new(KeyClaim::new(
            &self.claim.guarded,
            self.claim.holder.clone(),
            answer,
        ));
        self.claim = Arc::clone(&claim);
        let ambient = Arc::new(Ambient {
            conn: Arc::new(Mutex::new(None)),
            opens: Some(self.backend.clone()),
            poisoned: AtomicBool::new(false),
            claim: Some(claim),
            share: std::sync::Mutex::new(None),
        });
        self.ambient = Some(Arc::clone(&ambient));
        scope(ambient, work).await;
    }

    fn superseded(&self) -> Option<Held> {
        self.claim.superseded()
    }

    async fn commit(
        self: Box<Self>,
        response: &StoredResponse,
    ) -> Result<Option<Held>, InfraError> {
        let poisoned = self.poisoned();
        let opened = self.opened().await;
        if poisoned {
            // A call of the request overran its deadline: whatever it wrote is
            // unknown, so nothing of it is kept.
            self.abandon(None).await;
            return Err(
                DbError::Unavailable("a call of the request overran its deadline".into()).into(),
            );
        }
        let claim = &self.claim;
        if claim.is_kept() {
            // A registration's batch kept the answer with the change.
            if let Some(conn) = opened {
                tracing::error!(
                    "a keyed request wrote besides its kept registration; its other writes are rolled back"
                );
                conn.rollback(&self.backend).await;
            }
            return Ok(None);
        }
        let Some(mut conn) = opened else {
            // The request changed nothing: its answer alone.
            let kept: Result<(), DbError> =
                with_conn!(&self.backend, |c| { keep_answer!(c, claim, response) });
            return match kept {
                Ok(()) => Ok(None),
                Err(DbError::Superseded(held)) => Ok(Some(held)),
                Err(error) => Err(error.into()),
            };
        };
        let backend = &self.backend;
        let kept = bounded(backend.deadline(), async {
            match &mut conn {
                AmbientConn::Postgres(c) => {
                    use crate::schema::pg::*;
                    let c = &mut **c;
                    keep_answer!(c, claim, response)
                }
                AmbientConn::Sqlite(c, _) => {
                    use crate::schema::sqlite::*;
                    let c = &mut **c;
                    keep_answer!(c, claim, response)
                }
            }
        })
        .await;
        match kept {
            Ok(()) => Ok(conn.commit(backend).await.map(|()| None)?),
            Err(DbError::Superseded(held)) => {
                self.abandon(Some(conn)).await;
                Ok(Some(held))
            }
            Err(error) => {
                self.abandon(Some(conn)).await;
                Err(error.into())
            }
        }
    }

    async fn rollback(self: Box<Self>) {
        let opened = self.opened().await;
        self.abandon(opened).await;
    }
}
