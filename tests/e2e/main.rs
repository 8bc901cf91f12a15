//! End-to-end tests: the real `domain-api` binary over real HTTP, on SQLite always
//! and on PostgreSQL when `DOMAIN_API_TEST_POSTGRES_URL` is set.
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod authoritative;
mod availability;
mod backup;
mod browser;
mod changeset;
mod cli;
mod client;
mod concurrency;
mod disk_full;
mod dns;
mod domain_connect;
mod domains;
mod exactly_once;
mod fault_proxy;
mod faults;
mod generate;
mod hardening;
mod helpers;
mod idempotency;
mod lifecycle;
mod lifecycle_races;
mod migrations;
mod observability;
mod operations;
mod ownership;
mod setup_page;
mod setup_truths;
mod signing;
mod verifier;
mod webhooks;
mod zone;
