//! The HTTP server: every route behind the request-telemetry middleware.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};

use crate::{AppState, idempotency, openapi, problem, routes, telemetry};

/// Serves `state` on an already bound listener until SIGINT/SIGTERM. Binding is the
/// caller's, so it can bind port 0 and report the address it got.
///
/// # Errors
/// When the listener cannot be handed to the server.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // The last one wrapped runs first: telemetry sees the whole request,
            // replays included.
            .wrap(middleware::from_fn(idempotency::guard))
            .wrap(middleware::from_fn(problem::negotiate))
            .wrap(middleware::from_fn(telemetry::request_span))
            .configure(routes::configure)
            // The document lists the routes' handlers, so it is mounted here rather
            // than by `routes::configure`: routes and openapi do not import each other.
            .service(
                web::resource("/api/v1/openapi.json")
                    .route(web::get().to(openapi::document))
                    .default_service(web::to(routes::method_not_allowed("GET"))),
            )
            .default_service(web::to(routes::not_found))
    })
    .listen(listener)?;
    Ok(server.run())
}
