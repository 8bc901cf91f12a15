//! Credentials port and token administration. Tokens are 256-bit random values shown
//! once; only their SHA-256 digests are stored, and the secret is compared in
//! constant time.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::ports::credentials::{Credentials, CredentialsError};
use domain_core::{ApiCredentials, DomainName, OrganizationId, SealedKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::Store;
use crate::backend::{DbError, in_transaction, with_conn};

/// A freshly issued token pair. The only time the plaintext exists; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub secret_token: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedToken(<redacted>)")
    }
}

/// An administrative command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no organization has that id")]
    UnknownOrganization,
    #[error("the organization name must be 1 to 200 characters with no control characters")]
    InvalidName,
    #[error("the system random number generator failed")]
    Random,
    #[error("re-sealing the key of {domain} failed")]
    Reseal {
        domain: String,
        #[source]
        source: domain_core::ports::BoxError,
    },
    #[error(transparent)]
    Store(#[from] domain_core::ports::store::StoreError),
}

impl From<DbError> for AdminError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Aborted(e) => match e.downcast::<AdminError>() {
                Ok(admin) => *admin,
                Err(other) => Self::Store(DbError::Aborted(other).into()),
            },
            other => Self::Store(other.into()),
        }
    }
}

fn sha256(value: &str) -> Vec<u8> {
    digest(&SHA256, value.as_bytes()).as_ref().to_vec()
}

fn random_token(prefix: &str) -> Result<String, AdminError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AdminError::Random)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn issue() -> Result<IssuedToken, AdminError> {
    Ok(IssuedToken {
        access_token: random_token("dak_")?,
        secret_token: random_token("das_")?,
    })
}

#[async_trait]
impl Credentials for Store {
    async fn organization_for(
        &self,
        credentials: &ApiCredentials,
    ) -> Result<Option<OrganizationId>, CredentialsError> {
        let access_hash = sha256(credentials.access_token());
        // One indexed lookup by digest; a flood of wrong tokens costs no more.
        let row: Option<(String, Vec<u8>)> = with_conn!(&self.backend, |c| {
            api_tokens::table
                .filter(api_tokens::access_token_hash.eq(&access_hash))
                .filter(api_tokens::revoked_at.is_null())
                .select((api_tokens::organization_id, api_tokens::secret_hash))
                .first(c)
                .await
                .optional()
                .map_err(DbError::from)
        })
        .map_err(|e| match e {
            DbError::Unavailable(e) => CredentialsError::Unavailable(e),
            other => CredentialsError::Unexpected(Box::new(other)),
        })?;
        let secret_hash = sha256(credentials.secret_token());
        Ok(row.and_then(|(organization, stored)| {
            bool::from(stored.ct_eq(&secret_hash)).then(|| OrganizationId::new(organization))
        }))
    }
}

impl Store {
    /// Creates an organization and its first token pair in one transaction.
    ///
    /// # Errors
    /// [`AdminError::InvalidName`] for an empty, over-long or control-character name.
    pub async fn create_organization(
        &self,
        name: &str,
    ) -> Result<(OrganizationId, IssuedToken), AdminError> {
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(AdminError::InvalidName);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let token = issue()?;
        let (access_hash, secret_hash) = (sha256(&token.access_token), sha256(&token.secret_token));
        in_transaction!(&self.backend, |c| {
            let now = Utc::now();
            diesel::insert_into(organizations::table)
                .values((
                    organizations::id.eq(&id),
                    organizations::name.eq(name),
                    organizations::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            diesel::insert_into(api_tokens::table)
                .values((
                    api_tokens::organization_id.eq(&id),
                    api_tokens::access_token_hash.eq(&access_hash),
                    api_tokens::secret_hash.eq(&secret_hash),
                    api_tokens::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            Ok::<_, DbError>(())
        })?;
        Ok((OrganizationId::new(id), token))
    }

    /// Issues another token pair for an existing organization.
    ///
    /// # Errors
    /// [`AdminError::UnknownOrganization`] when no organization has that id.
    pub async fn create_token(
        &self,
        organization: &OrganizationId,
    ) -> Result<IssuedToken, AdminError> {
        let token = issue()?;
        let (access_hash, secret_hash) = (sha256(&token.access_token), sha256(&token.secret_token));
        let org = organization.as_str();
        let created = in_transaction!(&self.backend, |c| {
            let exists: i64 = organizations::table
                .filter(organizations::id.eq(org))
                .count()
                .get_result(c)
                .await?;
            if exists == 0 {
                return Ok::<_, DbError>(false);
            }
            diesel::insert_into(api_tokens::table)
                .values((
                    api_tokens::organization_id.eq(org),
                    api_tokens::access_token_hash.eq(&access_hash),
                    api_tokens::secret_hash.eq(&secret_hash),
                    api_tokens::created_at.eq(Utc::now()),
                ))
                .execute(c)
                .await?;
            Ok(true)
        })?;
        if created {
            Ok(token)
        } else {
            Err(AdminError::UnknownOrganization)
        }
    }

    /// Revokes the pair whose access token is `access_token`. Returns whether a live
    /// token was revoked.
    ///
    /// # Errors
    /// [`AdminError::Store`] when the database fails.
    pub async fn revoke_token(&self, access_token: &str) -> Result<bool, AdminError> {
        let access_hash = sha256(access_token);
        let revoked = with_conn!(&self.backend, |c| {
            diesel::update(api_tokens::table)
                .filter(api_tokens::access_token_hash.eq(&access_hash))
                .filter(api_tokens::revoked_at.is_null())
                .set(api_tokens::revoked_at.eq(Some(Utc::now())))
                .execute(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(revoked > 0)
    }
}

/// Re-seals one key: `(domain, sealed) -> new sealed`.
pub type Resealer<'a> = dyn Fn(&DomainName, &SealedKey) -> Result<SealedKey, domain_core::ports::BoxError>
    + Send
    + Sync
    + 'a;

impl Store {
    /// Replaces every domain's sealed DKIM key with `reseal(domain, sealed)`, in one
    /// transaction: either every key is re-sealed or none is. Returns how many.
    ///
    /// # Errors
    /// [`AdminError::Reseal`] naming the first domain whose key could not be
    /// re-sealed (nothing is changed), or a store failure.
    pub async fn reseal_keys(&self, reseal: &Resealer<'_>) -> Result<usize, AdminError> {
        let count = in_transaction!(&self.backend, |c| {
            let rows: Vec<(i64, String, Vec<u8>)> = domains::table
                .select((domains::id, domains::name, domains::dkim_private_key_sealed))
                .order(domains::id.asc())
                .load(c)
                .await?;
            for (id, name, sealed) in &rows {
                let domain = DomainName::parse(name)
                    .map_err(|e| DbError::Corrupt(format!("domain {name:?}: {e}")))?;
                let resealed = reseal(&domain, &SealedKey(sealed.clone())).map_err(|source| {
                    DbError::Aborted(Box::new(AdminError::Reseal {
                        domain: name.clone(),
                        source,
                    }))
                })?;
                diesel::update(domains::table.find(id))
                    .set((
                        domains::dkim_private_key_sealed.eq(resealed.0),
                        domains::updated_at.eq(Utc::now()),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok(rows.len())
        })?;
        Ok(count)
    }
}
