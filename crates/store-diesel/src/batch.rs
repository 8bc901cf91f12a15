//! Set-based registrations: a run of consecutive reuse registrations of a group-commit
//! batch (a new sender on a domain that exists, no key drawn, inbound untouched, no
//! Idempotency-Key to keep) runs a fixed number of statements whatever its length,
//! instead of a savepoint and five statements per member:
//!
//! 1. one read of every domain the run names, with its active key and sender count;
//! 2. one multi-row insert of the senders that passed the domain's checks, inactive,
//!    `ON CONFLICT (email) DO NOTHING`, returning which went in (the others lost to an
//!    email already taken); PostgreSQL deactivates the organizations' active senders
//!    in the same statement (a data-modifying CTE), SQLite in one more;
//! 3. one statement that activates each organization's last new sender and inserts the
//!    events and their webhook deliveries (PostgreSQL; SQLite: an update, one multi-row
//!    insert of the events, one of the deliveries).
//!
//! The outcome is the one the members would have had one by one, in arrival order:
//! the same checks in the same order (domain missing, another organization's, sender
//! limit, email taken), the last one registered the active sender, a refused member
//! without an event. What a set cannot decide exactly falls back to running the
//! members one by one in their own savepoints (`group_commit`): a run in which a
//! domain could reach its sender limit (the count then depends on which earlier
//! members fail), and a run whose statements failed (the savepoint around the run is
//! rolled back first). A run is one organization's on PostgreSQL (the batch is the
//! organization's); on SQLite it may mix organizations, each with its own active
//! sender.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain_core::lifecycle::{EventType, NewEvent};
use domain_core::ports::store::{Registered, SenderRegistration, StoredDomain};

use domain_core::ports::idempotency::{Guarded, StoredResponse};

use crate::ambient::KeyClaim;
use crate::backend::{Backend, DbError, SqliteConn, in_transaction};
use crate::events::DELIVERIES;
use crate::ownership::refusal;
use crate::rows::{DomainRow, domain_columns, domains_with_active_key};

/// Whether `reg` may run in a set: a reuse registration with nothing to check alone,
/// unkeyed or with a key to take with its change (`claim`).
pub(crate) fn fits(reg: &SenderRegistration, claim: Option<&KeyClaim>) -> bool {
    reg.new_key.is_none()
        && !reg.enable_inbound
        && claim.is_none_or(|claim| !claim.is_taken() && claim.answer.is_set())
}

/// What a run came to.
pub(crate) enum RunOutcome {
    /// One outcome per member, in the run's order, and whether it kept its keyed
    /// request's answer.
    Ran(Vec<(Result<Registered, DbError>, bool)>),
    /// A domain of the run could reach its sender limit within it: its members run
    /// one by one instead.
    OneByOne,
}

/// One sender to insert.
pub(crate) struct NewSender<'a> {
    organization: &'a str,
    domain_id: i64,
    email: &'a str,
    reply_to: Option<String>,
}

/// What the store's statements answer for one member before the insert.
enum Checked {
    Refused(DbError),
    /// Inserted as the run's `usize`-th sender (its first member with the email).
    Inserts(usize),
    /// The email of an earlier member of the run: taken, whichever way that went.
    Duplicate,
}

