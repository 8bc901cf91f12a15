//! The webhook sender: one dispatcher task per instance that leases due deliveries
//! from the shared outbox (the database: every instance's sender draws from it, and a
//! lease keeps the others off) and sends each on its own task.
//!
//! - **Slots shared fairly.** `concurrency` shared slots, at most `per_organization`
//!   of them for one organization; leases go round-robin over the organizations with
//!   due deliveries (every one's oldest first, see `DeliveryQueue::lease_deliveries`),
//!   and so does starting what was leased. An organization with nothing in flight is
//!   never kept waiting by the others: when the shared slots are all taken, its first
//!   delivery still starts, in one of `concurrency` more slots kept for first
//!   deliveries (so at most twice `concurrency` in flight).
//! - **Degraded endpoints.** An endpoint whose last `DEGRADED_AFTER` (3) attempts got no
//!   HTTP answer is leased one delivery at a time (across instances) and sent one at
//!   a time here, until an attempt gets an answer. Here "degraded" counts this
//!   instance's own attempts since the lease too, so what was leased while the
//!   endpoint still looked healthy waits its turn like the rest.
//! - **Slots count requests.** A delivery's slot is given back as soon as its request
//!   has an HTTP answer; its task then waits for its attempt to be recorded,
//!   and its lease is held until then, so no sender takes it again meanwhile. At most
//!   `RECORDING_FACTOR` times `concurrency` tasks wait so: past that nothing more is
//!   leased until the database catches up.
//! - **Attempts recorded in batches** ([`AttemptRecorder`]): one transaction for the
//!   attempts waiting, however many.
//!
//! [`Sender::stop`] lets deliveries in flight finish; a delivery cut short by a crash
//! (before its attempt's batch committed), or leased but not started, is sent again
//! once its lease runs out (at least once).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api_actix::metrics::Metrics;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain_core::OrganizationId;
use domain_core::ports::InfraError;
use domain_core::ports::webhooks::{
    Attempt, DeliveryQueue, DueDelivery, Health, NextStep, OutboxStats, Reach, RecordedAttempt,
};
use domain_core::usecases::webhooks::DeliverWebhooks;
use domain_core::webhooks::WebhookId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::SenderSettings;

/// How many tasks (requests out, and answered attempts waiting for their batch to
/// commit) one instance keeps, in multiples of its slots: past that it leases nothing
/// until the database catches up.
const RECORDING_FACTOR: usize = 4;

/// How often the outbox gauges are read from the database.
const OUTBOX_REFRESH: Duration = Duration::from_secs(5);

/// How often finished deliveries past their retention are pruned, and how many at
/// most each time (short transactions). A batch that comes back full means more are
/// due: the next round of the dispatcher prunes again, so a backlog goes at up to a
/// batch a round instead of a batch every ten minutes.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_BATCH: usize = 1000;

/// When to prune again after a round that pruned `pruned` deliveries at `now`: at
/// once after a full batch (more are due), else after [`PRUNE_EVERY`].
fn next_prune_after(pruned: usize, now: Instant) -> Instant {
    if pruned >= PRUNE_BATCH {
        now
    } else {
        now + PRUNE_EVERY
    }
}

/// The outbox as last read, for the metrics scrape.
#[derive(Debug, Default)]
pub struct OutboxReading(Mutex<Option<OutboxStats>>);

impl OutboxReading {
    /// The last reading, if any.
    pub fn get(&self) -> Option<OutboxStats> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, stats: OutboxStats) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(stats);
    }
}

/// The running sender.
#[derive(Debug)]
pub struct Sender {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Sender {
    /// Starts the dispatcher on the current runtime.
    pub fn start(
        deliver: DeliverWebhooks,
        queue: Arc<dyn DeliveryQueue>,
        outbox: Arc<OutboxReading>,
        metrics: Arc<Metrics>,
        settings: SenderSettings,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let dispatcher = Dispatcher::new(deliver, queue, outbox, metrics, settings);
        let task = tokio::spawn(dispatcher.run(stopped));
        tracing::info!(
            concurrency = settings.concurrency,
            per_organization = settings.per_organization,
            "webhook sender started"
        );
        Self { stop, task }
    }

