//! DomainStore port: domain reads (always with the active key) and the
//! register-sender unit of work, which records its events in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::lifecycle::{EventType, NewEvent, Page, Paged};
use domain_core::ownership::registrable_of;
use domain_core::ports::store::{
    CreationRules, DomainCreation, DomainDetail, DomainStore, RegisterError, Registered,
    SenderRecord, SenderRegistration, SigningKey, StoreError, StoredDomain,
};
use domain_core::{DomainName, OrganizationId, SealedKey, Selector};

use crate::ambient::{KeyClaim, keep_answer};
use crate::backend::{Backend, DbError, backoff, in_transaction, runs_again, with_conn};
use crate::events::{record_events, record_events_keeping};
use crate::keys::insert_active_key;
use crate::locks::{RegistrableLock as _, lock_organization};
use crate::ownership::{admit, refusal, register_error};
use crate::rows::{
    DomainRow, KeyRow, domain_columns, domains_with_active_key, key_columns, sender_count,
};
use crate::{BackendKind, Store, ambient};

/// Creates domain `$name` (`&str`, A-labels) for organization `$org` with `$key`
/// (`&DkimKey`) as its active key, at `$now`, unless the name exists: admitted under
/// `$rules` (`&CreationRules`), taking turns on `$registrable`. The caller holds the
/// organization's row lock, which makes the quota counts exact. Evaluates to
/// `Result<bool, DbError>`: whether it created the domain (a racing creator of the
/// same name makes it a no-op; the caller reads the winner's row). Expands inside an
/// `in_transaction!` body.
macro_rules! create_row {
    ($conn:ident, $org:expr, $name:expr, $registrable:expr, $rules:expr, $key:expr, $now:expr) => {
        async {
            let org: &str = $org;
            let name: &str = $name;
            let rules: &CreationRules = $rules;
            let now: DateTime<Utc> = $now;
            // Creations under one registrable domain take turns, so no two
            // organizations both pass the ancestor check.
            $conn.lock_registrable($registrable).await?;
            let exists: i64 = domains::table
                .filter(domains::name.eq(name))
                .count()
                .get_result(&mut *$conn)
                .await?;
            if exists == 0 {
                admit!($conn, org, rules, now)?;
            }
            let inserted: Option<i64> = diesel::insert_into(domains::table)
                .values((
                    domains::organization_id.eq(org),
                    domains::name.eq(name),
                    domains::inbound_enabled.eq(false),
                    domains::created_at.eq(now),
                    domains::updated_at.eq(now),
                    domains::next_check_at.eq(Some(rules.first_check_at)),
                ))
                .on_conflict(domains::name)
                .do_nothing()
                .returning(domains::id)
                .get_result(&mut *$conn)
                .await
                .optional()?;
            match inserted {
                Some(domain_id) => {
                    insert_active_key!($conn, domain_id, $key, now)?;
                    Ok::<bool, DbError>(true)
                }
                None => Ok(false),
            }
        }
        .await
    };
}

/// [`register_once`], and a keyed request's answer kept with the outcome: in the
/// registration's own transaction (or savepoint) when it succeeded, right after it
/// rolled back when it was refused. Also whether the answer was kept.
pub(crate) async fn register_keeping(
    backend: &Backend,
    reg: &SenderRegistration,
    org_locked: bool,
    claim: Option<&KeyClaim>,
) -> (Result<Registered, DbError>, bool) {
    let error = match register_once(backend, reg, org_locked, claim).await {
        Ok((registered, kept)) => return (Ok(registered), kept),
        Err(error) => error,
    };
    let (Some(claim), Some(refused)) = (claim, refusal(&error)) else {
        return (Err(error), false);
    };
    let Some(answer) = claim.answer.render(&Err(refused)) else {
        return (Err(error), false);
    };
    let kept: Result<(), DbError> = with_conn!(backend, |c| { keep_answer!(c, claim, &answer) });
    match kept {
        Ok(()) => (Err(error), true),
        // Another request with the key kept its answer first: that one stands.
        Err(superseded @ DbError::Superseded(_)) => (Err(superseded), false),
        Err(keep_error) => {
            tracing::warn!(%keep_error, "could not keep a refused registration's answer");
            (Err(error), false)
        }
    }
}

