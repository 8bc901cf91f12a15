//! Authenticate: the API token headers → the calling organization (step 1).

use std::sync::Arc;

use crate::ports::InfraError;
use crate::ports::credentials::Credentials;
use crate::{ApiCredentials, OrganizationId};

/// Resolves the `X-Api-Access-Token` / `X-Api-Secret-Token` headers to an organization.
#[derive(Clone)]
pub struct Authenticate {
    credentials: Arc<dyn Credentials>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A token header is absent or blank.
    #[error("API credentials are missing")]
    Missing,
    /// The pair matches no live token.
    #[error("API credentials match no live token")]
    Invalid,
    /// The credential lookup failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl Authenticate {
    /// The use case over a credentials port.
    #[must_use]
    pub fn new(credentials: Arc<dyn Credentials>) -> Self {
        Self { credentials }
    }

    /// The organization whose live token pair the two header values are.
    ///
    /// # Errors
    /// [`AuthError::Missing`] when a header is absent or blank, [`AuthError::Invalid`]
    /// when the pair matches no live token, otherwise the store's failure.
    pub async fn execute(
        &self,
        access: Option<&str>,
        secret: Option<&str>,
    ) -> Result<OrganizationId, AuthError> {
        let credentials =
            ApiCredentials::from_headers(access, secret).map_err(|_| AuthError::Missing)?;
        if !credentials.is_plausible() {
            return Err(AuthError::Invalid);
        }
        self.credentials
            .organization_for(&credentials)
            .await?
            .ok_or(AuthError::Invalid)
    }
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::always;

    use super::*;
    use crate::ports::credentials::MockCredentials;

    fn use_case(mock: MockCredentials) -> Authenticate {
        Authenticate::new(Arc::new(mock))
    }

    #[tokio::test]
    async fn answers_missing_credentials_without_a_lookup_when_a_header_is_absent_or_blank() {
        let mut credentials = MockCredentials::new();
        credentials.expect_organization_for().never();
        let use_case = use_case(credentials);

        for (access, secret) in [(None, Some("s")), (Some("a"), None), (Some(" "), Some("s"))] {
            let error = use_case.execute(access, secret).await.unwrap_err();
            assert!(matches!(error, AuthError::Missing), "{error:?}");
        }
    }

    #[tokio::test]
    async fn answers_invalid_credentials_when_the_pair_matches_nothing() {
        let mut credentials = MockCredentials::new();
        credentials
            .expect_organization_for()
            .with(always())
            .times(1)
            .returning(|_| Ok(None));

        let error = use_case(credentials)
            .execute(Some("a"), Some("s"))
            .await
            .unwrap_err();

        assert!(matches!(error, AuthError::Invalid), "{error:?}");
    }

    #[tokio::test]
    async fn rejects_oversized_tokens_without_a_lookup() {
        let mut credentials = MockCredentials::new();
        credentials.expect_organization_for().never();
        let long = "x".repeat(10_000);

        let error = use_case(credentials)
            .execute(Some(&long), Some("s"))
            .await
            .unwrap_err();

        assert!(matches!(error, AuthError::Invalid));
    }

    #[tokio::test]
    async fn returns_the_owning_organization() {
        let mut credentials = MockCredentials::new();
        credentials
            .expect_organization_for()
            .withf(|c| c.access_token() == "a" && c.secret_token() == "s")
            .times(1)
            .returning(|_| Ok(Some(OrganizationId::new("org-1"))));

        let org = use_case(credentials)
            .execute(Some("a"), Some("s"))
            .await
            .unwrap();

        assert_eq!(org, OrganizationId::new("org-1"));
    }

    #[tokio::test]
    async fn reports_an_unreachable_store_as_unavailable() {
        let mut credentials = MockCredentials::new();
        credentials
            .expect_organization_for()
            .returning(|_| Err(InfraError::Unavailable("pool timed out".into())));

        let error = use_case(credentials)
            .execute(Some("a"), Some("s"))
            .await
            .unwrap_err();

        assert!(matches!(
            error,
            AuthError::Infra(InfraError::Unavailable(_))
        ));
    }
}
