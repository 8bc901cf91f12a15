//! The live-check budget (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`): how many requests
//! that query DNS on the caller's behalf — validate, verify, claim verify, turning
//! inbound on, webhook creation — one organization may make in any 60 seconds, per
//! instance. One validate can send dozens of queries to names the caller chose; a
//! budget keeps one tenant from turning the service into its DNS amplifier or
//! spending the resolver every tenant shares. The background verifier does not draw
//! on it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use domain_core::OrganizationId;
use domain_core::ownership::retry_after;

/// The window the budget counts over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The default budget per organization and minute.
pub const DEFAULT_PER_MINUTE: u32 = 120;

/// Sweep organizations with no check in the window once the map holds this many.
const SWEEP_AT: usize = 4096;

/// Live checks per organization in a sliding 60-second window.
#[derive(Debug)]
pub struct LiveChecks {
    per_minute: u32,
    recent: Mutex<HashMap<OrganizationId, VecDeque<Instant>>>,
}

impl LiveChecks {
    /// A budget of `per_minute` live checks per organization.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one check of `organization`'s budget at `now`, or says how long until
    /// one is free (whole seconds, at least one, as `Retry-After` carries it).
    ///
    /// # Errors
    /// The wait, when the budget is spent; nothing is spent then.
    pub fn admit_at(&self, organization: &OrganizationId, now: Instant) -> Result<(), Duration> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= SWEEP_AT {
            recent.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        let times = recent.entry(organization.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        let quota = usize::try_from(self.per_minute).unwrap_or(usize::MAX);
        if times.len() >= quota {
            let oldest = times.front().copied().unwrap_or(now);
            let frees_in = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(retry_after(frees_in));
        }
        times.push_back(now);
        Ok(())
    }

    /// [`LiveChecks::admit_at`] now.
    ///
    /// # Errors
    /// As [`LiveChecks::admit_at`].
    pub fn admit(&self, organization: &OrganizationId) -> Result<(), crate::error::ApiError> {
        self.admit_at(organization, Instant::now())
            .map_err(crate::error::ApiError::TooManyLiveChecks)
    }
}

impl Default for LiveChecks {
    fn default() -> Self {
        Self::new(DEFAULT_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_gets_its_budget_per_minute_and_no_more() {
        let checks = LiveChecks::new(3);
        let (acme, other) = (OrganizationId::new("acme"), OrganizationId::new("other"));
        let start = Instant::now();
        for second in 0..3 {
            assert!(
                checks
                    .admit_at(&acme, start + Duration::from_secs(second))
                    .is_ok()
            );
        }
        // Spent: the first check frees a slot 60 s after it was made.
        assert_eq!(
            checks.admit_at(&acme, start + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        // Another organization's budget is its own.
        assert!(
            checks
                .admit_at(&other, start + Duration::from_secs(10))
                .is_ok()
        );
        // A refusal spends nothing; the window slides.
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(60))
                .is_ok()
        );
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(60))
                .is_err()
        );
        assert!(
            checks
                .admit_at(&acme, start + Duration::from_secs(62))
                .is_ok()
        );
    }

    #[test]
    fn idle_organizations_are_swept() {
        let checks = LiveChecks::new(1);
        let start = Instant::now();
        for i in 0..SWEEP_AT {
            let org = OrganizationId::new(format!("org-{i}"));
            assert!(checks.admit_at(&org, start).is_ok());
        }
        let later = start + WINDOW + Duration::from_secs(1);
        assert!(checks.admit_at(&OrganizationId::new("late"), later).is_ok());
        assert_eq!(checks.recent.lock().unwrap().len(), 1);
    }
}
