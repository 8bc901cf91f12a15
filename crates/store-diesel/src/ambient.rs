//! The ambient unit of work of an idempotent request (IdempotencyStore port): one
//! pooled connection holding an open transaction, set in a task-local while the
//! request runs. Every `with_conn!`/`in_transaction!` made by the request joins it
//! (nested transactions become savepoints), and the key's answer is written in the
//! same transaction before it commits: a change and the record that replays it
//! commit together or not at all.

use std::sync::Arc;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use domain_core::ports::InfraError;
use domain_core::ports::idempotency::{
    Begun, Guarded, IdempotencyStore, StoredResponse, UnitOfWork, Work,
};

use crate::Store;
use crate::backend::{Backend, DbError, Pools, SqliteConn, begin_immediate, pool_error};

/// The connection of an ambient unit of work: one per idempotent request in flight,
/// held in place (boxing the larger one buys nothing).
#[expect(
    clippy::large_enum_variant,
    reason = "one per request, never moved around"
)]
pub(crate) enum AmbientConn {
    Postgres(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

/// Shared by the request's store calls, one at a time.
pub(crate) type Ambient = Arc<tokio::sync::Mutex<AmbientConn>>;

tokio::task_local! {
    static AMBIENT: Ambient;
}

/// The ambient unit of work of the running request, if any.
pub(crate) fn current() -> Option<Ambient> {
    AMBIENT.try_with(Arc::clone).ok()
}

/// The ambient unit of work's connection, locked for one store call (`with_conn!`,
/// `in_transaction!`); `None` outside one.
pub(crate) async fn joined() -> Option<tokio::sync::OwnedMutexGuard<AmbientConn>> {
    match current() {
        Some(ambient) => Some(ambient.lock_owned().await),
        None => None,
    }
}

/// How many expired records one `begin` removes at most.
const PRUNE_BATCH: i64 = 16;

/// A kept answer: fingerprint, status, content type, body.
type KeptRow = (Vec<u8>, i32, String, Vec<u8>);

/// Looks the key up on `$conn` (inside the opened transaction) and removes a few
/// expired records; evaluates to `Result<Option<KeptRow>, DbError>`.
macro_rules! look_up {
    ($conn:ident, $guarded:expr) => {
        async {
            let guarded: &Guarded = $guarded;
            let org = guarded.organization.as_str();
            let expired: Vec<(String, String)> = idempotency_keys::table
                .filter(idempotency_keys::expires_at.le(guarded.now))
                .select((idempotency_keys::organization_id, idempotency_keys::key))
                .limit(PRUNE_BATCH)
                .load(&mut *$conn)
                .await?;
            for (organization, key) in &expired {
                diesel::delete(idempotency_keys::table.find((organization, key)))
                    .execute(&mut *$conn)
                    .await?;
            }
            Ok::<_, DbError>(
                idempotency_keys::table
                    .find((org, guarded.key.as_str()))
                    .filter(idempotency_keys::expires_at.gt(guarded.now))
                    .select((
                        idempotency_keys::fingerprint,
                        idempotency_keys::status,
                        idempotency_keys::content_type,
                        idempotency_keys::body,
                    ))
                    .first::<KeptRow>(&mut *$conn)
                    .await
                    .optional()?,
            )
        }
        .await
    };
}

fn found(guarded: &Guarded, kept: Option<KeptRow>) -> Option<Begun> {
    let (fingerprint, status, content_type, body) = kept?;
    Some(if fingerprint == guarded.fingerprint {
        Begun::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            content_type,
            body,
        })
    } else {
        Begun::Mismatch
    })
}

impl AmbientConn {
    /// A pooled connection with a transaction opened on it: PostgreSQL's `BEGIN`,
    /// SQLite's `BEGIN IMMEDIATE` (the write lock up front, as every SQLite unit of
    /// work takes it).
    pub(crate) async fn open(backend: &Backend) -> Result<Self, DbError> {
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
                begin_immediate(&mut conn).await?;
                Ok(Self::Sqlite(conn))
            }
        }
    }

    /// Commits the transaction.
    pub(crate) async fn commit(&mut self) -> Result<(), DbError> {
        match self {
            Self::Postgres(c) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::commit_transaction(
                    &mut **c,
                )
                .await?;
            }
            Self::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::commit_transaction(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    /// Rolls the transaction back; a failure is logged (the pool then discards a
    /// connection whose transaction manager is broken).
    pub(crate) async fn rollback(&mut self) {
        let rolled_back = match self {
            Self::Postgres(c) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::rollback_transaction(
                    &mut **c,
                )
                .await
            }
            Self::Sqlite(c) => {
                <SqliteConn as AsyncConnection>::TransactionManager::rollback_transaction(&mut **c)
                    .await
            }
        };
        if let Err(error) = rolled_back {
            tracing::warn!(%error, "could not roll back a unit of work's transaction");
        }
    }
}

