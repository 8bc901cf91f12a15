//! Group commit for register-sender: the registrations that queue up while one is in
//! the database run next as **one** transaction, one savepoint each, so one commit
//! (and one WAL flush, or one SQLite journal sync) serves the whole batch.
//!
//! Registrations of one organization take turns on its row lock anyway (see `locks`),
//! and that lock is held through the commit's flush, which on an ordinary disk costs
//! milliseconds: one at a time, an organization could do a few hundred a second
//! however many arrive. Batched, the flush is paid once per batch.
//!
//! - **A queue per turn.** PostgreSQL: [`crate::turns::POSTGRES_TURNS`] of them, each organization
//!   always in the same one (turns run in parallel, each on its own connection; a
//!   batch locks the rows of the organizations it registers for, in order, in one
//!   statement), so registrations of many organizations share commits as one
//!   organization's do. SQLite: one for the whole process, since the database has a
//!   single writer anyway; writes reach it in arrival order instead of racing for the
//!   lock in the busy handler.
//! - **A fair share of each batch.** When more members wait than a batch holds, each
//!   organization waiting gets an equal share of the batch first (`take_fairly`), so
//!   one organization's flood delays another's registration by about one batch.
//! - **The first to arrive leads.** It spawns a task that runs batches (at most
//!   [`MAX_BATCH`] each, in arrival order) until the queue is empty. The task is
//!   detached from the request, so a client that hangs up does not cancel the others'
//!   work; a member whose caller is gone is skipped before it starts.
//! - **As if one by one.** Members run in order, each in its own savepoint: one that
//!   fails (email taken, domain of another organization) is rolled back alone, the
//!   others see the batch's earlier members, and the last one activated is the active
//!   sender. A member that lost a race with another instance (a retryable conflict)
//!   is rolled back and runs again at the head of the next batch.
//! - **Answers after the commit.** Nobody hears anything before the batch commits; if
//!   the commit (or the connection) fails, every member is told the store was
//!   unavailable — exactly what each would have been told alone. The database still
//!   holds every invariant, across instances.
//! - A batch of one runs in its own transaction, without a savepoint.
//!
//! - **Keyed members.** A registration of a request made with an Idempotency-Key
//!   keeps the request's answer over its key's record in its own savepoint (a
//!   refusal's answer right after the savepoint rolled back), so the answer commits
//!   with the change, in the batch's one transaction.
//! - **Key takes.** Taking an Idempotency-Key (the short write a keyed request makes
//!   before it runs) is a member too: one upsert in the batch, so a keyed request
//!   adds a statement to a shared transaction instead of a transaction (and a flush,
//!   and on SQLite a turn on the write lock) of its own.
//!
//! Waiting in the queue holds no connection, and is bounded: a member not started
//! within the statement timeout is answered unavailable without running, and a
//! caller waits no longer than the store's deadline for its answer (a batch stuck
//! on a stalled database is given up on; whether it commits later is what a keyed
//! retry finds out).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use domain_core::ports::idempotency::{Guarded, Held};
use domain_core::ports::store::{Registered, SenderRegistration};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::ambient::{self, Ambient, AmbientConn, KeyClaim, take_key_once};
use crate::backend::{Backend, DbError, Pools, backoff, bounded, runs_again};
use crate::batch;
use crate::domains::register_keeping;
use crate::writer::Writer;

/// Members of one transaction at most: bounds how long the first waits for the last.
pub(crate) const MAX_BATCH: usize = 64;

/// What the queues have done, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Transactions committed or attempted.
    pub batches: u64,
    /// Registrations run in them (a retried one counts once per run).
    pub registrations: u64,
    /// Of those, registrations run in a set with the others of their run
    /// (`batch`): a fixed number of statements for the whole run.
    pub set_based: u64,
    /// Of those, registrations run one by one: alone in their batch, or in a
    /// savepoint of their own (inbound to turn on, a keyed request whose key was
    /// taken up front, a domain near its sender limit, a set that failed).
    pub one_by_one: u64,
}

type Reply = oneshot::Sender<Result<Done, DbError>>;

