//! Set-based registrations: a run of consecutive registrations of a group-commit
//! batch (a new sender on a domain that exists or on a new domain with its drawn key,
//! inbound untouched; unkeyed, or with an Idempotency-Key taken with the change) runs
//! a fixed number of statements whatever its length, instead of a savepoint and five
//! (a new domain: eleven) statements per member:
//!
//! 0. when the run creates domains (`create_domains!`): the registrable names'
//!    locks, the reads a creation's admission makes (the names and their ancestors,
//!    the organizations' domain counts and latest key generations), the creating
//!    members' taken emails, then the admitted domains with their keys (PostgreSQL
//!    one statement, SQLite two);
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
//! the same checks in the same order (a new domain's ancestor of another
//! organization, domain limit and key-generation window, each counting the run's
//! earlier creations; domain missing, or created only by a later member; another
//! organization's; sender limit; email taken), the last one registered the active
//! sender, a refused member without an event or a domain. What a set cannot decide
//! exactly falls back to running the members one by one in their own savepoints
//! (`group_commit`): a run in which a domain could reach its sender limit (the count
//! then depends on which earlier members fail), a new domain whose email an earlier
//! member of the run also registers, and a run whose statements failed (the savepoint
//! around the run is rolled back first, its creations with it). A run is one
//! organization's on PostgreSQL (the batch is the organization's); on SQLite it may
//! mix organizations, each with its own active sender.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain_core::DkimKey;
use domain_core::lifecycle::{EventType, KeyState, NewEvent};
use domain_core::ownership::registrable_of;
use domain_core::ports::store::{Registered, SenderRegistration, StoredDomain};

use domain_core::ports::idempotency::{Guarded, StoredResponse};

use crate::ambient::KeyClaim;
use crate::backend::{Backend, DbError, SqliteConn, in_transaction};
use crate::events::DELIVERIES;
use crate::ownership::refusal;
use crate::rows::{DomainRow, domain_columns, domains_with_active_key, sender_count};

/// Whether `reg` may run in a set: a registration on an existing or a new domain that
/// leaves inbound alone, unkeyed or with a key to take with its change (`claim`).
pub(crate) fn fits(reg: &SenderRegistration, claim: Option<&KeyClaim>) -> bool {
    !reg.enable_inbound && claim.is_none_or(|claim| !claim.is_taken() && claim.answer.is_set())
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

/// One domain a run creates, with its key.
pub(crate) struct NewDomain<'a> {
    organization: &'a str,
    name: &'a str,
    first_check_at: DateTime<Utc>,
    key: &'a DkimKey,
}

/// What the store's statements answer for one member before the insert.
enum Checked {
    Refused(DbError),
    /// Inserted as the run's `usize`-th sender (its first member with the email).
    Inserts(usize),
    /// The email of an earlier member of the run: taken, whichever way that went.
    Duplicate,
}

/// What a run's new domains came to before its senders: which members were refused
/// (their domains not created) and which created their domain.
struct Creations {
    /// Per member: refused by the domain's admission, or by an email already
    /// taken (one by one, its creation would have been rolled back with it).
    refused: Vec<Option<DbError>>,
    /// The domains the run created, by name: the member that created each.
    created_by: HashMap<String, usize>,
}

impl Creations {
    /// A run that creates nothing.
    fn none(members: usize) -> Self {
        Self {
            refused: (0..members).map(|_| None).collect(),
            created_by: HashMap::new(),
        }
    }
}

/// What the store held before a run's creations, as [`admit!`] reads it.
struct BeforeCreations {
    /// The owner of every domain the run names, or one of their ancestors.
    owners: HashMap<String, String>,
    /// The number of domains of each organization that creates in the run.
    owned: HashMap<String, i64>,
    /// Each such organization's latest key generations, newest first.
    latest: HashMap<String, Vec<DateTime<Utc>>>,
    /// The emails of the creating members that are taken already.
    taken: HashSet<String>,
}

