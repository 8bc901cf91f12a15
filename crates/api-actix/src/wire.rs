//! Wire types shared by the handlers' OpenAPI annotations and the document itself,
//! kept apart so that the routes and the OpenAPI module do not import each other.

/// Written out again in the handlers' annotations (utoipa takes literals there);
/// `the_served_document_uses_these_patterns` keeps the copies equal.
///
/// A necessary (not sufficient) pattern for a sender address, never stricter than the
/// service: an ASCII dot-atom local part of at most 64 characters (dots anywhere; the
/// service checks their places), `@`, and a domain without `@` (Unicode or A-labels,
/// any number of labels of any length; the service checks UTS #46, label and total
/// lengths and the Public Suffix List). A generated client must never refuse an
/// address the service would take (`every_address_the_service_accepts_passes_the_document`).
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$";
/// The domain half of [`EMAIL_PATTERN`]: anything without `@`.
pub const DOMAIN_PATTERN: &str = r"^[^@]+$";

/// The seed's 500 body.
#[derive(Debug, utoipa::ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct ErrorBody {
    #[schema(example = "Failed to generate DNS records.")]
    error: String,
}

/// A domain's `status`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DomainStatus {
    /// Created; not yet seen published.
    Pending,
    /// SPF, the active DKIM key and DMARC all seen correct once.
    Verified,
    /// Was verified, then two checks in a row found a record missing or wrong.
    Failing,
}

/// How a domain's `zone` was found.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ZoneSource {
    /// An SOA lookup at a check found the closest enclosing zone cut.
    Soa,
    /// No lookup has found the zone (none ran yet, or it failed): the registrable
    /// domain (one label below the public suffix) is assumed.
    Registrable,
}

/// A DKIM key's `state`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs mail now.
    Active,
    /// Waiting to be seen published; then it becomes active.
    Pending,
    /// Replaced; kept published until revoked.
    Retiring,
    /// Its record's value is `v=DKIM1; k=rsa; p=`; its private key is destroyed.
    Revoked,
}