/// Runs `regs` (consecutive members of a batch, all [`fits`]) in one savepoint of
/// the batch's transaction. An error rolls the whole run back.
///
/// Keyed members (`claims`) keep their answers in one more statement, before the
/// senders' insert (a key another request kept must leave no sender behind), after
/// one more read of which emails are taken (each answer is known before it is
/// written). A key kept by another request meanwhile, or an insert that does not
/// match that read (a racing instance), fails the run: it then runs one by one.
pub(crate) async fn register_run(
    backend: &Backend,
    regs: &[&SenderRegistration],
    claims: &[Option<&KeyClaim>],
) -> Result<RunOutcome, DbError> {
    let emails: Vec<String> = regs.iter().map(|r| r.email.canonical()).collect();
    let mut names: Vec<&str> = regs.iter().map(|r| r.email.domain().as_ascii()).collect();
    names.sort_unstable();
    names.dedup();
    in_transaction!(backend, |c| {
        let now = Utc::now();
        let rows: Vec<(DomainRow, i64)> = domains_with_active_key!()
            .filter(domains::name.eq_any(&names))
            .select((domain_columns!(), senders_of_domain()))
            .load(c)
            .await?;
        let Some(plan) = plan(regs, &emails, rows)? else {
            return Ok(RunOutcome::OneByOne);
        };
        let keyed = claims.iter().any(Option::is_some);
        let mut kept = vec![false; regs.len()];
        if keyed {
            // Which planned senders will go in, to write each keyed answer first.
            let planned: Vec<&str> = plan.senders.iter().map(|s| s.email).collect();
            let taken: HashSet<String> = if planned.is_empty() {
                HashSet::new()
            } else {
                senders::table
                    .filter(senders::email.eq_any(&planned))
                    .select(senders::email)
                    .load::<String>(c)
                    .await?
                    .into_iter()
                    .collect()
            };
            let will_win: HashSet<usize> = (0..plan.senders.len())
                .filter(|n| !taken.contains(plan.senders[*n].email))
                .collect();
            let foreseen = plan.foresee(regs, &will_win);
            let mut answers = Vec::new();
            for (i, (claim, outcome)) in claims.iter().zip(&foreseen).enumerate() {
                let Some(claim) = claim else { continue };
                let outcome = match outcome {
                    Ok(registered) => Ok(registered.clone()),
                    Err(error) => match refusal(error) {
                        Some(refused) => Err(refused),
                        None => continue,
                    },
                };
                if let Some(answer) = claim.answer.render(&outcome) {
                    answers.push((&claim.guarded, answer));
                    kept[i] = true;
                }
            }
            if !answers.is_empty() {
                let kept_all = c.keep_answers(&answers).await?;
                if !kept_all {
                    return Err(DbError::Raced);
                }
            }
            if plan.senders.is_empty() {
                return Ok(zip_kept(plan.outcomes(regs, &HashSet::new()), kept));
            }
            let inserted = c.insert_senders(&plan.senders, now).await?;
            let went_in: HashSet<&str> = inserted.iter().map(|(_, e)| e.as_str()).collect();
            let expected: HashSet<&str> = will_win.iter().map(|n| plan.senders[*n].email).collect();
            if went_in != expected {
                return Err(DbError::Raced);
            }
            return finish_run(c, regs, plan, &inserted, now, kept).await;
        }
        if plan.senders.is_empty() {
            return Ok(zip_kept(plan.outcomes(regs, &HashSet::new()), kept));
        }
        let inserted = c.insert_senders(&plan.senders, now).await?;
        finish_run(c, regs, plan, &inserted, now, kept).await
    })
}

/// Each outcome with whether its answer was kept.
fn zip_kept(outcomes: Vec<Result<Registered, DbError>>, kept: Vec<bool>) -> RunOutcome {
    RunOutcome::Ran(outcomes.into_iter().zip(kept).collect())
}

/// After the senders' insert: the activation, the events, each member's outcome.
async fn finish_run<C: RunWrites>(
    c: &mut C,
    regs: &[&SenderRegistration],
    plan: Plan<'_>,
    inserted: &[(i64, String)],
    now: DateTime<Utc>,
    kept: Vec<bool>,
) -> Result<RunOutcome, DbError> {
    {
        let by_email: HashMap<&str, i64> = inserted
            .iter()
            .map(|(id, email)| (email.as_str(), *id))
            .collect();
        let mut won = HashSet::new();
        let mut last: HashMap<&str, i64> = HashMap::new();
        let mut events = Vec::new();
        for (reg, check) in regs.iter().zip(&plan.checked) {
            let Checked::Inserts(n) = check else { continue };
            let email = plan.senders[*n].email;
            let Some(id) = by_email.get(email) else {
                continue;
            };
            won.insert(*n);
            last.insert(reg.organization.as_str(), *id);
            for kind in [EventType::SenderRegistered, EventType::SenderActivated] {
                events.push(NewEvent::sender(
                    &reg.organization,
                    kind,
                    reg.email.domain(),
                    email,
                ));
            }
        }
        if !last.is_empty() {
            let mut ids: Vec<i64> = last.into_values().collect();
            ids.sort_unstable();
            c.activate_recording(&ids, &events, now).await?;
        }
        Ok(zip_kept(plan.outcomes(regs, &won), kept))
    }
}

