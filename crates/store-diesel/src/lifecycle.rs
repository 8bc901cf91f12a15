//! KeyLifecycleStore port: rotation, the outcome of a check, the inbound toggle and
//! deletion, each one transaction that records its events; and the CheckQueue the
//! background verifier leases due domains from.
//!
//! Concurrency: rotation, checks and the toggle lock the domain row with their
//! `UPDATE`; deletion locks the organization's row, then the domain's `FOR UPDATE`
//! (see `locks`). The partial unique
//! indexes of `dkim_keys` (one active, at most one pending key per domain) hold the
//! key invariants across instances whatever the interleaving.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::last_check::LastCheck;
use domain_core::lifecycle::{EventType, KeyState, NewEvent};
use domain_core::ports::InfraError;
use domain_core::ports::lifecycle::{
    CheckPlan, CheckQueue, DueCheck, KeyLifecycleStore, KeyTarget, RotateError,
};
use domain_core::{DkimKey, DomainName, OrganizationId};

use crate::Store;
use crate::backend::{DbError, UniqueTarget, in_transaction, unique_violation, with_conn};
use crate::events::record_events;
use crate::keys::destroy_keys;
use crate::locks::{DomainLock as _, DuePick as _, lock_organization};

/// A failed-checks count as stored.
fn stored_count(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

#[async_trait]
impl KeyLifecycleStore for Store {
    #[tracing::instrument(skip_all, fields(%domain, org = %organization))]
    async fn start_rotation(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        key: DkimKey,
        at: DateTime<Utc>,
    ) -> Result<(), RotateError> {
        let started = in_transaction!(&self.backend, |c| {
            // Locks the row: rotations and deletion of one domain take turns.
            let domain_id: Option<i64> = diesel::update(
                domains::table
                    .filter(domains::name.eq(domain.as_ascii()))
                    .filter(domains::organization_id.eq(organization.as_str())),
            )
            .set(domains::updated_at.eq(at))
            .returning(domains::id)
            .get_result(c)
            .await
            .optional()?;
            let Some(domain_id) = domain_id else {
                return Ok(false);
            };
            // A second pending key trips `dkim_keys_one_pending_per_domain`: the index,
            // not a prior read, decides between racing rotations on any instance.
            diesel::insert_into(dkim_keys::table)
                .values((
                    dkim_keys::domain_id.eq(domain_id),
                    dkim_keys::selector.eq(key.selector.as_str()),
                    dkim_keys::state.eq(KeyState::Pending.as_str()),
                    dkim_keys::public_key.eq(&key.public_key),
                    dkim_keys::private_key_sealed.eq(Some(&key.sealed_private_key.0)),
                    dkim_keys::created_at.eq(at),
                ))
                .execute(c)
                .await?;
            let event = NewEvent::key(
                organization,
                EventType::DkimRotationStarted,
                domain,
                &key.selector,
            );
            record_events!(c, [&event], at)?;
            Ok(true)
        });
        match started {
            Ok(true) => Ok(()),
            Ok(false) => Err(RotateError::NotFound),
            Err(error) if unique_violation(&error) == Some(UniqueTarget::OneKeyInState) => {
                Err(RotateError::InProgress)
            }
            Err(error) => Err(RotateError::Infra(error.into())),
        }
    }

    #[tracing::instrument(skip_all, fields(domain = %plan.domain, org = %plan.organization))]
    async fn apply_check(&self, plan: &CheckPlan) -> Result<bool, InfraError> {
        let at = plan.checked_at;
        let applied = in_transaction!(&self.backend, |c| {
            // Gone or owned by someone else since the check began: nothing to apply.
            let domain_id: Option<i64> = diesel::update(
                domains::table
                    .filter(domains::name.eq(plan.domain.as_ascii()))
                    .filter(domains::organization_id.eq(plan.organization.as_str())),
            )
            .set((
                domains::status.eq(plan.status.as_str()),
                domains::verified_at.eq(plan.verified_at),
                domains::failed_checks.eq(stored_count(plan.failed_checks)),
                domains::last_checked_at.eq(Some(at)),
                domains::last_check.eq(plan.last_check.as_ref().map(LastCheck::encode)),
                domains::next_check_at.eq(plan.next_check_at),
                domains::check_lease_until.eq(None::<DateTime<Utc>>),
                domains::updated_at.eq(at),
            ))
            .returning(domains::id)
            .get_result(c)
            .await
            .optional()?;
            let Some(domain_id) = domain_id else {
                return Err(DbError::Raced);
            };
            // A zone found is kept; a check that found none leaves the last one.
            if let Some(zone) = &plan.zone {
                diesel::update(domains::table.filter(domains::id.eq(domain_id)))
                    .set(domains::zone.eq(Some(zone.as_ascii())))
                    .execute(c)
                    .await?;
            }
            for step in &plan.key_moves {
                // Each move applies only to a key still in `from`; a key that moved
                // since the check read it makes the whole plan stale.
                let key = dkim_keys::table
                    .filter(dkim_keys::domain_id.eq(domain_id))
                    .filter(dkim_keys::selector.eq(step.selector.as_str()))
                    .filter(dkim_keys::state.eq(step.from.as_str()));
                let moved = match step.to {
                    KeyTarget::Active => {
                        diesel::update(key)
                            .set((
                                dkim_keys::state.eq(KeyState::Active.as_str()),
                                dkim_keys::activated_at.eq(Some(at)),
                            ))
                            .execute(c)
                            .await?
                    }
                    KeyTarget::Retiring => {
                        diesel::update(key)
                            .set((
                                dkim_keys::state.eq(KeyState::Retiring.as_str()),
                                dkim_keys::retired_at.eq(Some(at)),
                            ))
                            .execute(c)
                            .await?
                    }
                    KeyTarget::Revoked => {
                        // The sealed private key is destroyed with the revocation.
                        diesel::update(key)
                            .set((
                                dkim_keys::state.eq(KeyState::Revoked.as_str()),
                                dkim_keys::revoked_at.eq(Some(at)),
                                dkim_keys::private_key_sealed.eq(None::<Vec<u8>>),
                            ))
                            .execute(c)
                            .await?
                    }
                    KeyTarget::Removed => diesel::delete(key).execute(c).await?,
                };
                if moved == 0 {
                    return Err(DbError::Raced);
                }
            }
            record_events!(c, &plan.events, at)?;
            Ok(())
        });
        match applied {
            Ok(()) => Ok(true),
            Err(DbError::Raced) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn set_inbound(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        enabled: bool,
    ) -> Result<bool, InfraError> {
        let found = in_transaction!(&self.backend, |c| {
            let now = Utc::now();
            // Conditional on the old value: of two racing toggles to the same value,
            // one changes the row and records the event, the other finds it done.
            let changed = diesel::update(
                domains::table
                    .filter(domains::name.eq(domain.as_ascii()))
                    .filter(domains::organization_id.eq(organization.as_str()))
                    .filter(domains::inbound_enabled.eq(!enabled)),
            )
            .set((
                domains::inbound_enabled.eq(enabled),
                domains::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if changed == 0 {
                let exists: i64 = domains::table
                    .filter(domains::name.eq(domain.as_ascii()))
                    .filter(domains::organization_id.eq(organization.as_str()))
                    .count()
                    .get_result(c)
                    .await?;
                return Ok(exists > 0);
            }
            let kind = if enabled {
                EventType::DomainInboundEnabled
            } else {
                EventType::DomainInboundDisabled
            };
            let event = NewEvent::domain(organization, kind, domain);
            record_events!(c, [&event], now)?;
            Ok(true)
        })?;
        Ok(found)
    }

    #[tracing::instrument(skip_all, fields(%domain, org = %organization))]
    async fn delete_domain(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
    ) -> Result<bool, InfraError> {
        let deleted = in_transaction!(&self.backend, |c| {
            // The organization first, as registration and activation take it: they
            // lock sender rows we are about to delete, so taking the domain first
            // could leave each of us waiting on the other.
            lock_organization!(c, organization.as_str())?;
            // FOR UPDATE: a registration that did not see us yet waits at its sender
            // insert, then fails its foreign key check and retries against what we
            // left.
            let Some(domain_id) = c
                .lock_domain(organization.as_str(), domain.as_ascii())
                .await?
            else {
                return Ok(false);
            };
            destroy_keys!(c, domain_id)?;
            diesel::delete(senders::table.filter(senders::domain_id.eq(domain_id)))
                .execute(c)
                .await?;
            diesel::delete(domains::table.find(domain_id))
                .execute(c)
                .await?;
            let event = NewEvent::domain(organization, EventType::DomainDeleted, domain);
            record_events!(c, [&event], Utc::now())?;
            Ok(true)
        })?;
        Ok(deleted)
    }
}

#[async_trait]
impl CheckQueue for Store {
    async fn lease_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueCheck>, InfraError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Most polls find nothing due: ask with a plain read first, so an idle
        // verifier takes no lock (on SQLite, the one write lock) to learn that.
        let any_due: Vec<i64> =
            with_conn!(&self.backend, |c| { c.pick_due_unlocked(now, 1).await })?;
        if any_due.is_empty() {
            return Ok(Vec::new());
        }
        let leased: Vec<(String, String)> = in_transaction!(&self.backend, |c| {
            let ids = c.pick_due(now, limit).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            Ok(
                diesel::update(domains::table.filter(domains::id.eq_any(&ids)))
                    .set(domains::check_lease_until.eq(Some(lease_until)))
                    .returning((domains::organization_id, domains::name))
                    .get_results(c)
                    .await?,
            )
        })?;
        leased
            .into_iter()
            .map(|(organization, name)| {
                let domain = DomainName::parse(&name)
                    .map_err(|e| DbError::Corrupt(format!("domain name {name:?}: {e}")))?;
                Ok(DueCheck {
                    organization: OrganizationId::new(organization),
                    domain,
                })
            })
            .collect::<Result<_, DbError>>()
            .map_err(InfraError::from)
    }

    async fn release(&self, check: &DueCheck) -> Result<(), InfraError> {
        with_conn!(&self.backend, |c| {
            diesel::update(domains::table.filter(domains::name.eq(check.domain.as_ascii())))
                .set(domains::check_lease_until.eq(None::<DateTime<Utc>>))
                .execute(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(())
    }
}
