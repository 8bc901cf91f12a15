//! The background verifier: `concurrency` tasks, each leasing one due domain at a
//! time from the shared queue (the database: every instance's verifier draws from
//! it, and a lease keeps others off) and checking it as `verify` does. Idle tasks
//! look again every `poll`. [`Verifier::stop`] lets checks in flight finish, then
//! returns; a check cut short by a crash leaves its lease to run out, and the domain
//! is checked again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_actix::metrics::Metrics;
use domain_core::usecases::background::CheckDueDomains;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::VerifierSettings;

/// The running verifier.
#[derive(Debug)]
pub struct Verifier {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Verifier {
    /// Starts the verifier's tasks on the current runtime.
    pub fn start(
        checks: CheckDueDomains,
        metrics: Arc<Metrics>,
        settings: VerifierSettings,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for _ in 0..settings.concurrency {
            tasks.spawn(run(
                checks.clone(),
                Arc::clone(&metrics),
                settings.poll,
                stopped.clone(),
            ));
        }
        tracing::info!(
            concurrency = settings.concurrency,
            "background verifier started"
        );
        Self { stop, tasks }
    }

    /// Asks every task to stop after its current check and waits for them, at most
    /// `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background verifier did not stop in time; its leases will run out");
            self.tasks.abort_all();
        }
        tracing::info!("background verifier stopped");
    }
}

async fn run(
    checks: CheckDueDomains,
    metrics: Arc<Metrics>,
    poll: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let leased = match checks.lease(1).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::warn!(%error, "background verifier could not lease due domains");
                Vec::new()
            }
        };
        if leased.is_empty() {
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        for due in leased {
            let started = Instant::now();
            let outcome = checks.check(&due).await;
            metrics.record_check(outcome.label(), started.elapsed());
            tracing::debug!(domain = %due.domain, outcome = outcome.label(), "background check");
        }
    }
}
