//! `GET /api/v1/events?after=<id>&limit=<n>` — the organization's events, oldest first.

use actix_web::{HttpRequest, HttpResponse, web};
use domain_core::lifecycle::Event;
use serde::Serialize;

use crate::AppState;
use crate::auth::AuthenticatedOrg;
use crate::error::ApiError;
use crate::routes::domains::rfc3339;

/// The query of the events list, as documented (the handler reads it through
/// `pagination::page`).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documentation only")]
pub struct EventsQuery {
    /// Events per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` value of the previous page: only events with a greater id.
    after: Option<i64>,
}

/// What an event is about: `domain` for every event about a domain, `selector` for
/// `dkim.*` events, `email` for `sender.*` events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventData)]
pub struct EventDataJson {
    /// The domain (A-label).
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    /// The DKIM key's selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    /// The sender's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// One recorded change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Event)]
pub struct EventJson {
    /// Increasing; the `after` of the next page.
    id: i64,
    /// `domain.created`, `domain.verified`, `domain.failing`, `domain.deleted`,
    /// `domain.claimed`, `domain.transferred`, `domain.inbound_enabled`,
    /// `domain.inbound_disabled`, `dkim.rotation_started`, `dkim.key_activated`,
    /// `dkim.key_revoked`, `sender.registered`, `sender.activated`, `sender.deleted`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The domain (A-label) it is about; null when none.
    #[schema(required = true)]
    domain: Option<String>,
    created_at: String,
    data: EventDataJson,
}

impl From<Event> for EventJson {
    fn from(event: Event) -> Self {
        Self {
            id: event.id,
            kind: event.kind.as_str(),
            data: EventDataJson {
                domain: event.domain.clone(),
                selector: event.selector,
                email: event.email,
            },
            domain: event.domain,
            created_at: rfc3339(&event.created_at),
        }
    }
}

/// One page of events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = EventList)]
pub struct EventListJson {
    events: Vec<EventJson>,
    /// `after` for the next page (the last event's id); null on the last page.
    #[schema(required = true)]
    next: Option<i64>,
}

/// The organization's events, oldest first. An organization sees only its own.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "listEvents",
    tag = "lifecycle",
    params(EventsQuery),
    responses(
        (status = 200, body = EventListJson, content_type = "application/json"),
        (status = 400, description = "limit outside 1–1000, after not an event id, or an unreadable query", body = String, content_type = "text/plain"),
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
    let page = crate::pagination::page::<i64>(&req)?;
    let events = state
        .events
        .execute(&organization, &page)
        .await
        .map_err(ApiError::Events)?;
    Ok(HttpResponse::Ok().json(EventListJson {
        events: events.items.into_iter().map(EventJson::from).collect(),
        next: events.next,
    }))
}
