//! A batch of reuse registrations, or of new domains, runs a fixed number of
//! statements, whatever the number of its members, on every backend: counted on the connections themselves
//! (diesel's instrumentation, installed for every connection this process opens).
//! One test in this file: the count is the process's.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{key, org, registration};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use domain_core::ports::store::DomainStore;

/// Statements sent on any connection of this process.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

struct CountStatements;

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Statements one batch may take, whatever its size: PostgreSQL's `BEGIN`, the
/// organization's lock, the run's savepoint, the domains' read, the senders' insert,
/// the activation with the events, the savepoint's release and `COMMIT` (8); SQLite's
/// `BEGIN IMMEDIATE`, the savepoint, the read, the insert, the deactivation, the
/// activation, the events, their deliveries, the release and `COMMIT` (10).
const PER_BATCH: u64 = 10;

/// The same for a batch of new domains: PostgreSQL adds the registrable names'
/// locks, the reads of the creations' admission (the names and their ancestors, the
/// domain count, the key-generation window) and of the taken emails, and the domains
/// with their keys (6, 14 in all); SQLite the same reads and two inserts (16).
const PER_CREATING_BATCH: u64 = 16;

/// Setting up the connections a run opens (session settings), at most.
const SETUP: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_reuse_registrations_or_new_domains_runs_a_fixed_number_of_statements() {
    diesel::connection::set_default_instrumentation(|| Some(Box::new(CountStatements))).unwrap();
    on_every_backend!(|store, kind| {
        let acme = org(&store, "Acme").await;
        store
            .register_sender(registration(&acme, "first@example.com", Some(key("k1"))))
            .await
            .unwrap();
        let before = (
            store.group_commit_stats(),
            STATEMENTS.load(Ordering::Relaxed),
        );

        let n = 64;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = Arc::clone(&store);
                let reg = registration(&acme, &format!("s{i}@example.com"), None);
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();
        for task in tasks {
            assert!(!task.await.unwrap().unwrap().domain_created, "{kind:?}");
        }

        let after = (
            store.group_commit_stats(),
            STATEMENTS.load(Ordering::Relaxed),
        );
        let batches = after.0.batches - before.0.batches;
        let statements = after.1 - before.1;
        assert_eq!(
            after.0.registrations - before.0.registrations,
            n,
            "{kind:?}"
        );
        // Not a row of batches of one: the registrations did share batches.
        assert!(batches * 4 <= n, "{kind:?}: {batches} batches for {n}");
        assert!(
            statements <= PER_BATCH * batches + SETUP,
            "{kind:?}: {statements} statements for {n} registrations in {batches} batches"
        );
        // Only a batch of one ran its member alone.
        let one_by_one = after.0.one_by_one - before.0.one_by_one;
        assert!(one_by_one <= batches, "{kind:?}: {one_by_one} one by one");
        assert_eq!(
            after.0.set_based - before.0.set_based + one_by_one,
            n,
            "{kind:?}"
        );

        // New domains, each with its key: a fixed number of statements too.
        let before = after;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = Arc::clone(&store);
                let reg = registration(
                    &acme,
                    &format!("s@new{i}.example.com"),
                    Some(key(&format!("n{i}"))),
                );
                tokio::spawn(async move { store.register_sender(reg).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().domain_created, "{kind:?}");
        }
        let after = (
            store.group_commit_stats(),
            STATEMENTS.load(Ordering::Relaxed),
        );
        let batches = after.0.batches - before.0.batches;
        let statements = after.1 - before.1;
        assert!(batches * 4 <= n, "{kind:?}: {batches} batches for {n}");
        assert!(
            statements <= PER_CREATING_BATCH * batches + SETUP,
            "{kind:?}: {statements} statements for {n} new domains in {batches} batches"
        );
        let one_by_one = after.0.one_by_one - before.0.one_by_one;
        assert!(one_by_one <= batches, "{kind:?}: {one_by_one} one by one");
    });
}