    /// Stops leasing, lets deliveries in flight finish (at most `grace`), and returns.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("webhook sender did not stop in time; its leases will run out");
            task.abort();
        }
        tracing::info!("webhook sender stopped");
    }
}

struct Dispatcher {
    deliver: DeliverWebhooks,
    queue: Arc<dyn DeliveryQueue>,
    outbox: Arc<OutboxReading>,
    metrics: Arc<Metrics>,
    settings: SenderSettings,
    /// Deliveries being sent, per organization.
    in_flight: HashMap<OrganizationId, usize>,
    /// Deliveries being sent, per endpoint: a degraded endpoint's next starts only
    /// when it has none.
    endpoint_in_flight: HashMap<WebhookId, usize>,
    /// The consecutive unanswered attempts of endpoints, as this instance knows them:
    /// what its latest lease said, plus its own attempts recorded since. What was
    /// leased before an endpoint became degraded is then sent one at a time too.
    failures: HashMap<WebhookId, u32>,
    /// Leased deliveries that could not start yet: sent as slots free.
    backlog: HashMap<OrganizationId, VecDeque<DueDelivery>>,
    /// The organizations of `backlog` in turn order (round-robin).
    turns: VecDeque<OrganizationId>,
    /// When to prune next ([`next_prune_after`]).
    next_prune: Instant,
    /// Each task ends with its endpoint and what its attempt said about it.
    tasks: JoinSet<(WebhookId, Reach)>,
    /// Whose delivery each task sends, and to which endpoint, while its request is
    /// out, so its slot is given back when the answer comes (or the task ends, even
    /// by a panic).
    owners: HashMap<tokio::task::Id, (OrganizationId, WebhookId)>,
    /// Tasks whose request got an HTTP answer and now wait for their
    /// attempt's batch to commit: their slot is free, their lease still held.
    answered_tx: mpsc::UnboundedSender<tokio::task::Id>,
    answered: mpsc::UnboundedReceiver<tokio::task::Id>,
    last_reading: Option<Instant>,
}

/// Takes one off `key`'s count, dropping the count at zero.
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

/// Whether `due`'s endpoint is degraded as far as this instance knows ([`Dispatcher`]'s
/// `failures`): when leased, or since by this instance's own attempts.
fn degraded(failures: &HashMap<WebhookId, u32>, due: &DueDelivery) -> bool {
    Health::of(failures.get(&due.endpoint).copied().unwrap_or(0)) == Health::Degraded
}

/// Whether a delivery of an organization with `org_in_flight` deliveries in flight
/// may start now, with `total` in flight on the instance: within the organization's
/// share, and either in a shared slot or, as the organization's only delivery, in
/// one of the slots kept for first deliveries.
fn may_start(org_in_flight: usize, total: usize, settings: &SenderSettings) -> bool {
    org_in_flight < settings.per_organization
        && (total < settings.concurrency
            || (org_in_flight == 0 && total < settings.concurrency.saturating_mul(2)))
}