/// What a member does in its batch.
pub(crate) enum Work {
    /// Register a sender; with a claim, keep the keyed request's answer with it.
    Register {
        registration: SenderRegistration,
        claim: Option<Arc<KeyClaim>>,
    },
    /// Take an Idempotency-Key for `holder`.
    Take { guarded: Guarded, holder: Vec<u8> },
}

/// What a member came to.
pub(crate) enum Done {
    Registered(Box<Registered>),
    /// `None`: the key is the holder's now.
    Taken(Option<Held>),
}

struct Member {
    work: Work,
    attempt: u32,
    queued: Instant,
    reply: Reply,
}

impl Member {
    /// Whether the member may run in a set with its neighbours (`batch::fits`).
    fn fits_a_set(&self) -> bool {
        match &self.work {
            Work::Register {
                registration,
                claim,
            } => batch::fits(registration, claim.as_deref()),
            Work::Take { .. } => false,
        }
    }

    /// The organization the member writes for.
    fn organization(&self) -> &str {
        match &self.work {
            Work::Register { registration, .. } => registration.organization.as_str(),
            Work::Take { guarded, .. } => guarded.organization.as_str(),
        }
    }

    fn claim(&self) -> Option<&KeyClaim> {
        match &self.work {
            Work::Register { claim, .. } => claim.as_deref(),
            Work::Take { .. } => None,
        }
    }

    /// Tells the member's keyed request, once its transaction committed, that its
    /// answer was kept (`kept`), or what another request with the key kept first.
    fn committed(&self, outcome: &Result<Done, DbError>, kept: bool) {
        let Some(claim) = self.claim() else { return };
        if kept {
            claim.mark_kept();
        }
        if let Err(DbError::Superseded(held)) = outcome {
            claim.supersede(held.clone());
        }
    }

    /// Runs the member's work once (in the task's ambient unit of work, if any);
    /// also whether it kept a keyed request's answer.
    async fn run(&self, backend: &Backend, org_locked: bool) -> (Result<Done, DbError>, bool) {
        match &self.work {
            Work::Register {
                registration,
                claim,
            } => {
                let (outcome, kept) =
                    register_keeping(backend, registration, org_locked, claim.as_deref()).await;
                (
                    outcome.map(|registered| Done::Registered(Box::new(registered))),
                    kept,
                )
            }
            Work::Take { guarded, holder } => (
                take_key_once(backend, guarded, holder)
                    .await
                    .map(Done::Taken),
                false,
            ),
        }
    }
}

/// The queues, one per turn; a queue exists while its leader runs.
#[derive(Default)]
struct Queues {
    waiting: Mutex<HashMap<String, VecDeque<Member>>>,
    batches: AtomicU64,
    registrations: AtomicU64,
    set_based: AtomicU64,
    one_by_one: AtomicU64,
}

pub(crate) struct GroupCommit {
    queues: Arc<Queues>,
    /// SQLite's writer thread, started with the first registration (`None` if the
    /// thread could not be started: batches then run on the runtime).
    writer: OnceLock<Option<Writer>>,
}

impl GroupCommit {
    pub(crate) fn new() -> Self {
        Self {
            queues: Arc::default(),
            writer: OnceLock::new(),
        }
    }

    /// Where a turn's batches run: SQLite's on its writer thread; PostgreSQL's on the
    /// runtime the store was built on (where its connections are driven).
    fn runtime(&self, backend: &Backend) -> Option<Handle> {
        if let Pools::Sqlite(_) = backend.pools {
            let writer = self.writer.get_or_init(|| {
                Writer::start()
                    .inspect_err(|error| {
                        tracing::warn!(%error, "could not start the SQLite writer thread");
                    })
                    .ok()
            });
            if let Some(writer) = writer {
                return Some(writer.handle().clone());
            }
        }
        backend.runtime.clone()
    }

