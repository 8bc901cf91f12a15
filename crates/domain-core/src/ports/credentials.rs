//! Credentials port: who owns an API token pair.

use async_trait::async_trait;

use super::InfraError;
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

/// A credential lookup failed: the store's infrastructure error.
pub type CredentialsError = InfraError;
