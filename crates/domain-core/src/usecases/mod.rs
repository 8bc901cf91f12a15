//! Use cases: one struct each, holding its ports, with one public async method.

pub mod admin;
pub mod authenticate;
pub mod background;
pub mod claim;
pub mod connect;
pub mod create;
pub mod generate;
pub mod idempotency;
pub mod key_budget;
pub mod manage;
pub mod read;
pub mod retention;
pub mod senders;
pub mod sign;
pub mod validate;
pub mod verify;
pub mod webhooks;

#[cfg(test)]
mod fixtures;
