use chrono::{TimeZone as _, Utc};

use super::*;
use crate::lifecycle::KeyRecord;
use crate::ports::store::StoredDomain;
use crate::usecases::fixtures::org;
use crate::{DomainName, Selector};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn key(selector: &str, state: KeyState) -> KeyRecord {
    KeyRecord {
        selector: Selector::new(selector).unwrap(),
        state,
        public_key: format!("MIIB{selector}"),
        created_at: t0(),
        activated_at: (state != KeyState::Pending).then(t0),
        retired_at: matches!(state, KeyState::Retiring | KeyState::Revoked).then(t0),
        revoked_at: (state == KeyState::Revoked).then(t0),
    }
}

fn detail(status: DomainStatus, failed_checks: u32, keys: Vec<KeyRecord>) -> DomainDetail {
    let mut domain = StoredDomain::new(
        DomainName::parse("example.com").unwrap(),
        org(),
        Selector::new("old").unwrap(),
        "MIIBold".into(),
        false,
        t0(),
    );
    domain.status = status;
    domain.failed_checks = failed_checks;
    domain.verified_at = (status != DomainStatus::Pending).then(t0);
    DomainDetail {
        domain,
        senders: Vec::new(),
        keys,
    }
}

fn all_ok() -> Findings {
    Findings {
        spf: Finding::Ok,
        active_key: Finding::Ok,
        dmarc: Finding::Ok,
        pending_key: None,
    }
}

fn kinds(plan: &CheckPlan) -> Vec<EventType> {
    plan.events.iter().map(|e| e.kind).collect()
}

fn moves(plan: &CheckPlan) -> Vec<(&str, KeyState, KeyTarget)> {
    plan.key_moves
        .iter()
        .map(|m| (m.selector.as_str(), m.from, m.to))
        .collect()
}

#[test]
fn verifies_a_pending_domain_once_every_record_is_seen_and_says_so_once() {
    let pending = detail(DomainStatus::Pending, 0, vec![key("old", KeyState::Active)]);

    let plan = plan_check(&pending, &all_ok(), t0(), &KeyPolicy::default());

    assert_eq!(plan.status, DomainStatus::Verified);
    assert_eq!(plan.verified_at, Some(t0()));
    assert_eq!(kinds(&plan), [EventType::DomainVerified]);
    assert_eq!(
        plan.events[0].domain.as_ref().unwrap().as_ascii(),
        "example.com"
    );

    let verified = detail(
        DomainStatus::Verified,
        0,
        vec![key("old", KeyState::Active)],
    );
    let again = plan_check(&verified, &all_ok(), t0(), &KeyPolicy::default());
    assert!(again.events.is_empty(), "no second domain.verified");
}

#[test]
fn turns_failing_only_after_two_bad_checks_in_a_row() {
    let bad = Findings {
        dmarc: Finding::Bad,
        ..all_ok()
    };
    let verified = detail(
        DomainStatus::Verified,
        0,
        vec![key("old", KeyState::Active)],
    );

    let first = plan_check(&verified, &bad, t0(), &KeyPolicy::default());
    assert_eq!(
        (first.status, first.failed_checks),
        (DomainStatus::Verified, 1)
    );
    assert!(first.events.is_empty());

    let once_failed = detail(
        DomainStatus::Verified,
        1,
        vec![key("old", KeyState::Active)],
    );
    let second = plan_check(&once_failed, &bad, t0(), &KeyPolicy::default());
    assert_eq!(
        (second.status, second.failed_checks),
        (DomainStatus::Failing, 2)
    );
    assert_eq!(kinds(&second), [EventType::DomainFailing]);

    let failing = detail(DomainStatus::Failing, 2, vec![key("old", KeyState::Active)]);
    let recovered = plan_check(&failing, &all_ok(), t0(), &KeyPolicy::default());
    assert_eq!(
        (recovered.status, recovered.failed_checks),
        (DomainStatus::Verified, 0)
    );
    assert_eq!(kinds(&recovered), [EventType::DomainVerified]);
}

