//! Ownership: admitting a new domain (ancestors, quotas) inside the unit of work that
//! creates it, the same checks read ahead of it, and claims (ClaimStore port).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::lifecycle::{DomainStatus, EventType, NewEvent};
use domain_core::ports::InfraError;
use domain_core::ports::claims::{Claim, ClaimStore, OpenClaimError, TransferError};
use domain_core::ports::lifecycle::KeyGenerations;
use domain_core::ports::store::{CreationRules, RegisterError};
use domain_core::{DkimKey, DomainName, OrganizationId};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::Store;
use crate::backend::{
    DbError, UniqueTarget, in_transaction, is_retryable, unique_violation, with_conn,
};
use crate::events::record_events;
use crate::keys::{destroy_keys, insert_active_key};
use crate::locks::{DomainLock as _, lock_organization};

/// Checks on `$conn` that organization `$org` may create a domain under `$rules`
/// (`&CreationRules`) at `$now`: no ancestor owned by another organization, fewer
/// domains than its limit, a free slot in the creation window. One statement (a
/// round trip on PostgreSQL) reads the three; `ownership::admit_creation` checks
/// them. Evaluates to `Result<(), DbError>`. Expands inside a
/// `with_conn!`/`in_transaction!` body.
macro_rules! admit {
    ($conn:ident, $org:expr, $rules:expr, $now:expr) => {
        async {
            let org: &str = $org;
            let rules: &domain_core::ports::store::CreationRules = $rules;
            let now: chrono::DateTime<chrono::Utc> = $now;
            let ancestors: Vec<&str> = rules.ancestors.iter().map(|d| d.as_ascii()).collect();
            let foreign = domains::table
                .filter(domains::name.eq_any(ancestors))
                .filter(domains::organization_id.ne(org))
                .select(diesel::dsl::count_star())
                .single_value();
            let owned = domains::table
                .filter(domains::organization_id.eq(org))
                .select(diesel::dsl::count_star())
                .single_value();
            // Only the `per_minute`-th newest key generation of the window: the
            // organization is at its quota if there is one, and the slot frees when
            // it leaves the window (`creation_wait`, read as one row of
            // `events_key_generations` instead of a list).
            let quota = i64::from(rules.limits.per_minute);
            let nth = events::table
                .filter(events::organization_id.eq(org))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    $crate::ownership::KEY_GENERATIONS_SQL,
                ))
                .filter(events::created_at.gt(domain_core::ownership::window_start(now)))
                .order(events::created_at.desc())
                .select(events::created_at)
                .offset(quota.saturating_sub(1).max(0))
                .single_value();
            let (foreign, owned, nth): (
                Option<i64>,
                Option<i64>,
                Option<chrono::DateTime<chrono::Utc>>,
            ) = diesel::select((foreign, owned, nth))
                .get_result(&mut *$conn)
                .await?;
            domain_core::ownership::admit_creation(
                foreign.unwrap_or(0) > 0,
                owned.unwrap_or(0),
                rules.limits,
                nth.map(|oldest| domain_core::ownership::wait_for_window(oldest, now)),
            )
            .map_err($crate::backend::DbError::from)
        }
        .await
    };
}

pub(crate) use admit;

/// A registration's failure in the port's terms.
pub(crate) fn register_error(error: DbError) -> RegisterError {
    refusal(&error).unwrap_or_else(|| RegisterError::Infra(error.into()))
}

/// The refusal a failed registration comes to, if it was refused (and did not fail).
pub(crate) fn refusal(error: &DbError) -> Option<RegisterError> {
    if unique_violation(error) == Some(UniqueTarget::SenderEmail) {
        return Some(RegisterError::EmailTaken);
    }
    Some(match error {
        DbError::DomainTaken => RegisterError::DomainTaken,
        DbError::EmailTaken => RegisterError::EmailTaken,
        DbError::KeyRequired => RegisterError::KeyRequired,
        DbError::DomainLimit => RegisterError::DomainLimit,
        DbError::SenderLimit => RegisterError::SenderLimit,
        DbError::RateLimited(retry_after) => RegisterError::RateLimited {
            retry_after: *retry_after,
        },
        _ => return None,
    })
}

impl Store {
    /// [`domain_core::ports::store::DomainStore::admit_creation`].
    pub(crate) async fn admit_creation_now(
        &self,
        organization: &OrganizationId,
        rules: &CreationRules,
    ) -> Result<(), RegisterError> {
        let org = organization.as_str();
        let result: Result<(), DbError> =
            with_conn!(&self.backend, |c| { admit!(c, org, rules, Utc::now()) });
        result.map_err(register_error)
    }
}

/// Attempts of a transfer when the domain changed hands between reading its owner
/// and locking it.
const MAX_TRANSFER_ATTEMPTS: u32 = 4;

/// Random bytes in a claim token (hex in the record's value).
const CLAIM_TOKEN_BYTES: usize = 20;