impl Dispatcher {
    fn new(
        deliver: DeliverWebhooks,
        queue: Arc<dyn DeliveryQueue>,
        outbox: Arc<OutboxReading>,
        metrics: Arc<Metrics>,
        settings: SenderSettings,
    ) -> Self {
        let (answered_tx, answered) = mpsc::unbounded_channel();
        Self {
            deliver,
            queue,
            outbox,
            metrics,
            settings,
            in_flight: HashMap::new(),
            endpoint_in_flight: HashMap::new(),
            failures: HashMap::new(),
            backlog: HashMap::new(),
            turns: VecDeque::new(),
            next_prune: Instant::now(),
            tasks: JoinSet::new(),
            owners: HashMap::new(),
            answered_tx,
            answered,
            last_reading: None,
        }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            self.refresh_outbox().await;
            self.prune().await;
            let leased = self.lease().await;
            if leased > 0 && self.sending() < self.settings.concurrency {
                // More may be due: look again at once.
                continue;
            }
            // Polled even when the shared slots are taken: an organization with
            // nothing in flight may still start its first delivery.
            tokio::select! {
                _ = stopped.changed() => {}
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => self.finished(done),
                Some(id) = self.answered.recv() => {
                    self.release(id);
                    while let Ok(id) = self.answered.try_recv() {
                        self.release(id);
                    }
                }
                () = tokio::time::sleep(self.settings.poll) => {}
            }
            self.start_backlog();
        }
        // Leased but not started: their leases run out and another sender takes them.
        self.backlog.clear();
        self.turns.clear();
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.finished(done);
        }
    }

    fn org_load(&self, org: &OrganizationId) -> usize {
        self.in_flight.get(org).copied().unwrap_or(0)
            + self.backlog.get(org).map_or(0, VecDeque::len)
    }

    /// Leases what there is room for; how many were leased.
    async fn lease(&mut self) -> usize {
        let settings = self.settings;
        let total = self.sending();
        if self.tasks.len() >= settings.concurrency.saturating_mul(RECORDING_FACTOR) {
            // Answered attempts are waiting for the database: no more until they are
            // recorded.
            return 0;
        }
        let (free, per_org, skip): (usize, usize, Vec<OrganizationId>) =
            if total < settings.concurrency {
                // Shared slots free (what was leased before and could start has
                // started): every organization up to its share, for the free slots
                // and half as many again, so the next slots to free start from the
                // backlog instead of a lease each (a lease is a transaction: on
                // PostgreSQL a WAL flush).
                let skip = self
                    .in_flight
                    .keys()
                    .chain(self.backlog.keys())
                    .filter(|org| self.org_load(org) >= settings.per_organization)
                    .cloned()
                    .collect();
                (
                    settings.concurrency - total + settings.concurrency.div_ceil(2),
                    settings.per_organization,
                    skip,
                )
            } else if total < settings.concurrency.saturating_mul(2) {
                // Only first deliveries: one each of organizations with none here.
                let skip = self
                    .in_flight
                    .keys()
                    .chain(self.backlog.keys())
                    .cloned()
                    .collect();
                (settings.concurrency.saturating_mul(2) - total, 1, skip)
            } else {
                return 0;
            };
        let mut skip: Vec<OrganizationId> = skip;
        skip.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        skip.dedup();
        let leased = match self.deliver.lease(free, per_org, &skip).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::warn!(%error, "webhook sender could not lease due deliveries");
                Vec::new()
            }
        };
        let count = leased.len();
        for due in leased {
            // The lease is the freshest word on the endpoint's health.
            if due.failures == 0 {
                self.failures.remove(&due.endpoint);
            } else {
                self.failures.insert(due.endpoint.clone(), due.failures);
            }
            let queue = self.backlog.entry(due.organization.clone()).or_default();
            if queue.is_empty() {
                self.turns.push_back(due.organization.clone());
            }
            queue.push_back(due);
        }
        self.start_backlog();
        count
    }

    /// Starts backlogged deliveries round-robin over their organizations, one per
    /// organization per turn, while [`may_start`] allows (and a degraded endpoint
    /// has nothing in flight here).
    fn start_backlog(&mut self) {
        loop {
            let mut started = false;
            for _ in 0..self.turns.len() {
                let Some(org) = self.turns.pop_front() else {
                    break;
                };
                let in_flight = self.in_flight.get(&org).copied().unwrap_or(0);
                let mut next = None;
                if may_start(in_flight, self.sending(), &self.settings)
                    && let Some(queue) = self.backlog.get_mut(&org)
                {
                    let position = queue.iter().position(|due| {
                        !degraded(&self.failures, due)
                            || !self.endpoint_in_flight.contains_key(&due.endpoint)
                    });
                    next = position.and_then(|at| queue.remove(at));
                }
                if let Some(due) = next {
                    self.spawn(due);
                    started = true;
                }
                if self
                    .backlog
                    .get(&org)
                    .is_some_and(|queue| !queue.is_empty())
                {
                    self.turns.push_back(org);
                } else {
                    self.backlog.remove(&org);
                }
            }
            if !started {
                return;
            }
        }
    }

    fn spawn(&mut self, due: DueDelivery) {
        let org = due.organization.clone();
        *self.in_flight.entry(org.clone()).or_default() += 1;
        let endpoint = due.endpoint.clone();
        *self.endpoint_in_flight.entry(endpoint.clone()).or_default() += 1;
        let deliver = self.deliver.clone();
        let metrics = Arc::clone(&self.metrics);
        let answered = self.answered_tx.clone();
        let task = self.tasks.spawn(async move {
            let started = Instant::now();
            let attempted = deliver.attempt(&due).await;
            let reach = attempted.reach();
            // The slot is free once the request has its answer; the lease is held until
            // the attempt's batch commits. An attempt that got no answer keeps its slot
            // until its failure is recorded, so the next lease sees the endpoint's
            // health as it now is (degraded after a few: one at a time).
            if attempted.answered() {
                let _ = answered.send(tokio::task::id());
            }
            let outcome = deliver.record(attempted).await;
            metrics.record_delivery(outcome.label(), started.elapsed());
            tracing::debug!(
                delivery = due.id,
                event = due.event.id,
                outcome = outcome.label(),
                "webhook delivery"
            );
            (due.endpoint, reach)
        });
        self.owners.insert(task.id(), (org, endpoint));
    }

    /// Deliveries whose request is out: what the slots count.
    fn sending(&self) -> usize {
        self.owners.len()
    }

    fn finished(
        &mut self,
        done: Result<(tokio::task::Id, (WebhookId, Reach)), tokio::task::JoinError>,
    ) {
        let id = match done {
            Ok((id, (endpoint, reach))) => {
                match reach {
                    Reach::Answered => {
                        self.failures.remove(&endpoint);
                    }
                    Reach::Unreachable => *self.failures.entry(endpoint).or_default() += 1,
                    Reach::NotTried => {}
                }
                id
            }
            Err(error) => {
                // Its lease runs out and the delivery is attempted again.
                tracing::error!(%error, "a webhook delivery task failed");
                error.id()
            }
        };
        self.release(id);
    }

    /// Gives back the slot of task `id`, if it still holds one.
    fn release(&mut self, id: tokio::task::Id) {
        let Some((org, endpoint)) = self.owners.remove(&id) else {
            return;
        };
        decrement(&mut self.in_flight, &org);
        decrement(&mut self.endpoint_in_flight, &endpoint);
    }

    async fn prune(&mut self) {
        let now = Instant::now();
        if now < self.next_prune {
            return;
        }
        if self.tasks.is_empty() && self.backlog.is_empty() {
            // Nothing held here: the next lease says how every endpoint is.
            self.failures.clear();
        }
        let pruned = match self
            .deliver
            .prune(self.settings.retention, PRUNE_BATCH)
            .await
        {
            Ok(0) => 0,
            Ok(pruned) => {
                tracing::info!(pruned, "pruned finished webhook deliveries");
                pruned
            }
            Err(error) => {
                tracing::warn!(%error, "could not prune webhook deliveries");
                0
            }
        };
        self.next_prune = next_prune_after(pruned, now);
    }

    async fn refresh_outbox(&mut self) {
        if self
            .last_reading
            .is_some_and(|at| at.elapsed() < OUTBOX_REFRESH)
        {
            return;
        }
        self.last_reading = Some(Instant::now());
        match self.queue.outbox_stats().await {
            Ok(stats) => self.outbox.set(stats),
            Err(error) => tracing::warn!(%error, "could not read the webhook outbox"),
        }
    }
}

