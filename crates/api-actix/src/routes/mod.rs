//! The HTTP surface: `configure` mounts every route on an actix `ServiceConfig`.

pub mod domains;
pub mod generate;
pub mod health;
pub mod validate;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{ApiError, Operation};

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/emails/domains/generate")
            .app_data(Operation::Generate)
            .route(web::post().to(generate::generate))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/api/v1/emails/domains")
            .app_data(Operation::ReadDomains)
            .route(web::get().to(domains::list))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/emails/domains/{domain}")
            .app_data(Operation::ReadDomains)
            .route(web::get().to(domains::detail))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/api/v1/domains/validate")
            .app_data(Operation::Validate)
            .route(web::get().to(validate::validate))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            // Load balancers often probe with HEAD.
            .route(web::head().to(health::healthz))
            .default_service(web::to(method_not_allowed("GET, HEAD"))),
    )
    .service(
        web::resource("/api/v1/openapi.json")
            .route(web::get().to(crate::openapi::document))
            .default_service(web::to(method_not_allowed("GET"))),
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

fn method_not_allowed(
    allow: &'static str,
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    move |_req| {
        std::future::ready(
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow))
                .content_type("text/plain; charset=utf-8")
                .body("Method not allowed"),
        )
    }
}