/// A copy of a refusal the plan made (only those three).
fn same(error: &DbError) -> DbError {
    match error {
        DbError::DomainTaken => DbError::DomainTaken,
        DbError::KeyRequired => DbError::KeyRequired,
        _ => DbError::EmailTaken,
    }
}

/// The number of senders of the domain read, as one more column of the read.
fn senders_of_domain() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql("(SELECT count(*) FROM senders WHERE senders.domain_id = domains.id)")
}

/// The run decided before its writes.
struct Plan<'a> {
    checked: Vec<Checked>,
    senders: Vec<NewSender<'a>>,
    /// The domain each member registers on, for its answer.
    domains: Vec<Option<StoredDomain>>,
}

impl Plan<'_> {
    /// Each member's outcome if the senders `won` go in (without consuming the plan).
    fn foresee(
        &self,
        regs: &[&SenderRegistration],
        won: &HashSet<usize>,
    ) -> Vec<Result<Registered, DbError>> {
        regs.iter()
            .zip(&self.checked)
            .zip(&self.domains)
            .map(|((_, check), domain)| match (check, domain) {
                (Checked::Refused(error), _) => Err(same(error)),
                (Checked::Inserts(n), Some(domain)) if won.contains(n) => Ok(Registered {
                    domain: domain.clone(),
                    domain_created: false,
                }),
                _ => Err(DbError::EmailTaken),
            })
            .collect()
    }

    /// Each member's outcome once the senders `won` (by index in `senders`) are in.
    fn outcomes(
        self,
        regs: &[&SenderRegistration],
        won: &HashSet<usize>,
    ) -> Vec<Result<Registered, DbError>> {
        regs.iter()
            .zip(self.checked)
            .zip(self.domains)
            .map(|((_, check), domain)| match (check, domain) {
                (Checked::Refused(error), _) => Err(error),
                (Checked::Inserts(n), Some(domain)) if won.contains(&n) => Ok(Registered {
                    domain,
                    domain_created: false,
                }),
                _ => Err(DbError::EmailTaken),
            })
            .collect()
    }
}

/// Checks each member as the one-by-one path does (domain missing, another
/// organization's, sender limit) against the domains read; `None` when a domain
/// could reach its sender limit within the run.
fn plan<'a>(
    regs: &[&'a SenderRegistration],
    emails: &'a [String],
    rows: Vec<(DomainRow, i64)>,
) -> Result<Option<Plan<'a>>, DbError> {
    let mut found: HashMap<String, (i64, StoredDomain, i64)> = HashMap::new();
    for (row, count) in rows {
        let (id, name) = (row.id, row.name.clone());
        found.insert(name, (id, row.into_domain()?, count));
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut plan = Plan {
        checked: Vec::with_capacity(regs.len()),
        senders: Vec::with_capacity(regs.len()),
        domains: Vec::with_capacity(regs.len()),
    };
    for (reg, email) in regs.iter().zip(emails) {
        let org = reg.organization.as_str();
        let Some((domain_id, domain, count)) = found.get_mut(reg.email.domain().as_ascii()) else {
            plan.checked.push(Checked::Refused(DbError::KeyRequired));
            plan.domains.push(None);
            continue;
        };
        plan.domains.push(Some(domain.clone()));
        if domain.organization.as_str() != org {
            plan.checked.push(Checked::Refused(DbError::DomainTaken));
            continue;
        }
        // Counting every earlier sender of the run as inserted: if even that
        // stays under the limit, the limit refuses nobody in the run.
        if *count >= i64::from(reg.creation.limits.max_senders_per_domain) {
            return Ok(None);
        }
        if !seen.insert(email.as_str()) {
            plan.checked.push(Checked::Duplicate);
            continue;
        }
        *count += 1;
        plan.checked.push(Checked::Inserts(plan.senders.len()));
        plan.senders.push(NewSender {
            organization: org,
            domain_id: *domain_id,
            email,
            reply_to: reg.reply_to.as_ref().map(ToString::to_string),
        });
    }
    Ok(Some(plan))
}

