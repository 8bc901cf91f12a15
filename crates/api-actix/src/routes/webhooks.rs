//! Webhooks: `POST /api/v1/webhooks` (the secret shown once), `GET /api/v1/webhooks`,
//! `DELETE /api/v1/webhooks/{id}`, `GET /api/v1/webhooks/{id}/deliveries`.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::ports::webhooks::{Attempt, DeliveryView, Endpoint, Health};
use domain_core::webhooks::EventFilter;
use serde::Serialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::body::authenticated_json;
use crate::error::{ApiError, Operation};
use crate::routes::domains::rfc3339;
use crate::routes::events::EventJson;
use crate::routes::generate::json_reason;

/// The largest create body.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = WebhookCreate)]
#[expect(dead_code, reason = "documentation only")]
pub struct WebhookCreateDoc {
    /// `https` URL (at most 2,048 octets, no user name or password, no fragment); its
    /// host must not be or resolve to a loopback, private, link-local, multicast,
    /// unspecified or other special address. The pattern is a simple subset (host
    /// names, a path); ports, queries and IPv6 literals are accepted too.
    #[schema(
        example = "https://hooks.example.com/domain-api",
        pattern = r"^https://([a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\.){1,3}[a-z]{2,12}(/[A-Za-z0-9_-]{1,20}){0,3}$",
        max_length = 2048
    )]
    url: String,
    /// Event types to receive; omitted or null: every type.
    #[schema(example = json!(["domain.verified", "domain.failing"]), min_items = 1)]
    events: Option<Vec<EventTypeName>>,
}

/// An event type (documentation only: the handler reads names and answers 400 for
/// an unknown one).
#[derive(Debug, utoipa::ToSchema)]
pub enum EventTypeName {
    #[schema(rename = "domain.created")]
    DomainCreated,
    #[schema(rename = "domain.verified")]
    DomainVerified,
    #[schema(rename = "domain.failing")]
    DomainFailing,
    #[schema(rename = "domain.deleted")]
    DomainDeleted,
    #[schema(rename = "domain.claimed")]
    DomainClaimed,
    #[schema(rename = "domain.transferred")]
    DomainTransferred,
    #[schema(rename = "domain.inbound_enabled")]
    DomainInboundEnabled,
    #[schema(rename = "domain.inbound_disabled")]
    DomainInboundDisabled,
    #[schema(rename = "dkim.rotation_started")]
    DkimRotationStarted,
    #[schema(rename = "dkim.key_activated")]
    DkimKeyActivated,
    #[schema(rename = "dkim.key_revoked")]
    DkimKeyRevoked,
    #[schema(rename = "sender.registered")]
    SenderRegistered,
    #[schema(rename = "sender.activated")]
    SenderActivated,
    #[schema(rename = "sender.deleted")]
    SenderDeleted,
}

/// An endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhook)]
pub struct WebhookJson {
    /// `wh_` and 32 hex digits.
    #[schema(example = "wh_3f0c9a8e1b2d4c6f8a0b1c2d3e4f5a6b")]
    id: String,
    url: String,
    /// The event types it receives (every type when created without `events`).
    events: Vec<&'static str>,
    created_at: String,
    health: HealthJson,
}

/// `ok`, or `degraded` after 3 attempts in a row got no HTTP answer (timeouts,
/// connections refused or failed): its deliveries then go one at a time until an
/// attempt gets any answer again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = WebhookHealth)]
pub enum HealthJson {
    Ok,
    Degraded,
}

impl From<Endpoint> for WebhookJson {
    fn from(endpoint: Endpoint) -> Self {
        Self {
            id: endpoint.id.to_string(),
            url: endpoint.url,
            events: event_names(&endpoint.events),
            created_at: rfc3339(&endpoint.created_at),
            health: match endpoint.health {
                Health::Ok => HealthJson::Ok,
                Health::Degraded => HealthJson::Degraded,
            },
        }
    }
}