/// Decides each new domain of the run as the members would one by one, in order:
/// a name that exists (or an earlier member created) is registered on as it
/// stands; otherwise the domain is admitted (an ancestor of another organization,
/// the domain limit, the key-generation window, each counting the run's earlier
/// creations) and created unless its email is taken. `None` when a creating
/// member's email is an earlier member's: whether that one took it is the plan's
/// to say, so the run goes one by one.
fn decide_creations(
    regs: &[&SenderRegistration],
    emails: &[String],
    before: BeforeCreations,
    now: DateTime<Utc>,
) -> Option<(Creations, Vec<usize>)> {
    let BeforeCreations {
        mut owners,
        mut owned,
        mut latest,
        taken,
    } = before;
    let mut creations = Creations::none(regs.len());
    let mut inserts = Vec::new();
    let mut earlier: HashSet<&str> = HashSet::new();
    for (i, (reg, email)) in regs.iter().zip(emails).enumerate() {
        let first = earlier.insert(email.as_str());
        if reg.new_key.is_none() {
            continue;
        }
        let name = reg.email.domain().as_ascii();
        let org = reg.organization.as_str();
        if owners.contains_key(name) {
            continue;
        }
        if !first {
            return None;
        }
        let refused = &mut creations.refused[i];
        let foreign = reg
            .creation
            .ancestors
            .iter()
            .any(|a| owners.get(a.as_ascii()).is_some_and(|owner| owner != org));
        let count = owned.entry(org.to_owned()).or_insert(0);
        let times = latest.entry(org.to_owned()).or_default();
        let limits = reg.creation.limits;
        let window_wait = domain_core::ownership::creation_wait(times, limits, now);
        if let Err(refusal) =
            domain_core::ownership::admit_creation(foreign, *count, limits, window_wait)
        {
            *refused = Some(DbError::from(refusal));
            continue;
        }
        if taken.contains(email) {
            *refused = Some(DbError::EmailTaken);
            continue;
        }
        *count += 1;
        times.insert(0, now);
        owners.insert(name.to_owned(), org.to_owned());
        creations.created_by.insert(name.to_owned(), i);
        inserts.push(i);
    }
    Some((creations, inserts))
}

