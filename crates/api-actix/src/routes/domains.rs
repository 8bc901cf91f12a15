//! `GET /api/v1/emails/domains` and `GET /api/v1/emails/domains/{domain}`, and the
//! domain detail JSON the lifecycle routes answer with too.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use domain_core::PublishedRecord;
use domain_core::usecases::read::{DomainView, KeyView};
use serde::Serialize;

use crate::AppState;
use crate::auth::{AuthenticatedOrg, OrgOrDashboard};
use crate::error::ApiError;
use crate::telemetry::{LOGGED_PATH_CHARS, bounded};

/// RFC 3339, UTC, whole seconds: `2026-11-26T16:15:47Z`.
pub(crate) fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DomainSummary)]
pub struct DomainSummaryJson {
    domain: String,
    unicode: String,
    /// The active key's selector.
    dkim_selector: String,
    inbound_enabled: bool,
    /// `pending`, `verified` or `failing`.
    #[schema(value_type = crate::wire::DomainStatus)]
    status: &'static str,
    created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DomainList)]
pub struct DomainListJson {
    domains: Vec<DomainSummaryJson>,
    /// `after` for the next page; null on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// The organization's domains.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains",
    operation_id = "listDomains",
    tag = "domains",
    params(crate::pagination::PageQuery),
    responses(
        (status = 200, body = DomainListJson, content_type = "application/json"),
        (status = 400, description = "limit outside 1–1000", body = String, content_type = "text/plain"),
        (status = 401, body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
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
                status: d.status.as_str(),
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
    /// Always `TXT`.
    #[serde(rename = "type")]
    record_type: &'static str,
    /// Relative to `zone`: `@` for the zone's own name; for the sender domain
    /// `mail.example.com` in the zone `example.com`: `mail`,
    /// `<selector>._domainkey.mail`, `_dmarc.mail`.
    host: String,
    /// The DNS zone to publish the record in (A-labels), the one `host` is relative to.
    zone: String,
    /// Fully qualified.
    name: String,
    /// Seconds to live (`DOMAIN_API_RECORD_TTL`, default 3600).
    ttl: u32,
    value: String,
    /// `value` in pieces of at most 255 octets.
    strings: Vec<String>,
}

impl From<PublishedRecord> for RecordJson {
    fn from(r: PublishedRecord) -> Self {
        Self {
            record_type: r.record_type,
            host: r.host,
            zone: r.zone,
            name: r.name,
            ttl: r.ttl,
            value: r.value,
            strings: r.strings,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Sender)]
pub struct SenderJson {
    email: String,
    #[schema(required = true)]
    reply_to: Option<String>,
    active: bool,
    created_at: String,
}

/// One DKIM key of a domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DkimKey)]
pub struct DkimKeyJson {
    selector: String,
    /// `active`, `pending`, `retiring` or `revoked`.
    #[schema(value_type = crate::wire::KeyState)]
    state: &'static str,
    /// The record to publish for this key; a revoked key's value is `v=DKIM1; k=rsa; p=`.
    record: RecordJson,
    created_at: String,
    #[schema(required = true)]
    activated_at: Option<String>,
    #[schema(required = true)]
    retired_at: Option<String>,
    #[schema(required = true)]
    revoked_at: Option<String>,
    /// The revoked key's record may be deleted from DNS now.
    safe_to_remove: bool,
}

impl From<KeyView> for DkimKeyJson {
    fn from(view: KeyView) -> Self {
        let KeyView {
            key,
            record,
            safe_to_remove,
        } = view;
        Self {
            selector: key.selector.to_string(),
            state: key.state.as_str(),
            record: record.into(),
            created_at: rfc3339(&key.created_at),
            activated_at: key.activated_at.as_ref().map(rfc3339),
            retired_at: key.retired_at.as_ref().map(rfc3339),
            revoked_at: key.revoked_at.as_ref().map(rfc3339),
            safe_to_remove,
        }
    }
}

/// The MX record inbound mail needs, at the sender domain itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = InboundMxRecord)]
pub struct InboundMxJson {
    /// Always `MX`.
    #[serde(rename = "type")]
    #[schema(example = "MX")]
    record_type: &'static str,
    /// Relative to the sender domain: `@`.
    host: String,
    /// Fully qualified: the sender domain.
    name: String,
    /// The MX preference to publish (10).
    priority: u16,
    /// The mail exchanger: the first of `DOMAIN_API_INBOUND_MX_HOSTS`.
    value: String,
}

/// One record's finding in the last check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CheckedRecord)]
pub struct CheckedRecordJson {
    /// `SPF`, `DKIM` or `DMARC`.
    #[serde(rename = "type")]
    record_type: String,
    name: String,
    /// `ok`, `missing`, `mismatch` or `error`.
    status: String,
    /// Why it is not `ok`; null when it is.
    #[schema(required = true)]
    reason: Option<String>,
}

/// The last check's MX finding.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CheckedInbound)]
pub struct CheckedInboundJson {
    /// Some MX record points at one of the inbound hosts.
    mx_ready: bool,
    /// `ok`, `missing`, `mismatch` or `error`.
    status: String,
    /// Why it is not `ok`; null when it is.
    #[schema(required = true)]
    reason: Option<String>,
}

/// What the last check (`verify`, or the background verifier) found, record by record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LastCheck)]
pub struct LastCheckJson {
    /// When it ran: the domain's `lastCheckedAt`.
    checked_at: String,
    /// SPF, the DKIM record of the key active after the check, DMARC.
    records: Vec<CheckedRecordJson>,
    inbound: CheckedInboundJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DomainDetail)]
pub struct DomainDetailJson {
    domain: String,
    unicode: String,
    inbound_enabled: bool,
    created_at: String,
    /// `pending`, `verified` or `failing`.
    #[schema(value_type = crate::wire::DomainStatus)]
    status: &'static str,
    #[schema(required = true)]
    verified_at: Option<String>,
    #[schema(required = true)]
    last_checked_at: Option<String>,
    /// Null when no check is scheduled.
    #[schema(required = true)]
    next_check_at: Option<String>,
    /// The DNS zone the records go into (A-labels): the closest enclosing zone cut a
    /// check's SOA lookup found, else the registrable domain.
    zone: String,
    /// How `zone` was found: `soa` (an SOA lookup at a check found it) or
    /// `registrable` (no lookup has found it yet, or it failed: the registrable
    /// domain is assumed).
    #[schema(value_type = crate::wire::ZoneSource)]
    zone_source: &'static str,
    /// Every record to publish now: SPF, every key's DKIM record (newest first), DMARC.
    records: Vec<RecordJson>,
    /// Every key not yet safe to forget, newest first.
    dkim: Vec<DkimKeyJson>,
    senders: Vec<SenderJson>,
    /// The MX record inbound mail needs; listed with the records (and in the zone
    /// file) once `inboundEnabled` is true.
    inbound_mx: InboundMxJson,
    /// What the last check found, record by record; null before the first check.
    #[schema(required = true)]
    last_check: Option<LastCheckJson>,
}

impl From<DomainView> for DomainDetailJson {
    fn from(view: DomainView) -> Self {
        let last_check = view
            .last_check
            .zip(view.last_checked_at.as_ref())
            .map(|(check, at)| LastCheckJson {
                checked_at: rfc3339(at),
                records: check
                    .records
                    .into_iter()
                    .map(|r| CheckedRecordJson {
                        record_type: r.record_type,
                        name: r.name,
                        status: r.status,
                        reason: r.reason,
                    })
                    .collect(),
                inbound: CheckedInboundJson {
                    mx_ready: check.inbound.mx_ready,
                    status: check.inbound.status,
                    reason: check.inbound.reason,
                },
            });
        let mx = view.inbound_mx;
        Self {
            inbound_mx: InboundMxJson {
                record_type: "MX",
                host: mx.host,
                name: mx.name,
                priority: mx.priority,
                value: mx.value,
            },
            last_check,
            unicode: view.domain.to_unicode(),
            domain: view.domain.to_string(),
            inbound_enabled: view.inbound_enabled,
            created_at: rfc3339(&view.created_at),
            status: view.status.as_str(),
            verified_at: view.verified_at.as_ref().map(rfc3339),
            last_checked_at: view.last_checked_at.as_ref().map(rfc3339),
            next_check_at: view.next_check_at.as_ref().map(rfc3339),
            zone: view.zone.name().as_ascii().to_owned(),
            zone_source: view.zone.source().as_str(),
            records: view.records.into_iter().map(RecordJson::from).collect(),
            dkim: view.dkim.into_iter().map(DkimKeyJson::from).collect(),
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

/// One domain: status, every record to publish now, its DKIM keys, inbound status,
/// senders. API tokens or the dashboard JWT. Another organization's domain answers
/// 404 exactly like a missing one.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains/{domain}",
    operation_id = "getDomain",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "Not a valid domain name", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials or bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "No such domain for this organization", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []), ("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "domain_detail", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn detail(
    OrgOrDashboard(organization): OrgOrDashboard,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state.read.detail(&organization, &path).await?;
    Ok(HttpResponse::Ok().json(DomainDetailJson::from(view)))
}

/// Every record to publish now as BIND zone-file lines (each record's TTL, `IN TXT`,
/// absolute names, long values as quoted ≤255-octet strings), and the inbound MX
/// (`IN MX 10 …`) when inbound is on, under a comment naming the zone they go into:
/// paste into a zone file, or import at a DNS provider that reads one. API tokens or
/// the dashboard JWT.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains/{domain}/zone",
    operation_id = "getDomainZone",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, description = "Zone-file lines", body = String, content_type = "text/plain"),
        (status = 400, description = "Not a valid domain name", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials or bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "No such domain for this organization", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []), ("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "domain_zone", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn zone(
    OrgOrDashboard(organization): OrgOrDashboard,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state.read.detail(&organization, &path).await?;
    let mut lines = domain_core::zone_lines(&view.domain, &view.records);
    if view.inbound_enabled {
        lines.push_str(&view.inbound_mx.zone_line());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(lines))
}
