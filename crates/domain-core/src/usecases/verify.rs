//! Verify: the live check of a domain's records that also moves its lifecycle on —
//! status (`pending → verified → failing`, debounced), promotion of a published
//! pending key, and retiring → revoked → removed on time. The HTTP `verify` route
//! and the background verifier both run it.
//!
//! [`plan_check`] decides, purely, what one check changes; the store applies the plan
//! atomically, so a concurrent change makes it a no-op rather than half of one.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::last_check::LastCheck;
use crate::lifecycle::{DomainStatus, EventType, KeyState, NewEvent};
use crate::ports::clock::Clock;
use crate::ports::lifecycle::{CheckPlan, KeyLifecycleStore, KeyMove, KeyTarget};
use crate::ports::store::DomainDetail;
use crate::usecases::validate::{
    CheckStatus, RecordKind, ValidateDomain, ValidateError, ValidationReport,
};
use crate::{DomainName, OrganizationId, ZoneSource};

/// How long keys stay in each late state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// `retiring` → `revoked` this long after the key stopped being active.
    pub retire_after: TimeDelta,
    /// A revoked key is safe to remove from DNS this long after its revocation, and
    /// leaves the list at the next check after that.
    pub revoked_keep: TimeDelta,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            retire_after: TimeDelta::days(7),
            revoked_keep: TimeDelta::days(30),
        }
    }
}

impl KeyPolicy {
    /// Whether a revoked key's record may be deleted from DNS by now.
    #[must_use]
    pub fn safe_to_remove(&self, revoked_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        revoked_at.is_some_and(|at| at + self.revoked_keep <= now)
    }
}

/// When checks happen (`DOMAIN_API_VERIFY_SCHEDULE`, `DOMAIN_API_VERIFY_INTERVAL`): a
/// pending domain after each delay of `pending` in turn, counted from the previous
/// check (the last delay then repeats); a verified or failing one every `interval`.
/// Every delay is stretched by up to a tenth, drawn from the domain's name and the
/// time, so domains created together do not check together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySchedule {
    /// Delays between checks of a pending domain; never empty.
    pending: Vec<TimeDelta>,
    /// Delay between checks of a verified or failing domain.
    interval: TimeDelta,
}

impl Default for VerifySchedule {
    fn default() -> Self {
        Self {
            pending: [1, 5, 15, 60, 360, 720, 1440]
                .into_iter()
                .map(TimeDelta::minutes)
                .collect(),
            interval: TimeDelta::hours(24),
        }
    }
}

impl VerifySchedule {
    /// A schedule; `None` when `pending` is empty or a delay is not positive.
    #[must_use]
    pub fn new(pending: Vec<TimeDelta>, interval: TimeDelta) -> Option<Self> {
        let positive = |d: &TimeDelta| *d > TimeDelta::zero();
        (!pending.is_empty() && pending.iter().all(positive) && positive(&interval))
            .then_some(Self { pending, interval })
    }

    /// The delays between checks of a pending domain.
    #[must_use]
    pub fn pending(&self) -> &[TimeDelta] {
        &self.pending
    }

    /// The delay between checks of a verified or failing domain.
    #[must_use]
    pub fn interval(&self) -> TimeDelta {
        self.interval
    }

    /// The first check of a domain created (or claimed) at `now`.
    #[must_use]
    pub fn first_check(&self, domain: &DomainName, now: DateTime<Utc>) -> DateTime<Utc> {
        now + jittered(self.pending[0], domain, now)
    }

    /// The next check after `plan` is applied.
    #[must_use]
    pub fn next_check(&self, plan: &CheckPlan) -> DateTime<Utc> {
        let delay = match plan.status {
            DomainStatus::Pending => {
                // Failed checks in a row while pending = the checks that saw the
                // records missing; a check that learnt nothing repeats its delay.
                let step = usize::try_from(plan.failed_checks).unwrap_or(usize::MAX);
                self.pending[step.min(self.pending.len() - 1)]
            }
            DomainStatus::Verified | DomainStatus::Failing => self.interval,
        };
        plan.checked_at + jittered(delay, &plan.domain, plan.checked_at)
    }
}

/// `delay` stretched by a fraction in [0, 0.1) drawn from `domain` and `at` (FNV-1a):
/// deterministic, so tests can rely on the bounds, and spread across names.
fn jittered(delay: TimeDelta, domain: &DomainName, at: DateTime<Utc>) -> TimeDelta {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let nanos = at.timestamp_nanos_opt().unwrap_or_default().to_le_bytes();
    for byte in domain.as_ascii().bytes().chain(nanos) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let per_mille = i32::try_from(hash % 100).unwrap_or(0);
    delay + delay * per_mille / 1000
}