    pub(crate) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            batches: self.queues.batches.load(Ordering::Relaxed),
            registrations: self.queues.registrations.load(Ordering::Relaxed),
            set_based: self.queues.set_based.load(Ordering::Relaxed),
            one_by_one: self.queues.one_by_one.load(Ordering::Relaxed),
        }
    }

    /// Queues `registration` behind the others of its `turn` and waits for the batch
    /// it runs in to commit, within the store's deadline. With `claim`, the member
    /// keeps the keyed request's answer with its change.
    pub(crate) async fn register(
        &self,
        backend: &Backend,
        turn: &str,
        registration: SenderRegistration,
        claim: Option<Arc<KeyClaim>>,
    ) -> Result<Registered, DbError> {
        let work = Work::Register {
            registration,
            claim,
        };
        match self.submit(backend, turn, work).await? {
            Done::Registered(registered) => Ok(*registered),
            Done::Taken(_) => Err(DbError::Corrupt("a registration answered as a take".into())),
        }
    }

    /// Takes `guarded`'s key for `holder` in the next batch of its `turn`: `None`
    /// once it is the holder's, else what holds it.
    pub(crate) async fn take(
        &self,
        backend: &Backend,
        turn: &str,
        guarded: Guarded,
        holder: Vec<u8>,
    ) -> Result<Option<Held>, DbError> {
        match self
            .submit(backend, turn, Work::Take { guarded, holder })
            .await?
        {
            Done::Taken(seen) => Ok(seen),
            Done::Registered(_) => {
                Err(DbError::Corrupt("a take answered as a registration".into()))
            }
        }
    }

    /// Queues `work` behind the others of its `turn` and waits for the batch it runs
    /// in to commit, within the store's deadline.
    async fn submit(&self, backend: &Backend, turn: &str, work: Work) -> Result<Done, DbError> {
        let (reply, answer) = oneshot::channel();
        let member = Member {
            work,
            attempt: 1,
            queued: Instant::now(),
            reply,
        };
        if let Some(leader) = Leader::enqueue(&self.queues, backend, turn, member) {
            match self.runtime(backend) {
                Some(runtime) => runtime.spawn(leader.run()),
                None => tokio::spawn(leader.run()),
            };
        }
        let deadline = backend.deadline();
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(DbError::Unavailable(
                "the registration's batch was abandoned".into(),
            )),
            Err(_) => {
                // As a store call past its deadline: the caller's unit of work (a keyed
                // request) is given up on without another wait on the database.
                ambient::poison_current();
                crate::faults::record(crate::faults::Fault::Timeout);
                Err(DbError::Unavailable(
                    format!("the batch did not answer within {deadline:?}").into(),
                ))
            }
        }
    }
}

impl Queues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Member>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs one turn's batches until its queue is empty.
struct Leader {
    turn: Turn,
    backend: Backend,
}

/// A turn's queue, held by its leader. A leader that stops before its queue is empty
/// (a panic in a batch, its runtime shutting down) takes the queue with it: the
/// members still queued are answered "abandoned" (their reply channels close), and
/// the next registration of the turn leads afresh. Otherwise they, and every later
/// registration of the turn, would wait behind a leader that no longer runs.
struct Turn {
    queues: Arc<Queues>,
    name: String,
    /// The leader emptied the queue and removed it itself.
    finished: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.finished {
            self.queues.lock().remove(&self.name);
        }
    }
}

impl Leader {
    /// Queues `member` behind the others of `turn`: the turn's leader to start when
    /// the member found no queue (it leads).
    fn enqueue(
        queues: &Arc<Queues>,
        backend: &Backend,
        turn: &str,
        member: Member,
    ) -> Option<Self> {
        let mut waiting = queues.lock();
        if let Some(queue) = waiting.get_mut(turn) {
            queue.push_back(member);
            return None;
        }
        waiting.insert(turn.to_owned(), VecDeque::from([member]));
        Some(Self {
            turn: Turn {
                queues: Arc::clone(queues),
                name: turn.to_owned(),
                finished: false,
            },
            backend: backend.clone(),
        })
    }

    /// Moves `member`, whose organization's row another transaction holds, out of a
    /// shared turn to its organization's own: there it waits for the row (boundedly)
    /// without holding up the other organizations' batches.
    fn move_to_own_turn(&self, member: Member) {
        let turn = format!("organization:{}", member.organization());
        if let Some(leader) = Self::enqueue(&self.turn.queues, &self.backend, &turn, member) {
            // On the runtime this leader runs on: the one its turn's batches run on.
            tokio::spawn(leader.run());
        }
    }

