//! Refusals a looping client repeats are held before they are sent: the organization
//! whose live checks, DKIM keys, stored answers or senders are spent, or whose
//! rotation is still running, gets its answer after [`HOLD`] (a timer, no CPU), so a
//! client retrying in a loop sends a call a second per connection instead of a
//! thousand, and leaves the machine to other organizations. The noisy-neighbour
//! suite measured such loops at 830–1,950 refusals a second, a core of server time
//! (docs/benchmarks.md, "Noisy neighbour, every vector"). A client that honours
//! `Retry-After` waits no longer in all. generate's own rate limit holds its 429
//! itself (`routes::generate::tarpit`), with `Retry-After` reduced by the hold.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use domain_core::usecases::claim::ClaimError;
use domain_core::usecases::generate::GenerateError;
use domain_core::usecases::manage::ManageError;

use crate::error::ApiError;

/// How long a repeated refusal is held.
pub const HOLD: Duration = Duration::from_secs(1);

impl ApiError {
    /// Whether this answer is a refusal a looping client repeats, held [`HOLD`].
    #[must_use]
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            Self::TooManyLiveChecks(_)
                | Self::TooManyStoredAnswers(_)
                | Self::Generate(GenerateError::SenderLimit)
                | Self::Manage(
                    ManageError::TooManyKeys(_) | ManageError::RotationInProgress,
                    _
                )
                | Self::Claim(ClaimError::TooManyKeys(_), _)
        )
    }
}

/// Holds the answers [`ApiError::is_held`] names, and a 429 that carries no error
/// (the Idempotency-Key guard's stored-answers refusal), for [`HOLD`].
///
/// # Errors
/// Whatever the inner service fails with.
pub async fn hold(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let held = match response
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        Some(error) => error.is_held(),
        None => response.status() == StatusCode::TOO_MANY_REQUESTS,
    };
    if held {
        tokio::time::sleep(HOLD).await;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use actix_web::{App, HttpResponse, middleware, test, web};

    use super::*;

    async fn spent() -> Result<HttpResponse, ApiError> {
        Err(ApiError::TooManyLiveChecks(Duration::from_secs(30)))
    }

    async fn missing() -> Result<HttpResponse, ApiError> {
        Err(ApiError::NotFound)
    }

    async fn plain_429() -> HttpResponse {
        HttpResponse::TooManyRequests().finish()
    }

    #[tokio::test]
    async fn a_repeated_refusal_is_held_and_other_answers_are_not() {
        let app = test::init_service(
            App::new()
                .wrap(middleware::from_fn(hold))
                .route("/spent", web::get().to(spent))
                .route("/missing", web::get().to(missing))
                .route("/full", web::get().to(plain_429)),
        )
        .await;
        for (path, status, held) in [
            ("/spent", 429, true),
            ("/full", 429, true),
            ("/missing", 404, false),
        ] {
            let started = Instant::now();
            let response =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(response.status().as_u16(), status, "{path}");
            assert_eq!(started.elapsed() >= HOLD, held, "{path}");
        }
    }

    #[test]
    fn generate_rate_limit_is_held_by_its_own_route_not_twice() {
        assert!(!ApiError::Generate(GenerateError::RateLimited(Duration::from_secs(3))).is_held());
        assert!(ApiError::Generate(GenerateError::SenderLimit).is_held());
    }
}
