//! `GET /api/v1/emails/domains/{domain}/connect` — Domain Connect's synchronous
//! flow: the signed URL that applies the service's template at the domain's DNS
//! provider, when the provider supports it.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::usecases::connect::{ConnectError, encode};
use domain_core::usecases::read::ReadError;
use serde::Serialize;

use crate::AppState;
use crate::auth::OrgOrDashboard;
use crate::error::{ApiError, Operation};
use crate::telemetry::{LOGGED_PATH_CHARS, bounded};

/// The 404 sentence when there is no apply URL to give.
pub const UNSUPPORTED: &str = "DNS provider does not support Domain Connect for this domain";

/// The query parameter the Setup page finds on its URL when the DNS provider sends
/// the customer back; it then checks the domain.
pub const RETURN_MARKER: &str = "domainconnect=applied";

/// Where to send the customer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DomainConnect)]
pub struct ConnectJson {
    /// The DNS provider's name, for "Set up automatically at <provider>".
    #[schema(example = "Example DNS")]
    provider: String,
    /// The signed apply URL at the provider (RSA-SHA256 over the query, `key` and
    /// `sig` last); the customer's browser comes back to the domain's Setup page.
    #[schema(
        example = "https://connect.dns.example/v2/domainTemplates/providers/mail.example/services/sending-domain/apply?domain=example.com&dkimkey=MIIB…&dkimselector=s1&mxhost=inbound.example.net&spfrules=ip4%3A192.0.2.10&groupId=sending&redirect_uri=https%3A%2F%2Fapi.example%2Fsetup%2Fexample.com%3Fdomainconnect%3Dapplied&key=_dck1&sig=…"
    )]
    apply_url: String,
}

/// The Domain Connect apply URL of a domain: discovery at its zone's
/// `_domainconnect` TXT, the DNS provider's settings and its support of the
/// service's template, then the template's variables signed with the service's key.
/// Counts as a live DNS check. API tokens or the dashboard JWT.
#[utoipa::path(
    get,
    path = "/api/v1/emails/domains/{domain}/connect",
    operation_id = "getDomainConnect",
    tag = "domains",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, description = "The provider supports the service's template", body = ConnectJson, content_type = "application/json"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials or bearer token", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found` (also another organization's domain), or `DNS provider does not support Domain Connect for this domain` (no `_domainconnect` record, no usable settings, the template not supported, a provider at an address not allowed, or the service not configured for Domain Connect)", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many live DNS checks; retry later`: the organization made `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS within 60 s on this instance; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []), ("dashboard_jwt" = []))
)]
#[tracing::instrument(name = "domain_connect", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn connect(
    OrgOrDashboard(organization): OrgOrDashboard,
    path: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let redirect_uri = {
        let info = req.connection_info();
        format!(
            "{}://{}/setup/{}?{RETURN_MARKER}",
            info.scheme(),
            info.host(),
            encode(&path)
        )
    };
    let found = state
        .live_checks
        .admit(&organization, Operation::ReadDomains)
        .await?
        .within(state.connect.apply_url(&organization, &path, &redirect_uri))
        .await;
    match found {
        Ok(found) => Ok(HttpResponse::Ok().json(ConnectJson {
            provider: found.provider,
            apply_url: found.apply_url,
        })),
        Err(ConnectError::NotSupported(why)) => {
            tracing::info!(why, "Domain Connect not available");
            Err(ApiError::DomainConnectUnsupported)
        }
        Err(ConnectError::InvalidDomain(raw)) => Err(ReadError::InvalidDomain(raw).into()),
        Err(ConnectError::NotFound) => Err(ReadError::NotFound.into()),
        Err(ConnectError::Infra(e)) => Err(ReadError::Infra(e).into()),
    }
}