/// Runs `work` with `conn` as the ambient unit of work: every store call in it joins
/// that transaction.
pub(crate) async fn scope<F: Future>(conn: Ambient, work: F) -> F::Output {
    AMBIENT.scope(conn, work).await
}

#[async_trait(?Send)]
impl IdempotencyStore for Store {
    async fn begin(&self, guarded: &Guarded) -> Result<Begun, InfraError> {
        let mut conn = AmbientConn::open(&self.backend).await?;
        let opened: Result<Option<Begun>, DbError> = match &mut conn {
            AmbientConn::Postgres(c) => {
                use crate::schema::pg::*;
                async {
                    // A concurrent request with the same key holds this lock until it
                    // commits: answer "in progress" rather than wait for it.
                    let free: bool = diesel::select(
                        diesel::dsl::sql::<diesel::sql_types::Bool>(
                            "pg_try_advisory_xact_lock(hashtextextended(",
                        )
                        .bind::<diesel::sql_types::Text, _>(format!(
                            "idempotency:{}:{}",
                            guarded.organization.as_str(),
                            guarded.key.as_str()
                        ))
                        .sql(", 7))"),
                    )
                    .get_result(&mut **c)
                    .await?;
                    if !free {
                        return Ok(Some(Begun::InProgress));
                    }
                    let c = &mut **c;
                    let kept = look_up!(c, guarded)?;
                    Ok(found(guarded, kept))
                }
                .await
            }
            AmbientConn::Sqlite(c) => {
                use crate::schema::sqlite::*;
                // The write lock was taken at BEGIN IMMEDIATE: two requests with one
                // key take turns, and the second finds the answer.
                let c = &mut **c;
                look_up!(c, guarded).map(|kept| found(guarded, kept))
            }
        };
        match opened {
            Ok(None) => Ok(Begun::Fresh(Box::new(Unit {
                conn: Arc::new(tokio::sync::Mutex::new(conn)),
                guarded: guarded.clone(),
            }))),
            Ok(Some(answer)) => {
                conn.rollback().await;
                Ok(answer)
            }
            Err(error) => {
                conn.rollback().await;
                Err(error.into())
            }
        }
    }
}

/// An open ambient unit of work.
struct Unit {
    conn: Ambient,
    guarded: Guarded,
}

#[async_trait(?Send)]
impl UnitOfWork for Unit {
    async fn run<'a>(&'a mut self, work: Work<'a>) {
        scope(Arc::clone(&self.conn), work).await;
    }

    async fn commit(self: Box<Self>, response: &StoredResponse) -> Result<(), InfraError> {
        let guarded = &self.guarded;
        let status = i32::from(response.status);
        let mut conn = self.conn.lock().await;
        let inserted = match &mut *conn {
            AmbientConn::Postgres(c) => insert_kept(c, guarded, status, response).await,
            AmbientConn::Sqlite(c) => insert_kept_sqlite(c, guarded, status, response).await,
        };
        let kept = match inserted {
            Ok(()) => conn.commit().await,
            Err(error) => Err(error),
        };
        if kept.is_err() {
            conn.rollback().await;
        }
        Ok(kept?)
    }

    async fn rollback(self: Box<Self>) {
        self.conn.lock().await.rollback().await;
    }
}

/// Inserts the kept answer; expands per backend.
macro_rules! insert_kept_fn {
    ($name:ident, $conn:ty, $schema:ident) => {
        async fn $name(
            conn: &mut $conn,
            guarded: &Guarded,
            status: i32,
            response: &StoredResponse,
        ) -> Result<(), DbError> {
            use crate::schema::$schema::idempotency_keys;
            let at = guarded.now;
            diesel::insert_into(idempotency_keys::table)
                .values((
                    idempotency_keys::organization_id.eq(guarded.organization.as_str()),
                    idempotency_keys::key.eq(guarded.key.as_str()),
                    idempotency_keys::fingerprint.eq(&guarded.fingerprint),
                    idempotency_keys::status.eq(status),
                    idempotency_keys::content_type.eq(&response.content_type),
                    idempotency_keys::body.eq(&response.body),
                    idempotency_keys::created_at.eq(at),
                    idempotency_keys::expires_at.eq(guarded.expires_at),
                ))
                .execute(conn)
                .await?;
            Ok(())
        }
    };
}

insert_kept_fn!(insert_kept, AsyncPgConnection, pg);
insert_kept_fn!(insert_kept_sqlite, SqliteConn, sqlite);
