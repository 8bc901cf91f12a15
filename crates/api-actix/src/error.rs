//! `ApiError`: the one place that decides the status and body of every failure, so
//! the seed's error table (and every later route's) lives here and nowhere else.
//! Use cases speak the domain; this module chooses the wire sentence.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain_core::ports::{BoxError, InfraError};
use domain_core::usecases::authenticate::AuthError;
use domain_core::usecases::claim::ClaimError;
use domain_core::usecases::generate::GenerateError;
use domain_core::usecases::manage::ManageError;
use domain_core::usecases::read::ReadError;
use domain_core::usecases::senders::SenderError;
use domain_core::usecases::validate::ValidateError;
use domain_core::usecases::webhooks::WebhookError;

use crate::echo::echo;

const UNAVAILABLE: &str = "Service temporarily unavailable";

/// What a route does, for the sentence of its 500 body. Set on each resource in
/// `routes::configure`, so a failure in a shared extractor (authentication) still
/// answers with the route's own sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The seed's generate endpoint.
    Generate,
    /// Domain list and detail.
    ReadDomains,
    /// The live validation report.
    Validate,
    /// Starting a DKIM key rotation.
    RotateKey,
    /// Changing a domain (the inbound toggle).
    UpdateDomain,
    /// Deleting a domain.
    DeleteDomain,
    /// The live check that also moves a domain's lifecycle on.
    VerifyDomain,
    /// The senders list.
    ReadSenders,
    /// Making a sender the active one.
    ActivateSender,
    /// Deleting a sender.
    DeleteSender,
    /// The events list.
    ReadEvents,
    /// Opening a claim on another organization's domain.
    OpenClaim,
    /// Proving a claim (the live TXT check and the transfer).
    VerifyClaim,
    /// Creating a webhook endpoint.
    CreateWebhook,
    /// The webhook list and an endpoint's deliveries.
    ReadWebhooks,
    /// Deleting a webhook endpoint.
    DeleteWebhook,
    /// Anything else (probes, documents).
    Other,
}

