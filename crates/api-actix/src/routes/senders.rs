//! The organization's senders: `GET /api/v1/emails/senders`,
//! `POST /api/v1/emails/senders/{email}/activate`, `DELETE /api/v1/emails/senders/{email}`.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::ports::lifecycle::SenderView;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::error::{ApiError, Operation};
use crate::routes::domains::rfc3339;

/// One of the organization's senders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrganizationSender)]
pub struct SenderViewJson {
    /// The address, with its domain lower-cased.
    email: String,
    /// Its domain (A-label).
    domain: String,
    #[schema(required = true)]
    reply_to: Option<String>,
    /// The organization's active sender (at most one).
    active: bool,
    created_at: String,
}

impl From<SenderView> for SenderViewJson {
    fn from(view: SenderView) -> Self {
        Self {
            email: view.email,
            domain: view.domain,
            reply_to: view.reply_to,
            active: view.active,
            created_at: rfc3339(&view.created_at),
        }
    }
}

/// One page of senders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SenderList)]
pub struct SenderListJson {
    senders: Vec<SenderViewJson>,
    /// `after` for the next page (the last sender's `email`); null on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// The organization's senders, by address.
#[utoipa::path(
    get,
    path = "/api/v1/emails/senders",
    operation_id = "listSenders",
    tag = "lifecycle",
    params(crate::pagination::PageQuery),
    responses(
        (status = 200, body = SenderListJson, content_type = "application/json"),
        (status = 400, description = "limit outside 1–1000, or an unreadable query", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn list(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page(&req)?;
    let senders = state
        .senders
        .list(&organization, &page)
        .await
        .map_err(|e| ApiError::Sender(e, Operation::ReadSenders))?;
    Ok(HttpResponse::Ok().json(SenderListJson {
        senders: senders
            .items
            .into_iter()
            .map(SenderViewJson::from)
            .collect(),
        next: senders.next,
    }))
}

/// Makes the sender the organization's active one; the previous active sender is
/// deactivated.
#[utoipa::path(
    post,
    path = "/api/v1/emails/senders/{email}/activate",
    operation_id = "activateSender",
    tag = "lifecycle",
    params(("email" = String, Path, description = "The sender address: an ASCII dot-atom local part of at most 64 octets, `@`, and a domain as in generate", pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$")),
    responses(
        (status = 200, description = "The sender, now active", body = SenderViewJson, content_type = "application/json"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Sender not found` (also another organization's sender)", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn activate(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sender = state
        .senders
        .activate(&organization, &path)
        .await
        .map_err(|e| ApiError::Sender(e, Operation::ActivateSender))?;
    Ok(HttpResponse::Ok().json(SenderViewJson::from(sender)))
}

/// Deletes the sender. Deleting the active sender leaves the organization with none.
#[utoipa::path(
    delete,
    path = "/api/v1/emails/senders/{email}",
    operation_id = "deleteSender",
    tag = "lifecycle",
    params(("email" = String, Path, description = "The sender address: an ASCII dot-atom local part of at most 64 octets, `@`, and a domain as in generate", pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[^@]+$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Sender not found` (also another organization's sender)", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn delete(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state
        .senders
        .delete(&organization, &path)
        .await
        .map_err(|e| ApiError::Sender(e, Operation::DeleteSender))?;
    Ok(HttpResponse::NoContent().finish())
}
