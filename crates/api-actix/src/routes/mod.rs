//! The HTTP surface: `configure` mounts every route on an actix `ServiceConfig`.

pub mod claims;
pub mod connect;
pub mod create;
pub mod domains;
pub mod events;
pub mod generate;
pub mod health;
pub mod manage;
pub mod senders;
pub mod setup;
pub mod validate;
pub mod webhooks;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};

use crate::error::{ApiError, Operation};

/// The seed endpoint.
pub(crate) const GENERATE_PATH: &str = "/api/v1/emails/domains/generate";
const DOMAINS: &str = "/api/v1/emails/domains";
const DOMAIN: &str = "/api/v1/emails/domains/{domain}";
const SENDER: &str = "/api/v1/emails/senders/{email}";

/// Mounts every route.
///
/// Resources are matched in the order they are mounted: `…/domains/generate` comes
/// before `…/domains/{domain}`, so `generate` is never taken for a domain name (and
/// any other method on it is answered by generate's 405). Methods that share a path
/// but not an operation are separate resources selected by a method guard, each
/// with its own `Operation`; the last one of a path answers 405 for the rest.
/// Then the operations routes ([`configure_operations`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_api(cfg);
    configure_operations(cfg);
}

/// Every route but the operations ones: the API and the Domain Setup page.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(GENERATE_PATH)
            .app_data(Operation::Generate)
            .route(web::post().to(generate::generate))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource(DOMAINS)
            .guard(guard::Post())
            .app_data(Operation::CreateDomain)
            .route(web::post().to(create::create)),
    )
    .service(
        web::resource(DOMAINS)
            .app_data(Operation::ReadDomains)
            .route(web::get().to(domains::list))
            .default_service(web::to(method_not_allowed("GET, POST"))),
    )
    .service(
        web::resource(DOMAIN)
            .guard(guard::Patch())
            .app_data(Operation::UpdateDomain)
            .route(web::patch().to(manage::update)),
    )
    .service(
        web::resource(DOMAIN)
            .guard(guard::Delete())
            .app_data(Operation::DeleteDomain)
            .route(web::delete().to(manage::delete)),
    )
    .service(
        web::resource(DOMAIN)
            .app_data(Operation::ReadDomains)
            .route(web::get().to(domains::detail))
            .default_service(web::to(method_not_allowed("GET, PATCH, DELETE"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/zone")
            .app_data(Operation::ReadDomains)
            .route(web::get().to(domains::zone))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/connect")
            .app_data(Operation::ReadDomains)
            .route(web::get().to(connect::connect))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/dkim/rotate")
            .app_data(Operation::RotateKey)
            .route(web::post().to(manage::rotate))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/verify")
            .app_data(Operation::VerifyDomain)
            .route(web::post().to(manage::verify))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/claim")
            .app_data(Operation::OpenClaim)
            .route(web::post().to(claims::open))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}/claim/verify")
            .app_data(Operation::VerifyClaim)
            .route(web::post().to(claims::verify))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/v1/emails/senders")
            .app_data(Operation::ReadSenders)
            .route(web::get().to(senders::list))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/emails/senders/{email}/activate")
            .app_data(Operation::ActivateSender)
            .route(web::post().to(senders::activate))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource(SENDER)
            .app_data(Operation::DeleteSender)
            .route(web::delete().to(senders::delete))
            .default_service(web::to(method_not_allowed("DELETE"))),
    )
    .service(
        web::resource("/api/v1/events")
            .app_data(Operation::ReadEvents)
            .route(web::get().to(events::list))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/webhooks")
            .guard(guard::Post())
            .app_data(Operation::CreateWebhook)
            .route(web::post().to(webhooks::create)),
    )
    .service(
        web::resource("/api/v1/webhooks")
            .app_data(Operation::ReadWebhooks)
            .route(web::get().to(webhooks::list))
            .default_service(web::to(method_not_allowed("GET, POST"))),
    )
    .service(
        web::resource("/api/v1/webhooks/{id}")
            .app_data(Operation::DeleteWebhook)
            .route(web::delete().to(webhooks::delete))
            .default_service(web::to(method_not_allowed("DELETE"))),
    )
    .service(
        web::resource("/api/v1/webhooks/{id}/deliveries")
            .app_data(Operation::ReadWebhooks)
            .route(web::get().to(webhooks::deliveries))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/domains/validate")
            .app_data(Operation::Validate)
            .route(web::get().to(validate::validate))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource(setup::ASSETS)
            .route(web::get().to(setup::asset))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/setup/{domain}")
            .route(web::get().to(setup::page))
            .default_service(web::to(method_not_allowed("GET"))),
    );
}

/// The operations routes: `/healthz`, `/readyz`, `/metrics`. On the public listener,
/// or only on the admin listener when there is one (`server::serve`).
pub fn configure_operations(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            // Load balancers often probe with HEAD.
            .route(web::head().to(health::healthz))
            .default_service(web::to(method_not_allowed("GET, HEAD"))),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(health::metrics))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            // Load balancers often probe with HEAD.
            .route(web::head().to(health::readyz))
            .default_service(web::to(method_not_allowed("GET, HEAD"))),
    );
}

/// 404 for every path we do not serve.
///
/// # Errors
/// Always [`ApiError::NotFound`]: the error is the answer.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

pub(crate) fn method_not_allowed(
    allow: &'static str,
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    move |_req| {
        let row = crate::error::Row::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        );
        let mut response = HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, allow))
            .content_type("text/plain; charset=utf-8")
            .body(row.sentence.clone());
        response.extensions_mut().insert(row);
        std::future::ready(response)
    }
}

#[cfg(test)]
pub(crate) mod test_app;

#[cfg(test)]
mod domain_tests;

#[cfg(test)]
mod list_tests;

#[cfg(test)]
mod generate_tests;

#[cfg(test)]
mod webhook_tests;

#[cfg(test)]
mod problem_tests;
