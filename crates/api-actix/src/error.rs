//! `ApiError`: the one place that decides the status and body of every failure, so
//! the seed's error table lives here and nowhere else.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain_core::usecases::authenticate::AuthError;
use domain_core::usecases::generate::GenerateError;
use domain_core::usecases::read::ReadError;
use domain_core::usecases::validate::ValidateError;

const UNAVAILABLE: &str = "Service temporarily unavailable";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Validate(#[from] ValidateError),
    /// Missing, malformed, expired or wrongly signed dashboard JWT.
    #[error("Invalid or missing bearer token")]
    BearerRejected,
    /// A request we cannot read; the text is a short sentence for the caller.
    #[error("{0}")]
    BadRequest(String),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("Request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive whole within the body timeout.
    #[error("Request body timeout")]
    BodyTimeout,
    #[error("Not found")]
    NotFound,
    #[error("Service temporarily unavailable")]
    Unavailable(#[source] domain_core::ports::BoxError),
    #[error("Failed to generate DNS records.")]
    Unexpected(#[source] domain_core::ports::BoxError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::Missing | AuthError::Invalid) | Self::BearerRejected => {
                StatusCode::UNAUTHORIZED
            }
            Self::Read(ReadError::InvalidDomain(_))
            | Self::Validate(ValidateError::InvalidDomain(_)) => StatusCode::BAD_REQUEST,
            Self::Read(ReadError::NotFound) | Self::Validate(ValidateError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            Self::Read(ReadError::Unavailable(_))
            | Self::Validate(ValidateError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Read(ReadError::Unexpected(_)) | Self::Validate(ValidateError::Unexpected(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Generate(GenerateError::InvalidSender(_) | GenerateError::InvalidReplyTo(_))
            | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Generate(GenerateError::DomainTaken | GenerateError::EmailTaken) => {
                StatusCode::CONFLICT
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Auth(AuthError::Unavailable(_))
            | Self::Generate(GenerateError::Unavailable(_))
            | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Auth(AuthError::Unexpected(_))
            | Self::Generate(GenerateError::Unexpected(_))
            | Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            // The whole cause chain, once, here; the caller gets nothing of it.
            tracing::error!(error = %chain(self), status = status.as_u16(), "request failed");
        }
        match status {
            // The seed's shape, `{"error": "<sentence>"}`; for generate exactly
            // `Failed to generate DNS records.`
            StatusCode::INTERNAL_SERVER_ERROR => HttpResponse::InternalServerError()
                .content_type("application/json")
                .body(serde_json::json!({ "error": self.to_string() }).to_string()),
            StatusCode::SERVICE_UNAVAILABLE => HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")))
                .content_type("text/plain; charset=utf-8")
                .body(UNAVAILABLE),
            StatusCode::UNAUTHORIZED if matches!(self, Self::BearerRejected) => {
                HttpResponse::Unauthorized()
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
                    .content_type("text/plain; charset=utf-8")
                    .body(self.to_string())
            }
            _ => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

/// `error: cause: cause…` for one log line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn render(error: ApiError) -> (u16, String, String) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = to_bytes(response.into_body()).await.unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn renders_the_seed_error_table_exactly() {
        let text = "text/plain; charset=utf-8";
        let rows = [
            (
                ApiError::Generate(GenerateError::InvalidSender("bob@".into())),
                400,
                text,
                "Invalid sender address: bob@",
            ),
            (
                ApiError::Generate(GenerateError::InvalidReplyTo("x".into())),
                400,
                text,
                "Invalid reply-to address: x",
            ),
            (
                ApiError::Auth(AuthError::Missing),
                401,
                text,
                "Missing API credentials",
            ),
            (
                ApiError::Auth(AuthError::Invalid),
                401,
                text,
                "Invalid API credentials",
            ),
            (
                ApiError::Generate(GenerateError::DomainTaken),
                409,
                text,
                "Domain is already taken",
            ),
            (
                ApiError::Generate(GenerateError::EmailTaken),
                409,
                text,
                "Email is already taken",
            ),
            (ApiError::BodyTimeout, 408, text, "Request body timeout"),
            (
                ApiError::Generate(GenerateError::Unexpected(
                    "db exploded: password=hunter2".into(),
                )),
                500,
                "application/json",
                r#"{"error":"Failed to generate DNS records."}"#,
            ),
        ];
        for (error, status, content_type, body) in rows {
            assert_eq!(
                render(error).await,
                (status, content_type.to_owned(), body.to_owned())
            );
        }
    }

    #[tokio::test]
    async fn answers_503_without_the_cause_when_the_database_is_down() {
        let (status, _, body) = render(ApiError::Auth(AuthError::Unavailable(
            "connection refused to 10.0.0.5".into(),
        )))
        .await;
        assert_eq!(
            (status, body.as_str()),
            (503, "Service temporarily unavailable")
        );
    }
}
