//! The HTTP ceiling for the load tests: actix-web 4 (no default features), the same
//! number of workers as domain-api on this machine, and one handler that answers
//! `200` with an empty body on `GET /`. Nothing else: no middleware, no state.
//!
//! Usage: `empty-actix [ADDR] [WORKERS]` (defaults `127.0.0.1:18079`, `2`).

use actix_web::{App, HttpResponse, HttpServer, web};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18079".to_owned());
    let workers: usize = match args.next() {
        Some(w) => w
            .parse()
            .map_err(|_| std::io::Error::other("WORKERS must be a number"))?,
        None => 2,
    };
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new().route("/", web::get().to(|| async { HttpResponse::Ok().finish() }))
        })
        .workers(workers)
        .bind(&addr)?
        .run()
        .await
    })
}