/// The most attempts one batch records. A batch is one transaction: on PostgreSQL one
/// WAL flush, on SQLite one turn of the write lock, for up to this many attempts.
const RECORD_BATCH: usize = 64;

type Recording = (RecordedAttempt, oneshot::Sender<Result<(), String>>);

/// The delivery queue with attempts recorded in batches: each
/// [`DeliveryQueue::record_attempts`] call hands its attempts to one recorder task,
/// which writes every attempt waiting (at most [`RECORD_BATCH`]) in one transaction
/// and then answers their callers; what arrives meanwhile waits for the next batch
/// (group commit: no timer, so a lone attempt is not delayed, and under load batches
/// grow by themselves). Nothing is
/// answered before its batch commits: a crash before the commit leaves those
/// deliveries leased, their leases run out, and they are attempted again.
pub struct AttemptRecorder {
    inner: Arc<dyn DeliveryQueue>,
    batches: mpsc::Sender<Recording>,
}

impl AttemptRecorder {
    /// Wraps `inner`, starting its recorder task on the current runtime (it ends
    /// when the last handle is dropped).
    pub fn start(inner: Arc<dyn DeliveryQueue>) -> Arc<Self> {
        let (batches, receiver) = mpsc::channel(RECORD_BATCH * 16);
        tokio::spawn(record(Arc::clone(&inner), receiver));
        Arc::new(Self { inner, batches })
    }
}

