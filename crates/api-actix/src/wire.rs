//! Wire types shared by the handlers' OpenAPI annotations and the document itself,
//! kept apart so that the routes and the OpenAPI module do not import each other.

/// Written out again in the handlers' annotations (utoipa takes literals there);
/// `the_served_document_uses_these_patterns` keeps the copies equal.
///
/// A sufficient (not necessary) pattern for a sender address: ASCII dot-atom local
/// part and LDH domain, well inside RFC 5321's limits. The service also accepts
/// internationalised domains, which the pattern leaves out.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,16})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$";
/// The domain half of [`EMAIL_PATTERN`].
pub const DOMAIN_PATTERN: &str =
    r"^([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}$";

/// The seed's 500 body.
#[derive(Debug, utoipa::ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct ErrorBody {
    #[schema(example = "Failed to generate DNS records.")]
    error: String,
}