/// The register-sender unit of work, once: in its own transaction, or in a savepoint
/// of the ambient one (a batch of `group_commit`, an idempotent request). With
/// `org_locked` the enclosing transaction holds the organization's row lock already.
/// With `claim`, a success keeps the keyed request's answer in the same transaction
/// (and says so); a lost lease rolls the registration back.
///
/// Round trips on the reuse path: lock, read the domain with its key, switch the
/// active sender (two statements: the partial unique index needs the old one off
/// first), record the events. A taken email is found by the insert itself.
pub(crate) async fn register_once(
    backend: &Backend,
    reg: &SenderRegistration,
    org_locked: bool,
    claim: Option<&KeyClaim>,
) -> Result<(Registered, bool), DbError> {
    let name = reg.email.domain().as_ascii();
    let org = reg.organization.as_str();
    let email = reg.email.canonical();
    let reply_to = reg.reply_to.as_ref().map(ToString::to_string);
    let registrable = registrable_of(name, &reg.creation.ancestors).to_owned();
    in_transaction!(backend, |c| {
        let now = Utc::now();
        // The organization's row first: switching the active sender is a
        // read-modify-write, so one organization's registrations take turns.
        if !org_locked && lock_organization!(c, org)? == 0 {
            return Err(DbError::Corrupt(format!(
                "organization {org} does not exist"
            )));
        }
        let created = match &reg.new_key {
            Some(key) => create_row!(c, org, name, &registrable, &reg.creation, key, now)?,
            None => false,
        };
        // With its sender count, kept by the database's triggers (a domain's
        // senders are added under its organization's lock, held here: the count
        // is exact), so the read costs the same whatever the domain's size.
        let row: Option<(DomainRow, Option<i64>)> = domains_with_active_key!()
            .filter(domains::name.eq(name))
            .select((domain_columns!(), sender_count!()))
            .first(c)
            .await
            .optional()?;
        let Some((mut row, senders)) = row else {
            // With a key, the domain existed when we tried to create it and was
            // deleted since: a fresh attempt creates it.
            return Err(if reg.new_key.is_some() {
                DbError::Raced
            } else {
                DbError::KeyRequired
            });
        };
        if row.organization != org {
            return Err(DbError::DomainTaken);
        }
        if senders.unwrap_or(0) >= i64::from(reg.creation.limits.max_senders_per_domain) {
            return Err(DbError::SenderLimit);
        }
        diesel::update(senders::table)
            .filter(senders::organization_id.eq(org))
            // `active` itself, not `active = ?`: SQLite uses the partial index
            // `senders_one_active_per_org … WHERE active` only for the literal term.
            .filter(senders::active)
            .set(senders::active.eq(false))
            .execute(c)
            .await?;
        // A taken email inserts nothing; the error rolls the switch back.
        let inserted: Option<i64> = diesel::insert_into(senders::table)
            .values((
                senders::organization_id.eq(org),
                senders::domain_id.eq(row.id),
                senders::email.eq(&email),
                senders::reply_to.eq(&reply_to),
                senders::active.eq(true),
                senders::created_at.eq(now),
            ))
            .on_conflict(senders::email)
            .do_nothing()
            .returning(senders::id)
            .get_result(c)
            .await
            .optional()?;
        if inserted.is_none() {
            return Err(DbError::EmailTaken);
        }
        // Only a change of state is an event: inbound already on stays quiet.
        let inbound_enabled = reg.enable_inbound
            && !row.inbound_enabled
            && diesel::update(
                domains::table
                    .find(row.id)
                    .filter(domains::inbound_enabled.eq(false)),
            )
            .set((
                domains::inbound_enabled.eq(true),
                domains::updated_at.eq(now),
            ))
            .execute(c)
            .await?
                == 1;
        row.inbound_enabled |= inbound_enabled;
        let domain = reg.email.domain();
        let mut events = Vec::with_capacity(4);
        if created {
            events.push(NewEvent::domain(
                &reg.organization,
                EventType::DomainCreated,
                domain,
            ));
        }
        for kind in [EventType::SenderRegistered, EventType::SenderActivated] {
            events.push(NewEvent::sender(&reg.organization, kind, domain, &email));
        }
        if inbound_enabled {
            events.push(NewEvent::domain(
                &reg.organization,
                EventType::DomainInboundEnabled,
                domain,
            ));
        }
        let registered = Registered {
            domain: row.into_domain()?,
            domain_created: created,
        };
        let answer =
            claim.and_then(|claim| Some((claim, claim.answer.render(&Ok(registered.clone()))?)));
        match &answer {
            // A key taken with the change: kept with the events, in their statement.
            Some((claim, answer)) if !claim.is_taken() => {
                record_events_keeping!(c, &events, now, claim, answer)?;
            }
            Some((claim, answer)) => {
                record_events!(c, &events, now)?;
                keep_answer!(c, claim, answer)?;
            }
            None => record_events!(c, &events, now)?,
        }
        Ok((registered, answer.is_some()))
    })
}

