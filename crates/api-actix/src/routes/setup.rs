//! The Domain Setup page (`GET /setup/{domain}`) and its assets: plain HTML, CSS and
//! JavaScript compiled into the binary, served under a strict Content-Security-Policy.
//!
//! The page is the same static document for every domain and holds no customer
//! data, so it needs no credential: its script reads the dashboard JWT from the URL
//! fragment (which browsers never send) and calls the API with it.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use domain_core::DomainName;

use crate::AppState;
use crate::error::ApiError;
use crate::frame_ancestors::FrameAncestors;

const PAGE: &str = include_str!("../../assets/setup/index.html");
const SCRIPT: &str = include_str!("../../assets/setup/setup.js");
const STYLE: &str = include_str!("../../assets/setup/setup.css");
const ICON: &str = include_str!("../../assets/setup/icon.svg");

/// Where the page finds its assets; `{file}` is one of the names in [`asset`].
pub const ASSETS: &str = "/setup/assets/{file}";

/// A fingerprint of the assets: the page asks for `setup.js?v=<it>`, so an asset
/// may be cached for good and a new build is fetched afresh.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [SCRIPT, STYLE, ICON] {
            context.update(part.as_bytes());
        }
        context
            .finish()
            .as_ref()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

fn page_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| PAGE.replace("{{version}}", version()))
}

/// The policy of the page and its assets: nothing but this origin's own script,
/// style and API; no inline script or style; framed only by the configured origins.
#[must_use]
pub fn content_security_policy(frame_ancestors: &FrameAncestors) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        frame_ancestors.directive()
    )
}

fn secured(
    mut response: HttpResponseBuilder,
    frame_ancestors: &FrameAncestors,
) -> HttpResponseBuilder {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(frame_ancestors),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"));
    if let Some(value) = frame_ancestors.x_frame_options() {
        response.insert_header((header::X_FRAME_OPTIONS, value));
    }
    response
}

/// The Domain Setup page. Open it from the dashboard as
/// `/setup/<domain>#token=<dashboard JWT>`; see docs/api.md.
///
/// # Errors
/// [`ApiError::NotFound`] when `{domain}` is not a valid domain name.
pub async fn page(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    DomainName::parse(&path).map_err(|_| ApiError::NotFound)?;
    Ok(secured(HttpResponse::Ok(), &state.frame_ancestors)
        // Static, but revalidated so a new build's asset fingerprint is picked up.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/html; charset=utf-8")
        .body(page_html()))
}

/// One of the page's assets: `setup.js`, `setup.css`, `icon.svg`.
///
/// # Errors
/// [`ApiError::NotFound`] for any other name.
pub async fn asset(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (content_type, body) = match path.as_str() {
        "setup.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "setup.css" => ("text/css; charset=utf-8", STYLE),
        "icon.svg" => ("image/svg+xml", ICON),
        _ => return Err(ApiError::NotFound),
    };
    // Only the fingerprinted URL names these bytes for good.
    let fingerprinted = request
        .query_string()
        .strip_prefix("v=")
        .is_some_and(|v| v == version());
    let cache = if fingerprinted {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(secured(HttpResponse::Ok(), &state.frame_ancestors)
        .insert_header((header::CACHE_CONTROL, cache))
        .content_type(content_type)
        .body(body))
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