    async fn run(mut self) {
        loop {
            let batch: Vec<Member> = {
                let turn = &mut self.turn;
                let mut waiting = turn.queues.lock();
                let Some(queue) = waiting.get_mut(&turn.name) else {
                    turn.finished = true;
                    return;
                };
                if queue.is_empty() {
                    waiting.remove(&turn.name);
                    turn.finished = true;
                    return;
                }
                take_fairly(queue, MAX_BATCH)
            };
            let (size, started) = (batch.len(), Instant::now());
            let retry = self.run_batch(batch).await;
            tracing::debug!(size, elapsed = ?started.elapsed(), "ran a batch of registrations");
            if let Some(attempt) = retry.iter().map(|m| m.attempt).max() {
                // Give the unit of work that won the race time to finish.
                tokio::time::sleep(backoff(attempt)).await;
                let mut waiting = self.turn.queues.lock();
                let queue = waiting.entry(self.turn.name.clone()).or_default();
                for member in retry.into_iter().rev() {
                    queue.push_front(member);
                }
            }
        }
    }

    /// Counts a batch of `members` in the metrics.
    fn count(&self, members: &[Member]) {
        let queues = &self.turn.queues;
        queues.batches.fetch_add(1, Ordering::Relaxed);
        let registrations = members
            .iter()
            .filter(|m| matches!(m.work, Work::Register { .. }))
            .count();
        queues
            .registrations
            .fetch_add(registrations as u64, Ordering::Relaxed);
    }