impl std::fmt::Debug for AttemptRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptRecorder").finish_non_exhaustive()
    }
}

async fn record(queue: Arc<dyn DeliveryQueue>, mut receiver: mpsc::Receiver<Recording>) {
    let mut batch: Vec<Recording> = Vec::with_capacity(RECORD_BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < RECORD_BATCH {
            match receiver.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let attempts: Vec<RecordedAttempt> = batch.iter().map(|(a, _)| a.clone()).collect();
        let result = queue
            .record_attempts(&attempts)
            .await
            .map_err(|error| error.to_string());
        for (_, answer) in batch.drain(..) {
            let _ = answer.send(result.clone());
        }
    }
}

#[async_trait]
impl DeliveryQueue for AttemptRecorder {
    async fn lease_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
        per_organization: usize,
        skip: &[OrganizationId],
    ) -> Result<Vec<DueDelivery>, InfraError> {
        self.inner
            .lease_deliveries(now, lease_until, limit, per_organization, skip)
            .await
    }

    async fn record_attempt(
        &self,
        id: i64,
        attempt: &Attempt,
        next: NextStep,
    ) -> Result<(), InfraError> {
        self.inner.record_attempt(id, attempt, next).await
    }

    async fn record_attempts(&self, batch: &[RecordedAttempt]) -> Result<(), InfraError> {
        let mut answers = Vec::with_capacity(batch.len());
        for recorded in batch {
            let (answer, answered) = oneshot::channel();
            self.batches
                .send((recorded.clone(), answer))
                .await
                .map_err(|_| InfraError::unexpected("the attempt recorder has stopped"))?;
            answers.push(answered);
        }
        for answered in answers {
            answered
                .await
                .map_err(|_| InfraError::unexpected("the attempt recorder has stopped"))?
                .map_err(|error| InfraError::Unavailable(error.into()))?;
        }
        Ok(())
    }

    async fn prune_deliveries(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<usize, InfraError> {
        self.inner.prune_deliveries(before, batch).await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, InfraError> {
        self.inner.outbox_stats().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_prune_batch_prunes_again_on_the_next_round() {
        let now = Instant::now();
        assert_eq!(next_prune_after(PRUNE_BATCH, now), now);
        assert_eq!(next_prune_after(PRUNE_BATCH - 1, now), now + PRUNE_EVERY);
        assert_eq!(next_prune_after(0, now), now + PRUNE_EVERY);
    }

    #[test]
    fn a_first_delivery_starts_beyond_the_shared_slots_and_a_share_is_never_exceeded() {
        let settings = SenderSettings {
            concurrency: 16,
            per_organization: 4,
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(60),
        };
        // Shared slots free: up to the organization's share.
        assert!(may_start(0, 0, &settings));
        assert!(may_start(3, 15, &settings));
        assert!(!may_start(4, 0, &settings));
        // Shared slots all taken: only an organization with nothing in flight, and
        // only while the slots kept for first deliveries last.
        assert!(may_start(0, 16, &settings));
        assert!(may_start(0, 31, &settings));
        assert!(!may_start(0, 32, &settings));
        assert!(!may_start(1, 16, &settings));
    }

    /// A queue whose batches take a while to write, recording their sizes.
    #[derive(Default)]
    struct SlowQueue {
        batches: Mutex<Vec<usize>>,
        fail: bool,
    }

    #[async_trait]
    impl DeliveryQueue for SlowQueue {
        async fn lease_deliveries(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: usize,
            _: usize,
            _: &[OrganizationId],
        ) -> Result<Vec<DueDelivery>, InfraError> {
            Ok(Vec::new())
        }

        async fn record_attempt(&self, _: i64, _: &Attempt, _: NextStep) -> Result<(), InfraError> {
            Ok(())
        }

        async fn record_attempts(&self, batch: &[RecordedAttempt]) -> Result<(), InfraError> {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(batch.len());
            if self.fail {
                return Err(InfraError::unexpected("the database is gone"));
            }
            Ok(())
        }

        async fn prune_deliveries(&self, _: DateTime<Utc>, _: usize) -> Result<usize, InfraError> {
            Ok(0)
        }

        async fn outbox_stats(&self) -> Result<OutboxStats, InfraError> {
            Ok(OutboxStats::default())
        }
    }

    fn recorded(delivery: i64) -> RecordedAttempt {
        RecordedAttempt {
            delivery,
            endpoint: WebhookId::from_random([1; 16]),
            attempt: Attempt {
                at: Utc::now(),
                status_code: Some(204),
                error: None,
                duration: Duration::from_millis(1),
            },
            next: NextStep::Delivered,
            reach: Reach::Answered,
        }
    }

    async fn record_twenty(inner: Arc<SlowQueue>) -> (Vec<bool>, Vec<usize>) {
        let recorder = AttemptRecorder::start(Arc::clone(&inner) as Arc<dyn DeliveryQueue>);
        let mut tasks = JoinSet::new();
        for delivery in 0..20 {
            let recorder = Arc::clone(&recorder);
            tasks.spawn(async move {
                recorder
                    .record_attempts(&[recorded(delivery)])
                    .await
                    .is_ok()
            });
        }
        let mut answers = Vec::new();
        while let Some(answer) = tasks.join_next().await {
            answers.push(answer.unwrap_or(false));
        }
        let batches = inner
            .batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (answers, batches)
    }

    /// A queue holding `due` deliveries of one organization, whose recording never
    /// commits (a database that stalls on writes).
    struct StalledRecords {
        due: Mutex<Vec<DueDelivery>>,
    }

    #[async_trait]
    impl DeliveryQueue for StalledRecords {
        async fn lease_deliveries(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            limit: usize,
            per_organization: usize,
            _: &[OrganizationId],
        ) -> Result<Vec<DueDelivery>, InfraError> {
            let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
            let take = limit.min(per_organization).min(due.len());
            Ok(due.drain(..take).collect())
        }

        async fn record_attempt(&self, _: i64, _: &Attempt, _: NextStep) -> Result<(), InfraError> {
            std::future::pending().await
        }

        async fn record_attempts(&self, _: &[RecordedAttempt]) -> Result<(), InfraError> {
            std::future::pending().await
        }

        async fn prune_deliveries(&self, _: DateTime<Utc>, _: usize) -> Result<usize, InfraError> {
            Ok(0)
        }

        async fn outbox_stats(&self) -> Result<OutboxStats, InfraError> {
            Ok(OutboxStats::default())
        }
    }

    fn due(id: i64) -> DueDelivery {
        use domain_core::lifecycle::{Event, EventType};
        DueDelivery {
            id,
            organization: OrganizationId::new("org_quiet".to_owned()),
            endpoint: WebhookId::from_random([2; 16]),
            url: "http://127.0.0.1:8080/in".into(),
            secret_sealed: b"sealed".to_vec(),
            event: Event {
                id,
                kind: EventType::DomainCreated,
                domain: Some("example.com".into()),
                selector: None,
                email: None,
                created_at: Utc::now(),
            },
            attempts: 0,
            failures: 0,
        }
    }

    /// A sender with one slot over `queue`, whose requests are all answered 204 at
    /// once (and counted in `sent`).
    fn one_slot_sender(queue: Arc<dyn DeliveryQueue>, sent: &Arc<Mutex<usize>>) -> Sender {
        use domain_core::ports::webhooks::{MockWebhookSender, SendOutcome};
        let mut sender = MockWebhookSender::new();
        let count = Arc::clone(sent);
        sender.expect_send().returning(move |_| {
            *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            SendOutcome::Status(204)
        });
        sender_over(queue, Arc::new(sender), 1, 1)
    }

    /// A sender over `queue` sending with `sender`, with `concurrency` slots and
    /// `per_organization` of them for one organization.
    fn sender_over(
        queue: Arc<dyn DeliveryQueue>,
        sender: Arc<dyn domain_core::ports::webhooks::WebhookSender>,
        concurrency: usize,
        per_organization: usize,
    ) -> Sender {
        use domain_core::ports::clock::MockClock;
        use domain_core::ports::dns::MockDns;
        use domain_core::ports::webhooks::MockWebhookSecrets;
        use domain_core::usecases::webhooks::DeliverySettings;
        use domain_core::webhooks::{AddressPolicy, RetrySchedule, WebhookSecret};
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let mut secrets = MockWebhookSecrets::new();
        secrets
            .expect_open()
            .returning(|_, _| Ok(WebhookSecret(zeroize::Zeroizing::new(vec![7; 24]))));
        secrets.expect_sign().returning(|_, _| vec![1; 32]);
        let deliver = DeliverWebhooks::new(
            Arc::clone(&queue),
            Arc::new(secrets),
            Arc::new(MockDns::new()),
            sender,
            Arc::new(clock),
            DeliverySettings {
                policy: Arc::new(AddressPolicy {
                    allow_http: true,
                    allow_nets: vec!["127.0.0.1/32".parse().expect("a network")],
                    allow_private: false,
                }),
                retry: Arc::new(RetrySchedule::standard()),
                timeout: Duration::from_secs(5),
            },
        );
        Sender::start(
            deliver,
            queue,
            Arc::default(),
            Arc::default(),
            SenderSettings {
                concurrency,
                per_organization,
                poll: Duration::from_millis(10),
                retention: Duration::from_secs(60),
            },
        )
    }

    fn sent_after(sent: &Arc<Mutex<usize>>, wait: Duration) -> usize {
        std::thread::sleep(wait);
        *sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slot_is_free_when_its_request_is_answered_not_when_its_attempt_is_recorded() {
        // One slot, ten deliveries, and attempts that are never recorded: the slot
        // still serves the next request as soon as the last one was answered, up to
        // the bound on answered attempts waiting for the database (4 a slot).
        let queue = Arc::new(StalledRecords {
            due: Mutex::new((1..=10).map(due).collect()),
        });
        let sent = Arc::new(Mutex::new(0));
        let sender = one_slot_sender(queue, &sent);
        let first = tokio::task::spawn_blocking({
            let sent = Arc::clone(&sent);
            move || sent_after(&sent, Duration::from_millis(1500))
        })
        .await
        .expect("the wait");
        assert_eq!(first, RECORDING_FACTOR, "requests sent with one slot");
        sender.stop(Duration::from_millis(10)).await;
    }

    /// A queue that leases all it holds at once, as healthy (leased before any
    /// attempt failed), and records attempts at once.
    struct LeasedAhead {
        due: Mutex<Vec<DueDelivery>>,
    }

    #[async_trait]
    impl DeliveryQueue for LeasedAhead {
        async fn lease_deliveries(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            limit: usize,
            _: usize,
            _: &[OrganizationId],
        ) -> Result<Vec<DueDelivery>, InfraError> {
            let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
            let take = limit.min(due.len());
            Ok(due.drain(..take).collect())
        }

        async fn record_attempt(&self, _: i64, _: &Attempt, _: NextStep) -> Result<(), InfraError> {
            Ok(())
        }

        async fn record_attempts(&self, _: &[RecordedAttempt]) -> Result<(), InfraError> {
            Ok(())
        }

        async fn prune_deliveries(&self, _: DateTime<Utc>, _: usize) -> Result<usize, InfraError> {
            Ok(0)
        }

        async fn outbox_stats(&self) -> Result<OutboxStats, InfraError> {
            Ok(OutboxStats::default())
        }
    }

    /// An endpoint that never answers: each request times out after 200 ms. It
    /// keeps when each request was out.
    #[derive(Default)]
    struct Silent {
        requests: Mutex<Vec<(Instant, Instant)>>,
    }

    #[async_trait]
    impl domain_core::ports::webhooks::WebhookSender for Silent {
        async fn send(
            &self,
            _: &domain_core::ports::webhooks::WebhookRequest,
        ) -> domain_core::ports::webhooks::SendOutcome {
            let started = Instant::now();
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((started, Instant::now()));
            domain_core::ports::webhooks::SendOutcome::Failed("timeout")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_was_leased_before_an_endpoint_became_degraded_is_sent_one_at_a_time() {
        // Eight slots, four for the organization, and twelve deliveries leased at
        // once while the endpoint was healthy. The first four go out together and
        // time out; the first two timeouts free slots for two more (not yet
        // degraded); the third makes it degraded. From then on, a request goes out
        // only when none is out to it: the last six one after another.
        let queue = Arc::new(LeasedAhead {
            due: Mutex::new((1..=12).map(due).collect()),
        });
        let silent = Arc::new(Silent::default());
        let sender = sender_over(queue, Arc::clone(&silent) as _, 8, 4);
        tokio::time::sleep(Duration::from_millis(2200)).await;
        sender.stop(Duration::from_millis(10)).await;
        let mut requests = silent
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        requests.sort();
        assert_eq!(requests.len(), 12, "{requests:?}");
        for next in 6..requests.len() {
            let (started, _) = requests[next];
            let out = requests[..next]
                .iter()
                .filter(|(_, ended)| *ended > started)
                .count();
            assert_eq!(out, 0, "request {next} went out beside {out} others");
        }
    }

    #[tokio::test]
    async fn attempts_arriving_while_a_batch_is_written_are_written_together_next() {
        let (answers, batches) = record_twenty(Arc::default()).await;
        assert!(answers.iter().all(|ok| *ok), "{answers:?}");
        assert_eq!(batches.iter().sum::<usize>(), 20, "{batches:?}");
        assert!(batches.len() <= 3, "20 attempts in {batches:?}");
    }

    #[tokio::test]
    async fn a_batch_that_fails_is_an_error_for_each_of_its_callers() {
        let inner = Arc::new(SlowQueue {
            fail: true,
            ..SlowQueue::default()
        });
        let (answers, batches) = record_twenty(inner).await;
        assert_eq!(answers, vec![false; 20], "{batches:?}");
    }
}