fn event_names(filter: &EventFilter) -> Vec<&'static str> {
    match filter {
        Some(kinds) => kinds.iter().map(|kind| kind.as_str()).collect(),
        None => domain_core::lifecycle::EventType::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect(),
    }
}

/// A created endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreatedWebhook)]
pub struct CreatedWebhookJson {
    #[schema(example = "wh_3f0c9a8e1b2d4c6f8a0b1c2d3e4f5a6b")]
    id: String,
    url: String,
    events: Vec<&'static str>,
    /// `whsec_` + base64 of 24 random bytes: verify signatures with it. Shown once.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
    created_at: String,
}

/// The organization's endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookList)]
pub struct WebhookListJson {
    webhooks: Vec<WebhookJson>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DeliveryAttempt)]
pub struct AttemptJson {
    /// When it started.
    at: String,
    /// The response's status code; null when none came.
    #[schema(required = true)]
    status_code: Option<u16>,
    /// Why no 2xx came without a status: `timeout`, `connection refused`, `tls`,
    /// `address not allowed`, `host not found`, …; null when a status came.
    #[schema(required = true)]
    error: Option<String>,
    duration_ms: u64,
}

impl From<Attempt> for AttemptJson {
    fn from(attempt: Attempt) -> Self {
        Self {
            at: rfc3339(&attempt.at),
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// An event's delivery to the endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Delivery)]
pub struct DeliveryJson {
    /// Increasing; `after` in the list.
    id: i64,
    /// `pending`, `delivered` or `failed`.
    state: &'static str,
    event: EventJson,
    created_at: String,
    /// When the next attempt is due; null once delivered or failed.
    #[schema(required = true)]
    next_attempt_at: Option<String>,
    /// Oldest first.
    attempts: Vec<AttemptJson>,
}

impl From<DeliveryView> for DeliveryJson {
    fn from(delivery: DeliveryView) -> Self {
        Self {
            id: delivery.id,
            state: delivery.state.as_str(),
            event: EventJson::from(delivery.event),
            created_at: rfc3339(&delivery.created_at),
            next_attempt_at: delivery.next_attempt_at.as_ref().map(rfc3339),
            attempts: delivery
                .attempts
                .into_iter()
                .map(AttemptJson::from)
                .collect(),
        }
    }
}

/// One page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryList)]
pub struct DeliveryListJson {
    deliveries: Vec<DeliveryJson>,
    /// `after` for the next page; null on the last page.
    #[schema(required = true)]
    next: Option<i64>,
}

/// The create body: a JSON object with a string `url` and an optional list of strings
/// `events` (null: every type); other members are ignored.
fn parse_create(bytes: &[u8]) -> Result<(String, Option<Vec<String>>), ApiError> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON body: {}", json_reason(&e))))?;
    let Value::Object(mut members) = body else {
        return Err(ApiError::BadRequest(
            "Malformed JSON body: the body is not a JSON object".into(),
        ));
    };
    let url = match members.remove("url") {
        Some(Value::String(url)) => url,
        None | Some(Value::Null) => return Err(ApiError::BadRequest("Missing webhook URL".into())),
        Some(_) => return Err(ApiError::BadRequest("url must be a string".into())),
    };
    let events = match members.remove("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name),
                    _ => Err(ApiError::BadRequest(
                        "events must be a list of event types".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "events must be a list of event types".into(),
            ));
        }
    };
    Ok((url, events))
}

/// Creates a webhook endpoint. The response carries its signing secret, shown this
/// once. Deliveries start with the next event of a type it takes.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "createWebhook",
    tag = "webhooks",
    request_body(content = WebhookCreateDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; keep `secret`, it is not shown again", body = CreatedWebhookJson, content_type = "application/json"),
        (status = 400, description = "Malformed body, `Invalid webhook URL: <url>`, `Unknown event type: <type>`", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 403, description = "`Webhook limit reached`", body = String, content_type = "text/plain"),
        (status = 408, description = "`Request body timeout`", body = String, content_type = "text/plain"),
        (status = 413, description = "Body larger than 16 KiB", body = String, content_type = "text/plain"),
        (status = 415, description = "Content-Type is not application/json", body = String, content_type = "text/plain"),
        (status = 429, description = "`Too many live DNS checks; retry later`: the organization made `DOMAIN_API_LIVE_CHECKS_PER_MINUTE` requests that query DNS (validate, verify, claim verify, turning inbound on, webhook creation) within 60 s on this instance; `Retry-After` says when", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database or DNS unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[tracing::instrument(name = "create_webhook", skip_all)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn create(
    auth: Result<AuthenticatedOrg, ApiError>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (AuthenticatedOrg(organization), bytes) =
        authenticated_json(auth, &req, payload, MAX_BODY_BYTES, state.body_timeout).await?;
    let (url, events) = parse_create(&bytes)?;
    // The endpoint's host is resolved now.
    let created = state
        .live_checks
        .admit(&organization, Operation::CreateWebhook)
        .await?
        .within(
            state
                .webhooks
                .create(&organization, &url, events.as_deref()),
        )
        .await
        .map_err(|e| ApiError::Webhook(e, Operation::CreateWebhook))?;
    let endpoint = created.endpoint;
    Ok(HttpResponse::Created().json(CreatedWebhookJson {
        id: endpoint.id.to_string(),
        events: event_names(&endpoint.events),
        url: endpoint.url,
        secret: created.secret.to_string(),
        created_at: rfc3339(&endpoint.created_at),
    }))
}

/// The organization's webhook endpoints, oldest first (secrets are never shown again).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    responses(
        (status = 200, body = WebhookListJson, content_type = "application/json"),
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let endpoints = state
        .webhooks
        .list(&organization)
        .await
        .map_err(|e| ApiError::Webhook(e, Operation::ReadWebhooks))?;
    Ok(HttpResponse::Ok().json(WebhookListJson {
        webhooks: endpoints.into_iter().map(WebhookJson::from).collect(),
    }))
}

/// Deletes a webhook endpoint and its deliveries; nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^wh_[0-9a-f]{32}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Webhook not found` (also another organization's)", body = String, content_type = "text/plain"),
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
        .webhooks
        .delete(&organization, &path)
        .await
        .map_err(|e| ApiError::Webhook(e, Operation::DeleteWebhook))?;
    Ok(HttpResponse::NoContent().finish())
}

/// The query of the deliveries list, as documented (read through `pagination::page`).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documentation only")]
pub struct DeliveriesQuery {
    /// Deliveries per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` value of the previous page.
    after: Option<i64>,
}

/// An endpoint's deliveries, oldest first, each with its attempts (status codes and
/// times).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^wh_[0-9a-f]{32}$"), DeliveriesQuery),
    responses(
        (status = 200, body = DeliveryListJson, content_type = "application/json"),
        (status = 400, description = "limit outside 1–1000, after not a delivery id, or an unreadable query", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API credentials", body = String, content_type = "text/plain"),
        (status = 404, description = "`Webhook not found` (also another organization's)", body = String, content_type = "text/plain"),
        (status = 500, description = "Unexpected server error", body = crate::wire::ErrorBody, content_type = "application/json"),
        (status = 503, description = "Database unavailable", body = String, content_type = "text/plain"),
    ),
    security(("access_token" = [], "secret_token" = []))
)]
#[expect(
    clippy::missing_errors_doc,
    reason = "the doc comment is the OpenAPI operation's summary and description; its error answers are the `responses` above"
)]
pub async fn deliveries(
    AuthenticatedOrg(organization): AuthenticatedOrg,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::pagination::page::<i64>(&req)?;
    let deliveries = state
        .webhooks
        .deliveries(&organization, &path, &page)
        .await
        .map_err(|e| ApiError::Webhook(e, Operation::ReadWebhooks))?;
    Ok(HttpResponse::Ok().json(DeliveryListJson {
        deliveries: deliveries
            .items
            .into_iter()
            .map(DeliveryJson::from)
            .collect(),
        next: deliveries.next,
    }))
}
