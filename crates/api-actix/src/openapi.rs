//! The OpenAPI 3 document of the whole HTTP surface, generated from the handlers'
//! annotations and served at `GET /api/v1/openapi.json`.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    claims, connect, create, domains, events, generate, health, manage, senders, validate, webhooks,
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
        create::create,
        domains::list,
        domains::detail,
        domains::zone,
        connect::connect,
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

mod finish;

pub use finish::DEFAULT_SERVER;

/// The document as served: the annotations, then [`finish::finish`].
#[must_use]
pub fn document_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    finish::finish(&mut doc);
    doc
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut text =
        serde_json::to_string_pretty(&document_json()).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
});

/// The served document's text (also committed as `docs/openapi.json`).
#[must_use]
pub fn document_text() -> &'static str {
    DOCUMENT.as_str()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "getOpenApiDocument", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 document", body = Object, content_type = "application/json")))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DOMAIN_PATTERN, EMAIL_PATTERN};

    /// Whether `value` passes the `pattern`, `minLength` and `maxLength` of `schema`,
    /// as a generated client checks them (lengths in characters, as JSON Schema says).
    fn admits(schema: &serde_json::Value, value: &str) -> bool {
        let chars = value.chars().count();
        let pattern_ok = schema["pattern"].as_str().is_none_or(|p| {
            regex::Regex::new(p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .is_match(value)
        });
        pattern_ok
            && schema["minLength"]
                .as_u64()
                .is_none_or(|n| chars as u64 >= n)
            && schema["maxLength"]
                .as_u64()
                .is_none_or(|n| chars as u64 <= n)
    }

    /// Every schema in the document that takes a sender address, and every one that
    /// takes a domain.
    fn address_and_domain_schemas() -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let doc = document_json();
        let request = &doc["components"]["schemas"]["GenerateRequest"]["properties"];
        let mut emails = vec![request["email"].clone(), request["replyTo"].clone()];
        let mut domains = vec![];
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for param in op["parameters"].as_array().into_iter().flatten() {
                    match param["name"].as_str() {
                        Some("email") => emails.push(param["schema"].clone()),
                        Some("domain") => domains.push(param["schema"].clone()),
                        _ => {}
                    }
                }
            }
        }
        assert_eq!((emails.len(), domains.len()), (4, 10));
        (emails, domains)
    }

    fn assert_admitted(email: &str) {
        let (emails, domains) = address_and_domain_schemas();
        let domain = email.rsplit_once('@').unwrap().1;
        for schema in &emails {
            assert!(admits(schema, email), "{email} refused by {schema}");
        }
        for schema in &domains {
            assert!(admits(schema, domain), "{domain} refused by {schema}");
        }
    }

    #[test]
    fn the_document_admits_the_addresses_the_service_accepts() {
        let long_label = "l".repeat(63);
        for email in [
            "noreply@bücher.example".to_owned(),
            "noreply@a.b.c.d.example.com".to_owned(),
            format!("noreply@{long_label}.example.com"),
            "first.middle.last@corp.example".to_owned(),
            format!("{}@{long_label}.{long_label}.example", "x".repeat(64)),
            "o'brien+tag@xn--bcher-kva.example".to_owned(),
            "a@b.cd".to_owned(),
        ] {
            assert!(domain_core::EmailAddress::parse(&email).is_ok(), "{email}");
            assert_admitted(&email);
        }
    }

    fn accepted_address() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let atom = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}";
        let local = proptest::collection::vec(atom, 1..4).prop_map(|atoms| atoms.join("."));
        let label = prop_oneof![
            "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            "[a-zäöüßçéñøåæœあいうえお中文ß0-9]{1,20}",
            "[A-Z0-9]{1,63}",
        ];
        let domain = (
            proptest::collection::vec(label, 1..7),
            "[a-z]{2,12}|中国|рф",
        )
            .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")));
        (local, domain).prop_map(|(local, domain)| format!("{local}@{domain}"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn every_address_the_service_accepts_passes_the_document(email in accepted_address()) {
            proptest::prop_assume!(domain_core::EmailAddress::parse(&email).is_ok());
            assert_admitted(&email);
        }
    }

    /// `docs/openapi.json` is the served document, byte for byte. Regenerate it with
    /// `UPDATE_OPENAPI=1 cargo test -p api-actix --lib openapi` after changing the API.
    #[test]
    fn the_committed_document_is_the_served_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
            std::fs::write(&path, document_text()).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == document_text(),
            "docs/openapi.json is not the served document: regenerate it with \
             `UPDATE_OPENAPI=1 cargo test -p api-actix --lib openapi` and commit it"
        );
    }

    #[test]
    fn every_operation_has_a_unique_id_a_tag_and_described_answers() {
        let doc = document_json();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: operationId {id:?} not unique"
                );
                assert!(
                    !op["tags"][0].as_str().unwrap_or_default().is_empty(),
                    "{method} {path}"
                );
                for (status, response) in op["responses"].as_object().unwrap() {
                    let described = response["description"].as_str().unwrap_or_default();
                    assert!(!described.is_empty(), "{method} {path} {status}");
                    assert!(
                        response["headers"]["X-Request-Id"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        for id in [
            "generateDomain",
            "listDomains",
            "getDomain",
            "deleteDomain",
            "listSenders",
        ] {
            assert!(ids.contains(id), "{id}");
        }
        assert_eq!(doc["servers"][0]["url"], DEFAULT_SERVER);
    }

    /// Whether `value` fits `schema` (the subset of JSON Schema the document uses:
    /// `$ref`, `type` (also as a list), `enum`, `required`, `properties`, `items`,
    /// `additionalProperties`, `allOf`/`oneOf`). `Err` names the first misfit.
    fn fits(
        doc: &serde_json::Value,
        schema: &serde_json::Value,
        value: &serde_json::Value,
        at: &str,
    ) -> Result<(), String> {
        use serde_json::Value;
        if let Some(reference) = schema["$ref"].as_str() {
            let target = doc
                .pointer(reference.trim_start_matches('#'))
                .ok_or(reference)?;
            return fits(doc, target, value, at);
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            fits(doc, part, value, at)?;
        }
        if let Some(options) = schema["oneOf"].as_array()
            && !options.iter().any(|o| fits(doc, o, value, at).is_ok())
        {
            return Err(format!("{at}: {value} fits no oneOf"));
        }
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let allowed: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let admitted = allowed.is_empty()
            || allowed.contains(&kind)
            || (kind == "integer" && allowed.contains(&"number"));
        if !admitted {
            return Err(format!("{at}: {kind} where {allowed:?}"));
        }
        if let Some(options) = schema["enum"].as_array()
            && !options.contains(value)
        {
            return Err(format!("{at}: {value} not in {options:?}"));
        }
        if let Value::Object(members) = value {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !members.contains_key(name) {
                    return Err(format!("{at}: required {name} missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (name, member) in members {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => fits(doc, property, member, &format!("{at}.{name}"))?,
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => return Err(format!("{at}: unexpected {name}")),
                        Value::Object(_) => fits(
                            doc,
                            &schema["additionalProperties"],
                            member,
                            &format!("{at}.{name}"),
                        )?,
                        _ if properties.is_some() => {
                            return Err(format!("{at}: undocumented {name}"));
                        }
                        _ => {}
                    },
                }
            }
        }
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                fits(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    #[test]
    fn every_example_is_a_real_answer_that_fits_its_schema() {
        let doc = document_json();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    if path == "/api/v1/openapi.json" {
                        continue; // its answer is the document itself
                    }
                    for (kind, media) in response["content"].as_object().into_iter().flatten() {
                        let at = format!("{method} {path} {status} {kind}");
                        let example = &media["example"];
                        assert!(!example.is_null(), "{at}: no example");
                        fits(&doc, &media["schema"], example, &at)
                            .unwrap_or_else(|e| panic!("{e}"));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
        // The check itself refuses what does not fit.
        let detail = serde_json::json!({"$ref": "#/components/schemas/DomainDetail"});
        let mut wrong = doc["paths"]["/api/v1/emails/domains/{domain}"]["get"]["responses"]["200"]
            ["content"]["application/json"]["example"]
            .clone();
        assert!(fits(&doc, &detail, &wrong, "detail").is_ok());
        wrong["status"] = "unknown".into();
        assert!(fits(&doc, &detail, &wrong, "detail").is_err());
        wrong["status"] = "pending".into();
        wrong.as_object_mut().unwrap().remove("records");
        assert!(fits(&doc, &detail, &wrong, "detail").is_err());
    }

    #[test]
    fn the_served_document_uses_these_patterns() {
        let doc = document_json();
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
        }
        for (path, method) in [
            ("/api/v1/emails/senders/{email}/activate", "post"),
            ("/api/v1/emails/senders/{email}", "delete"),
        ] {
            let schema = &doc["paths"][path][method]["parameters"][0]["schema"];
            assert_eq!(schema["pattern"], EMAIL_PATTERN, "{method} {path}");
        }
        for domain in ["a.bc", "mail-1.example.com"] {
            assert!(domain_core::DomainName::parse(domain).is_ok());
        }
    }

    #[test]
    fn documents_every_route_and_security_scheme() {
        let doc = document_json();
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
        let doc = document_json();
        let domain = "/api/v1/emails/domains/{domain}";
        let sender = "/api/v1/emails/senders/{email}";
        let routes: [(&str, &str, &[&str]); 10] = [
            (domain, "get", &["200", "400", "401", "404", "500", "503"]),
            (
                domain,
                "patch",
                &[
                    "200", "400", "401", "404", "408", "409", "413", "415", "422", "429", "500",
                    "503",
                ],
            ),
            (
                domain,
                "delete",
                &[
                    "204", "400", "401", "404", "409", "422", "429", "500", "503",
                ],
            ),
            (
                "/api/v1/emails/domains/{domain}/dkim/rotate",
                "post",
                &[
                    "202", "400", "401", "404", "409", "422", "429", "500", "503",
                ],
            ),
            (
                "/api/v1/emails/domains/{domain}/verify",
                "post",
                &[
                    "200", "400", "401", "404", "409", "422", "429", "500", "503",
                ],
            ),
            (
                "/api/v1/emails/senders",
                "get",
                &["200", "400", "401", "500", "503"],
            ),
            (
                "/api/v1/emails/senders/{email}/activate",
                "post",
                &[
                    "200", "400", "401", "404", "409", "422", "429", "500", "503",
                ],
            ),
            (
                sender,
                "delete",
                &[
                    "204", "400", "401", "404", "409", "422", "429", "500", "503",
                ],
            ),
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
        let doc = document_json();
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
                    "zone",
                    "zoneSource",
                    "records",
                    "dkim",
                    "senders",
                    "inboundMx",
                    "lastCheck",
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
