//! Administration use cases: organizations and token pairs, exporting a domain's
//! DKIM private key, and re-sealing every key under a new master key. The CLI runs
//! these; nothing else calls the administration port.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::ports::InfraError;
use crate::ports::admin::{
    Administration, OrganizationSummary, ResealCount, ResealError, TokenSummary,
};
use crate::ports::idempotency::AnswerSealer;
use crate::ports::keys::{KeyError, KeyVault};
use crate::ports::webhooks::WebhookSecrets;
use crate::usecases::idempotency;
use crate::{DomainName, IssuedToken, OrganizationId, OrganizationName};

/// Why an administrative command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The organization name breaks the rules of [`OrganizationName`].
    #[error(transparent)]
    InvalidName(#[from] crate::InvalidOrganizationName),
    /// No organization has that id.
    #[error("no organization has that id")]
    UnknownOrganization,
    /// No live token has that access token.
    #[error("no live token has that access token")]
    UnknownToken,
    /// Not a domain name; carries the value as given.
    #[error("invalid domain {0:?}")]
    InvalidDomain(String),
    /// No domain of that name.
    #[error("no domain {0}")]
    UnknownDomain(DomainName),
    /// The key does not open under this master key (or is not a private key).
    #[error("the DKIM key of {domain} does not open under this master key")]
    Key {
        /// The domain whose key failed.
        domain: DomainName,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// Re-sealing stopped at one key; nothing was changed.
    #[error(transparent)]
    Reseal(#[from] ResealError),
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// Organizations and their token pairs.
#[derive(Clone)]
pub struct ManageOrganizations {
    admin: Arc<dyn Administration>,
}

impl ManageOrganizations {
    /// The use case over an administration port.
    #[must_use]
    pub fn new(admin: Arc<dyn Administration>) -> Self {
        Self { admin }
    }

    /// Creates an organization named `name` and its first token pair.
    ///
    /// # Errors
    /// [`AdminError::InvalidName`], or a port failure.
    pub async fn create_organization(
        &self,
        name: &str,
    ) -> Result<(OrganizationId, IssuedToken), AdminError> {
        let name = OrganizationName::parse(name)?;
        Ok(self.admin.create_organization(&name).await?)
    }

    /// Issues another token pair for an existing organization.
    ///
    /// # Errors
    /// [`AdminError::UnknownOrganization`], or a port failure.
    pub async fn create_token(
        &self,
        organization: &OrganizationId,
    ) -> Result<IssuedToken, AdminError> {
        self.admin
            .create_token(organization)
            .await?
            .ok_or(AdminError::UnknownOrganization)
    }

    /// Every organization, oldest first.
    ///
    /// # Errors
    /// A port failure.
    pub async fn list_organizations(&self) -> Result<Vec<OrganizationSummary>, AdminError> {
        Ok(self.admin.list_organizations().await?)
    }

    /// The organization's token pairs (never a token or a secret), oldest first.
    ///
    /// # Errors
    /// [`AdminError::UnknownOrganization`], or a port failure.
    pub async fn list_tokens(
        &self,
        organization: &OrganizationId,
    ) -> Result<Vec<TokenSummary>, AdminError> {
        self.admin
            .list_tokens(organization)
            .await?
            .ok_or(AdminError::UnknownOrganization)
    }

    /// Checks that an organization has this id (before a credential such as a
    /// dashboard JWT is minted for it).
    ///
    /// # Errors
    /// [`AdminError::UnknownOrganization`], or a port failure.
    pub async fn require(&self, organization: &OrganizationId) -> Result<(), AdminError> {
        if self.admin.organization_exists(organization).await? {
            Ok(())
        } else {
            Err(AdminError::UnknownOrganization)
        }
    }

    /// Revokes the live pair whose access token is `access_token`.
    ///
    /// # Errors
    /// [`AdminError::UnknownToken`] when no live pair has it, or a port failure.
    pub async fn revoke_token(&self, access_token: &str) -> Result<(), AdminError> {
        if self.admin.revoke_token(access_token.trim()).await? {
            Ok(())
        } else {
            Err(AdminError::UnknownToken)
        }
    }
}

impl std::fmt::Debug for ManageOrganizations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageOrganizations")
            .finish_non_exhaustive()
    }
}

/// What [`ManageKeys::check_master_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterKeyCheck {
    /// Stored keys tried.
    pub tried: usize,
    /// Of those, how many opened under this master key.
    pub opened: usize,
}

