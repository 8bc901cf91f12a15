//! The background verifier's unit of work: lease the domains whose check is due, run
//! the same check as `verify` on each, and report what happened. The binary runs it
//! in a loop (timing, concurrency, shutdown); this holds no timer of its own.

use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::DomainStatus;
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::lifecycle::{CheckQueue, DueCheck};
use crate::ports::store::DomainStore;
use crate::usecases::verify::VerifyDomain;

/// What one check of a leased domain came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The domain's status after the check.
    Checked(DomainStatus),
    /// The domain went, changed hands, or was checked by someone else between the
    /// lease and the check; nothing was applied.
    Gone,
    /// The check failed (the store); the lease runs out and the domain is retried.
    Failed,
}

impl CheckOutcome {
    /// A closed label for metrics: `verified`, `pending`, `failing`, `gone`, `error`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Checked(status) => status.as_str(),
            Self::Gone => "gone",
            Self::Failed => "error",
        }
    }
}

/// Leases due domains and checks them.
#[derive(Clone)]
pub struct CheckDueDomains {
    queue: Arc<dyn CheckQueue>,
    store: Arc<dyn DomainStore>,
    verify: VerifyDomain,
    clock: Arc<dyn Clock>,
    lease: Duration,
}

impl CheckDueDomains {
    /// The use case; a leased domain is held for `lease` at most (longer than a
    /// check can take: DNS lookups are bounded).
    #[must_use]
    pub fn new(
        queue: Arc<dyn CheckQueue>,
        store: Arc<dyn DomainStore>,
        verify: VerifyDomain,
        clock: Arc<dyn Clock>,
        lease: Duration,
    ) -> Self {
        Self {
            queue,
            store,
            verify,
            clock,
            lease,
        }
    }

    /// Leases up to `limit` due domains; an empty list when none is due.
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn lease(&self, limit: usize) -> Result<Vec<DueCheck>, InfraError> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.lease).map_err(InfraError::unexpected)?;
        self.queue.lease_due(now, now + lease, limit).await
    }

    /// Checks one leased domain, as `verify` does, and applies what the check
    /// changes (which also schedules the next check and clears the lease).
    pub async fn check(&self, due: &DueCheck) -> CheckOutcome {
        let detail = match self
            .store
            .domain_detail(&due.organization, &due.domain)
            .await
        {
            Ok(Some(detail)) => detail,
            Ok(None) => {
                // Deleted, or claimed by another organization since the lease:
                // give the lease back so the new owner's schedule holds.
                if let Err(error) = self.queue.release(due).await {
                    tracing::warn!(domain = %due.domain, %error, "could not release a lease");
                }
                return CheckOutcome::Gone;
            }
            Err(error) => {
                tracing::warn!(domain = %due.domain, %error, "background check could not read the domain");
                return CheckOutcome::Failed;
            }
        };
        match self.verify.check_status(&detail).await {
            Ok(Some(status)) => CheckOutcome::Checked(status),
            Ok(None) => {
                if let Err(error) = self.queue.release(due).await {
                    tracing::warn!(domain = %due.domain, %error, "could not release a lease");
                }
                CheckOutcome::Gone
            }
            Err(error) => {
                tracing::warn!(domain = %due.domain, %error, "background check failed");
                CheckOutcome::Failed
            }
        }
    }
}

impl std::fmt::Debug for CheckDueDomains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDueDomains")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}
