//! Retention: events (and their webhook deliveries) are kept
//! `DOMAIN_API_EVENT_RETENTION`, then removed in batches by a background task, so
//! what one organization's activity stores is bounded in time.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::lifecycle::OldEvents;

/// The default retention of events (`DOMAIN_API_EVENT_RETENTION`): 90 days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Removes events older than the retention, a batch at a time.
#[derive(Clone)]
pub struct PruneOldEvents {
    store: Arc<dyn OldEvents>,
    clock: Arc<dyn Clock>,
    retention: chrono::TimeDelta,
}

impl PruneOldEvents {
    /// The use case: events are kept `retention`.
    ///
    /// # Errors
    /// [`InfraError`] when `retention` is too long to add to a time.
    pub fn new(
        store: Arc<dyn OldEvents>,
        clock: Arc<dyn Clock>,
        retention: Duration,
    ) -> Result<Self, InfraError> {
        let retention = chrono::TimeDelta::from_std(retention).map_err(InfraError::unexpected)?;
        Ok(Self {
            store,
            clock,
            retention,
        })
    }

    /// Removes up to `batch` events past the retention; how many it removed.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn execute(&self, batch: usize) -> Result<usize, InfraError> {
        self.store
            .prune_events(self.clock.now() - self.retention, batch)
            .await
    }
}

impl std::fmt::Debug for PruneOldEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PruneOldEvents")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::ports::clock::MockClock;
    use crate::ports::lifecycle::MockOldEvents;

    #[tokio::test]
    async fn events_older_than_the_retention_are_pruned() {
        let now = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut store = MockOldEvents::new();
        store
            .expect_prune_events()
            .with(eq(now - chrono::TimeDelta::days(90)), eq(500))
            .times(1)
            .returning(|_, _| Ok(7));
        let prune =
            PruneOldEvents::new(Arc::new(store), Arc::new(clock), DEFAULT_EVENT_RETENTION).unwrap();

        assert_eq!(prune.execute(500).await.unwrap(), 7);
    }
}
