//! `ApiError`: the one place that decides the status and body of every failure, so
//! the seed's error table (and every later route's) lives here and nowhere else.
//! Use cases speak the domain; this module chooses the wire sentence.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain_core::ports::{BoxError, InfraError};
use domain_core::usecases::authenticate::AuthError;
use domain_core::usecases::claim::ClaimError;
use domain_core::usecases::create::CreateError;
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
    /// Creating a domain on its own.
    CreateDomain,
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
            Self::CreateDomain => "Failed to create the domain.",
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
    /// Creating a domain on its own refused or failed.
    #[error("create domain failed")]
    Create(#[source] CreateError),
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
    /// The organization's live-check budget is spent
    /// (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`); carries how long until a check is free.
    #[error("too many live DNS checks")]
    TooManyLiveChecks(std::time::Duration),
    /// The live-check budget could not be read or recorded on a route doing
    /// `Operation`.
    #[error("live-check budget failed")]
    LiveCheckBudget(#[source] InfraError, Operation),
    /// The organization's kept Idempotency-Key answers take all their room
    /// (`DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`); carries how long until the first
    /// of them expires.
    #[error("too many stored Idempotency-Key answers")]
    TooManyStoredAnswers(std::time::Duration),
    /// No such route (or a disabled one).
    #[error("not found")]
    NotFound,
    /// The domain's DNS provider does not support Domain Connect, or not the
    /// service's template, or the service is not configured for it.
    #[error("Domain Connect not supported")]
    DomainConnectUnsupported,
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
            | Self::Webhook(_, operation)
            | Self::LiveCheckBudget(_, operation) => *operation,
            Self::Generate(_) => Operation::Generate,
            Self::Create(_) => Operation::CreateDomain,
            Self::Read(_) => Operation::ReadDomains,
            Self::Validate(_) => Operation::Validate,
            Self::Verify(_) => Operation::VerifyDomain,
            Self::Events(_) => Operation::ReadEvents,
            _ => Operation::Other,
        }
    }

    /// This failure's row of the error table: status, stable code, sentence, and the
    /// input the sentence echoes. Both wire forms (the plain sentence, or the seed's
    /// 500 JSON, and RFC 9457 problem details) are rendered from it.
    #[must_use]
    pub fn row(&self) -> Row {
        use StatusCode as S;
        let echoed = |code, status, prefix: &str, raw: &str| {
            let detail = echo(raw);
            Row::new(status, code, format!("{prefix}: {detail}")).with_detail(detail)
        };
        match self {
            Self::Auth(AuthError::Missing, _) => Row::new(
                S::UNAUTHORIZED,
                "missing_credentials",
                "Missing API credentials",
            ),
            Self::Auth(AuthError::Invalid, _) => Row::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid API credentials",
            ),
            Self::BearerRejected => Row::new(
                S::UNAUTHORIZED,
                "invalid_bearer_token",
                "Invalid or missing bearer token",
            ),
            Self::Auth(AuthError::Infra(e), _)
            | Self::Generate(GenerateError::Infra(e))
            | Self::Read(ReadError::Infra(e))
            | Self::Create(CreateError::Infra(e))
            | Self::Validate(ValidateError::Infra(e))
            | Self::Verify(ValidateError::Infra(e))
            | Self::Manage(ManageError::Infra(e), _)
            | Self::Sender(SenderError::Infra(e), _)
            | Self::Claim(ClaimError::Infra(e), _)
            | Self::Webhook(WebhookError::Infra(e), _)
            | Self::LiveCheckBudget(e, _)
            | Self::Events(e) => match infra_status(e) {
                S::SERVICE_UNAVAILABLE => self.unavailable(),
                _ => self.failure(),
            },
            Self::Generate(GenerateError::InvalidSender(raw)) => echoed(
                "invalid_sender_address",
                S::BAD_REQUEST,
                "Invalid sender address",
                raw,
            ),
            Self::Generate(GenerateError::InvalidReplyTo(raw)) => echoed(
                "invalid_reply_to_address",
                S::BAD_REQUEST,
                "Invalid reply-to address",
                raw,
            ),
            Self::Generate(GenerateError::DomainTaken) | Self::Create(CreateError::DomainTaken) => {
                Row::new(S::CONFLICT, "domain_taken", "Domain is already taken")
            }
            Self::Generate(GenerateError::EmailTaken) => {
                Row::new(S::CONFLICT, "email_taken", "Email is already taken")
            }
            Self::Generate(GenerateError::DomainLimit) | Self::Create(CreateError::DomainLimit) => {
                Row::new(S::FORBIDDEN, "domain_limit_reached", "Domain limit reached")
            }
            Self::Generate(GenerateError::SenderLimit) => {
                Row::new(S::FORBIDDEN, "sender_limit_reached", "Sender limit reached")
            }
            Self::Generate(GenerateError::RateLimited(_))
            | Self::Create(CreateError::RateLimited(_)) => Row::new(
                S::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many new domains; retry later",
            ),
            Self::Claim(ClaimError::OwnDomain, _) => Row::new(
                S::CONFLICT,
                "domain_already_owned",
                "Domain already belongs to this organization",
            ),
            Self::Claim(ClaimError::NoOpenClaim, _) => Row::new(
                S::NOT_FOUND,
                "no_open_claim",
                "No open claim for this domain",
            ),
            Self::Claim(ClaimError::RecordNotFound(name), _) => Row::new(
                S::CONFLICT,
                "claim_record_not_found",
                format!("Claim record not found at {name}"),
            )
            .with_detail(name.clone()),
            Self::Claim(ClaimError::NotOnEveryNameserver { name, tally }, _) => Row::new(
                S::CONFLICT,
                "claim_record_not_found",
                format!(
                    "Claim record not found at {name} on every nameserver: {}; {} {} not serve it yet",
                    tally.summary(),
                    tally.lagging.join(", "),
                    if tally.lagging.len() == 1 { "does" } else { "do" },
                ),
            )
            .with_detail(name.clone()),
            Self::Claim(ClaimError::NotValidated { name, zone }, _) => Row::new(
                S::CONFLICT,
                "claim_record_not_validated",
                format!("Claim record at {name} is not DNSSEC-validated: the zone {zone} is signed"),
            )
            .with_detail(name.clone()),
            Self::Read(ReadError::InvalidDomain(raw))
            | Self::Validate(ValidateError::InvalidDomain(raw))
            | Self::Verify(ValidateError::InvalidDomain(raw))
            | Self::Manage(ManageError::InvalidDomain(raw), _)
            | Self::Claim(ClaimError::InvalidDomain(raw), _)
            | Self::Create(CreateError::InvalidDomain(raw)) => {
                echoed("invalid_domain", S::BAD_REQUEST, "Invalid domain", raw)
            }
            Self::Read(ReadError::NotFound)
            | Self::Claim(ClaimError::NotFound, _)
            | Self::Validate(ValidateError::NotFound)
            | Self::Verify(ValidateError::NotFound)
            | Self::Manage(ManageError::NotFound, _) => {
                Row::new(S::NOT_FOUND, "domain_not_found", "Domain not found")
            }
            Self::Manage(ManageError::RotationInProgress, _) => Row::new(
                S::CONFLICT,
                "rotation_in_progress",
                "A DKIM rotation is already in progress",
            ),
            Self::Manage(ManageError::TooManyKeys(_), _)
            | Self::Claim(ClaimError::TooManyKeys(_), _) => Row::new(
                S::TOO_MANY_REQUESTS,
                "too_many_dkim_keys",
                "Too many DKIM keys generated; retry later",
            ),
            Self::Claim(ClaimError::DomainLimit, _) => {
                Row::new(S::FORBIDDEN, "domain_limit_reached", "Domain limit reached")
            }
            Self::Manage(ManageError::MxNotReady(hosts), _)
            | Self::Create(CreateError::MxNotReady(hosts)) => Row::new(
                S::CONFLICT,
                "inbound_mx_missing",
                format!(
                    "Inbound requires an MX record pointing at {}",
                    or_list(hosts)
                ),
            ),
            Self::Sender(SenderError::NotFound, _) => {
                Row::new(S::NOT_FOUND, "sender_not_found", "Sender not found")
            }
            Self::Webhook(WebhookError::InvalidUrl(raw), _) => echoed(
                "invalid_webhook_url",
                S::BAD_REQUEST,
                "Invalid webhook URL",
                raw,
            ),
            Self::Webhook(WebhookError::UnknownEvent(raw), _) => echoed(
                "unknown_event_type",
                S::BAD_REQUEST,
                "Unknown event type",
                raw,
            ),
            Self::Webhook(WebhookError::NoEvents, _) => Row::new(
                S::BAD_REQUEST,
                "no_event_types",
                "events must name at least one event type",
            ),
            Self::Webhook(WebhookError::LimitReached, _) => Row::new(
                S::FORBIDDEN,
                "webhook_limit_reached",
                "Webhook limit reached",
            ),
            Self::Webhook(WebhookError::NotFound, _) => {
                Row::new(S::NOT_FOUND, "webhook_not_found", "Webhook not found")
            }
            Self::BadRequest(reason) => {
                Row::new(S::BAD_REQUEST, bad_request_code(reason), reason.clone())
            }
            Self::UnsupportedMediaType => Row::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/json",
            ),
            Self::PayloadTooLarge(limit) => Row::new(
                S::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("Request body is larger than {limit} bytes"),
            ),
            Self::BodyTimeout => {
                Row::new(S::REQUEST_TIMEOUT, "body_timeout", "Request body timeout")
            }
            Self::IdempotencyMismatch => Row::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key reused with a different request",
            ),
            Self::IdempotencyInProgress => Row::new(
                S::CONFLICT,
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is in progress",
            ),
            Self::TooManyLiveChecks(_) => Row::new(
                S::TOO_MANY_REQUESTS,
                "too_many_live_checks",
                "Too many live DNS checks; retry later",
            ),
            Self::TooManyStoredAnswers(_) => Row::new(
                S::TOO_MANY_REQUESTS,
                "too_many_stored_answers",
                "Too many stored Idempotency-Key answers; retry later",
            ),
            Self::NotFound => Row::new(S::NOT_FOUND, "not_found", "Not found"),
            Self::DomainConnectUnsupported => Row::new(
                S::NOT_FOUND,
                "domain_connect_unsupported",
                crate::routes::connect::UNSUPPORTED,
            ),
            Self::Unavailable(_) => self.unavailable(),
            Self::Unexpected(..) => self.failure(),
        }
    }

    /// The 500 row: the sentence of the operation's `{"error": …}` body.
    fn failure(&self) -> Row {
        Row::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            self.operation().failure(),
        )
    }

    fn unavailable(&self) -> Row {
        let _ = self;
        Row::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            UNAVAILABLE,
        )
    }
}

