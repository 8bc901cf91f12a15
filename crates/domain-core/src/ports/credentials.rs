//! Credentials port: who owns an API token pair.

use async_trait::async_trait;

use super::BoxError;
use crate::{ApiCredentials, OrganizationId};

/// Resolves an API token pair to its organization.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Credentials: Send + Sync {
    /// The organization whose live (unrevoked) token pair this is, if any.
    ///
    /// # Errors
    /// [`CredentialsError`] when the lookup itself failed; a pair that matches
    /// nothing is `Ok(None)`, not an error.
    async fn organization_for(
        &self,
        credentials: &ApiCredentials,
    ) -> Result<Option<OrganizationId>, CredentialsError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The backing store cannot be reached right now; retrying later may succeed.
    #[error("the credential store is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("the credential lookup failed")]
    Unexpected(#[source] BoxError),
}