    /// Runs one batch; returns the members to run again.
    async fn run_batch(&self, batch: Vec<Member>) -> Vec<Member> {
        let bound = self.backend.statement_timeout;
        let mut members = Vec::with_capacity(batch.len());
        for member in batch {
            if member.reply.is_closed() {
                continue;
            }
            if member.queued.elapsed() > bound {
                let _ = member.reply.send(Err(DbError::Unavailable(
                    format!(
                        "waited longer than {bound:?} for the organization's other registrations"
                    )
                    .into(),
                )));
                continue;
            }
            members.push(member);
        }
        if members.is_empty() {
            return Vec::new();
        }
        // A shared turn's batch must not wait for one organization's row: it takes
        // the rows it can get and moves the rest on, even for a batch of one.
        let shared_turn = crate::turns::is_shared(&self.turn.name);
        if let ([_], false) = (members.as_slice(), shared_turn) {
            self.count(&members);
            let member = members.pop().expect("one member");
            if matches!(member.work, Work::Register { .. }) {
                self.turn.queues.one_by_one.fetch_add(1, Ordering::Relaxed);
            }
            let (outcome, kept) = member.run(&self.backend, false).await;
            member.committed(&outcome, kept);
            return settle(member, outcome).into_iter().collect();
        }

        let backend = &self.backend;
        let mut conn = match bounded(
            backend.deadline(),
            AmbientConn::open(backend, crate::write_gate::Writer::Batch),
        )
        .await
        {
            Ok(conn) => conn,
            Err(error) => {
                fail_all(members, &error);
                return Vec::new();
            }
        };
        // Takes alone need no organization lock.
        let mut organizations: Vec<&str> = members
            .iter()
            .filter(|m| matches!(m.work, Work::Register { .. }))
            .map(Member::organization)
            .collect();
        organizations.sort_unstable();
        organizations.dedup();
        let locked = match bounded(
            backend.deadline(),
            lock_turn(&mut conn, &organizations, shared_turn),
        )
        .await
        {
            Ok(locked) => locked,
            Err(error) => {
                conn.discard();
                fail_all(members, &error);
                return Vec::new();
            }
        };
        let org_locked = locked.len() == organizations.len();
        let members = if shared_turn && !org_locked {
            let (members, elsewhere): (Vec<Member>, Vec<Member>) =
                members.into_iter().partition(|m| {
                    !matches!(m.work, Work::Register { .. }) || locked.contains(m.organization())
                });
            for member in elsewhere {
                self.move_to_own_turn(member);
            }
            members
        } else {
            members
        };
        let org_locked = org_locked || shared_turn;
        self.count(&members);
        let shared = Ambient::open_now(conn);
        let mut done = Vec::with_capacity(members.len());
        let mut retry = Vec::new();
        let mut unfinished = Vec::new();
        let mut failed = None;
        let mut members = members.into_iter().peekable();
        while let Some(member) = members.next() {
            // Consecutive registrations run as one set (`batch`).
            let mut run = vec![member];
            if run[0].fits_a_set() {
                while let Some(next) = members.next_if(Member::fits_a_set) {
                    run.push(next);
                }
            }
            if run.len() > 1 {
                match ambient::scope(Arc::clone(&shared), run_set(backend, &run)).await {
                    Ok(Some(outcomes)) => {
                        self.turn
                            .queues
                            .set_based
                            .fetch_add(run.len() as u64, Ordering::Relaxed);
                        for (member, (outcome, kept)) in run.into_iter().zip(outcomes) {
                            retry.extend(settle_later(
                                member,
                                outcome.map(|registered| Done::Registered(Box::new(registered))),
                                kept,
                                &mut done,
                            ));
                        }
                        continue;
                    }
                    Err(error @ DbError::Unavailable(_)) => {
                        unfinished.extend(run);
                        failed = Some(error);
                        break;
                    }
                    // A domain at its sender limit, or statements that failed (rolled
                    // back with the run's savepoint): one by one, as below.
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, members = run.len(), "a set of registrations failed; running its members one by one");
                    }
                }
            }
            let mut run = run.into_iter();
            for member in run.by_ref() {
                if matches!(member.work, Work::Register { .. }) {
                    self.turn.queues.one_by_one.fetch_add(1, Ordering::Relaxed);
                }
                let (outcome, kept) =
                    ambient::scope(Arc::clone(&shared), member.run(backend, org_locked)).await;
                match outcome {
                    // The connection or the transaction is gone: nothing of the batch
                    // can commit.
                    Err(error @ DbError::Unavailable(_)) => {
                        unfinished.push(member);
                        unfinished.extend(run.by_ref());
                        failed = Some(error);
                        break;
                    }
                    outcome => retry.extend(settle_later(member, outcome, kept, &mut done)),
                }
            }
            if failed.is_some() {
                break;
            }
        }
        // A batch that failed is answered before its transaction is rolled back: a
        // database that just failed may take the whole deadline again to say so.
        let mut to_roll_back = None;
        let committed = match (shared.take().await, failed) {
            (Some(conn), Some(error)) => {
                to_roll_back = Some(conn);
                Err(error)
            }
            (None, Some(error)) => Err(error),
            (Some(conn), None) => conn.commit(backend).await,
            (None, None) => Err(DbError::Unavailable(
                "a call of the batch overran its deadline".into(),
            )),
        };
        match committed {
            Ok(()) => {
                for (member, outcome, kept) in done {
                    member.committed(&outcome, kept);
                    let _ = member.reply.send(outcome);
                }
                retry
            }
            Err(error) => {
                let everyone = done.into_iter().map(|(member, _, _)| member);
                fail_all(
                    everyone.chain(unfinished).chain(members).chain(retry),
                    &error,
                );
                if let Some(conn) = to_roll_back {
                    conn.rollback(backend).await;
                }
                Vec::new()
            }
        }
    }
}

/// Takes the organizations' locks for the whole batch, once (`organizations`, sorted:
/// the organizations the batch registers for; none for takes alone): PostgreSQL's
/// organization rows, in order, in one statement; with `skip_locked`, only those no
/// other transaction holds (a shared turn does not wait for one organization). SQLite's
/// `BEGIN IMMEDIATE` already holds the only write lock, so its members need no row of
/// their own. The organizations whose rows the batch holds.
async fn lock_turn(
    conn: &mut AmbientConn,
    organizations: &[&str],
    skip_locked: bool,
) -> Result<HashSet<String>, DbError> {
    match conn {
        AmbientConn::Postgres(_) if organizations.is_empty() => Ok(HashSet::new()),
        AmbientConn::Postgres(c) => {
            use diesel_async::RunQueryDsl as _;
            #[derive(diesel::QueryableByName)]
            struct Locked {
                #[diesel(sql_type = diesel::sql_types::Text)]
                id: String,
            }
            // The strength an `UPDATE` of a non-key column takes (`lock_organization!`),
            // so inserts that reference the rows are not blocked; in order, so two
            // batches never wait for each other's rows.
            let sql = if skip_locked {
                "SELECT id FROM organizations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED"
            } else {
                "SELECT id FROM organizations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
            };
            let locked: Vec<Locked> = diesel::sql_query(sql)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(organizations)
                .load(&mut **c)
                .await?;
            Ok(locked.into_iter().map(|l| l.id).collect())
        }
        AmbientConn::Sqlite(..) => Ok(organizations.iter().map(|&o| o.to_owned()).collect()),
    }
}

