//! `GET /api/v1/emails/domains` and `GET /api/v1/emails/domains/{domain}`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use domain_core::usecases::read::DomainView;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::error::ApiError;
use crate::telemetry::{LOGGED_PATH_CHARS, bounded};

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DomainSummary)]
pub struct DomainSummaryJson {
    domain: String,
    unicode: String,
    dkim_selector: String,
    inbound_enabled: bool,
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DomainList)]
pub struct DomainListJson {
    domains: Vec<DomainSummaryJson>,
    /// `after` for the next page; null on the last page.
    next: Option<String>,
}

/// The organization's domains.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains",
    tag = "domains",
    params(crate::pagination::PageQuery),
    responses(
        (status = 200, body = DomainListJson, content_type = "application/json"),
        (status = 400, description = "limit outside 1–1000", body = String, content_type = "text/plain"),
        (status = 401, body = String, content_type = "text/plain"),
        (status = 503, body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn list(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page(&req)?;
    let domains = state.read.list(&organization, &page).await?;
    let body = DomainListJson {
        next: domains.next,
        domains: domains
            .items
            .into_iter()
            .map(|d| DomainSummaryJson {
                unicode: d.name.to_unicode(),
                domain: d.name.to_string(),
                dkim_selector: d.selector.to_string(),
                inbound_enabled: d.inbound_enabled,
                created_at: rfc3339(&d.created_at),
            })
            .collect(),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PublishedRecord)]
pub struct RecordJson {
    #[serde(rename = "type")]
    record_type: &'static str,
    host: String,
    name: String,
    value: String,
    strings: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Sender)]
pub struct SenderJson {
    email: String,
    reply_to: Option<String>,
    active: bool,
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DomainDetail)]
pub struct DomainDetailJson {
    domain: String,
    unicode: String,
    inbound_enabled: bool,
    created_at: String,
    records: Vec<RecordJson>,
    senders: Vec<SenderJson>,
}

impl From<DomainView> for DomainDetailJson {
    fn from(view: DomainView) -> Self {
        Self {
            unicode: view.domain.to_unicode(),
            domain: view.domain.to_string(),
            inbound_enabled: view.inbound_enabled,
            created_at: rfc3339(&view.created_at),
            records: view
                .records
                .into_iter()
                .map(|r| RecordJson {
                    record_type: r.record_type,
                    host: r.host,
                    name: r.name,
                    value: r.value,
                    strings: r.strings,
                })
                .collect(),
            senders: view
                .senders
                .into_iter()
                .map(|s| SenderJson {
                    email: s.email,
                    reply_to: s.reply_to,
                    active: s.active,
                    created_at: rfc3339(&s.created_at),
                })
                .collect(),
        }
    }
}

/// One domain: typed records, inbound status, senders. Another organization's domain
/// answers 404 exactly like a missing one.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains/{domain}",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels", pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$", max_length = 253)),
    responses(
        (status = 200, body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "Not a valid domain name", body = String, content_type = "text/plain"),
        (status = 401, body = String, content_type = "text/plain"),
        (status = 404, description = "No such domain for this organization", body = String, content_type = "text/plain"),
        (status = 503, body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "domain_detail", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn detail(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state.read.detail(&organization, &path).await?;
    Ok(HttpResponse::Ok().json(DomainDetailJson::from(view)))
}
