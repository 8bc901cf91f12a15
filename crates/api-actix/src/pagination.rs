//! `limit` and `after` query parameters of the list routes.

use actix_web::HttpRequest;
use domain_core::lifecycle::Page;

use crate::error::ApiError;

/// The query of a list route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    // Read as text so that anything else answers the list's own 400 sentence;
    // documented as the integer it must be (an empty `limit=` is no valid value).
    /// Items per page, 1–1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next` value of the previous page.
    after: Option<String>,
}

/// The page a list request asks for.
///
/// # Errors
/// [`ApiError::BadRequest`] for an unreadable query or a `limit` outside 1–1000.
pub fn page<C: std::str::FromStr>(req: &HttpRequest) -> Result<Page<C>, ApiError> {
    let query = actix_web::web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::BadRequest("Invalid query string".into()))?
        .into_inner();
    let limit = match query.limit.as_deref() {
        None => Page::<C>::DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=Page::<C>::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest("Invalid limit: expected a whole number from 1 to 1000".into())
            })?,
    };
    let after = query
        .after
        .map(|text| {
            text.parse::<C>()
                .map_err(|_| ApiError::BadRequest("Invalid after: not a value from next".into()))
        })
        .transpose()?;
    Ok(Page { after, limit })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn defaults_to_100_and_refuses_limits_outside_1_to_1000() {
        let got: Page<String> = page(&TestRequest::with_uri("/x").to_http_request()).unwrap();
        assert_eq!((got.limit, got.after), (100, None));
        let got: Page<String> =
            page(&TestRequest::with_uri("/x?limit=1000&after=b.example").to_http_request())
                .unwrap();
        assert_eq!((got.limit, got.after.as_deref()), (1000, Some("b.example")));
        for bad in ["0", "1001", "-1", "ten", ""] {
            let req = TestRequest::with_uri(&format!("/x?limit={bad}")).to_http_request();
            assert!(page::<String>(&req).is_err(), "{bad}");
        }
        let req = TestRequest::with_uri("/x?after=abc").to_http_request();
        assert!(page::<i64>(&req).is_err());
    }
}