/// The code of a [`ApiError::BadRequest`], from the sentence's fixed beginning (the
/// rest may echo input).
fn bad_request_code(reason: &str) -> &'static str {
    const CODES: &[(&str, &str)] = &[
        ("Malformed JSON body", "malformed_body"),
        ("Could not read the request body", "unreadable_body"),
        ("Invalid query string", "invalid_query"),
        ("Invalid limit", "invalid_limit"),
        ("Invalid after", "invalid_after"),
        ("Invalid Idempotency-Key", "invalid_idempotency_key"),
        ("Missing inbound flag", "invalid_inbound_flag"),
        ("Invalid inbound flag", "invalid_inbound_flag"),
        ("Missing webhook URL", "invalid_webhook_url"),
        ("url must be", "invalid_webhook_url"),
        ("events must be", "invalid_event_types"),
        ("Missing domain parameter", "missing_domain"),
        ("Missing domain name", "missing_domain"),
    ];
    CODES
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map_or("bad_request", |(_, code)| code)
}

/// One row of the error table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable `snake_case` identifier (the problem's `code`, the last segment of its
    /// `type`).
    pub code: &'static str,
    /// Today's sentence: the plain-text body (for 500, the JSON's `error`), and the
    /// problem's `title`.
    pub sentence: String,
    /// The input the sentence echoes, if it echoes any (the problem's `detail`).
    pub detail: Option<String>,
}

