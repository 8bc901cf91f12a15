//! The OpenAPI 3 document of the whole HTTP surface, generated from the handlers'
//! annotations and served at `GET /api/v1/openapi.json`.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    claims, domains, events, generate, health, manage, senders, validate, webhooks,
};
use crate::wire::ErrorBody;

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
        domains::zone,
        manage::update,
        manage::delete,
        manage::rotate,
        manage::verify,
        claims::open,
        claims::verify,
        senders::list,
        senders::activate,
        senders::delete,
        events::list,
        webhooks::create,
        webhooks::list,
        webhooks::delete,
        webhooks::deliveries,
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
    use crate::wire::{DOMAIN_PATTERN, EMAIL_PATTERN};

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
        for (path, method) in [
            ("/api/v1/emails/domains/{domain}", "patch"),
            ("/api/v1/emails/domains/{domain}", "delete"),
            ("/api/v1/emails/domains/{domain}/dkim/rotate", "post"),
            ("/api/v1/emails/domains/{domain}/verify", "post"),
        ] {
            let schema = &doc["paths"][path][method]["parameters"][0]["schema"];
            assert_eq!(schema["pattern"], DOMAIN_PATTERN, "{method} {path}");
            assert_eq!(schema["maxLength"], 253, "{method} {path}");
        }
        for (path, method) in [
            ("/api/v1/emails/senders/{email}/activate", "post"),
            ("/api/v1/emails/senders/{email}", "delete"),
        ] {
            let schema = &doc["paths"][path][method]["parameters"][0]["schema"];
            assert_eq!(schema["pattern"], EMAIL_PATTERN, "{method} {path}");
            assert_eq!(schema["maxLength"], 254, "{method} {path}");
        }
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
            "/api/v1/emails/domains/{domain}/dkim/rotate",
            "/api/v1/emails/domains/{domain}/verify",
            "/api/v1/emails/senders",
            "/api/v1/emails/senders/{email}/activate",
            "/api/v1/emails/senders/{email}",
            "/api/v1/events",
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

    #[test]
    fn documents_every_status_each_lifecycle_route_answers() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let domain = "/api/v1/emails/domains/{domain}";
        let sender = "/api/v1/emails/senders/{email}";
        let routes: [(&str, &str, &[&str]); 10] = [
            (domain, "get", &["200", "400", "401", "404", "500", "503"]),
            (
                domain,
                "patch",
                &[
                    "200", "400", "401", "404", "408", "409", "413", "415", "500", "503",
                ],
            ),
            (
                domain,
                "delete",
                &["204", "400", "401", "404", "500", "503"],
            ),
            (
                "/api/v1/emails/domains/{domain}/dkim/rotate",
                "post",
                &["202", "400", "401", "404", "409", "500", "503"],
            ),
            (
                "/api/v1/emails/domains/{domain}/verify",
                "post",
                &["200", "400", "401", "404", "500", "503"],
            ),
            (
                "/api/v1/emails/senders",
                "get",
                &["200", "400", "401", "500", "503"],
            ),
            (
                "/api/v1/emails/senders/{email}/activate",
                "post",
                &["200", "401", "404", "500", "503"],
            ),
            (sender, "delete", &["204", "401", "404", "500", "503"]),
            (
                "/api/v1/events",
                "get",
                &["200", "400", "401", "500", "503"],
            ),
            (
                "/api/v1/emails/domains",
                "get",
                &["200", "400", "401", "500", "503"],
            ),
        ];
        for (path, method, statuses) in routes {
            let responses = &doc["paths"][path][method]["responses"];
            let mut documented: Vec<&String> = responses.as_object().unwrap().keys().collect();
            documented.sort();
            assert_eq!(documented, *statuses, "{method} {path}");
            for &status in statuses {
                let content = &responses[status]["content"];
                let expected = match status {
                    "204" => None,
                    s if s.starts_with('2') || s == "500" => Some("application/json"),
                    _ => Some("text/plain"),
                };
                match expected {
                    None => assert!(content.is_null(), "{method} {path} {status}"),
                    Some(kind) => assert!(content[kind].is_object(), "{method} {path} {status}"),
                }
            }
        }
        // Detail, verify and the inbound toggle also take the dashboard JWT; rotate
        // and the rest take API tokens only.
        let schemes = |path: &str, method: &str| doc["paths"][path][method]["security"].to_string();
        for (path, method) in [
            (domain, "get"),
            (domain, "patch"),
            ("/api/v1/emails/domains/{domain}/verify", "post"),
        ] {
            assert!(
                schemes(path, method).contains("dashboard_jwt"),
                "{method} {path}"
            );
        }
        for (path, method) in [
            (domain, "delete"),
            ("/api/v1/emails/domains/{domain}/dkim/rotate", "post"),
            ("/api/v1/emails/senders", "get"),
            ("/api/v1/events", "get"),
        ] {
            assert!(
                !schemes(path, method).contains("dashboard_jwt"),
                "{method} {path}"
            );
        }
        let events = &doc["paths"]["/api/v1/events"]["get"]["parameters"];
        assert_eq!(events[1]["name"], "after");
        assert_eq!(events[1]["schema"]["type"], "integer");
        // `limit` is documented as the integer it must be: as a string, `limit=` (empty)
        // would be schema-valid and answered 400 (schemathesis ST202).
        for path in [
            "/api/v1/emails/domains",
            "/api/v1/emails/senders",
            "/api/v1/events",
        ] {
            let limit = &doc["paths"][path]["get"]["parameters"][0];
            assert_eq!(limit["name"], "limit", "{path}");
            assert_eq!(limit["required"], false, "{path}");
            assert_eq!(limit["schema"]["type"], "integer", "{path}");
            assert_eq!(
                (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
                (&serde_json::json!(1), &serde_json::json!(1000)),
                "{path}"
            );
        }
    }

    #[test]
    fn every_field_the_lifecycle_json_always_carries_is_required() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let required = |schema: &str| -> Vec<String> {
            let mut names: Vec<String> = doc["components"]["schemas"][schema]["required"]
                .as_array()
                .unwrap_or_else(|| panic!("{schema}"))
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
            names.sort();
            names
        };
        for (schema, fields) in [
            (
                "DkimKey",
                &[
                    "selector",
                    "state",
                    "record",
                    "createdAt",
                    "activatedAt",
                    "retiredAt",
                    "revokedAt",
                    "safeToRemove",
                ][..],
            ),
            (
                "DomainDetail",
                &[
                    "domain",
                    "unicode",
                    "inboundEnabled",
                    "createdAt",
                    "status",
                    "verifiedAt",
                    "lastCheckedAt",
                    "nextCheckAt",
                    "records",
                    "dkim",
                    "senders",
                ][..],
            ),
            (
                "OrganizationSender",
                &["email", "domain", "replyTo", "active", "createdAt"][..],
            ),
            ("SenderList", &["senders", "next"][..]),
            ("Event", &["id", "type", "domain", "createdAt", "data"][..]),
            ("EventList", &["events", "next"][..]),
            ("DomainList", &["domains", "next"][..]),
        ] {
            assert_eq!(required(schema), sorted(fields), "{schema}");
        }
    }
}