impl Operation {
    /// The `error` sentence of this operation's 500 body.
    #[must_use]
    pub fn failure(self) -> &'static str {
        match self {
            Self::Generate => "Failed to generate DNS records.",
            Self::ReadDomains => "Failed to read domains.",
            Self::Validate => "Failed to validate DNS records.",
            Self::RotateKey => "Failed to rotate the DKIM key.",
            Self::UpdateDomain => "Failed to update the domain.",
            Self::DeleteDomain => "Failed to delete the domain.",
            Self::VerifyDomain => "Failed to verify DNS records.",
            Self::ReadSenders => "Failed to read senders.",
            Self::ActivateSender => "Failed to activate the sender.",
            Self::DeleteSender => "Failed to delete the sender.",
            Self::ReadEvents => "Failed to read events.",
            Self::OpenClaim => "Failed to open the claim.",
            Self::VerifyClaim => "Failed to verify the claim.",
            Self::CreateWebhook => "Failed to create the webhook.",
            Self::ReadWebhooks => "Failed to read webhooks.",
            Self::DeleteWebhook => "Failed to delete the webhook.",
            Self::Other => "Internal server error.",
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// API token authentication failed on a route doing `Operation`.
    #[error("authentication failed")]
    Auth(#[source] AuthError, Operation),
    /// The generate use case refused or failed.
    #[error("generate failed")]
    Generate(#[from] GenerateError),
    /// A domain read refused or failed.
    #[error("read failed")]
    Read(#[from] ReadError),
    /// Validation refused or failed.
    #[error("validate failed")]
    Validate(#[from] ValidateError),
    /// Verify (the check that moves the lifecycle on) refused or failed.
    #[error("verify failed")]
    Verify(#[source] ValidateError),
    /// A command on a domain (rotate, inbound toggle, delete) refused or failed.
    #[error("domain command failed")]
    Manage(#[source] ManageError, Operation),
    /// A sender read or command refused or failed.
    #[error("sender command failed")]
    Sender(#[source] SenderError, Operation),
    /// A claim was refused or failed on a route doing `Operation`.
    #[error("claim failed")]
    Claim(#[source] ClaimError, Operation),
    /// A webhook request was refused or failed on a route doing `Operation`.
    #[error("webhook request failed")]
    Webhook(#[source] WebhookError, Operation),
    /// The events list failed.
    #[error("events read failed")]
    Events(#[source] InfraError),
    /// Missing, malformed, expired or wrongly signed dashboard JWT.
    #[error("bearer token rejected")]
    BearerRejected,
    /// A request we cannot read; the text is a short sentence for the caller.
    #[error("{0}")]
    BadRequest(String),
    /// The body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body exceeds the limit, in bytes.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// The body did not arrive whole within the body timeout.
    #[error("request body timeout")]
    BodyTimeout,
    /// An `Idempotency-Key` already answered another request.
    #[error("idempotency key reused")]
    IdempotencyMismatch,
    /// The first request with this `Idempotency-Key` is still running.
    #[error("idempotency key in progress")]
    IdempotencyInProgress,
    /// No such route (or a disabled one).
    #[error("not found")]
    NotFound,
    /// The service cannot serve right now (readiness).
    #[error("unavailable")]
    Unavailable(#[source] BoxError),
    /// A bug or broken invariant at the edge itself.
    #[error("unexpected failure")]
    Unexpected(#[source] BoxError, Operation),
}

fn infra_status(error: &InfraError) -> StatusCode {
    match error {
        InfraError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        InfraError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The operation whose sentence a 500 carries.
    fn operation(&self) -> Operation {
        match self {
            Self::Auth(_, operation)
            | Self::Unexpected(_, operation)
            | Self::Manage(_, operation)
            | Self::Sender(_, operation)
            | Self::Claim(_, operation)
            | Self::Webhook(_, operation) => *operation,
            Self::Generate(_) => Operation::Generate,
            Self::Read(_) => Operation::ReadDomains,
            Self::Validate(_) => Operation::Validate,
            Self::Verify(_) => Operation::VerifyDomain,
            Self::Events(_) => Operation::ReadEvents,
            _ => Operation::Other,
        }
    }

    /// The plain-text sentence of a 4xx.
    fn sentence(&self) -> String {
        match self {
            Self::Auth(AuthError::Missing, _) => "Missing API credentials".into(),
            Self::Auth(AuthError::Invalid, _) => "Invalid API credentials".into(),
            Self::Generate(GenerateError::InvalidSender(raw)) => {
                format!("Invalid sender address: {}", echo(raw))
            }
            Self::Generate(GenerateError::InvalidReplyTo(raw)) => {
                format!("Invalid reply-to address: {}", echo(raw))
            }
            Self::Generate(GenerateError::DomainTaken) => "Domain is already taken".into(),
            Self::Generate(GenerateError::EmailTaken) => "Email is already taken".into(),
            Self::Generate(GenerateError::DomainLimit) => "Domain limit reached".into(),
            Self::Generate(GenerateError::RateLimited(_)) => {
                "Too many new domains; retry later".into()
            }
            Self::Claim(ClaimError::OwnDomain, _) => {
                "Domain already belongs to this organization".into()
            }
            Self::Claim(ClaimError::NoOpenClaim, _) => "No open claim for this domain".into(),
            Self::Claim(ClaimError::RecordNotFound(name), _) => {
                format!("Claim record not found at {name}")
            }
            Self::Read(ReadError::InvalidDomain(raw))
            | Self::Validate(ValidateError::InvalidDomain(raw))
            | Self::Verify(ValidateError::InvalidDomain(raw))
            | Self::Manage(ManageError::InvalidDomain(raw), _)
            | Self::Claim(ClaimError::InvalidDomain(raw), _) => {
                format!("Invalid domain: {}", echo(raw))
            }
            Self::Read(ReadError::NotFound)
            | Self::Claim(ClaimError::NotFound, _)
            | Self::Validate(ValidateError::NotFound)
            | Self::Verify(ValidateError::NotFound)
            | Self::Manage(ManageError::NotFound, _) => "Domain not found".into(),
            Self::Manage(ManageError::RotationInProgress, _) => {
                "A DKIM rotation is already in progress".into()
            }
            Self::Manage(ManageError::MxNotReady(hosts), _) => {
                format!(
                    "Inbound requires an MX record pointing at {}",
                    or_list(hosts)
                )
            }
            Self::Sender(SenderError::NotFound, _) => "Sender not found".into(),
            Self::Webhook(WebhookError::InvalidUrl(raw), _) => {
                format!("Invalid webhook URL: {}", echo(raw))
            }
            Self::Webhook(WebhookError::UnknownEvent(raw), _) => {
                format!("Unknown event type: {}", echo(raw))
            }
            Self::Webhook(WebhookError::NoEvents, _) => {
                "events must name at least one event type".into()
            }
            Self::Webhook(WebhookError::LimitReached, _) => "Webhook limit reached".into(),
            Self::Webhook(WebhookError::NotFound, _) => "Webhook not found".into(),
            Self::BearerRejected => "Invalid or missing bearer token".into(),
            Self::BadRequest(reason) => reason.clone(),
            Self::UnsupportedMediaType => "Content-Type must be application/json".into(),
            Self::PayloadTooLarge(limit) => format!("Request body is larger than {limit} bytes"),
            Self::BodyTimeout => "Request body timeout".into(),
            Self::IdempotencyMismatch => "Idempotency-Key reused with a different request".into(),
            Self::IdempotencyInProgress => {
                "A request with this Idempotency-Key is in progress".into()
            }
            Self::NotFound => "Not found".into(),
            _ => self.operation().failure().into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::Missing | AuthError::Invalid, _) | Self::BearerRejected => {
                StatusCode::UNAUTHORIZED
            }
            Self::Auth(AuthError::Infra(e), _)
            | Self::Generate(GenerateError::Infra(e))
            | Self::Read(ReadError::Infra(e))
            | Self::Validate(ValidateError::Infra(e))
            | Self::Verify(ValidateError::Infra(e))
            | Self::Manage(ManageError::Infra(e), _)
            | Self::Sender(SenderError::Infra(e), _)
            | Self::Claim(ClaimError::Infra(e), _)
            | Self::Webhook(WebhookError::Infra(e), _)
            | Self::Events(e) => infra_status(e),
            Self::Generate(GenerateError::InvalidSender(_) | GenerateError::InvalidReplyTo(_))
            | Self::Read(ReadError::InvalidDomain(_))
            | Self::Validate(ValidateError::InvalidDomain(_))
            | Self::Verify(ValidateError::InvalidDomain(_))
            | Self::Manage(ManageError::InvalidDomain(_), _)
            | Self::Claim(ClaimError::InvalidDomain(_), _)
            | Self::Webhook(
                WebhookError::InvalidUrl(_)
                | WebhookError::UnknownEvent(_)
                | WebhookError::NoEvents,
                _,
            )
            | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Generate(GenerateError::DomainLimit)
            | Self::Webhook(WebhookError::LimitReached, _) => StatusCode::FORBIDDEN,
            Self::Generate(GenerateError::RateLimited(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Generate(GenerateError::DomainTaken | GenerateError::EmailTaken)
            | Self::Manage(ManageError::RotationInProgress | ManageError::MxNotReady(_), _)
            | Self::Claim(ClaimError::OwnDomain | ClaimError::RecordNotFound(_), _) => {
                StatusCode::CONFLICT
            }
            Self::Read(ReadError::NotFound)
            | Self::Validate(ValidateError::NotFound)
            | Self::Verify(ValidateError::NotFound)
            | Self::Manage(ManageError::NotFound, _)
            | Self::Sender(SenderError::NotFound, _)
            | Self::Claim(ClaimError::NotFound | ClaimError::NoOpenClaim, _)
            | Self::Webhook(WebhookError::NotFound, _)
            | Self::NotFound => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyInProgress => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(..) => StatusCode::INTERNAL_SERVER_ERROR,
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
                .body(serde_json::json!({ "error": self.operation().failure() }).to_string()),
            StatusCode::SERVICE_UNAVAILABLE => HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")))
                .content_type("text/plain; charset=utf-8")
                .body(UNAVAILABLE),
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = match self {
                    Self::Generate(GenerateError::RateLimited(wait)) => wait.as_secs().max(1),
                    _ => 1,
                };
                HttpResponse::TooManyRequests()
                    .insert_header((header::RETRY_AFTER, wait.to_string()))
                    .content_type("text/plain; charset=utf-8")
                    .body(self.sentence())
            }
            StatusCode::UNAUTHORIZED if matches!(self, Self::BearerRejected) => {
                HttpResponse::Unauthorized()
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")))
                    .content_type("text/plain; charset=utf-8")
                    .body(self.sentence())
            }
            _ => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(self.sentence()),
        }
    }
}

/// `a`, `a or b`, `a, b or c`: the inbound hosts as the 409 sentence names them.
#[must_use]
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
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
#[path = "error_tests.rs"]
mod tests;
