//! One registration per organization reaches the database at a time, per process.
//!
//! Registrations of one organization take turns on its row lock anyway (see
//! `locks`); without this gate each would wait for that lock *holding a pooled
//! connection*, so one organization's burst (a flood of new domains, a bulk import)
//! could hold every connection of the pool while the others queue behind it. Waiting
//! here holds no connection, and costs the organization nothing: its registrations
//! were serialized already. Across instances the row lock still decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Per-organization turns.
#[derive(Debug, Default)]
pub(crate) struct OrgGate {
    turns: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

/// Waiting for a turn took longer than the bound.
#[derive(Debug, thiserror::Error)]
#[error("waited longer than {0:?} for the organization's other registrations")]
pub(crate) struct GateTimeout(pub Duration);

impl OrgGate {
    /// Waits (at most `bound`) until no other registration of `organization` is in
    /// this process's database, and holds the turn until the guard drops.
    pub(crate) async fn enter(
        &self,
        organization: &str,
        bound: Duration,
    ) -> Result<OwnedMutexGuard<()>, GateTimeout> {
        let turn = {
            let mut turns = self
                .turns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget organizations nobody is waiting for: the map holds only those
            // with a registration in flight.
            turns.retain(|_, turn| turn.strong_count() > 0);
            match turns.get(organization).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(AsyncMutex::new(()));
                    turns.insert(organization.to_owned(), Arc::downgrade(&turn));
                    turn
                }
            }
        };
        tokio::time::timeout(bound, turn.lock_owned())
            .await
            .map_err(|_| GateTimeout(bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_per_organization_others_free() {
        let gate = OrgGate::default();
        let bound = Duration::from_millis(50);
        let held = gate.enter("a", bound).await.unwrap();
        // Another organization is not held up.
        let other = gate.enter("b", bound).await.unwrap();
        // The same organization waits, up to the bound.
        assert!(gate.enter("a", bound).await.is_err());
        drop(held);
        let next = gate.enter("a", bound).await.unwrap();
        drop((next, other));
        // Nothing is kept for organizations with nothing in flight.
        let _ = gate.enter("c", bound).await.unwrap();
        assert!(gate.turns.lock().unwrap().len() <= 1);
    }
}