#[test]
fn a_pending_domain_with_a_missing_record_stays_pending_without_an_event() {
    let pending = detail(DomainStatus::Pending, 0, vec![key("old", KeyState::Active)]);
    let missing = Findings {
        spf: Finding::Bad,
        ..all_ok()
    };

    let plan = plan_check(&pending, &missing, t0(), &KeyPolicy::default());

    assert_eq!(plan.status, DomainStatus::Pending);
    assert!(plan.events.is_empty());
}

#[test]
fn a_failed_lookup_changes_no_status() {
    let once_failed = detail(
        DomainStatus::Verified,
        1,
        vec![key("old", KeyState::Active)],
    );
    let unknown = Findings {
        spf: Finding::Unknown,
        ..all_ok()
    };

    let plan = plan_check(&once_failed, &unknown, t0(), &KeyPolicy::default());

    assert_eq!(
        (plan.status, plan.failed_checks),
        (DomainStatus::Verified, 1)
    );
    assert!(plan.events.is_empty());
}

#[test]
fn promotes_a_published_pending_key_retiring_the_active_one_first() {
    let rotating = detail(
        DomainStatus::Verified,
        0,
        vec![key("new", KeyState::Pending), key("old", KeyState::Active)],
    );
    let published = Findings {
        pending_key: Some(Finding::Ok),
        ..all_ok()
    };

    let plan = plan_check(&rotating, &published, t0(), &KeyPolicy::default());

    assert_eq!(
        moves(&plan),
        [
            ("old", KeyState::Active, KeyTarget::Retiring),
            ("new", KeyState::Pending, KeyTarget::Active)
        ]
    );
    assert_eq!(kinds(&plan), [EventType::DkimKeyActivated]);
    assert_eq!(plan.events[0].selector.as_ref().unwrap().as_str(), "new");
}

#[test]
fn keeps_a_pending_key_pending_while_its_record_is_not_published() {
    let rotating = detail(
        DomainStatus::Verified,
        0,
        vec![key("new", KeyState::Pending), key("old", KeyState::Active)],
    );
    for finding in [Finding::Bad, Finding::Unknown] {
        let not_yet = Findings {
            pending_key: Some(finding),
            ..all_ok()
        };

        let plan = plan_check(&rotating, &not_yet, t0(), &KeyPolicy::default());

        assert!(plan.key_moves.is_empty(), "{finding:?}");
        assert!(plan.events.is_empty(), "{finding:?}");
    }
}

#[test]
fn a_promotion_verifies_a_domain_whose_old_key_record_was_already_removed() {
    let rotating = detail(
        DomainStatus::Pending,
        0,
        vec![key("new", KeyState::Pending), key("old", KeyState::Active)],
    );
    let only_new = Findings {
        active_key: Finding::Bad,
        pending_key: Some(Finding::Ok),
        ..all_ok()
    };

    let plan = plan_check(&rotating, &only_new, t0(), &KeyPolicy::default());

    assert_eq!(plan.status, DomainStatus::Verified);
}

#[test]
fn revokes_a_retiring_key_exactly_when_retire_after_has_passed() {
    let policy = KeyPolicy::default();
    let retiring = detail(
        DomainStatus::Verified,
        0,
        vec![key("new", KeyState::Active), key("old", KeyState::Retiring)],
    );

    let early = plan_check(
        &retiring,
        &all_ok(),
        t0() + policy.retire_after - TimeDelta::seconds(1),
        &policy,
    );
    assert!(early.key_moves.is_empty());

    let due = plan_check(&retiring, &all_ok(), t0() + policy.retire_after, &policy);
    assert_eq!(
        moves(&due),
        [("old", KeyState::Retiring, KeyTarget::Revoked)]
    );
    assert_eq!(kinds(&due), [EventType::DkimKeyRevoked]);
}