/// Create-domain (no sender), once, in its own transaction or a savepoint of the
/// ambient one (a keyed request's): lock the organization, create the domain unless it
/// exists, check the owner, turn inbound on if asked, record the events.
async fn create_once(backend: &Backend, req: &DomainCreation) -> Result<Registered, DbError> {
    let name = req.name.as_ascii();
    let org = req.organization.as_str();
    let registrable = registrable_of(name, &req.creation.ancestors).to_owned();
    in_transaction!(backend, |c| {
        let now = Utc::now();
        // The organization's row first, as registrations take it: its quota
        // counts are exact under it.
        if lock_organization!(c, org)? == 0 {
            return Err(DbError::Corrupt(format!(
                "organization {org} does not exist"
            )));
        }
        let created = match &req.new_key {
            Some(key) => create_row!(c, org, name, &registrable, &req.creation, key, now)?,
            None => false,
        };
        let row: Option<DomainRow> = domains_with_active_key!()
            .filter(domains::name.eq(name))
            .select(domain_columns!())
            .first(c)
            .await
            .optional()?;
        let Some(mut row) = row else {
            return Err(if req.new_key.is_some() {
                DbError::Raced
            } else {
                DbError::KeyRequired
            });
        };
        if row.organization != org {
            return Err(DbError::DomainTaken);
        }
        // Only a change of state is an event: inbound already on stays quiet.
        let inbound_enabled = req.enable_inbound
            && !row.inbound_enabled
            && diesel::update(
                domains::table
                    .find(row.id)
                    .filter(domains::inbound_enabled.eq(false)),
            )
            .set((
                domains::inbound_enabled.eq(true),
                domains::updated_at.eq(now),
            ))
            .execute(c)
            .await?
                == 1;
        row.inbound_enabled |= inbound_enabled;
        let mut events = Vec::with_capacity(2);
        if created {
            events.push(NewEvent::domain(
                &req.organization,
                EventType::DomainCreated,
                &req.name,
            ));
        }
        if inbound_enabled {
            events.push(NewEvent::domain(
                &req.organization,
                EventType::DomainInboundEnabled,
                &req.name,
            ));
        }
        if !events.is_empty() {
            record_events!(c, &events, now)?;
        }
        Ok(Registered {
            domain: row.into_domain()?,
            domain_created: created,
        })
    })
}

