//! `AuthenticatedOrg`: an extractor that runs the Authenticate use case on the two
//! API token headers. A handler that takes it cannot run unauthenticated.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use domain_core::OrganizationId;

use crate::AppState;
use crate::error::ApiError;

pub const ACCESS_TOKEN_HEADER: &str = "X-Api-Access-Token";
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

impl FromRequest for AuthenticatedOrg {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let access = header(req, ACCESS_TOKEN_HEADER);
        let secret = header(req, SECRET_TOKEN_HEADER);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::Unexpected("application state is not configured".into())
            })?;
            let organization = state
                .authenticate
                .execute(access.as_deref(), secret.as_deref())
                .await?;
            tracing::Span::current().record("org", tracing::field::display(&organization));
            Ok(Self(organization))
        })
    }
}
