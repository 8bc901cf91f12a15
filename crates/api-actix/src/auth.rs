//! Authentication extractors. A handler that takes [`AuthenticatedOrg`] (API tokens),
//! [`DashboardOrg`] (the dashboard's JWT) or [`OrgOrDashboard`] (either, for the
//! routes the Setup page calls) cannot run unauthenticated, and the 401 comes before
//! any body or query check.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, dev::Payload, web};
use domain_core::OrganizationId;

use crate::AppState;
use crate::error::{ApiError, Operation};
use crate::jwt::JwtSecret;

/// The API access token header.
pub const ACCESS_TOKEN_HEADER: &str = "X-Api-Access-Token";
/// The API secret token header.
pub const SECRET_TOKEN_HEADER: &str = "X-Api-Secret-Token";

/// The organization the request's API tokens belong to.
#[derive(Debug, Clone)]
pub struct AuthenticatedOrg(pub OrganizationId);

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    // Lossy: a token with non-UTF-8 bytes is simply one that matches nothing.
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The route's operation, declared on its resource (see `routes::configure`).
fn operation(req: &HttpRequest) -> Operation {
    req.app_data::<Operation>()
        .copied()
        .unwrap_or(Operation::Other)
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::Unexpected("application state is not configured".into(), operation(req))
        })
}

fn record_org(organization: &OrganizationId) {
    tracing::Span::current().record("org", tracing::field::display(organization));
}

type OrgFuture = Pin<Box<dyn Future<Output = Result<OrganizationId, ApiError>>>>;

/// The organization of the request's API token headers: a lookup the first time,
/// then kept on the request, so the idempotency middleware, which needs the caller
/// before the handler runs, and the handler's extractor share one lookup.
pub(crate) fn token_org(req: &HttpRequest) -> OrgFuture {
    if let Some(AuthenticatedOrg(organization)) = req.extensions().get::<AuthenticatedOrg>() {
        return Box::pin(ready(Ok(organization.clone())));
    }
    let state = state(req);
    let operation = operation(req);
    let access = header(req, ACCESS_TOKEN_HEADER);
    let secret = header(req, SECRET_TOKEN_HEADER);
    let req = req.clone();
    Box::pin(async move {
        let organization = state?
            .authenticate
            .execute(access.as_deref(), secret.as_deref())
            .await
            .map_err(|error| ApiError::Auth(error, operation))?;
        record_org(&organization);
        req.extensions_mut()
            .insert(AuthenticatedOrg(organization.clone()));
        Ok(organization)
    })
}

impl FromRequest for AuthenticatedOrg {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let organization = token_org(req);
        Box::pin(async move { organization.await.map(Self) })
    }
}

/// The organization of a valid dashboard JWT (`Authorization: Bearer …`). While no
/// JWT secret is configured, routes that take it answer 404.
#[derive(Debug, Clone)]
pub struct DashboardOrg(pub OrganizationId);

impl FromRequest for DashboardOrg {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(dashboard_org(req))
    }
}

fn dashboard_org(req: &HttpRequest) -> Result<DashboardOrg, ApiError> {
    let state = state(req)?;
    let Some(secret) = &state.jwt else {
        return Err(ApiError::NotFound);
    };
    let token = bearer(req).ok_or(ApiError::BearerRejected)?;
    verify_bearer(secret, token).map(DashboardOrg)
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
}

pub(crate) fn verify_bearer(secret: &JwtSecret, token: &str) -> Result<OrganizationId, ApiError> {
    let organization = secret.verify(token.trim()).map_err(|e| {
        tracing::info!(reason = %e, "bearer token rejected");
        ApiError::BearerRejected
    })?;
    record_org(&organization);
    Ok(organization)
}

/// The organization of the request's API tokens or, on the routes the Setup page
/// calls (domain detail, verify, the inbound toggle), of a dashboard JWT.
///
/// Either token header present → the API tokens decide, whatever else is sent.
/// Otherwise a `Bearer` token while a JWT secret is configured → the JWT decides
/// (401 `Invalid or missing bearer token` when it does not verify). Otherwise 401
/// `Missing API credentials`, as on any API-token route.
#[derive(Debug, Clone)]
pub struct OrgOrDashboard(pub OrganizationId);

impl FromRequest for OrgOrDashboard {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let has_tokens = req.headers().contains_key(ACCESS_TOKEN_HEADER)
            || req.headers().contains_key(SECRET_TOKEN_HEADER);
        if !has_tokens {
            let state = match state(req) {
                Ok(state) => state,
                Err(error) => return Box::pin(ready(Err(error))),
            };
            // Without a JWT secret, or without a bearer token, the token lookup below
            // answers 401 `Missing API credentials` without touching the store.
            if let (Some(secret), Some(token)) = (&state.jwt, bearer(req)) {
                return Box::pin(ready(verify_bearer(secret, token).map(Self)));
            }
        }
        let organization = token_org(req);
        Box::pin(async move { organization.await.map(Self) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::test::TestRequest;
    use domain_core::ports::credentials::MockCredentials;
    use domain_core::usecases::authenticate::Authenticate;

    use super::*;
    use crate::routes::test_app::Mocks;

    #[tokio::test]
    async fn a_request_looks_its_tokens_up_once() {
        let mut credentials = MockCredentials::new();
        credentials
            .expect_organization_for()
            .times(1)
            .returning(|_| Ok(Some(OrganizationId::new("org-a"))));
        let mut state = Mocks::new().state();
        state.authenticate = Authenticate::new(Arc::new(credentials));
        let req = TestRequest::default()
            .insert_header((ACCESS_TOKEN_HEADER, "acc-a"))
            .insert_header((SECRET_TOKEN_HEADER, "sec-a"))
            .app_data(web::Data::new(state))
            .to_http_request();

        // The idempotency middleware asks first, the handler's extractor after it.
        let first = token_org(&req).await.expect("authenticated");
        let again = token_org(&req).await.expect("authenticated");

        assert_eq!(first, again);
        assert_eq!(first.as_str(), "org-a");
    }
}