/// Up to `max` members of `queue` for the next batch. When no more wait, all of them
/// in arrival order. When more wait, every organization waiting gets an equal share
/// of the batch first, the rest of the batch goes in arrival order, and each
/// organization's members keep their order: an organization that queues hundreds
/// cannot keep another's one registration waiting for batch after batch.
fn take_fairly(queue: &mut VecDeque<Member>, max: usize) -> Vec<Member> {
    if queue.len() <= max {
        return queue.drain(..).collect();
    }
    let picked = {
        let mut waiting: HashMap<&str, usize> = HashMap::new();
        for member in queue.iter() {
            *waiting.entry(member.organization()).or_default() += 1;
        }
        let share = (max / waiting.len()).max(1);
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut picked = vec![false; queue.len()];
        let mut count = 0;
        for (i, member) in queue.iter().enumerate() {
            if count == max {
                break;
            }
            let so_far = taken.entry(member.organization()).or_default();
            if *so_far < share {
                *so_far += 1;
                picked[i] = true;
                count += 1;
            }
        }
        for pick in &mut picked {
            if count == max {
                break;
            }
            if !*pick {
                *pick = true;
                count += 1;
            }
        }
        picked
    };
    let mut batch = Vec::with_capacity(max);
    let mut rest = VecDeque::with_capacity(queue.len() - max);
    for (member, pick) in queue.drain(..).zip(picked) {
        if pick {
            batch.push(member);
        } else {
            rest.push_back(member);
        }
    }
    *queue = rest;
    batch
}

/// Runs `run`'s registrations as one set in the task's unit of work: one outcome
/// per member, or `None` when they must run one by one.
async fn run_set(
    backend: &Backend,
    run: &[Member],
) -> Result<Option<Vec<(Result<Registered, DbError>, bool)>>, DbError> {
    let (regs, claims): (Vec<&SenderRegistration>, Vec<Option<&KeyClaim>>) = run
        .iter()
        .filter_map(|m| match &m.work {
            Work::Register {
                registration,
                claim,
            } => Some((registration, claim.as_deref())),
            Work::Take { .. } => None,
        })
        .unzip();
    match batch::register_run(backend, &regs, &claims).await? {
        batch::RunOutcome::Ran(outcomes) => Ok(Some(outcomes)),
        batch::RunOutcome::OneByOne => Ok(None),
    }
}

/// The member again, for another run, when `outcome` is a conflict with a
/// concurrent unit of work and attempts remain.
fn again(member: &Member, outcome: &Result<Done, DbError>) -> bool {
    match outcome {
        Err(error) if runs_again(error, member.attempt) => {
            tracing::debug!(attempt = member.attempt, %error, "registration raced another unit of work; running it again");
            true
        }
        _ => false,
    }
}

fn next_attempt(member: Member) -> Member {
    Member {
        attempt: member.attempt + 1,
        ..member
    }
}

/// A batch member's outcome (and whether it kept its keyed request's answer):
/// kept in `done` for after the commit, or the member back to run again.
fn settle_later(
    member: Member,
    outcome: Result<Done, DbError>,
    kept: bool,
    done: &mut Vec<(Member, Result<Done, DbError>, bool)>,
) -> Option<Member> {
    if again(&member, &outcome) {
        return Some(next_attempt(member));
    }
    done.push((member, outcome, kept));
    None
}

/// The answer to a member that ran alone, or the member back when it should run
/// again.
fn settle(member: Member, outcome: Result<Done, DbError>) -> Option<Member> {
    if again(&member, &outcome) {
        return Some(next_attempt(member));
    }
    let _ = member.reply.send(outcome);
    None
}

/// Tells every member that the batch did not commit.
fn fail_all(members: impl IntoIterator<Item = Member>, error: &DbError) {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    for member in members {
        let _ = member.reply.send(Err(DbError::Unavailable(
            format!("the registration's batch did not commit: {reason}").into(),
        )));
    }
}

