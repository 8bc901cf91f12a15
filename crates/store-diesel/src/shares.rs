//! One organization's share of the connection pool for the units of work that hold
//! a connection for a whole request: a keyed request's transaction is open from its
//! first write to its answer's commit, with the request's reads, its answer's JSON
//! and its sealing in between. Sixteen such requests of one organization would hold
//! every pooled PostgreSQL connection, or every SQLite connection four times over
//! while they wait in turn for the one write lock, and every other organization's
//! reads and writes would wait behind them. An organization may hold at most a
//! quarter of the pool this way (at least one connection); its further keyed
//! requests wait for one of its own to finish, in order, within the store's
//! deadline, and other organizations' never wait for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::DbError;

/// The open units of work of each organization, up to its share.
pub(crate) struct UnitShares {
    per_organization: usize,
    held: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One of an organization's places; freed when dropped.
pub(crate) struct UnitShare {
    permit: Option<OwnedSemaphorePermit>,
    organization: String,
    shares: Arc<UnitShares>,
}

impl UnitShares {
    /// Shares of a pool of `pool_size` connections: a quarter each, at least one.
    pub(crate) fn new(pool_size: usize) -> Self {
        Self {
            per_organization: (pool_size / 4).max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// How many units of work one organization may hold open at once.
    #[cfg(test)]
    pub(crate) fn per_organization(&self) -> usize {
        self.per_organization
    }

    fn semaphores(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one of `organization`'s units of work, waiting (in order) at most
    /// `within` for one of its own to finish.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] when none is free in time.
    pub(crate) async fn enter(
        self: &Arc<Self>,
        organization: &str,
        within: Duration,
    ) -> Result<UnitShare, DbError> {
        let semaphore = Arc::clone(
            self.semaphores()
                .entry(organization.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_organization))),
        );
        let permit = tokio::time::timeout(within, semaphore.acquire_owned())
            .await
            .map_err(|_| {
                DbError::Unavailable(
                    "the organization's units of work held their share of the pool past the deadline"
                        .into(),
                )
            })?
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        Ok(UnitShare {
            permit: Some(permit),
            organization: organization.to_owned(),
            shares: Arc::clone(self),
        })
    }
}

impl Drop for UnitShare {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut held = self.shares.semaphores();
        // Nobody holds or waits for a place of this organization any more (the map's
        // is the only reference left): forget it.
        if held
            .get(&self.organization)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            held.remove(&self.organization);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organization_holds_its_share_and_others_never_wait_for_it() {
        let shares = Arc::new(UnitShares::new(8));
        assert_eq!(shares.per_organization(), 2);
        let within = Duration::from_millis(50);
        let first = shares.enter("a", within).await.unwrap();
        let _second = shares.enter("a", within).await.unwrap();
        // A third of `a` waits, and gives up at the deadline.
        assert!(matches!(
            shares.enter("a", within).await,
            Err(DbError::Unavailable(_))
        ));
        // `b` has its own share.
        let b = shares.enter("b", within).await.unwrap();
        // A place freed goes to the next of `a`.
        drop(first);
        let _third = shares.enter("a", within).await.unwrap();
        drop(b);
        assert!(
            !shares.semaphores().contains_key("b"),
            "an idle organization is forgotten"
        );
        assert!(shares.semaphores().contains_key("a"));
    }

    #[test]
    fn a_small_pool_still_gives_each_organization_one_place() {
        assert_eq!(UnitShares::new(4).per_organization(), 1);
        assert_eq!(UnitShares::new(1).per_organization(), 1);
        assert_eq!(UnitShares::new(16).per_organization(), 4);
    }
}
