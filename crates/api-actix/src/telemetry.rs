//! Logging: tracing to stderr (stdout belongs to CLI output), one span per request
//! carrying a request id, never a header value, token or key.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber; `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: in a log file they are noise (and cost).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// A caller's request id is kept if it is short and plain; otherwise we mint one.
fn request_id(req: &ServiceRequest) -> String {
    let incoming = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    if let Some(id) = incoming {
        return id.to_owned();
    }
    let mut bytes = [0u8; 12];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return "unknown".to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Middleware: a span per request (`id`, method, path; `org` and `domain` filled in
/// by handlers), a log line with status and latency, and `X-Request-Id` echoed back.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.path(),
        org = tracing::field::Empty,
    );
    let started = Instant::now();
    let state = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned();
    let method = req.method().as_str().to_owned();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    if let Some(state) = state {
        // The matched pattern, not the path: `/api/v1/emails/domains/{domain}`.
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state
            .metrics
            .record_request(&route, &method, status, started.elapsed());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "handled"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}