#[async_trait]
impl DomainStore for Store {
    async fn find_domain(&self, name: &DomainName) -> Result<Option<StoredDomain>, StoreError> {
        let row: Option<DomainRow> = with_conn!(&self.backend, |c| {
            domains_with_active_key!()
                .filter(domains::name.eq(name.as_ascii()))
                .select(domain_columns!())
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        Ok(row.map(DomainRow::into_domain).transpose()?)
    }

    #[tracing::instrument(skip_all, fields(domain = %registration.email.domain(), org = %registration.organization))]
    async fn register_sender(
        &self,
        registration: SenderRegistration,
    ) -> Result<Registered, RegisterError> {
        // A keyed request joins the batch, which keeps its answer with the change;
        // one that wrote already (or cannot say how it answers) registers in its own
        // transaction, which commits with the answer.
        let claim = match ambient::claim() {
            Some(claim) if claim.answer.is_set() && !ambient::has_written().await => Some(claim),
            Some(_) => return self.register_alone(&registration).await,
            None => None,
        };
        // Registrations of one turn (PostgreSQL: the organization; SQLite: the one
        // writer) that arrive while one is in the database share its next commit.
        let turn = self.turn(&registration.organization);
        self.group_commit
            .register(&self.backend, &turn, registration, claim)
            .await
            .map_err(register_error)
    }

    #[tracing::instrument(skip_all, fields(domain = %creation.name, org = %creation.organization))]
    async fn create_domain(&self, creation: DomainCreation) -> Result<Registered, RegisterError> {
        let mut attempt = 1;
        loop {
            match create_once(&self.backend, &creation).await {
                Err(error) if runs_again(&error, attempt) => {
                    tracing::debug!(attempt, %error, "create-domain raced another unit of work; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                result => return result.map_err(register_error),
            }
        }
    }

    async fn admit_creation(
        &self,
        organization: &OrganizationId,
        rules: &CreationRules,
    ) -> Result<(), RegisterError> {
        self.admit_creation_now(organization, rules).await
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
            domains_with_active_key!()
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
            .map(DomainRow::into_domain)
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
        type Found = (DomainRow, Vec<SenderRow>, Vec<KeyRow>);
        let found: Option<Found> = with_conn!(&self.backend, |c| {
            let row: Option<DomainRow> = domains_with_active_key!()
                .filter(domains::name.eq(name.as_ascii()))
                .filter(domains::organization_id.eq(organization.as_str()))
                .select(domain_columns!())
                .first(c)
                .await
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let senders = c.senders_of(row.id).await?;
            let keys: Vec<KeyRow> = dkim_keys::table
                .filter(dkim_keys::domain_id.eq(row.id))
                .order((dkim_keys::created_at.desc(), dkim_keys::id.desc()))
                .select(key_columns!())
                .load(c)
                .await?;
            Ok(Some((row, senders, keys)))
        })?;
        let Some((row, senders, keys)) = found else {
            return Ok(None);
        };
        let keys = keys
            .into_iter()
            .map(|key| key.into_key(&row.name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(DomainDetail {
            domain: row.into_domain()?,
            senders: senders
                .into_iter()
                .map(|(email, reply_to, active, created_at)| SenderRecord {
                    email,
                    reply_to,
                    active,
                    created_at,
                })
                .collect(),
            keys,
        }))
    }

    async fn signing_key(&self, name: &DomainName) -> Result<Option<SigningKey>, StoreError> {
        let Some((selector, sealed)) = self.active_key(name).await? else {
            return Ok(None);
        };
        let selector = Selector::new(selector)
            .map_err(|e| DbError::Corrupt(format!("selector of {name}: {e}")))?;
        Ok(Some(SigningKey {
            selector,
            sealed_private_key: sealed,
        }))
    }
}

impl Store {
    /// The group-commit turn of `organization`'s writes: one of a few on PostgreSQL
    /// (turns run in parallel, `turns::postgres_turn`), the one writer on
    /// SQLite.
    pub(crate) fn turn(&self, organization: &OrganizationId) -> String {
        match self.kind() {
            BackendKind::Postgres => crate::turns::postgres_turn(organization.as_str()),
            BackendKind::Sqlite => String::new(),
        }
    }

    /// Runs register-sender in the ambient unit of work, again (boundedly) when a
    /// concurrent unit of work got in the way.
    async fn register_alone(&self, reg: &SenderRegistration) -> Result<Registered, RegisterError> {
        let mut attempt = 1;
        loop {
            match register_once(&self.backend, reg, false, None)
                .await
                .map(|(registered, _)| registered)
            {
                Err(error) if runs_again(&error, attempt) => {
                    tracing::debug!(attempt, %error, "register-sender raced another unit of work; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                result => return result.map_err(register_error),
            }
        }
    }

    /// The selector and sealed private key of the domain's active key (the one mail
    /// is signed with); `None` for an unknown domain.
    pub(crate) async fn active_key(
        &self,
        name: &DomainName,
    ) -> Result<Option<(String, SealedKey)>, DbError> {
        let row: Option<(String, Option<Vec<u8>>)> = with_conn!(&self.backend, |c| {
            domains_with_active_key!()
                .filter(domains::name.eq(name.as_ascii()))
                .select((dkim_keys::selector, dkim_keys::private_key_sealed))
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })?;
        match row {
            None => Ok(None),
            Some((selector, Some(sealed))) => Ok(Some((selector, SealedKey(sealed)))),
            // The table's check forbids it; say so rather than pretend the domain
            // has no key.
            Some((_, None)) => Err(DbError::Corrupt(format!(
                "the active key of {name} has no private key"
            ))),
        }
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(e) => Self::Unavailable(e),
            lost @ (DbError::LeaseLost | DbError::Superseded(_)) => {
                Self::Unavailable(Box::new(lost))
            }
            other => Self::Unexpected(Box::new(other)),
        }
    }
}

/// The senders of the domain `$domain_id` as the detail lists them, oldest first,
/// with whichever backend's `senders` is in scope.
macro_rules! senders_of_domain {
    ($domain_id:expr) => {
        senders::table
            .filter(senders::domain_id.eq($domain_id))
            .order((senders::created_at.asc(), senders::id.asc()))
            .select((
                senders::email,
                senders::reply_to,
                senders::active,
                senders::created_at,
            ))
    };
}

/// A sender as a domain's detail lists it: email, reply-to, active, created.
type SenderRow = (String, Option<String>, bool, DateTime<Utc>);

/// Reads a domain's senders, oldest first, per backend.
trait ReadSenders {
    /// The senders of the domain `domain_id`, in the order they were created.
    async fn senders_of(&mut self, domain_id: i64) -> Result<Vec<SenderRow>, DbError>;
}

impl ReadSenders for diesel_async::AsyncPgConnection {
    async fn senders_of(&mut self, domain_id: i64) -> Result<Vec<SenderRow>, DbError> {
        use crate::schema::pg::*;
        Ok(senders_of_domain!(domain_id).load(self).await?)
    }
}

impl ReadSenders for crate::backend::SqliteConn {
    /// On the connection's own thread, rows deserialized straight off the statement:
    /// diesel-async's `load` first copies every value out of it (each copy an
    /// allocation), 4,000 for a domain of 1,000 senders. Timestamps parse through
    /// [`Stamp`](crate::rows::Stamp).
    async fn senders_of(&mut self, domain_id: i64) -> Result<Vec<SenderRow>, DbError> {
        use crate::schema::sqlite::*;
        let rows: Vec<(String, Option<String>, bool, crate::rows::Stamp)> = self
            .spawn_blocking(move |c| diesel::RunQueryDsl::load(senders_of_domain!(domain_id), c))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(email, reply_to, active, crate::rows::Stamp(at))| (email, reply_to, active, at))
            .collect())
    }
}
