//! RFC 9457 problem details by content negotiation: a request whose `Accept` names
//! `application/problem+json` gets every error of the error table (`error::Row`) as
//! `{"type","title","status","detail","code"}`; without it, the bodies stay the
//! sentences (and the 500 JSON) they have always been.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use crate::error::Row;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Whether an `Accept` value names `application/problem+json` with a non-zero q.
#[must_use]
pub fn wants_problem(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        media.eq_ignore_ascii_case(PROBLEM_JSON) && !refused
    })
}

/// The middleware (`middleware::from_fn`).
///
/// # Errors
/// What the inner service returns.
pub async fn negotiate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let wanted = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(wants_problem);
    let response = next.call(req).await?.map_into_boxed_body();
    if !wanted {
        return Ok(response);
    }
    let Some(row) = response.response().extensions().get::<Row>().cloned() else {
        return Ok(response);
    };
    Ok(response.map_body(|head, _| {
        head.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        BoxBody::new(row.problem().to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::wants_problem;

    #[test]
    fn reads_the_accept_header_as_clients_write_it() {
        assert!(wants_problem("application/problem+json"));
        assert!(wants_problem(
            "application/json, Application/Problem+JSON;q=0.9"
        ));
        assert!(!wants_problem("application/problem+json;q=0"));
        assert!(!wants_problem("application/json"));
        assert!(!wants_problem("*/*"));
    }
}