impl MasterKeyCheck {
    /// Whether the master key is not the one these keys were sealed with: there
    /// were keys, and none opened.
    #[must_use]
    pub fn opens_none(&self) -> bool {
        self.tried > 0 && self.opened == 0
    }
}

/// Exports a domain's signing key, and re-seals every key under a new master key.
#[derive(Clone)]
pub struct ManageKeys {
    admin: Arc<dyn Administration>,
    vault: Arc<dyn KeyVault>,
    secrets: Arc<dyn WebhookSecrets>,
    answers: Arc<dyn AnswerSealer>,
}

impl ManageKeys {
    /// The use case over the administration port and the current master key's vault
    /// and webhook secrets.
    #[must_use]
    pub fn new(
        admin: Arc<dyn Administration>,
        vault: Arc<dyn KeyVault>,
        secrets: Arc<dyn WebhookSecrets>,
        answers: Arc<dyn AnswerSealer>,
    ) -> Self {
        Self {
            admin,
            vault,
            secrets,
            answers,
        }
    }

    /// The domain's signing key as PKCS#8 PEM, zeroed when dropped.
    ///
    /// # Errors
    /// [`AdminError::InvalidDomain`], [`AdminError::UnknownDomain`], [`AdminError::Key`]
    /// when it does not open under this master key, or a port failure.
    pub async fn export(&self, domain: &str) -> Result<Zeroizing<String>, AdminError> {
        let domain =
            DomainName::parse(domain).map_err(|_| AdminError::InvalidDomain(domain.to_owned()))?;
        let sealed = self
            .admin
            .sealed_key(&domain)
            .await?
            .ok_or_else(|| AdminError::UnknownDomain(domain.clone()))?;
        let pem = self
            .vault
            .open(&domain, &sealed)
            .and_then(|key| self.vault.to_pem(&key));
        pem.map_err(|source| AdminError::Key { domain, source })
    }

    /// Tries this master key on up to `sample` stored DKIM keys: how many were
    /// tried, and how many opened. A start refuses a key that opens none of them.
    ///
    /// # Errors
    /// A port failure.
    pub async fn check_master_key(&self, sample: usize) -> Result<MasterKeyCheck, AdminError> {
        let keys = self.admin.sample_sealed_keys(sample).await?;
        let opened = keys
            .iter()
            .filter(|(domain, sealed)| self.vault.open(domain, sealed).is_ok())
            .count();
        Ok(MasterKeyCheck {
            tried: keys.len(),
            opened,
        })
    }

    /// Re-seals every stored key, webhook secret and kept Idempotency-Key answer under
    /// the new master key (`new`, `new_secrets`, `new_answers`), proving each new blob
    /// opens before it replaces the old one; an answer kept before answers were
    /// sealed is sealed now. All or nothing; returns how many of each.
    ///
    /// # Errors
    /// [`AdminError::Reseal`] naming the first that failed (nothing changed), or a
    /// port failure.
    pub async fn reseal_all(
        &self,
        new: Arc<dyn KeyVault>,
        new_secrets: Arc<dyn WebhookSecrets>,
        new_answers: Arc<dyn AnswerSealer>,
    ) -> Result<ResealCount, AdminError> {
        let old = Arc::clone(&self.vault);
        let old_secrets = Arc::clone(&self.secrets);
        let old_answers = Arc::clone(&self.answers);
        let count = self
            .admin
            .reseal_keys(
                &move |domain, sealed| {
                    let key = old.open(domain, sealed)?;
                    let resealed = new.seal(domain, &key)?;
                    new.open(domain, &resealed)?;
                    Ok(resealed)
                },
                &move |endpoint, sealed| {
                    let secret = old_secrets.open(endpoint, sealed)?;
                    let resealed = new_secrets.seal(endpoint, &secret)?;
                    new_secrets.open(endpoint, &resealed)?;
                    Ok(resealed)
                },
                &move |organization, key, kept| {
                    let body = idempotency::open_kept(&*old_answers, organization, key, kept)?;
                    let resealed = idempotency::seal(&*new_answers, organization, key, &body)?;
                    idempotency::open_kept(&*new_answers, organization, key, &resealed)?;
                    Ok(resealed)
                },
            )
            .await?;
        Ok(count)
    }
}

impl std::fmt::Debug for ManageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageKeys").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
