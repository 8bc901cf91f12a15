//! Claims: `POST …/{domain}/claim` opens one on another organization's domain,
//! `POST …/{domain}/claim/verify` proves it over live DNS and transfers the domain.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use domain_core::usecases::claim::ClaimChallenge;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::error::{ApiError, Operation};
use crate::routes::domains::DomainDetailJson;
use crate::telemetry::{LOGGED_PATH_CHARS, bounded};

/// The TXT record that proves control of the domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClaimRecordJson {
    /// Always `TXT`.
    #[schema(example = "TXT")]
    r#type: &'static str,
    /// `_domain-api-claim.<domain>`.
    #[schema(example = "_domain-api-claim.example.com")]
    name: String,
    /// `domain-api-claim=<random>`.
    #[schema(example = "domain-api-claim=0f4c2a9e6b1d8f3a5c7e9b2d4f6a8c0e1b3d5f7a")]
    value: String,
}

/// An open claim: publish `record`, then call `…/claim/verify` before `expiresAt`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimJson {
    /// The claimed domain (A-labels).
    #[schema(example = "example.com")]
    domain: String,
    record: ClaimRecordJson,
    /// When the claim closes unproven (RFC 3339, UTC).
    #[schema(example = "2026-12-06T12:00:00Z")]
    expires_at: String,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<ClaimChallenge> for ClaimJson {
    fn from(challenge: ClaimChallenge) -> Self {
        Self {
            domain: challenge.domain.as_ascii().to_owned(),
            record: ClaimRecordJson {
                r#type: "TXT",
                name: challenge.record_name,
                value: challenge.record_value,
            },
            expires_at: rfc3339(challenge.expires_at),
        }
    }
}

/// Opens a claim on a domain another organization holds: publish the TXT record it
/// returns at your DNS provider, then call `…/claim/verify`. The same record is
/// returned while the claim is open (7 days).
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains/{domain}/claim",
    operation_id = "openClaim",
    tag = "ownership",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 201, description = "The claim is open: publish the record", body = ClaimJson, content_type = "application/json"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Domain not found`: nobody owns it (create it with generate)", body = String, content_type = "text/plain"),
        (status = 409, description = "`Domain already belongs to this organization`", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "claim", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn open(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let challenge = state
        .claim
        .open(&organization, &path)
        .await
        .map_err(|e| ApiError::Claim(e, Operation::OpenClaim))?;
    Ok(HttpResponse::Created().json(ClaimJson::from(challenge)))
}

/// Proves an open claim: looks up `_domain-api-claim.<domain>` over live DNS and,
/// when it carries the claim's value, transfers the domain to this organization
/// with a new DKIM key (the previous owner's keys are destroyed and its senders on
/// the domain removed). Publish the new records it returns.
#[utoipa::path(
    post,
    path = "/api/v1/emails/domains/{domain}/claim/verify",
    operation_id = "verifyClaim",
    tag = "ownership",
    params(("domain" = String, Path, description = "The domain, Unicode or A-labels. The service also checks what the pattern leaves out: two labels at least, each of 1 to 63 octets, at most 253 octets in A-label form (UTS #46)", pattern = r"^[^@]+$")),
    responses(
        (status = 200, description = "Transferred: the domain's detail, now this organization's, with its new key", body = DomainDetailJson, content_type = "application/json"),
        (status = 400, description = "`Invalid domain: <domain>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`No open claim for this domain` (never opened, expired, or another claim won)", body = String, content_type = "text/plain"),
        (status = 403, description = "`Domain limit reached`: the domain would take the organization past `DOMAIN_API_MAX_DOMAINS_PER_ORG`; nothing transferred", body = String, content_type = "text/plain"),
        (status = 409, description = "`Claim record not found at _domain-api-claim.<domain>` (no value there equals the claim's at any of the zone's authoritative nameservers that answered, or at the resolver when none can be found), `Claim record not found at _domain-api-claim.<domain> on every nameserver: published on <k> of <n> nameservers; <host> (<address>) does not serve it yet` (a secondary lags: nothing transferred yet), `Claim record at _domain-api-claim.<domain> is not DNSSEC-validated: the zone <zone> is signed` (the zone publishes DNSKEY records and no validated answer holds the claim's value: bogus, forged or unvalidatable), or `Domain already belongs to this organization`", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many DKIM keys generated; retry later`: the organization generated `DOMAIN_API_NEW_DOMAINS_PER_MINUTE` keys (new domains, rotations, claims) within 60 s; or `Too many live DNS checks; retry later`: `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS within 60 s on this instance. `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "claim_verify", skip_all, fields(domain = %bounded(path.as_str(), LOGGED_PATH_CHARS)))]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn verify(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .live_checks
        .admit(&organization, Operation::VerifyClaim)
        .await?
        .within(state.claim.verify(&organization, &path))
        .await
        .map_err(|e| ApiError::Claim(e, Operation::VerifyClaim))?;
    Ok(HttpResponse::Ok().json(DomainDetailJson::from(view)))
}