fn claim_token() -> Result<String, DbError> {
    let mut bytes = [0u8; CLAIM_TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DbError::Corrupt("the system random source failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What one transfer attempt found.
enum Transferred {
    Done,
    NoOpenClaim,
    DomainLimit,
}

/// The events that stand for a DKIM key generated (a new domain, a rotation, a
/// claim; they share one budget per organization, `admit!`, `KeyGenerations`), as a
/// literal filter on `events.type`: the predicate of the partial index
/// `events_key_generations`, which a query uses only when it writes the same terms
/// (not bound parameters).
pub(crate) const KEY_GENERATIONS_SQL: &str =
    "events.type IN ('domain.created', 'dkim.rotation_started', 'domain.claimed')";

#[async_trait]
impl KeyGenerations for Store {
    async fn latest_key_generations(
        &self,
        organization: &OrganizationId,
        limit: u32,
    ) -> Result<Vec<DateTime<Utc>>, InfraError> {
        let latest = with_conn!(&self.backend, |c| {
            // Newest first (`events_key_generations`); which of them fall in the
            // window is the caller's to judge, by its clock.
            events::table
                .filter(events::organization_id.eq(organization.as_str()))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    KEY_GENERATIONS_SQL,
                ))
                .order(events::created_at.desc())
                .select(events::created_at)
                .limit(i64::from(limit))
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(latest)
    }
}

#[async_trait]
impl ClaimStore for Store {
    async fn open_claim(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Claim, OpenClaimError> {
        let org = organization.as_str();
        let fresh = claim_token().map_err(|e| OpenClaimError::Infra(e.into()))?;
        let opened: Result<Claim, OpenClaimError> = in_transaction!(&self.backend, |c| {
            let found: Option<(i64, String)> = domains::table
                .filter(domains::name.eq(domain.as_ascii()))
                .select((domains::id, domains::organization_id))
                .first(c)
                .await
                .optional()?;
            let Some((domain_id, owner)) = found else {
                return Ok(Err(OpenClaimError::NotFound));
            };
            if owner == org {
                return Ok(Err(OpenClaimError::OwnDomain));
            }
            let mine = domain_claims::table
                .filter(domain_claims::domain_id.eq(domain_id))
                .filter(domain_claims::organization_id.eq(org));
            let open: Option<(String, DateTime<Utc>)> = mine
                .select((domain_claims::token, domain_claims::expires_at))
                .first(c)
                .await
                .optional()?;
            if let Some((token, expires)) = open {
                if expires > now {
                    return Ok(Ok(Claim {
                        domain: domain.clone(),
                        token,
                        expires_at: expires,
                    }));
                }
                diesel::delete(mine).execute(c).await?;
            }
            // A concurrent open by the same organization makes this a no-op; both
            // then hand out the row that won.
            diesel::insert_into(domain_claims::table)
                .values((
                    domain_claims::domain_id.eq(domain_id),
                    domain_claims::organization_id.eq(org),
                    domain_claims::token.eq(&fresh),
                    domain_claims::created_at.eq(now),
                    domain_claims::expires_at.eq(expires_at),
                ))
                .on_conflict((domain_claims::domain_id, domain_claims::organization_id))
                .do_nothing()
                .execute(c)
                .await?;
            let (token, expires): (String, DateTime<Utc>) = domain_claims::table
                .filter(domain_claims::domain_id.eq(domain_id))
                .filter(domain_claims::organization_id.eq(org))
                .select((domain_claims::token, domain_claims::expires_at))
                .first(c)
                .await?;
            Ok(Ok(Claim {
                domain: domain.clone(),
                token,
                expires_at: expires,
            }))
        })
        .map_err(|e: DbError| OpenClaimError::Infra(e.into()))?;
        opened
    }

    async fn find_claim(
        &self,
        organization: &OrganizationId,
        domain: &DomainName,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, InfraError> {
        let found: Option<(String, DateTime<Utc>)> = with_conn!(&self.backend, |c| {
            domain_claims::table
                .inner_join(domains::table)
                .filter(domains::name.eq(domain.as_ascii()))
                .filter(domain_claims::organization_id.eq(organization.as_str()))
                .select((domain_claims::token, domain_claims::expires_at))
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        Ok(found
            .filter(|(_, expires)| *expires > now)
            .map(|(token, expires_at)| Claim {
                domain: domain.clone(),
                token,
                expires_at,
            }))
    }

    #[tracing::instrument(skip_all, fields(domain = %claim.domain, org = %organization))]
    async fn transfer(
        &self,
        organization: &OrganizationId,
        claim: &Claim,
        new_key: DkimKey,
        now: DateTime<Utc>,
        first_check_at: DateTime<Utc>,
        max_domains: u32,
    ) -> Result<(), TransferError> {
        let mut attempt = 1;
        loop {
            match self
                .transfer_once(
                    organization,
                    claim,
                    &new_key,
                    now,
                    first_check_at,
                    max_domains,
                )
                .await
            {
                Ok(Transferred::Done) => return Ok(()),
                Ok(Transferred::NoOpenClaim) => return Err(TransferError::NoOpenClaim),
                Ok(Transferred::DomainLimit) => return Err(TransferError::DomainLimit),
                Err(error) if is_retryable(&error) && attempt < MAX_TRANSFER_ATTEMPTS => {
                    tracing::debug!(attempt, %error, "transfer raced another change; retrying");
                    attempt += 1;
                }
                Err(error) => return Err(TransferError::Infra(error.into())),
            }
        }
    }
}

impl Store {
    async fn transfer_once(
        &self,
        organization: &OrganizationId,
        claim: &Claim,
        key: &DkimKey,
        now: DateTime<Utc>,
        first_check_at: DateTime<Utc>,
        max_domains: u32,
    ) -> Result<Transferred, DbError> {
        let org = organization.as_str();
        let name = claim.domain.as_ascii();
        in_transaction!(&self.backend, |c| {
            let found: Option<String> = domains::table
                .filter(domains::name.eq(name))
                .select(domains::organization_id)
                .first(c)
                .await
                .optional()?;
            let Some(owner) = found else {
                return Ok(Transferred::NoOpenClaim);
            };
            if owner == org {
                return Ok(Transferred::NoOpenClaim);
            }
            // As deletion does: the owner's organization first (its senders on the
            // domain are about to go), then the domain itself. The claimant's too,
            // for an exact count of its domains; both in one order, so two
            // transfers the other way round cannot deadlock.
            let (first, second) = if owner.as_str() < org {
                (owner.as_str(), org)
            } else {
                (org, owner.as_str())
            };
            lock_organization!(c, first)?;
            lock_organization!(c, second)?;
            let owned: i64 = domains::table
                .filter(domains::organization_id.eq(org))
                .count()
                .get_result(c)
                .await?;
            if owned >= i64::from(max_domains) {
                return Ok(Transferred::DomainLimit);
            }
            let Some(domain_id) = c.lock_domain(&owner, name).await? else {
                // It changed hands (or went) between the read and the lock.
                return Err(DbError::Raced);
            };
            let open: Option<DateTime<Utc>> = domain_claims::table
                .filter(domain_claims::domain_id.eq(domain_id))
                .filter(domain_claims::organization_id.eq(org))
                .filter(domain_claims::token.eq(&claim.token))
                .select(domain_claims::expires_at)
                .first(c)
                .await
                .optional()?;
            if open.is_none_or(|expires| expires <= now) {
                return Ok(Transferred::NoOpenClaim);
            }
            // The previous owner's private keys overwritten, then every key row gone.
            destroy_keys!(c, domain_id)?;
            diesel::delete(senders::table.filter(senders::domain_id.eq(domain_id)))
                .execute(c)
                .await?;
            diesel::delete(domain_claims::table.filter(domain_claims::domain_id.eq(domain_id)))
                .execute(c)
                .await?;
            insert_active_key!(c, domain_id, key, now)?;
            // A new start for the new owner: pending, never checked, inbound off
            // until its own MX check.
            diesel::update(domains::table.find(domain_id))
                .set((
                    domains::organization_id.eq(org),
                    domains::inbound_enabled.eq(false),
                    domains::status.eq(DomainStatus::Pending.as_str()),
                    domains::verified_at.eq(None::<DateTime<Utc>>),
                    domains::last_checked_at.eq(None::<DateTime<Utc>>),
                    domains::last_check.eq(None::<String>),
                    domains::next_check_at.eq(Some(first_check_at)),
                    domains::check_lease_until.eq(None::<DateTime<Utc>>),
                    domains::failed_checks.eq(0),
                    domains::created_at.eq(now),
                    domains::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
            let previous = OrganizationId::new(owner.as_str());
            let events = [
                NewEvent::domain(organization, EventType::DomainClaimed, &claim.domain),
                NewEvent::domain(&previous, EventType::DomainTransferred, &claim.domain),
            ];
            record_events!(c, &events, now)?;
            Ok(Transferred::Done)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_generations_filter_names_every_kind_that_generates_a_key() {
        let kinds = [
            EventType::DomainCreated,
            EventType::DkimRotationStarted,
            EventType::DomainClaimed,
        ];
        let listed = kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(KEY_GENERATIONS_SQL, format!("events.type IN ({listed})"));
        // The index's predicate is the same list (migrations, both backends).
        for backend in ["sqlite", "postgres"] {
            let up = std::fs::read_to_string(format!(
                "{}/../../migrations/{backend}/2026-12-10-000001_key_generations/up.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert!(
                up.contains(&format!("WHERE type IN ({listed})")),
                "{backend}"
            );
        }
    }
}