/// Creates the new domains of a run (`$regs`, with `$emails` their canonical
/// emails) at `$now`, with their active keys, in a fixed number of statements: the
/// registrable names' locks, the reads [`admit!`] makes for one (owners of the names
/// and their ancestors, the organizations' domain counts and latest key
/// generations), the creating members' taken emails, and the domains with their
/// keys (`RunWrites::insert_domains`). Evaluates to
/// `Result<Option<Creations>, DbError>` (`None`: run the members one by one).
/// Expands inside an `in_transaction!` body.
macro_rules! create_domains {
    ($conn:ident, $regs:expr, $emails:expr, $now:expr) => {
        async {
            let regs: &[&SenderRegistration] = $regs;
            let emails: &[String] = $emails;
            let now: DateTime<Utc> = $now;
            let creating: Vec<&SenderRegistration> = regs
                .iter()
                .copied()
                .filter(|r| r.new_key.is_some())
                .collect();
            let mut registrables: Vec<&str> = creating
                .iter()
                .map(|r| registrable_of(r.email.domain().as_ascii(), &r.creation.ancestors))
                .collect();
            registrables.sort_unstable();
            registrables.dedup();
            $conn.lock_registrables(&registrables).await?;
            let mut names: Vec<&str> = creating
                .iter()
                .flat_map(|r| {
                    std::iter::once(r.email.domain().as_ascii())
                        .chain(r.creation.ancestors.iter().map(|a| a.as_ascii()))
                })
                .collect();
            names.sort_unstable();
            names.dedup();
            let owners: HashMap<String, String> = domains::table
                .filter(domains::name.eq_any(&names))
                .select((domains::name, domains::organization_id))
                .load::<(String, String)>(&mut *$conn)
                .await?
                .into_iter()
                .collect();
            let mut orgs: Vec<&str> = creating.iter().map(|r| r.organization.as_str()).collect();
            orgs.sort_unstable();
            orgs.dedup();
            let owned: HashMap<String, i64> = domains::table
                .filter(domains::organization_id.eq_any(&orgs))
                .group_by(domains::organization_id)
                .select((domains::organization_id, diesel::dsl::count_star()))
                .load::<(String, i64)>(&mut *$conn)
                .await?
                .into_iter()
                .collect();
            let mut latest = HashMap::new();
            for org in &orgs {
                let quota = creating
                    .iter()
                    .filter(|r| r.organization.as_str() == *org)
                    .map(|r| r.creation.limits.per_minute)
                    .max()
                    .unwrap_or(0);
                let times: Vec<DateTime<Utc>> = events::table
                    .filter(events::organization_id.eq(org))
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                        crate::ownership::KEY_GENERATIONS_SQL,
                    ))
                    .filter(events::created_at.gt(domain_core::ownership::window_start(now)))
                    .order(events::created_at.desc())
                    .select(events::created_at)
                    .limit(i64::from(quota))
                    .load(&mut *$conn)
                    .await?;
                latest.insert((*org).to_owned(), times);
            }
            let creating_emails: Vec<&str> = regs
                .iter()
                .zip(emails)
                .filter(|(r, _)| r.new_key.is_some())
                .map(|(_, e)| e.as_str())
                .collect();
            let taken: HashSet<String> = senders::table
                .filter(senders::email.eq_any(&creating_emails))
                .select(senders::email)
                .load::<String>(&mut *$conn)
                .await?
                .into_iter()
                .collect();
            let before = BeforeCreations {
                owners,
                owned,
                latest,
                taken,
            };
            let Some((creations, inserts)) = decide_creations(regs, emails, before, now) else {
                return Ok::<Option<Creations>, DbError>(None);
            };
            if !inserts.is_empty() {
                let mut domains = Vec::with_capacity(inserts.len());
                for &i in &inserts {
                    let reg = regs[i];
                    let Some(key) = reg.new_key.as_ref() else {
                        return Err(DbError::Corrupt("a creation without its key".into()));
                    };
                    domains.push(NewDomain {
                        organization: reg.organization.as_str(),
                        name: reg.email.domain().as_ascii(),
                        first_check_at: reg.creation.first_check_at,
                        key,
                    });
                }
                $conn.insert_domains(&domains, now).await?;
            }
            Ok(Some(creations))
        }
        .await
    };
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
    let creating = regs.iter().any(|r| r.new_key.is_some());
    in_transaction!(backend, |c| {
        let now = Utc::now();
        let creations = if creating {
            match create_domains!(c, regs, &emails, now)? {
                Some(creations) => creations,
                None => return Ok(RunOutcome::OneByOne),
            }
        } else {
            Creations::none(regs.len())
        };
        let rows: Vec<(DomainRow, Option<i64>)> = domains_with_active_key!()
            .filter(domains::name.eq_any(&names))
            .select((domain_columns!(), sender_count!()))
            .load(c)
            .await?;
        let Some(plan) = plan(regs, &emails, rows, creations)? else {
            if creating {
                // Undo the run's creations with its savepoint: one by one instead.
                return Err(DbError::Raced);
            }
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
        for ((reg, check), created) in regs.iter().zip(&plan.checked).zip(&plan.created) {
            let Checked::Inserts(n) = check else { continue };
            let email = plan.senders[*n].email;
            let Some(id) = by_email.get(email) else {
                if *created {
                    // Another instance took the email since it was read: this
                    // member's domain must not stay. The run runs one by one.
                    return Err(DbError::Raced);
                }
                continue;
            };
            won.insert(*n);
            last.insert(reg.organization.as_str(), *id);
            if *created {
                events.push(NewEvent::domain(
                    &reg.organization,
                    EventType::DomainCreated,
                    reg.email.domain(),
                ));
            }
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

/// A copy of an outcome the plan decided (only those six).
fn same(error: &DbError) -> DbError {
    match error {
        DbError::DomainTaken => DbError::DomainTaken,
        DbError::KeyRequired => DbError::KeyRequired,
        DbError::DomainLimit => DbError::DomainLimit,
        DbError::RateLimited(wait) => DbError::RateLimited(*wait),
        DbError::Raced => DbError::Raced,
        _ => DbError::EmailTaken,
    }
}

/// The run decided before its writes.
struct Plan<'a> {
    checked: Vec<Checked>,
    senders: Vec<NewSender<'a>>,
    /// The domain each member registers on, for its answer.
    domains: Vec<Option<StoredDomain>>,
    /// Whether each member created its domain in the run.
    created: Vec<bool>,
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
            .zip(&self.created)
            .map(|(((_, check), domain), created)| match (check, domain) {
                (Checked::Refused(error), _) => Err(same(error)),
                (Checked::Inserts(n), Some(domain)) if won.contains(n) => Ok(Registered {
                    domain: domain.clone(),
                    domain_created: *created,
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
            .zip(self.created)
            .map(|(((_, check), domain), created)| match (check, domain) {
                (Checked::Refused(error), _) => Err(error),
                (Checked::Inserts(n), Some(domain)) if won.contains(&n) => Ok(Registered {
                    domain,
                    domain_created: created,
                }),
                _ => Err(DbError::EmailTaken),
            })
            .collect()
    }
}

/// Checks each member as the one-by-one path does (refused before its sender by
/// the run's creations, domain missing or created only by a later member, another
/// organization's, sender limit) against the domains read; `None` when a domain
/// could reach its sender limit within the run.
fn plan<'a>(
    regs: &[&'a SenderRegistration],
    emails: &'a [String],
    rows: Vec<(DomainRow, Option<i64>)>,
    creations: Creations,
) -> Result<Option<Plan<'a>>, DbError> {
    let mut found: HashMap<String, (i64, StoredDomain, i64)> = HashMap::new();
    for (row, count) in rows {
        let (id, name) = (row.id, row.name.clone());
        found.insert(name, (id, row.into_domain()?, count.unwrap_or(0)));
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut plan = Plan {
        checked: Vec::with_capacity(regs.len()),
        senders: Vec::with_capacity(regs.len()),
        domains: Vec::with_capacity(regs.len()),
        created: Vec::with_capacity(regs.len()),
    };
    for (i, ((reg, email), refused)) in regs.iter().zip(emails).zip(creations.refused).enumerate() {
        let org = reg.organization.as_str();
        let name = reg.email.domain().as_ascii();
        let creator = creations.created_by.get(name).copied();
        plan.created.push(creator == Some(i));
        if let Some(error) = refused {
            plan.checked.push(Checked::Refused(error));
            plan.domains.push(None);
            continue;
        }
        // A domain a later member creates did not exist yet for this one.
        let found_now = found
            .get_mut(name)
            .filter(|_| creator.is_none_or(|j| j <= i));
        let Some((domain_id, domain, count)) = found_now else {
            // With a key, the domain existed when the run looked (else the run would
            // have created it) and was deleted since: the member runs again and
            // creates it, as one by one.
            let missing = if reg.new_key.is_some() {
                DbError::Raced
            } else {
                DbError::KeyRequired
            };
            plan.checked.push(Checked::Refused(missing));
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
    /// Makes the run's creations under each of `registrables` (sorted) take turns
    /// with every other creation under them, across instances, until the transaction
    /// ends (as `locks::RegistrableLock` does for one), in one statement.
    async fn lock_registrables(&mut self, registrables: &[&str]) -> Result<(), DbError>;

    /// Inserts `domains`, created `at`, each with its key active.
    async fn insert_domains(
        &mut self,
        domains: &[NewDomain<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError>;

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
    async fn lock_registrables(&mut self, registrables: &[&str]) -> Result<(), DbError> {
        if registrables.is_empty() {
            return Ok(());
        }
        crate::backend::lock_registrables(self, registrables).await
    }

    /// One statement: the domains from arrays, and their keys joined to the ids the
    /// insert returned.
    async fn insert_domains(
        &mut self,
        domains: &[NewDomain<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        use diesel::sql_types::{Array, Bytea, Text, Timestamptz};
        const SQL: &str = "WITH d AS (\
             INSERT INTO domains (organization_id, name, inbound_enabled, created_at, updated_at, next_check_at) \
             SELECT o, n, false, $7, $7, f \
             FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS m (o, n, f, i) \
             ORDER BY i \
             RETURNING id, name) \
             INSERT INTO dkim_keys (domain_id, selector, state, public_key, private_key_sealed, created_at, activated_at) \
             SELECT d.id, k.s, $8, k.p, k.b, $7, $7 \
             FROM d JOIN unnest($2::text[], $4::text[], $5::text[], $6::bytea[]) AS k (n, s, p, b) ON k.n = d.name";
        let inserted = diesel::sql_query(SQL)
            .bind::<Array<Text>, _>(domains.iter().map(|d| d.organization).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(domains.iter().map(|d| d.name).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(
                domains.iter().map(|d| d.first_check_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                domains
                    .iter()
                    .map(|d| d.key.selector.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                domains
                    .iter()
                    .map(|d| d.key.public_key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                domains
                    .iter()
                    .map(|d| d.key.sealed_private_key.0.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind::<Timestamptz, _>(at)
            .bind::<Text, _>(KeyState::Active.as_str())
            .execute(self)
            .await?;
        if inserted != domains.len() {
            return Err(DbError::Raced);
        }
        Ok(())
    }

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
    async fn lock_registrables(&mut self, _registrables: &[&str]) -> Result<(), DbError> {
        // The IMMEDIATE transaction already holds the database's only write lock.
        Ok(())
    }

    /// Each domain and its key, in one trip to the connection's thread.
    async fn insert_domains(
        &mut self,
        domains: &[NewDomain<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let owned: Vec<sqlite_sync::Domain> = domains
            .iter()
            .map(|d| sqlite_sync::Domain {
                organization: d.organization.to_owned(),
                name: d.name.to_owned(),
                first_check_at: d.first_check_at,
                selector: d.key.selector.as_str().to_owned(),
                public_key: d.key.public_key.clone(),
                sealed: d.key.sealed_private_key.0.clone(),
            })
            .collect();
        Ok(self
            .spawn_blocking(move |c| sqlite_sync::insert_domains(c, &owned, at))
            .await?)
    }

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
    use crate::backend::multi_row_values;
    use crate::schema::sqlite::*;

    /// A sender's organization, domain id, email and reply-to.
    pub(super) type Sender = (String, i64, String, Option<String>);

    /// A domain to create, with its key.
    pub(super) struct Domain {
        pub(super) organization: String,
        pub(super) name: String,
        pub(super) first_check_at: DateTime<Utc>,
        pub(super) selector: String,
        pub(super) public_key: String,
        pub(super) sealed: Vec<u8>,
    }

    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        name: String,
    }

    /// Two multi-row statements: the domains, returning their ids, then their keys.
    pub(super) fn insert_domains(
        c: &mut SqliteConnection,
        domains: &[Domain],
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        let mut sql = multi_row_values(
            "INSERT INTO domains (organization_id, name, inbound_enabled, created_at, updated_at, next_check_at) VALUES ",
            "(?, ?, 0, ?, ?, ?)",
            domains.len(),
        );
        sql.push_str(" RETURNING id, name");
        let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
        for domain in domains {
            query = query
                .bind::<Text, _>(&domain.organization)
                .bind::<Text, _>(&domain.name)
                .bind::<Moment, _>(at)
                .bind::<Moment, _>(at)
                .bind::<Moment, _>(domain.first_check_at);
        }
        let created: Vec<Created> = query.load(c)?;
        let ids: std::collections::HashMap<&str, i64> =
            created.iter().map(|d| (d.name.as_str(), d.id)).collect();
        let sql = multi_row_values(
            "INSERT INTO dkim_keys (domain_id, selector, state, public_key, private_key_sealed, created_at, activated_at) VALUES ",
            "(?, ?, ?, ?, ?, ?, ?)",
            domains.len(),
        );
        let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
        for domain in domains {
            let Some(id) = ids.get(domain.name.as_str()) else {
                return Err(diesel::result::Error::NotFound);
            };
            query = query
                .bind::<BigInt, _>(*id)
                .bind::<Text, _>(&domain.selector)
                .bind::<Text, _>(domain_core::lifecycle::KeyState::Active.as_str())
                .bind::<Text, _>(&domain.public_key)
                .bind::<diesel::sql_types::Binary, _>(&domain.sealed)
                .bind::<Moment, _>(at)
                .bind::<Moment, _>(at);
        }
        query.execute(c)?;
        Ok(())
    }

    pub(super) fn insert_senders(
        c: &mut SqliteConnection,
        senders: &[Sender],
        at: DateTime<Utc>,
    ) -> QueryResult<Vec<(i64, String)>> {
        let mut sql = multi_row_values(
            "INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at) VALUES ",
            "(?, ?, ?, ?, 0, ?)",
            senders.len(),
        );
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

#[cfg(test)]
mod tests {
    use domain_core::lifecycle::Page;
    use domain_core::ownership::{CreationLimits, ancestors};
    use domain_core::ports::admin::Administration as _;
    use domain_core::ports::lifecycle::EventStore as _;
    use domain_core::ports::store::{CreationRules, DomainStore as _};
    use domain_core::{EmailAddress, OrganizationId, OrganizationName, SealedKey, Selector};

    use super::*;
    use crate::Store;
    use crate::domains::register_once;
    use crate::test_support::{TestDatabase, backends};

    const ORGS: [&str; 3] = ["Acme", "Other", "Small"];

    fn limits(org: usize) -> CreationLimits {
        CreationLimits {
            max_domains: if org == 2 { 1 } else { 100 },
            per_minute: 4,
            max_senders_per_domain: 1000,
        }
    }

    fn key(selector: &str) -> DkimKey {
        DkimKey {
            selector: Selector::new(selector).unwrap(),
            public_key: format!("MIIBIjANBgkqhki{selector}"),
            sealed_private_key: SealedKey(selector.as_bytes().to_vec()),
        }
    }

    /// Organization `org` (an index of [`ORGS`]) registers `email`, with a new key
    /// named `selector` if any.
    fn reg(
        orgs: &[OrganizationId],
        org: usize,
        email: &str,
        selector: Option<&str>,
    ) -> SenderRegistration {
        let email = EmailAddress::parse(email).unwrap();
        SenderRegistration {
            organization: orgs[org].clone(),
            creation: CreationRules {
                ancestors: ancestors(email.domain()),
                limits: limits(org),
                first_check_at: Utc::now() + chrono::Duration::minutes(1),
            },
            email,
            reply_to: None,
            new_key: selector.map(key),
            enable_inbound: false,
        }
    }

    /// The run: every rule a creation checks, each deciding at least one member,
    /// and members whose outcome depends on an earlier one's creation.
    fn run(orgs: &[OrganizationId]) -> Vec<SenderRegistration> {
        vec![
            // late.com is created by a later member: missing for this one.
            reg(orgs, 0, "a1@late.com", None),
            reg(orgs, 0, "x@new1.com", Some("k1")),
            reg(orgs, 0, "y@late.com", Some("k2")),
            // Created by an earlier member: registered on as it stands.
            reg(orgs, 0, "z@new1.com", Some("k3")),
            reg(orgs, 0, "a2@late.com", None),
            // An ancestor of another organization's, stored before the run.
            reg(orgs, 0, "s@sub.parent.com", Some("k4")),
            // The key-generation window (4 a minute: acme.com, new1, late, new3).
            reg(orgs, 0, "w@new3.com", Some("k5")),
            reg(orgs, 0, "v@new4.com", Some("k6")),
            // The domain limit (1).
            reg(orgs, 2, "a@small1.com", Some("k7")),
            reg(orgs, 2, "b@small2.com", Some("k8")),
            // An email of an earlier member.
            reg(orgs, 0, "x@new1.com", None),
            reg(orgs, 0, "q@acme.com", None),
            // An ancestor another organization created earlier in the run.
            reg(orgs, 1, "o@sub.new1.com", Some("k9")),
            // Another organization's domain, created in the run.
            reg(orgs, 1, "p@late.com", Some("k10")),
            reg(orgs, 1, "p@other.com", None),
        ]
    }

    /// A store with the organizations, and the domains that exist before the run.
    async fn seeded(db: &TestDatabase) -> (Store, Vec<OrganizationId>) {
        let store = db.store().await;
        let mut orgs = Vec::new();
        for name in ORGS {
            let name = OrganizationName::parse(name).unwrap();
            orgs.push(store.create_organization(&name).await.unwrap().0);
        }
        for (org, email, selector) in [
            (0, "first@acme.com", "s1"),
            (1, "first@other.com", "s2"),
            (1, "first@parent.com", "s3"),
        ] {
            store
                .register_sender(reg(&orgs, org, email, Some(selector)))
                .await
                .unwrap();
        }
        (store, orgs)
    }

    /// An outcome, with the organization named by its index and the wait left out.
    fn outcome(orgs: &[OrganizationId], outcome: &Result<Registered, DbError>) -> String {
        match outcome {
            Ok(r) => format!(
                "{} of org {} (key {}), created: {}",
                r.domain.name.as_ascii(),
                orgs.iter()
                    .position(|o| *o == r.domain.organization)
                    .unwrap(),
                r.domain.selector.as_str(),
                r.domain_created,
            ),
            Err(DbError::RateLimited(_)) => "rate limited".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    /// What each organization holds: its domains with their senders (and which is
    /// active), and its events in order.
    async fn state(store: &Store, orgs: &[OrganizationId]) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, org) in orgs.iter().enumerate() {
            let page = Page {
                after: None,
                limit: 100,
            };
            for domain in store.list_domains(org, &page).await.unwrap().items {
                let detail = store
                    .domain_detail(org, &domain.name)
                    .await
                    .unwrap()
                    .unwrap();
                let senders: Vec<String> = detail
                    .senders
                    .iter()
                    .map(|s| format!("{}{}", s.email, if s.active { "*" } else { "" }))
                    .collect();
                let keys: Vec<&str> = detail.keys.iter().map(|k| k.selector.as_str()).collect();
                lines.push(format!(
                    "org {i}: {} keys {keys:?} senders {senders:?}",
                    domain.name.as_ascii()
                ));
            }
            let page = Page {
                after: None,
                limit: 100,
            };
            for event in store.list_events(org, &page).await.unwrap().items {
                lines.push(format!(
                    "org {i}: {} {:?} {:?}",
                    event.kind.as_str(),
                    event.domain,
                    event.email
                ));
            }
        }
        lines
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_that_creates_domains_ends_as_its_members_would_one_by_one() {
        for kind in backends() {
            let alone_db = TestDatabase::new(kind).await;
            let (alone, alone_orgs) = seeded(&alone_db).await;
            let mut one_by_one = Vec::new();
            for r in run(&alone_orgs) {
                let done = register_once(&alone.backend, &r, false, None).await;
                one_by_one.push(outcome(&alone_orgs, &done.map(|(r, _)| r)));
            }

            let set_db = TestDatabase::new(kind).await;
            let (set, set_orgs) = seeded(&set_db).await;
            let regs = run(&set_orgs);
            let refs: Vec<&SenderRegistration> = regs.iter().collect();
            let RunOutcome::Ran(ran) = register_run(&set.backend, &refs, &vec![None; refs.len()])
                .await
                .unwrap()
            else {
                panic!("{kind:?}: the run went one by one");
            };
            let in_a_set: Vec<String> = ran.iter().map(|(o, _)| outcome(&set_orgs, o)).collect();

            assert_eq!(in_a_set, one_by_one, "{kind:?}: outcomes");
            assert_eq!(
                state(&set, &set_orgs).await,
                state(&alone, &alone_orgs).await,
                "{kind:?}: what is stored"
            );
            // Every rule decided someone.
            for expected in [
                "the domain does not exist and no key was supplied",
                "the domain belongs to another organization",
                "rate limited",
                "the organization's domain limit is reached",
                "the email is already registered",
            ] {
                assert!(
                    one_by_one.iter().any(|o| o == expected),
                    "{kind:?}: {expected}"
                );
            }
            assert_eq!(
                one_by_one
                    .iter()
                    .filter(|o| o.ends_with("created: true"))
                    .count(),
                4,
                "{kind:?}: {one_by_one:#?}"
            );
        }
    }
}
