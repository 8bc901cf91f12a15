//! SQLite's write lock, handed out in this process in turn by who waits for it.
//!
//! SQLite has one write lock for the whole database. Left to itself, a writer that
//! finds it taken polls it through the busy handler (sleeping 1, 2, 5 … 100 ms
//! between tries), and a stream of transactions that follow one another at once
//! takes it in every gap: one organization's keyed writes kept another's batch
//! waiting for seconds. The gate hands the lock out instead: waiters queue by
//! *writer* (an organization's units of work, the registration batches, every other
//! write) and the writers are served round-robin, each queue in arrival order. A
//! write therefore waits for the transaction holding the lock and at most one more
//! of each other writer waiting, however many one organization has queued.
//!
//! Every wait is bounded by the store call that waits (its deadline); a waiter that
//! gives up leaves the queue, and the lock handed to one that has just given up is
//! passed on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Who a write is for: its place in the gate's round-robin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Writer {
    /// A unit of work of this organization.
    Organization(String),
    /// A batch of registrations (any organizations).
    Batch,
    /// Any other write.
    Other,
}

/// The gate: one holder at a time; waiters queued per writer, writers round-robin.
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    held: bool,
    waiting: HashMap<Writer, VecDeque<oneshot::Sender<()>>>,
    /// The writers with waiters, next first.
    order: VecDeque<Writer>,
}

/// The write lock's turn, held until dropped.
#[derive(Debug)]
pub(crate) struct WriteTurn {
    gate: Arc<WriteGate>,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        self.gate.pass_on();
    }
}

impl WriteGate {
    /// Waits for `writer`'s turn at the write lock.
    pub(crate) async fn enter(self: &Arc<Self>, writer: Writer) -> WriteTurn {
        let receiver = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !state.held && state.order.is_empty() {
                state.held = true;
                return WriteTurn {
                    gate: Arc::clone(self),
                };
            }
            let (sender, receiver) = oneshot::channel();
            let State { waiting, order, .. } = &mut *state;
            let queue = waiting.entry(writer.clone()).or_default();
            if queue.is_empty() {
                order.push_back(writer);
            }
            queue.push_back(sender);
            receiver
        };
        let mut waiting = Waiting {
            receiver,
            gate: self,
            granted: false,
        };
        // The sender is only dropped with the gate, which outlives its waiters.
        let _ = (&mut waiting.receiver).await;
        waiting.granted = true;
        WriteTurn {
            gate: Arc::clone(self),
        }
    }

    /// Hands the lock to the next waiter (round-robin over the writers), or frees it.
    fn pass_on(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(writer) = state.order.pop_front() {
            let Some(queue) = state.waiting.get_mut(&writer) else {
                continue;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                state.waiting.remove(&writer);
            } else {
                state.order.push_back(writer);
            }
            // A waiter that gave up has dropped its receiver: on to the next.
            if let Some(sender) = next
                && sender.send(()).is_ok()
            {
                return;
            }
        }
        state.held = false;
    }
}

/// A waiter's place: given up before its turn came, it leaves nothing held (the
/// lock handed to it meanwhile is passed on).
struct Waiting<'a> {
    receiver: oneshot::Receiver<()>,
    gate: &'a Arc<WriteGate>,
    granted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        // The lock cannot be handed to it from now on; handed to it already, it is
        // passed on.
        self.receiver.close();
        if self.receiver.try_recv().is_ok() {
            self.gate.pass_on();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn turns_are_served_round_robin_each_in_arrival_order() {
        let gate = Arc::new(WriteGate::default());
        let held = gate.enter(Writer::Other).await;
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        // Organization a queues three writes, then b one, then a batch.
        for (name, writer) in [
            ("a1", Writer::Organization("a".into())),
            ("a2", Writer::Organization("a".into())),
            ("a3", Writer::Organization("a".into())),
            ("b1", Writer::Organization("b".into())),
            ("batch", Writer::Batch),
        ] {
            let (gate, served) = (Arc::clone(&gate), Arc::clone(&served));
            waiters.push(tokio::spawn(async move {
                let _turn = gate.enter(writer).await;
                served.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(
            *served.lock().unwrap(),
            ["a1", "b1", "batch", "a2", "a3"],
            "b and the batch each wait for one of a's writes, not all three"
        );
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_holds_nothing() {
        let gate = Arc::new(WriteGate::default());
        let held = gate.enter(Writer::Other).await;
        // Gives up while waiting.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(20),
            gate.enter(Writer::Organization("a".into())),
        )
        .await;
        assert!(gave_up.is_err());
        drop(held);
        // The lock is free again at once.
        tokio::time::timeout(Duration::from_secs(1), gate.enter(Writer::Batch))
            .await
            .expect("the lock is free");
    }
}