/// The writes of a run, per backend.
pub(crate) trait RunWrites {
    /// Inserts `senders` inactive, stamped `at`, in order, skipping any whose email
    /// is taken, and deactivates the active sender of every organization one was
    /// inserted for; the ids and emails of those inserted.
    async fn insert_senders(
        &mut self,
        senders: &[NewSender<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, DbError>;

    /// Keeps each keyed request's `answers`, taking its key (as a key taken with the
    /// change is); whether every key was taken (none held by another request).
    async fn keep_answers(
        &mut self,
        answers: &[(&Guarded, StoredResponse)],
    ) -> Result<bool, DbError>;

    /// Activates the senders `ids` (one per organization) and records `events`
    /// stamped `at`, in order, with their webhook deliveries.
    async fn activate_recording(
        &mut self,
        ids: &[i64],
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError>;
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    email: String,
}

impl RunWrites for AsyncPgConnection {
    /// One statement: arrays bound once (the text is the same whatever the run's
    /// length, so the server plans it once per connection), the deactivation a
    /// data-modifying CTE of the insert that runs only for organizations it
    /// inserted for.
    async fn insert_senders(
        &mut self,
        senders: &[NewSender<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, DbError> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
        const SQL: &str = "WITH ins AS (\
             INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at) \
             SELECT o, d, e, r, false, $5 \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS m (o, d, e, r, n) \
             ORDER BY n \
             ON CONFLICT (email) DO NOTHING \
             RETURNING id, organization_id, email), \
             off AS (UPDATE senders SET active = false \
             WHERE active AND organization_id IN (SELECT organization_id FROM ins)) \
             SELECT id, email FROM ins";
        let inserted: Vec<Inserted> = diesel::sql_query(SQL)
            .bind::<Array<Text>, _>(senders.iter().map(|s| s.organization).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(senders.iter().map(|s| s.domain_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(senders.iter().map(|s| s.email).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                senders
                    .iter()
                    .map(|s| s.reply_to.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind::<Timestamptz, _>(at)
            .load(self)
            .await?;
        Ok(inserted.into_iter().map(|i| (i.id, i.email)).collect())
    }

    /// One statement for every answer: the upsert of a key taken with its change,
    /// from arrays.
    async fn keep_answers(
        &mut self,
        answers: &[(&Guarded, StoredResponse)],
    ) -> Result<bool, DbError> {
        use diesel::sql_types::{Array, Bytea, Integer, Text, Timestamptz};
        #[derive(QueryableByName)]
        struct Key {
            #[diesel(sql_type = Text)]
            #[expect(dead_code, reason = "only counted")]
            key: String,
        }
        const SQL: &str = "INSERT INTO idempotency_keys (organization_id, key, fingerprint, \
             status, content_type, body, created_at, expires_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[], $5::text[], \
             $6::bytea[], $7::timestamptz[], $8::timestamptz[]) \
             ON CONFLICT (organization_id, key) DO UPDATE SET \
             fingerprint = EXCLUDED.fingerprint, holder = NULL, lease_until = NULL, \
             status = EXCLUDED.status, content_type = EXCLUDED.content_type, \
             body = EXCLUDED.body, created_at = EXCLUDED.created_at, \
             expires_at = EXCLUDED.expires_at \
             WHERE idempotency_keys.expires_at <= EXCLUDED.created_at \
             OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= EXCLUDED.created_at) \
             RETURNING key";
        let kept: Vec<Key> = diesel::sql_query(SQL)
            .bind::<Array<Text>, _>(
                answers
                    .iter()
                    .map(|(g, _)| g.organization.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                answers
                    .iter()
                    .map(|(g, _)| g.key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                answers
                    .iter()
                    .map(|(g, _)| g.fingerprint.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Integer>, _>(
                answers
                    .iter()
                    .map(|(_, a)| i32::from(a.status))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                answers
                    .iter()
                    .map(|(_, a)| a.content_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                answers
                    .iter()
                    .map(|(_, a)| a.body.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Timestamptz>, _>(answers.iter().map(|(g, _)| g.now).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(
                answers
                    .iter()
                    .map(|(g, _)| g.expires_at)
                    .collect::<Vec<_>>(),
            )
            .load(self)
            .await?;
        Ok(kept.len() == answers.len())
    }

    /// One statement: the activation, the events (in order) and their deliveries.
    async fn activate_recording(
        &mut self,
        ids: &[i64],
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
        let sql = format!(
            "WITH a AS (UPDATE senders SET active = true WHERE id = ANY($1)), \
             e AS (INSERT INTO events (organization_id, type, domain, selector, email, created_at) \
             SELECT o, t, d, s, m, $7 \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS x (o, t, d, s, m, n) \
             ORDER BY n \
             RETURNING id, organization_id, type, created_at) {DELIVERIES}"
        );
        diesel::sql_query(sql)
            .into_boxed::<Pg>()
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(
                events
                    .iter()
                    .map(|e| e.organization.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                events
                    .iter()
                    .map(|e| e.domain.as_ref().map(|d| d.as_ascii()))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                events
                    .iter()
                    .map(|e| e.selector.as_ref().map(|s| s.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                events
                    .iter()
                    .map(|e| e.email.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind::<Timestamptz, _>(at)
            .execute(self)
            .await?;
        Ok(())
    }
}

impl RunWrites for SqliteConn {
    /// A multi-row insert, then the deactivation, in one trip to the connection's
    /// thread.
    async fn insert_senders(
        &mut self,
        senders: &[NewSender<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let owned: Vec<sqlite_sync::Sender> = senders
            .iter()
            .map(|s| {
                (
                    s.organization.to_owned(),
                    s.domain_id,
                    s.email.to_owned(),
                    s.reply_to.clone(),
                )
            })
            .collect();
        Ok(self
            .spawn_blocking(move |c| sqlite_sync::insert_senders(c, &owned, at))
            .await?)
    }

    /// A key's upsert per answer (SQLite's statements cost no round trip).
    async fn keep_answers(
        &mut self,
        answers: &[(&Guarded, StoredResponse)],
    ) -> Result<bool, DbError> {
        use crate::schema::sqlite::*;
        let conn = self;
        for (guarded, answer) in answers {
            if crate::ambient::take_key!(conn, guarded, &[], Some(answer))?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The activation, one multi-row insert of the events, one of their deliveries,
    /// in one trip to the connection's thread.
    async fn activate_recording(
        &mut self,
        ids: &[i64],
        events: &[NewEvent],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let ids = ids.to_vec();
        let owned: Vec<crate::events::OwnedEvent> =
            events.iter().map(crate::events::owned).collect();
        self.spawn_blocking(move |c| {
            use crate::schema::sqlite::*;
            diesel::RunQueryDsl::execute(
                diesel::update(senders::table.filter(senders::id.eq_any(&ids)))
                    .set(senders::active.eq(true)),
                c,
            )?;
            crate::events::sqlite_record_events(c, &owned, at)
        })
        .await?;
        Ok(())
    }
}

/// SQLite's statements run synchronously on the connection's thread.
mod sqlite_sync {
    use chrono::{DateTime, Utc};
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Nullable, Text};
    use diesel::sqlite::{Sqlite, SqliteConnection};

    use super::Inserted;
    use crate::schema::sqlite::*;

    /// A sender's organization, domain id, email and reply-to.
    pub(super) type Sender = (String, i64, String, Option<String>);

    pub(super) fn insert_senders(
        c: &mut SqliteConnection,
        senders: &[Sender],
        at: DateTime<Utc>,
    ) -> QueryResult<Vec<(i64, String)>> {
        let mut sql = String::from(
            "INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at) VALUES ",
        );
        for i in 0..senders.len() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, 0, ?)"
            } else {
                ", (?, ?, ?, ?, 0, ?)"
            });
        }
        sql.push_str(" ON CONFLICT (email) DO NOTHING RETURNING id, email");
        let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
        for (organization, domain_id, email, reply_to) in senders {
            query = query
                .bind::<Text, _>(organization)
                .bind::<BigInt, _>(*domain_id)
                .bind::<Text, _>(email)
                .bind::<Nullable<Text>, _>(reply_to)
                .bind::<Moment, _>(at);
        }
        let inserted: Vec<Inserted> = query.load(c)?;
        let mut organizations: Vec<&str> = senders
            .iter()
            .filter(|(_, _, email, _)| inserted.iter().any(|i| &i.email == email))
            .map(|(organization, ..)| organization.as_str())
            .collect();
        organizations.sort_unstable();
        organizations.dedup();
        if !organizations.is_empty() {
            // The new senders are inactive: only the organizations' old active ones.
            diesel::update(
                senders::table
                    .filter(senders::active)
                    .filter(senders::organization_id.eq_any(&organizations)),
            )
            .set(senders::active.eq(false))
            .execute(c)?;
        }
        Ok(inserted.into_iter().map(|i| (i.id, i.email)).collect())
    }
}