#[test]
fn removes_a_revoked_key_at_the_first_check_after_it_is_safe_to_remove() {
    let policy = KeyPolicy {
        retire_after: TimeDelta::seconds(2),
        revoked_keep: TimeDelta::seconds(3),
    };
    let revoked = detail(
        DomainStatus::Verified,
        0,
        vec![key("new", KeyState::Active), key("old", KeyState::Revoked)],
    );

    assert!(!policy.safe_to_remove(Some(t0()), t0() + TimeDelta::seconds(2)));
    let early = plan_check(&revoked, &all_ok(), t0() + TimeDelta::seconds(2), &policy);
    assert!(early.key_moves.is_empty());

    assert!(policy.safe_to_remove(Some(t0()), t0() + TimeDelta::seconds(3)));
    let due = plan_check(&revoked, &all_ok(), t0() + TimeDelta::seconds(3), &policy);
    assert_eq!(
        moves(&due),
        [("old", KeyState::Revoked, KeyTarget::Removed)]
    );
    assert!(due.events.is_empty(), "removal is not an event");
}

mod schedule {
    use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};

    use crate::DomainName;
    use crate::lifecycle::DomainStatus;
    use crate::ports::lifecycle::CheckPlan;
    use crate::usecases::fixtures::org;
    use crate::usecases::verify::VerifySchedule;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn plan(name: &str, status: DomainStatus, failed_checks: u32) -> CheckPlan {
        CheckPlan {
            organization: org(),
            domain: DomainName::parse(name).unwrap(),
            checked_at: at(),
            status,
            verified_at: None,
            failed_checks,
            next_check_at: None,
            key_moves: Vec::new(),
            events: Vec::new(),
            last_check: None,
            zone: None,
        }
    }

    /// `delay` ≤ the wait < `delay` × 1.1.
    fn assert_within(wait: TimeDelta, delay: TimeDelta) {
        assert!(
            wait >= delay && wait < delay + delay / 10,
            "{wait} for {delay}"
        );
    }

    #[test]
    fn a_pending_domain_waits_each_delay_in_turn_then_repeats_the_last() {
        let schedule = VerifySchedule::default();
        let minutes = [1, 5, 15, 60, 360, 720, 1440, 1440, 1440];
        for (failed, expected) in minutes.into_iter().enumerate() {
            let plan = plan(
                "example.com",
                DomainStatus::Pending,
                u32::try_from(failed).unwrap(),
            );
            assert_within(
                schedule.next_check(&plan) - at(),
                TimeDelta::minutes(expected),
            );
        }
    }

    #[test]
    fn verified_and_failing_domains_wait_the_interval() {
        let schedule =
            VerifySchedule::new(vec![TimeDelta::seconds(1)], TimeDelta::hours(24)).unwrap();
        for status in [DomainStatus::Verified, DomainStatus::Failing] {
            assert_within(
                schedule.next_check(&plan("example.com", status, 1)) - at(),
                TimeDelta::hours(24),
            );
        }
    }

    #[test]
    fn domains_created_together_are_spread_over_a_tenth_of_the_delay() {
        let schedule = VerifySchedule::default();
        let mut firsts: Vec<i64> = (0..1000)
            .map(|i| {
                let name = DomainName::parse(&format!("d{i}.example")).unwrap();
                (schedule.first_check(&name, at()) - at()).num_milliseconds()
            })
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert!(firsts.iter().all(|ms| (60_000..66_000).contains(ms)));
        // 100 distinct offsets from 60 s to 65.94 s: no one second holds them all.
        assert!(firsts.len() >= 90, "{} distinct first checks", firsts.len());
    }

    #[test]
    fn refuses_an_empty_or_non_positive_schedule() {
        assert!(VerifySchedule::new(Vec::new(), TimeDelta::hours(1)).is_none());
        assert!(VerifySchedule::new(vec![TimeDelta::zero()], TimeDelta::hours(1)).is_none());
        assert!(VerifySchedule::new(vec![TimeDelta::seconds(1)], TimeDelta::zero()).is_none());
    }
}
