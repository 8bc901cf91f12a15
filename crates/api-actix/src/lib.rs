//! The HTTP edge of domain-api: actix-web handlers, the auth extractor, error
//! mapping, configuration, the CLI, and the composition root that wires the
//! adapters (`store-diesel`, `dns-hickory`, `keys-rsa`) to `domain-core`'s ports.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod telemetry;

pub use app::AppState;