#[cfg(test)]
mod tests {
    use domain_core::ownership::{CreationLimits, ancestors};
    use domain_core::ports::store::CreationRules;
    use domain_core::{EmailAddress, OrganizationId};

    use super::*;

    fn member(reply: Reply) -> Member {
        registering("org", "a@example.com", reply)
    }

    /// A member of `org` registering `email`, whose answer nobody awaits.
    fn member_of(org: &str, email: &str) -> Member {
        registering(org, email, oneshot::channel().0)
    }

    fn registering(org: &str, email: &str, reply: Reply) -> Member {
        let email = EmailAddress::parse(email).expect("a valid address");
        Member {
            work: Work::Register {
                registration: SenderRegistration {
                    organization: OrganizationId::new(org),
                    creation: CreationRules {
                        ancestors: ancestors(email.domain()),
                        limits: CreationLimits {
                            max_domains: 1,
                            per_minute: 1,
                            max_senders_per_domain: 1000,
                        },
                        first_check_at: chrono::Utc::now(),
                    },
                    email,
                    reply_to: None,
                    new_key: None,
                    enable_inbound: false,
                },
                claim: None,
            },
            attempt: 1,
            queued: Instant::now(),
            reply,
        }
    }

    #[test]
    fn a_leader_that_stops_early_answers_its_queue_and_frees_the_turn() {
        let queues = Arc::new(Queues::default());
        let (reply, mut answer) = oneshot::channel();
        queues
            .lock()
            .insert("org".to_owned(), VecDeque::from([member(reply)]));

        // A leader unwinding (a panic in a batch) drops its turn unfinished.
        drop(Turn {
            queues: Arc::clone(&queues),
            name: "org".to_owned(),
            finished: false,
        });

        assert!(
            matches!(answer.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "the queued member is answered (its reply channel is closed)"
        );
        assert!(
            queues.lock().is_empty(),
            "the next registration leads afresh"
        );

        // A leader that emptied its queue leaves the next leader's queue alone.
        queues.lock().insert("org".to_owned(), VecDeque::new());
        drop(Turn {
            queues: Arc::clone(&queues),
            name: "org".to_owned(),
            finished: true,
        });
        assert!(queues.lock().contains_key("org"));
    }

    #[test]
    fn a_flood_of_one_organization_leaves_room_in_the_next_batch_for_the_others() {
        // 200 of "flood" queued, then one each of "quiet" and "other", then more flood.
        let mut queue = VecDeque::new();
        for i in 0..260 {
            let org = match i {
                200 => "quiet",
                201 => "other",
                _ => "flood",
            };
            queue.push_back(member_of(org, &format!("m{i}@example.com")));
        }
        let seen = |members: &mut dyn Iterator<Item = &Member>| -> Vec<String> {
            members
                .map(|m| match &m.work {
                    Work::Register { registration, .. } => registration.email.canonical(),
                    Work::Take { .. } => String::new(),
                })
                .collect()
        };

        let batch = take_fairly(&mut queue, MAX_BATCH);

        // The flood's first 62 in arrival order, then the two that waited behind it.
        let mut expected: Vec<String> = (0..62).map(|i| format!("m{i}@example.com")).collect();
        expected.extend(["m200@example.com".to_owned(), "m201@example.com".to_owned()]);
        assert_eq!(seen(&mut batch.iter()), expected);
        // The rest of the flood stays queued, in its order.
        let rest: Vec<String> = (62..260)
            .filter(|i| *i != 200 && *i != 201)
            .map(|i| format!("m{i}@example.com"))
            .collect();
        assert_eq!(seen(&mut queue.iter()), rest);

        // A queue no longer than a batch goes whole, in arrival order.
        let mut short: VecDeque<Member> = [("a", "x@example.com"), ("b", "y@example.com")]
            .into_iter()
            .map(|(org, email)| member_of(org, email))
            .collect();
        let whole = take_fairly(&mut short, MAX_BATCH);
        assert_eq!(seen(&mut whole.iter()), ["x@example.com", "y@example.com"]);
        assert!(short.is_empty());
    }
}
