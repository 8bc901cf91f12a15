//! The HTTP server: every route behind the request-telemetry middleware; with an
//! admin listener, the operations routes (`/healthz`, `/readyz`, `/metrics`) and the
//! OpenAPI document are served there only.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};

use crate::{AppState, idempotency, openapi, problem, refusals, routes, telemetry};

/// Serves `state` on an already bound listener until SIGINT/SIGTERM. Binding is the
/// caller's, so it can bind port 0 and report the address it got.
///
/// # Errors
/// When the listener cannot be handed to the server.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let (server, _) = serve_with_admin(state, listener, None)?;
    Ok(server)
}

/// Like [`serve`]; with `admin`, a second server on that listener answers the
/// operations routes and the OpenAPI document, and the public one no longer does
/// (404). Both stop on SIGINT/SIGTERM.
///
/// # Errors
/// When a listener cannot be handed to its server.
pub fn serve_with_admin(
    state: AppState,
    listener: TcpListener,
    admin: Option<TcpListener>,
) -> std::io::Result<(Server, Option<Server>)> {
    let state = web::Data::new(state);
    let operations_here = admin.is_none();
    let public_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(public_state.clone())
            // The last one wrapped runs first: telemetry sees the whole request,
            // replays included.
            .wrap(middleware::from_fn(idempotency::guard))
            // Outside the guard: a held refusal holds no unit of work.
            .wrap(middleware::from_fn(refusals::hold))
            .wrap(middleware::from_fn(problem::negotiate))
            .wrap(middleware::from_fn(telemetry::request_span))
            .configure(routes::configure_api)
            .configure(|cfg| {
                if operations_here {
                    operations(cfg);
                }
            })
            .default_service(web::to(routes::not_found))
    })
    .listen(listener)?
    .run();
    let admin = match admin {
        None => None,
        Some(listener) => Some(
            HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .wrap(middleware::from_fn(telemetry::request_span))
                    .configure(operations)
                    .default_service(web::to(routes::not_found))
            })
            // Probes and scrapes are few and small.
            .workers(1)
            .listen(listener)?
            .run(),
        ),
    };
    Ok((server, admin))
}

/// The operations routes and the OpenAPI document. The document lists the routes'
/// handlers, so it is mounted here rather than by `routes`: routes and openapi do
/// not import each other.
fn operations(cfg: &mut web::ServiceConfig) {
    routes::configure_operations(cfg);
    cfg.service(
        web::resource("/api/v1/openapi.json")
            .route(web::get().to(openapi::document))
            .default_service(web::to(routes::method_not_allowed("GET"))),
    );
}
