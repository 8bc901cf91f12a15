//! The OpenAPI 3 document of the whole HTTP surface, generated from the handlers'
//! annotations and served at `GET /api/v1/openapi.json`.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{domains, generate, health, validate};

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

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Access-Token"))),
        );
        components.add_security_scheme(
            "secret_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Secret-Token"))),
        );
        components.add_security_scheme(
            "dashboard_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "domain-api", description = "Provision sender domains: DKIM keys and the SPF, DKIM and DMARC records to publish."),
    paths(
        generate::generate,
        domains::list,
        domains::detail,
        validate::validate,
        health::healthz,
        health::readyz,
        health::metrics,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
});

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_patterns_only_admit_what_the_service_accepts() {
        // Spot checks at the edges of the patterns; proptest below covers the rest.
        for email in [
            "a@b.cd",
            "first.last+tag@mail-1.example.com",
            &format!("{}@{}.example", "x".repeat(32), "y".repeat(22)),
        ] {
            assert!(domain_core::EmailAddress::parse(email).is_ok(), "{email}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_address_matching_the_pattern_is_accepted(
            email in r"[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,16})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,12}"
        ) {
            proptest::prop_assert!(domain_core::EmailAddress::parse(&email).is_ok(), "{}", email);
        }
    }

    #[test]
    fn the_served_document_uses_these_patterns() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let schema = &doc["components"]["schemas"]["GenerateRequest"]["properties"];
        assert_eq!(schema["email"]["pattern"], EMAIL_PATTERN);
        let detail =
            &doc["paths"]["/api/v1/emails/domains/{domain}"]["get"]["parameters"][0]["schema"];
        assert_eq!(detail["pattern"], DOMAIN_PATTERN);
        let validate = &doc["paths"]["/api/v1/domains/validate"]["get"]["parameters"][0]["schema"];
        assert_eq!(validate["pattern"], DOMAIN_PATTERN);
        for domain in ["a.bc", "mail-1.example.com"] {
            assert!(domain_core::DomainName::parse(domain).is_ok());
        }
    }

    #[test]
    fn documents_every_route_and_security_scheme() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/api/v1/emails/domains/generate",
            "/api/v1/emails/domains",
            "/api/v1/emails/domains/{domain}",
            "/api/v1/domains/validate",
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/v1/openapi.json",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not documented");
        }
        for scheme in ["access_token", "secret_token", "dashboard_jwt"] {
            assert!(
                doc["components"]["securitySchemes"][scheme].is_object(),
                "{scheme}"
            );
        }
        let generate = &doc["paths"]["/api/v1/emails/domains/generate"]["post"];
        for status in [
            "201", "400", "401", "408", "409", "413", "415", "500", "503",
        ] {
            assert!(
                generate["responses"][status].is_object(),
                "generate {status}"
            );
        }
    }
}