/// What a check found for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Published as it should be.
    Ok,
    /// Missing or wrong.
    Bad,
    /// The lookup failed: nothing is known.
    Unknown,
}

impl From<CheckStatus> for Finding {
    fn from(status: CheckStatus) -> Self {
        match status {
            CheckStatus::Ok => Self::Ok,
            CheckStatus::Missing | CheckStatus::Mismatch => Self::Bad,
            CheckStatus::Error => Self::Unknown,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Findings {
    /// The SPF record.
    pub spf: Finding,
    /// The active key's record.
    pub active_key: Finding,
    /// The DMARC record.
    pub dmarc: Finding,
    /// The pending key's record, when a key is pending.
    pub pending_key: Option<Finding>,
}

/// Everything one check changes, from the domain as it stood, what the check found,
/// and the time. Pure: no port is called.
#[must_use]
pub fn plan_check(
    detail: &DomainDetail,
    findings: &Findings,
    now: DateTime<Utc>,
    policy: &KeyPolicy,
) -> CheckPlan {
    let domain = &detail.domain;
    let org = &domain.organization;
    let mut key_moves = Vec::new();
    let mut events = Vec::new();

    // Promotion: a pending key seen published becomes active; the active one retires
    // first (one active key at a time, enforced by the store too).
    let pending = detail.keys.iter().find(|k| k.state == KeyState::Pending);
    let promoted = pending.filter(|_| findings.pending_key == Some(Finding::Ok));
    if let Some(new_key) = promoted {
        for active in detail.keys.iter().filter(|k| k.state == KeyState::Active) {
            key_moves.push(KeyMove {
                selector: active.selector.clone(),
                from: KeyState::Active,
                to: KeyTarget::Retiring,
            });
        }
        key_moves.push(KeyMove {
            selector: new_key.selector.clone(),
            from: KeyState::Pending,
            to: KeyTarget::Active,
        });
        events.push(NewEvent::key(
            org,
            EventType::DkimKeyActivated,
            &domain.name,
            &new_key.selector,
        ));
    }

    // On time, whatever the status: retiring → revoked → removed.
    for key in &detail.keys {
        match key.state {
            KeyState::Retiring
                if key
                    .retired_at
                    .is_some_and(|at| at + policy.retire_after <= now) =>
            {
                key_moves.push(KeyMove {
                    selector: key.selector.clone(),
                    from: KeyState::Retiring,
                    to: KeyTarget::Revoked,
                });
                events.push(NewEvent::key(
                    org,
                    EventType::DkimKeyRevoked,
                    &domain.name,
                    &key.selector,
                ));
            }
            KeyState::Revoked if policy.safe_to_remove(key.revoked_at, now) => {
                key_moves.push(KeyMove {
                    selector: key.selector.clone(),
                    from: KeyState::Revoked,
                    to: KeyTarget::Removed,
                });
            }
            _ => {}
        }
    }

    // Status, judged on the key that is active after this check.
    let active_key = if promoted.is_some() {
        Finding::Ok
    } else {
        findings.active_key
    };
    let overall =
        [findings.spf, active_key, findings.dmarc]
            .into_iter()
            .fold(Finding::Ok, |acc, f| match (acc, f) {
                (Finding::Bad, _) | (_, Finding::Bad) => Finding::Bad,
                (Finding::Unknown, _) | (_, Finding::Unknown) => Finding::Unknown,
                _ => Finding::Ok,
            });
    let (status, verified_at, failed_checks) = match overall {
        Finding::Ok => (DomainStatus::Verified, domain.verified_at.or(Some(now)), 0),
        Finding::Bad => {
            let failed = domain.failed_checks.saturating_add(1);
            let status = match domain.status {
                DomainStatus::Verified if failed >= 2 => DomainStatus::Failing,
                other => other,
            };
            (status, domain.verified_at, failed)
        }
        // A failed lookup says nothing about the records: nothing changes.
        Finding::Unknown => (domain.status, domain.verified_at, domain.failed_checks),
    };
    if status != domain.status {
        let kind = match status {
            DomainStatus::Verified => Some(EventType::DomainVerified),
            DomainStatus::Failing => Some(EventType::DomainFailing),
            DomainStatus::Pending => None,
        };
        if let Some(kind) = kind {
            events.push(NewEvent::domain(org, kind, &domain.name));
        }
    }

    CheckPlan {
        organization: org.clone(),
        domain: domain.name.clone(),
        checked_at: now,
        status,
        verified_at,
        failed_checks,
        next_check_at: domain.next_check_at,
        key_moves,
        events,
        last_check: None,
        zone: None,
    }
}

/// Checks a domain's published records and applies what the check changes.
#[derive(Clone)]
pub struct VerifyDomain {
    validate: ValidateDomain,
    lifecycle: Arc<dyn KeyLifecycleStore>,
    clock: Arc<dyn Clock>,
    policy: KeyPolicy,
    schedule: Arc<VerifySchedule>,
}

impl VerifyDomain {
    /// The use case over its ports.
    #[must_use]
    pub fn new(
        validate: ValidateDomain,
        lifecycle: Arc<dyn KeyLifecycleStore>,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
        schedule: Arc<VerifySchedule>,
    ) -> Self {
        Self {
            validate,
            lifecycle,
            clock,
            policy,
            schedule,
        }
    }

    /// Checks the organization's `domain` (raw input) and moves its lifecycle on.
    /// Returns the same report as validate, judged on the key active after the check.
    ///
    /// # Errors
    /// [`ValidateError::InvalidDomain`], [`ValidateError::NotFound`] (also for
    /// another organization's domain), or a store failure.
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<ValidationReport, ValidateError> {
        let detail = self.validate.load(organization, domain).await?;
        let report = self.check(&detail).await?;
        Ok(self.validate.with_change_sets(report).await)
    }

    /// Checks one stored domain and applies the plan; the report has no change-sets
    /// (`execute` adds them).
    ///
    /// # Errors
    /// A store failure.
    pub async fn check(&self, detail: &DomainDetail) -> Result<ValidationReport, ValidateError> {
        Ok(self.check_and_apply(detail).await?.0)
    }

    /// [`VerifyDomain::check`] for the background verifier: the status the domain
    /// has after the check, or `None` when the plan was stale (the domain changed
    /// hands, went, or a concurrent check moved its keys first) and nothing applied.
    ///
    /// # Errors
    /// A store failure.
    pub async fn check_status(
        &self,
        detail: &DomainDetail,
    ) -> Result<Option<DomainStatus>, ValidateError> {
        let (_, plan, applied) = self.check_and_apply(detail).await?;
        Ok(applied.then_some(plan.status))
    }

    async fn check_and_apply(
        &self,
        detail: &DomainDetail,
    ) -> Result<(ValidationReport, CheckPlan, bool), ValidateError> {
        let mut report = self.validate.report(&detail.domain).await;
        let pending = detail.keys.iter().find(|k| k.state == KeyState::Pending);
        let pending_check = match pending {
            Some(key) => Some(
                self.validate
                    .check_key(&detail.domain, key, &report.servers)
                    .await,
            ),
            None => None,
        };
        let finding = |kind: RecordKind| {
            report
                .records
                .iter()
                .find(|r| r.kind == kind)
                .map_or(Finding::Unknown, |r| r.status.into())
        };
        let findings = Findings {
            spf: finding(RecordKind::Spf),
            active_key: finding(RecordKind::Dkim),
            dmarc: finding(RecordKind::Dmarc),
            pending_key: pending_check.as_ref().map(|c| c.status.into()),
        };
        let mut plan = plan_check(detail, &findings, self.clock.now(), &self.policy);
        plan.next_check_at = Some(self.schedule.next_check(&plan));
        // A zone found that is not the one stored is kept for the records the detail
        // lists (nothing is written while it stays the same).
        plan.zone = (report.zone.source() == ZoneSource::Soa)
            .then(|| report.zone.name().clone())
            .filter(|found| detail.domain.zone.as_ref() != Some(found));
        let promoted = plan.key_moves.iter().any(|m| m.to == KeyTarget::Active);
        // The report speaks of the key that is active after the check.
        let promoted_report = match pending_check {
            Some(check) if promoted => {
                let mut after = report.clone();
                if let Some(slot) = after
                    .records
                    .iter_mut()
                    .find(|r| r.kind == RecordKind::Dkim)
                {
                    *slot = check;
                }
                Some(after.judged())
            }
            _ => None,
        };
        plan.last_check = Some(LastCheck::of(promoted_report.as_ref().unwrap_or(&report)));
        let applied = self.lifecycle.apply_check(&plan).await?;
        if applied && let Some(after) = promoted_report {
            report = after;
        }
        tracing::info!(
            domain = %detail.domain.name,
            status = plan.status.as_str(),
            applied,
            "checked domain"
        );
        Ok((report, plan, applied))
    }
}

impl std::fmt::Debug for VerifyDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyDomain")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
