//! `GET /api/v1/domains/validate?domain=D` — live check of every published record,
//! for the dashboard, authenticated by an HS256 JWT.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::usecases::validate::{
    CheckStatus, InboundCheck, RecordCheck, Tally, ValidationReport,
};
use serde::Serialize;

use crate::AppState;
use crate::auth::DashboardOrg;
use crate::error::{ApiError, Operation};

#[derive(serde::Deserialize)]
struct ValidateQuery {
    domain: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RecordCheck)]
pub struct RecordCheckJson {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    /// `name` relative to the report's `zone` (`@` for the zone's own name).
    host: String,
    /// The DNS zone to publish the record in.
    zone: String,
    /// Seconds to live to publish it with.
    ttl: u32,
    expected: String,
    found: Vec<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// SPF and DMARC only (absent when the lookup failed): the values of that kind
    /// found at the name that are not exactly ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    existing: Option<Vec<String>>,
    /// SPF: `none`, `add` or `replace`; DMARC: `add` or `keep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    /// The one value to publish at the name (for SPF, their record merged with ours).
    #[serde(rename = "suggestedValue", skip_serializing_if = "Option::is_none")]
    suggested_value: Option<String>,
    /// SPF: the DNS lookups the suggested record costs, through `include:` and
    /// `redirect=` (receivers allow 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    lookups: Option<usize>,
    /// A sentence when the suggested value needs attention.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    /// How the record stands at each of the zone's authoritative nameservers, asked
    /// directly; absent when none could be found (the resolver was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers: Option<NameserversJson>,
}

/// A record at the zone's authoritative nameservers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = NameserverTally)]
pub struct NameserversJson {
    /// `published on k of n nameservers`.
    summary: String,
    /// Nameservers (addresses) serving the record as it should be.
    published: usize,
    /// Nameservers (addresses) asked.
    total: usize,
    /// Those that answered without it (a lagging secondary): `host (address)`.
    lagging: Vec<String>,
    /// Those that did not answer (timeout, SERVFAIL, REFUSED, not authoritative).
    unanswered: Vec<String>,
}

impl From<Tally> for NameserversJson {
    fn from(tally: Tally) -> Self {
        Self {
            summary: tally.summary(),
            published: tally.published,
            total: tally.total,
            lagging: tally.lagging,
            unanswered: tally.unanswered,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = InboundCheck)]
pub struct InboundJson {
    enabled: bool,
    mx_ready: bool,
    mx_hosts: Vec<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ValidationReport)]
pub struct ReportJson {
    domain: String,
    verified: bool,
    /// The DNS zone the records go into: the closest enclosing zone cut, by SOA
    /// lookup (at this check, or the last one that found it), else the registrable
    /// domain.
    zone: String,
    /// `soa` or `registrable`, as on the domain detail.
    #[serde(rename = "zoneSource")]
    #[schema(value_type = crate::wire::ZoneSource)]
    zone_source: &'static str,
    records: Vec<RecordCheckJson>,
    inbound: InboundJson,
}

fn status(status: CheckStatus) -> &'static str {
    status.as_str()
}

impl From<ValidationReport> for ReportJson {
    fn from(report: ValidationReport) -> Self {
        let InboundCheck {
            enabled,
            mx_ready,
            mx_hosts,
            status: inbound_status,
            reason,
        } = report.inbound;
        let zone = report.zone.name().as_ascii().to_owned();
        let ttl = report.ttl;
        Self {
            domain: report.domain,
            verified: report.verified,
            zone_source: report.zone.source().as_str(),
            records: report
                .records
                .into_iter()
                .map(
                    |RecordCheck {
                         kind,
                         name,
                         host,
                         expected,
                         found,
                         status: s,
                         reason,
                         change,
                         nameservers,
                     }| {
                        let (existing, action, suggested_value, lookups, warning) = match change {
                            Some(c) => (
                                Some(c.existing),
                                Some(c.action.as_str()),
                                Some(c.suggested_value),
                                c.lookups,
                                c.warning,
                            ),
                            None => (None, None, None, None, None),
                        };
                        RecordCheckJson {
                            kind: kind.as_str(),
                            name,
                            host,
                            zone: zone.clone(),
                            ttl,
                            expected,
                            found,
                            status: status(s),
                            reason,
                            existing,
                            action,
                            suggested_value,
                            lookups,
                            warning,
                            nameservers: nameservers.map(NameserversJson::from),
                        }
                    },
                )
                .collect(),
            zone,
            inbound: InboundJson {
                enabled,
                mx_ready,
                mx_hosts,
                status: status(inbound_status),
                reason,
            },
        }
    }
}

/// 404 when no JWT secret is configured; 401 without a valid bearer token; then 400
/// for a missing or invalid domain, 404 for a domain the token's org does not own.
#[utoipa::path(
    get,
    path = "/api/v1/domains/validate",
    operation_id = "validateDomain",
    tag = "dashboard",
    params(("domain" = String, Query, description = "The domain to check, Unicode or A-labels (two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, body = ReportJson, content_type = "application/json"),
        (status = 400, body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "No such domain for this organization, or the endpoint is disabled", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many live DNS checks; retry later`: the organization made `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS (validate, verify, claim verify, turning inbound on, webhook creation) within 60 s on this instance; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 503, body = String, content_type = "text/plain"),
    ),
    security(("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "validate", skip_all)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn validate(
    DashboardOrg(organization): DashboardOrg,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<ValidateQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::BadRequest("Invalid query string".into()))?;
    let domain = query
        .into_inner()
        .domain
        .ok_or_else(|| ApiError::BadRequest("Missing domain parameter".into()))?;

    let report = state
        .live_checks
        .admit(&organization, Operation::Validate)
        .await?
        .within(state.validate.execute(&organization, &domain))
        .await?;

    Ok(HttpResponse::Ok().json(ReportJson::from(report)))
}
