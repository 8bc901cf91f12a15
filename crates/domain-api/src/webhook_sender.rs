//! The webhook sender: one dispatcher task per instance that leases due deliveries
//! from the shared outbox (the database: every instance's sender draws from it, and a
//! lease keeps the others off) and sends each on its own task, at most `concurrency`
//! at once and at most `per_organization` of them for any one organization — so a
//! slow or dead endpoint holds that many slots, never the others' (it also backs off
//! on the retry schedule). [`Sender::stop`] lets deliveries in flight finish; a
//! delivery cut short by a crash, or leased but not started, is sent again once its
//! lease runs out (at least once).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api_actix::metrics::Metrics;
use domain_core::OrganizationId;
use domain_core::ports::webhooks::{DeliveryQueue, DueDelivery, OutboxStats};
use domain_core::usecases::webhooks::DeliverWebhooks;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::SenderSettings;

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
        let dispatcher = Dispatcher {
            deliver,
            queue,
            outbox,
            metrics,
            settings,
            in_flight: HashMap::new(),
            backlog: HashMap::new(),
            next_prune: Instant::now(),
            tasks: JoinSet::new(),
            owners: HashMap::new(),
            last_reading: None,
        };
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
    /// Leased deliveries of organizations that had no free slot: sent as theirs free.
    backlog: HashMap<OrganizationId, VecDeque<DueDelivery>>,
    /// When to prune next ([`next_prune_after`]).
    next_prune: Instant,
    tasks: JoinSet<()>,
    /// Whose delivery each task sends, so a slot is given back even if a task panics.
    owners: HashMap<tokio::task::Id, OrganizationId>,
    last_reading: Option<Instant>,
}

impl Dispatcher {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            self.refresh_outbox().await;
            self.prune().await;
            let leased = self.lease().await;
            let full = self.tasks.len() >= self.settings.concurrency;
            if leased > 0 && !full {
                // More may be due: look again at once.
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => self.finished(done),
                () = tokio::time::sleep(self.settings.poll), if !full => {}
            }
            self.start_backlog();
        }
        // Leased but not started: their leases run out and another sender takes them.
        self.backlog.clear();
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.finished(done);
        }
    }

    /// Leases what there is room for; how many were leased.
    async fn lease(&mut self) -> usize {
        let free = self.settings.concurrency.saturating_sub(self.tasks.len());
        if free == 0 {
            return 0;
        }
        let per_org = self.settings.per_organization;
        let skip: Vec<OrganizationId> = self
            .in_flight
            .iter()
            .filter(|(org, count)| **count + self.backlog_len(org) >= per_org)
            .map(|(org, _)| org.clone())
            .collect();
        // At most one organization's share per lease, so what cannot start at once
        // waits in a backlog of at most that many.
        let leased = match self.deliver.lease(free.min(per_org), &skip).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::warn!(%error, "webhook sender could not lease due deliveries");
                Vec::new()
            }
        };
        let count = leased.len();
        for due in leased {
            self.backlog
                .entry(due.organization.clone())
                .or_default()
                .push_back(due);
        }
        self.start_backlog();
        count
    }

    fn backlog_len(&self, org: &OrganizationId) -> usize {
        self.backlog.get(org).map_or(0, VecDeque::len)
    }

    /// Starts every backlogged delivery whose organization has a free slot, while
    /// the instance has one.
    fn start_backlog(&mut self) {
        let per_org = self.settings.per_organization;
        let orgs: Vec<OrganizationId> = self.backlog.keys().cloned().collect();
        for org in orgs {
            while self.tasks.len() < self.settings.concurrency
                && self.in_flight.get(&org).copied().unwrap_or(0) < per_org
            {
                let Some(due) = self.backlog.get_mut(&org).and_then(VecDeque::pop_front) else {
                    break;
                };
                *self.in_flight.entry(org.clone()).or_default() += 1;
                let deliver = self.deliver.clone();
                let metrics = Arc::clone(&self.metrics);
                let task = self.tasks.spawn(async move {
                    let started = Instant::now();
                    let outcome = deliver.deliver(&due).await;
                    metrics.record_delivery(outcome.label(), started.elapsed());
                    tracing::debug!(
                        delivery = due.id,
                        event = due.event.id,
                        outcome = outcome.label(),
                        "webhook delivery"
                    );
                });
                self.owners.insert(task.id(), org.clone());
            }
            if self.backlog.get(&org).is_some_and(VecDeque::is_empty) {
                self.backlog.remove(&org);
            }
        }
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(error) => {
                // Its lease runs out and the delivery is attempted again.
                tracing::error!(%error, "a webhook delivery task failed");
                error.id()
            }
        };
        let Some(org) = self.owners.remove(&id) else {
            return;
        };
        if let Some(count) = self.in_flight.get_mut(&org) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.in_flight.remove(&org);
            }
        }
    }

    async fn prune(&mut self) {
        let now = Instant::now();
        if now < self.next_prune {
            return;
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
}
