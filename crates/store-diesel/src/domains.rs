//! DomainStore port: domain reads and the register-sender unit of work.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::lifecycle::{Page, Paged};
use domain_core::ports::store::{
    DomainDetail, DomainStore, RegisterError, Registered, SenderRecord, SenderRegistration,
    SigningKey, StoreError, StoredDomain,
};
use domain_core::{DomainName, OrganizationId, SealedKey, Selector};

use crate::Store;
use crate::backend::{
    DbError, UniqueTarget, in_transaction, is_retryable, unique_violation, with_conn,
};

/// Attempts of the unit of work when a concurrent one got in the way (a unique index
/// tripped by a racing insert, a serialization failure or a deadlock).
const MAX_ATTEMPTS: u32 = 8;

/// The columns of a domain as read: id, owner, name, selector, public key, inbound,
/// created.
type DomainRow = (i64, String, String, String, String, bool, DateTime<Utc>);

fn into_domain(row: DomainRow) -> Result<StoredDomain, DbError> {
    let (_, organization, name, selector, public_key, inbound_enabled, created_at) = row;
    Ok(StoredDomain::new(
        DomainName::parse(&name).map_err(|e| DbError::Corrupt(format!("domain {name:?}: {e}")))?,
        OrganizationId::new(organization),
        Selector::new(selector)
            .map_err(|e| DbError::Corrupt(format!("selector of {name}: {e}")))?,
        public_key,
        inbound_enabled,
        created_at,
    ))
}

macro_rules! domain_columns {
    () => {
        (
            domains::id,
            domains::organization_id,
            domains::name,
            domains::dkim_selector,
            domains::dkim_public_key,
            domains::inbound_enabled,
            domains::created_at,
        )
    };
}

