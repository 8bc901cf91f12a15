//! The HTTP edge of domain-api: actix-web routes, the auth extractors, `ApiError`
//! (the one place that picks statuses and wire sentences), request telemetry,
//! metrics, the OpenAPI document and the Domain Setup page's assets. It takes use
//! cases; it builds no adapter.

pub mod auth;
pub mod body;
pub mod echo;
pub mod error;
pub mod frame_ancestors;
pub mod idempotency;
pub mod jwt;
pub mod live_checks;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod refusals;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod wire;

pub use state::{AppState, Probes};
