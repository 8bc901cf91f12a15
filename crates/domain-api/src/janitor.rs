//! The janitor: removes expired Idempotency-Key answers in batches, in the
//! background, so a kept answer (and a secret shown once in it) does not outlive
//! `DOMAIN_API_IDEMPOTENCY_TTL` by more than a round, whether or not later keyed
//! requests come; and events past `DOMAIN_API_EVENT_RETENTION`, with their webhook
//! deliveries. Every instance runs one; their deletes do not conflict.

use std::time::Duration;

use domain_core::ports::InfraError;
use domain_core::usecases::idempotency::PruneExpiredAnswers;
use domain_core::usecases::retention::PruneOldEvents;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Answers removed in one statement batch.
pub(crate) const PRUNE_BATCH: usize = 500;
/// How often the janitor looks when the last round found less than a batch.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The running janitor.
#[derive(Debug)]
pub struct Janitor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Janitor {
    /// Starts the janitor on the current runtime.
    #[must_use]
    pub fn start(answers: PruneExpiredAnswers, events: PruneOldEvents) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(answers, events, stopped));
        Self { stop, task }
    }

    /// Stops the janitor (a batch in flight is abandoned: its statement is bounded
    /// and removes only what expired).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
        let _ = self.task.await;
    }
}

/// How long to wait before the next round after one that removed `pruned`: none
/// after a full batch (a backlog goes at full speed), a round's pause otherwise.
fn pause_after(pruned: usize) -> Duration {
    if pruned >= PRUNE_BATCH {
        Duration::ZERO
    } else {
        PRUNE_EVERY
    }
}

/// How many `what` a round pruned, logged; a failure is logged and counts none.
fn logged(outcome: Result<usize, InfraError>, what: &str) -> usize {
    match outcome {
        Ok(pruned) => {
            if pruned > 0 {
                tracing::debug!(pruned, "pruned {what}");
            }
            pruned
        }
        Err(error) => {
            tracing::warn!(%error, "could not prune {what}");
            0
        }
    }
}

async fn run(
    answers: PruneExpiredAnswers,
    events: PruneOldEvents,
    mut stopped: watch::Receiver<bool>,
) {
    while !*stopped.borrow() {
        let answers_pruned = logged(
            answers.execute(PRUNE_BATCH).await,
            "expired Idempotency-Key answers",
        );
        let events_pruned = logged(
            events.execute(PRUNE_BATCH).await,
            "events past their retention",
        );
        let pause = pause_after(answers_pruned.max(events_pruned));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_prunes_again_at_once_and_a_short_one_waits_a_round() {
        assert_eq!(pause_after(PRUNE_BATCH), Duration::ZERO);
        assert_eq!(pause_after(PRUNE_BATCH - 1), PRUNE_EVERY);
        assert_eq!(pause_after(0), PRUNE_EVERY);
    }
}