impl Row {
    /// A row; `detail` unset.
    pub fn new(status: StatusCode, code: &'static str, sentence: impl Into<String>) -> Self {
        Self {
            status,
            code,
            sentence: sentence.into(),
            detail: None,
        }
    }

    fn with_detail(mut self, detail: String) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The problem's `type`: a stable URI per code.
    #[must_use]
    pub fn problem_type(&self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.code)
    }

    /// RFC 9457 problem details (`application/problem+json`).
    #[must_use]
    pub fn problem(&self) -> serde_json::Value {
        let mut problem = serde_json::json!({
            "type": self.problem_type(),
            "title": self.sentence,
            "status": self.status.as_u16(),
        });
        if let Some(detail) = &self.detail {
            problem["detail"] = serde_json::Value::String(detail.clone());
        }
        problem["code"] = serde_json::Value::String(self.code.to_owned());
        problem
    }
}

/// Every problem `type` is this followed by the code.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:domain-api:problem:";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.row().status
    }

    fn error_response(&self) -> HttpResponse {
        let row = self.row();
        let status = row.status;
        if status.is_server_error() {
            // The whole cause chain, once, here; the caller gets nothing of it.
            tracing::error!(error = %chain(self), status = status.as_u16(), "request failed");
        }
        let mut response = HttpResponse::build(status);
        match self {
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            Self::Generate(GenerateError::RateLimited(wait))
            | Self::Create(CreateError::RateLimited(wait))
            | Self::Manage(ManageError::TooManyKeys(wait), _)
            | Self::Claim(ClaimError::TooManyKeys(wait), _)
            | Self::TooManyLiveChecks(wait)
            | Self::TooManyStoredAnswers(wait) => {
                response.insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()));
            }
            Self::BearerRejected => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        let mut response = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The seed's shape, `{"error": "<sentence>"}`; for generate exactly
            // `Failed to generate DNS records.`
            response
                .content_type("application/json")
                .body(serde_json::json!({ "error": row.sentence }).to_string())
        } else {
            response
                .content_type("text/plain; charset=utf-8")
                .body(row.sentence.clone())
        };
        // For `problem::negotiate`, which answers problem details instead when asked.
        response.extensions_mut().insert(row);
        response
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