impl Store {
    async fn register_once(&self, reg: &SenderRegistration) -> Result<Registered, DbError> {
        let name = reg.email.domain().as_ascii();
        let org = reg.organization.as_str();
        let email = reg.email.canonical();
        let reply_to = reg.reply_to.as_ref().map(ToString::to_string);
        in_transaction!(&self.backend, |c| {
            let now = Utc::now();
            // Lock the organization's row first: switching the active sender is a
            // read-modify-write, so one organization's registrations take turns (a
            // row lock in PostgreSQL, visible to every instance; SQLite's IMMEDIATE
            // transaction already serializes writers). A no-op UPDATE is the
            // lock both backends understand.
            let org_exists = diesel::update(organizations::table.find(org))
                .set(organizations::id.eq(organizations::id))
                .execute(c)
                .await?;
            if org_exists == 0 {
                return Err(DbError::Corrupt(format!(
                    "organization {org} does not exist"
                )));
            }
            let mut created = false;
            if let Some(key) = &reg.new_key {
                // A racing creator of the same name makes this a no-op; we then
                // read and use the winner's row (and key) below.
                created = diesel::insert_into(domains::table)
                    .values((
                        domains::organization_id.eq(org),
                        domains::name.eq(name),
                        domains::dkim_selector.eq(key.selector.as_str()),
                        domains::dkim_public_key.eq(&key.public_key),
                        domains::dkim_private_key_sealed.eq(&key.sealed_private_key.0),
                        domains::inbound_enabled.eq(false),
                        domains::created_at.eq(now),
                        domains::updated_at.eq(now),
                    ))
                    .on_conflict(domains::name)
                    .do_nothing()
                    .execute(c)
                    .await?
                    == 1;
            }
            let owner: Option<(i64, String)> = domains::table
                .filter(domains::name.eq(name))
                .select((domains::id, domains::organization_id))
                .first(c)
                .await
                .optional()?;
            let Some((domain_id, owner)) = owner else {
                return Err(DbError::KeyRequired);
            };
            if owner != org {
                return Err(DbError::DomainTaken);
            }
            let taken: i64 = senders::table
                .filter(senders::email.eq(&email))
                .count()
                .get_result(c)
                .await?;
            if taken > 0 {
                return Err(DbError::EmailTaken);
            }
            diesel::update(senders::table)
                .filter(senders::organization_id.eq(org))
                .filter(senders::active.eq(true))
                .set(senders::active.eq(false))
                .execute(c)
                .await?;
            diesel::insert_into(senders::table)
                .values((
                    senders::organization_id.eq(org),
                    senders::domain_id.eq(domain_id),
                    senders::email.eq(&email),
                    senders::reply_to.eq(&reply_to),
                    senders::active.eq(true),
                    senders::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            if reg.enable_inbound {
                diesel::update(domains::table.find(domain_id))
                    .set((
                        domains::inbound_enabled.eq(true),
                        domains::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
            let row: DomainRow = domains::table
                .find(domain_id)
                .select(domain_columns!())
                .first(c)
                .await?;
            Ok(Registered {
                domain: into_domain(row)?,
                domain_created: created,
            })
        })
    }
}

#[async_trait]
impl DomainStore for Store {
    async fn find_domain(&self, name: &DomainName) -> Result<Option<StoredDomain>, StoreError> {
        let row: Option<DomainRow> = with_conn!(&self.backend, |c| {
            domains::table
                .filter(domains::name.eq(name.as_ascii()))
                .select(domain_columns!())
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        Ok(row.map(into_domain).transpose()?)
    }

    #[tracing::instrument(skip_all, fields(domain = %registration.email.domain(), org = %registration.organization))]
    async fn register_sender(
        &self,
        registration: SenderRegistration,
    ) -> Result<Registered, RegisterError> {
        let mut attempt = 1;
        loop {
            match self.register_once(&registration).await {
                Err(error) if is_retryable(&error) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, %error, "register-sender raced another unit of work; retrying");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
                    attempt += 1;
                }
                result => return result.map_err(RegisterError::from_db),
            }
        }
    }

    async fn list_domains(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<StoredDomain, String>, StoreError> {
        // One more than the page: it only says whether a next page exists.
        let fetch = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = page.after.as_deref().unwrap_or("");
        let rows: Vec<DomainRow> = with_conn!(&self.backend, |c| {
            domains::table
                .filter(domains::organization_id.eq(organization.as_str()))
                .filter(domains::name.gt(after))
                .order(domains::name.asc())
                .select(domain_columns!())
                .limit(fetch)
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        let domains = rows
            .into_iter()
            .map(into_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Paged::from_fetched(domains, page.limit, |d| {
            d.name.as_ascii().to_owned()
        }))
    }

    async fn domain_detail(
        &self,
        organization: &OrganizationId,
        name: &DomainName,
    ) -> Result<Option<DomainDetail>, StoreError> {
        type SenderRow = (String, Option<String>, bool, DateTime<Utc>);
        let found: Option<(DomainRow, Vec<SenderRow>)> = with_conn!(&self.backend, |c| {
            let row: Option<DomainRow> = domains::table
                .filter(domains::name.eq(name.as_ascii()))
                .filter(domains::organization_id.eq(organization.as_str()))
                .select(domain_columns!())
                .first(c)
                .await
                .optional()?;
            match row {
                None => Ok::<_, DbError>(None),
                Some(row) => {
                    let senders: Vec<SenderRow> = senders::table
                        .filter(senders::domain_id.eq(row.0))
                        .order((senders::created_at.asc(), senders::id.asc()))
                        .select((
                            senders::email,
                            senders::reply_to,
                            senders::active,
                            senders::created_at,
                        ))
                        .load(c)
                        .await?;
                    Ok(Some((row, senders)))
                }
            }
        })?;
        let Some((row, senders)) = found else {
            return Ok(None);
        };
        Ok(Some(DomainDetail {
            domain: into_domain(row)?,
            senders: senders
                .into_iter()
                .map(|(email, reply_to, active, created_at)| SenderRecord {
                    email,
                    reply_to,
                    active,
                    created_at,
                })
                .collect(),
            keys: Vec::new(),
        }))
    }

    async fn signing_key(&self, name: &DomainName) -> Result<Option<SigningKey>, StoreError> {
        // Today the key lives on the domain's row; with keys as rows this reads the
        // domain's active key instead.
        let row: Option<(String, Vec<u8>)> = with_conn!(&self.backend, |c| {
            domains::table
                .filter(domains::name.eq(name.as_ascii()))
                .select((domains::dkim_selector, domains::dkim_private_key_sealed))
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        let Some((selector, sealed)) = row else {
            return Ok(None);
        };
        let selector = Selector::new(selector)
            .map_err(|e| DbError::Corrupt(format!("selector of {name}: {e}")))?;
        Ok(Some(SigningKey {
            selector,
            sealed_private_key: SealedKey(sealed),
        }))
    }
}

trait FromDb {
    fn from_db(error: DbError) -> Self;
}

impl FromDb for RegisterError {
    fn from_db(error: DbError) -> Self {
        if unique_violation(&error) == Some(UniqueTarget::SenderEmail) {
            return Self::EmailTaken;
        }
        match error {
            DbError::DomainTaken => Self::DomainTaken,
            DbError::EmailTaken => Self::EmailTaken,
            DbError::KeyRequired => Self::KeyRequired,
            other => Self::Infra(other.into()),
        }
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(e) => Self::Unavailable(e),
            other => Self::Unexpected(Box::new(other)),
        }
    }
}
