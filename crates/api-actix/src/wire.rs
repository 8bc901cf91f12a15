//! Wire types shared by the handlers' OpenAPI annotations and the document itself,
//! kept apart so that the routes and the OpenAPI module do not import each other.

/// Written out again in the handlers' annotations (utoipa takes literals there);
/// `the_served_document_uses_these_patterns` keeps the copies equal.
///
/// A sufficient (not necessary) pattern for a sender address: ASCII dot-atom local
/// part and LDH domain, well inside RFC 5321's limits. The service also accepts
/// internationalised domains, which the pattern leaves out.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$";
/// The domain half of [`EMAIL_PATTERN`].
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
