//! Request telemetry: one span per request carrying a request id, never a header
//! value, token or key; the request's metrics. Whatever a client sent is logged
//! bounded in length (a request line can be 100 KiB) and with control characters
//! escaped, so it can neither flood the log nor forge a line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use ring::rand::{SecureRandom, SystemRandom};
use tracing::Instrument as _;

use crate::metrics::labels::route_label;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Characters of a method token kept in the log (`PROPFIND` and friends fit).
pub const LOGGED_METHOD_CHARS: usize = 24;
/// Characters of a path (or a path segment such as a domain) kept in the log.
pub const LOGGED_PATH_CHARS: usize = 256;

/// Client input for a log field: at most `max_chars` characters, then `…`; control
/// characters escaped (`\n`, `\u{1b}`).
#[derive(Debug, Clone, Copy)]
pub struct Bounded<'a> {
    text: &'a str,
    max_chars: usize,
}

/// `text` as a log field of at most `max_chars` characters (see [`Bounded`]).
#[must_use]
pub fn bounded(text: &str, max_chars: usize) -> Bounded<'_> {
    Bounded { text, max_chars }
}

impl std::fmt::Display for Bounded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let mut chars = self.text.chars();
        for c in chars.by_ref().take(self.max_chars) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        if chars.next().is_some() {
            f.write_char('…')?;
        }
        Ok(())
    }
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
    mint_request_id()
}

thread_local! {
    /// Per worker thread: a random 32-bit prefix, a random 64-bit offset, a counter.
    static ID_STATE: std::cell::Cell<(u32, u64, u64)> = std::cell::Cell::new(id_seed());
}

fn id_seed() -> (u32, u64, u64) {
    let mut bytes = [0u8; 12];
    // The system RNG never fails on the platforms we build for; if it did, ids would
    // still be unique per thread, just predictable.
    let _ = SystemRandom::new().fill(&mut bytes);
    let (prefix, offset) = bytes.split_at(4);
    (
        u32::from_le_bytes(prefix.try_into().unwrap_or_default()),
        u64::from_le_bytes(offset.try_into().unwrap_or_default()),
        0,
    )
}

/// 24 hex digits, unique without a syscall per request: the thread's random prefix,
/// then its counter (plus a random offset) through splitmix64's finaliser, a
/// bijection, so ids never repeat within a thread and do not reveal request counts.
fn mint_request_id() -> String {
    let (prefix, offset, counter) = ID_STATE.with(|state| {
        let (prefix, offset, counter) = state.get();
        state.set((prefix, offset, counter.wrapping_add(1)));
        (prefix, offset, counter)
    });
    let mut z = counter.wrapping_add(offset);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{prefix:08x}{z:016x}")
}

/// The paths load balancers and Prometheus ask every few seconds: a `GET` or `HEAD`
/// of one is logged at DEBUG (any other method on them is no probe, and is logged
/// like any request).
pub const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

fn is_probe(method: &actix_web::http::Method, path: &str) -> bool {
    (method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD)
        && PROBE_PATHS.contains(&path)
}

/// Middleware: a span per request (`id`, method, path; `org` and `domain` filled in
/// by handlers), a log line with status and latency, and `X-Request-Id` echoed back.
///
/// # Errors
/// Whatever the wrapped service fails with, passed on unchanged; such a request is
/// neither logged nor counted here.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %bounded(req.method().as_str(), LOGGED_METHOD_CHARS),
        path = %bounded(req.path(), LOGGED_PATH_CHARS),
        org = tracing::field::Empty,
    );
    let started = Instant::now();
    let state = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .cloned();
    let method = req.method().clone(); // no allocation for the standard methods
    let probe = is_probe(req.method(), req.path());
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        // The matched pattern, not the path: `/api/v1/emails/domains/{domain}`.
        let route = route_label(response.request().match_pattern());
        state
            .metrics
            .record_request(&route, method.as_str(), status, elapsed);
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        // Rejected credentials are counted in /metrics; at `info` a flood of them
        // would cost a log line each and bury everything else. So would probes and
        // scrapes, every few seconds from every load balancer and Prometheus.
        if status == 401 || probe {
            tracing::debug!(status, latency_ms, "handled");
        } else {
            tracing::info!(status, latency_ms, "handled");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{bounded, mint_request_id};

    #[test]
    fn probes_are_gets_and_heads_of_the_three_operations_paths() {
        use actix_web::http::Method;
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert!(super::is_probe(&Method::GET, path), "{path}");
            assert!(super::is_probe(&Method::HEAD, path), "{path}");
            assert!(!super::is_probe(&Method::POST, path), "{path}");
        }
        for path in [
            "/",
            "/healthz/",
            "/api/v1/openapi.json",
            "/api/v1/emails/domains",
        ] {
            assert!(!super::is_probe(&Method::GET, path), "{path}");
        }
    }

    #[test]
    fn a_bounded_field_keeps_short_text_and_cuts_long_text() {
        assert_eq!(bounded("/healthz", 256).to_string(), "/healthz");
        assert_eq!(bounded("abcdef", 6).to_string(), "abcdef");
        assert_eq!(bounded("abcdefg", 6).to_string(), "abcdef…");
        let long = "M".repeat(60_000);
        assert_eq!(bounded(&long, 24).to_string().chars().count(), 25);
        assert_eq!(bounded("é".repeat(10).as_str(), 3).to_string(), "ééé…");
    }

    #[test]
    fn a_bounded_field_escapes_control_characters() {
        assert_eq!(
            bounded("a\nfake line\u{1b}[31m", 256).to_string(),
            "a\\nfake line\\u{1b}[31m"
        );
    }

    #[test]
    fn minted_request_ids_are_24_hex_digits_and_never_repeat() {
        let mine: Vec<String> = (0..10_000).map(|_| mint_request_id()).collect();
        let theirs: Vec<String> =
            std::thread::spawn(|| (0..10_000).map(|_| mint_request_id()).collect())
                .join()
                .unwrap_or_default();
        assert_eq!(theirs.len(), 10_000);
        let all: HashSet<&String> = mine.iter().chain(&theirs).collect();
        assert_eq!(all.len(), 20_000, "ids repeat");
        assert!(all.iter().all(|id| {
            id.len() == 24
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
        // Consecutive ids share the thread prefix but not an obvious sequence.
        assert_eq!(mine[0][..8], mine[1][..8]);
        assert_ne!(mine[0][8..20], mine[1][8..20]);
    }
}
