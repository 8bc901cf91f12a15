//! Credentials port and token administration. Tokens are 256-bit random values shown
//! once; only their SHA-256 digests are stored, and the secret is compared in
//! constant time.
//!
//! Access tokens are self-authenticating: `dak_` + base64url(32 random bytes ‖
//! 16-byte tag), the tag being HMAC-SHA256 of the random bytes under a per-deployment
//! key kept in the `service_keys` table. A token whose tag does not verify cannot be
//! one we issued, so it is rejected without touching the database: a flood of forged
//! or random tokens costs one HMAC each, not a query. Only tokens that carry a valid
//! tag (ours, possibly revoked) cost the one indexed lookup. Untagged tokens issued
//! before tags existed are still looked up while any of them is live.

use std::fmt;

use async_trait::async_trait;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain_core::ports::InfraError;
use domain_core::ports::admin::{
    Administration, AnswerResealer, OrganizationSummary, ResealCount, ResealError, Resealer,
    SecretResealer, TokenSummary,
};
use domain_core::ports::credentials::{Credentials, CredentialsError};
use domain_core::ports::idempotency::IdempotencyKey;
use domain_core::token_format::{RANDOM_BYTES, TAG_BYTES};
use domain_core::webhooks::WebhookId;
use domain_core::{
    AccessTokenShape, ApiCredentials, DomainName, IssuedToken, OrganizationId, OrganizationName,
    SealedKey,
};
use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::Store;
use crate::backend::{DbError, in_transaction, with_conn};
use crate::token_cache::StoredToken;

fn sha256(value: &str) -> Vec<u8> {
    digest(&SHA256, value.as_bytes()).as_ref().to_vec()
}

/// `api_tokens.token_format`: an untagged token from before tags, or a tagged one.
const FORMAT_UNTAGGED: i16 = 1;
const FORMAT_TAGGED: i16 = 2;
/// The `service_keys` row holding the tag key.
const TAG_KEY_NAME: &str = "api-token-tag";

/// The system random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
struct RandomFailed;

fn random_bytes() -> Result<[u8; RANDOM_BYTES], InfraError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| InfraError::unexpected(RandomFailed))?;
    Ok(bytes)
}
/// The deployment's access-token tag key, and whether untagged tokens were live when
/// it was loaded. `Debug` hides the key.
pub(crate) struct TokenKey {
    key: hmac::Key,
    untagged_live: bool,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("untagged_live", &self.untagged_live)
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    fn new(secret: &[u8], untagged_live: bool) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            untagged_live,
        }
    }

    fn tag(&self, random: &[u8]) -> [u8; TAG_BYTES] {
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&hmac::sign(&self.key, random).as_ref()[..TAG_BYTES]);
        tag
    }

    fn issue(&self) -> Result<IssuedToken, InfraError> {
        let random = random_bytes()?;
        Ok(IssuedToken::encode(
            &random,
            &self.tag(&random),
            &random_bytes()?,
        ))
    }

    /// Whether `access` may be a token we issued, so that looking it up can succeed:
    /// a tagged token whose tag verifies (compared in constant time), or an untagged
    /// one while untagged tokens are live. Everything else is rejected unseen.
    fn worth_looking_up(&self, access: &str) -> bool {
        match AccessTokenShape::of(access) {
            AccessTokenShape::Tagged { random, tag } => bool::from(self.tag(&random).ct_eq(&tag)),
            AccessTokenShape::Untagged => self.untagged_live,
            AccessTokenShape::Foreign => false,
        }
    }
}

impl Store {
    /// The tag key: read once from the database, created there by the first instance
    /// that needs it (`ON CONFLICT DO NOTHING`, so racing instances agree on one).
    async fn token_key(&self) -> Result<&TokenKey, DbError> {
        if let Some(key) = self.token_key.get() {
            return Ok(key);
        }
        let candidate = random_bytes().map_err(|e| DbError::Aborted(Box::new(e)))?;
        let (secret, untagged_live) = with_conn!(&self.backend, |c| {
            diesel::insert_into(service_keys::table)
                .values((
                    service_keys::name.eq(TAG_KEY_NAME),
                    service_keys::secret.eq(&candidate[..]),
                    service_keys::created_at.eq(Utc::now()),
                ))
                .on_conflict_do_nothing()
                .execute(c)
                .await?;
            let secret: Vec<u8> = service_keys::table
                .find(TAG_KEY_NAME)
                .select(service_keys::secret)
                .first(c)
                .await?;
            let untagged: i64 = api_tokens::table
                .filter(api_tokens::token_format.eq(FORMAT_UNTAGGED))
                .filter(api_tokens::revoked_at.is_null())
                .count()
                .get_result(c)
                .await?;
            Ok((secret, untagged))
        })?;
        if secret.len() != RANDOM_BYTES {
            return Err(DbError::Corrupt(format!(
                "service key {TAG_KEY_NAME} is {} bytes, not {RANDOM_BYTES}",
                secret.len()
            )));
        }
        if untagged_live > 0 {
            tracing::warn!(
                untagged_live,
                "live API tokens from before tagged tokens: each request with one costs a lookup \
                 even when forged; issue new tokens (`domain-api token create`) and revoke these"
            );
        }
        Ok(self
            .token_key
            .get_or_init(|| TokenKey::new(&secret, untagged_live > 0)))
    }
}

#[async_trait]
impl Credentials for Store {
    async fn organization_for(
        &self,
        credentials: &ApiCredentials,
    ) -> Result<Option<OrganizationId>, CredentialsError> {
        let key = self.token_key().await?;
        if !key.worth_looking_up(credentials.access_token()) {
            // Forged, random or malformed: no token of ours looks like this.
            return Ok(None);
        }
        let access_hash = sha256(credentials.access_token());
        let now = std::time::Instant::now();
        let stored = match self.tokens.get(&access_hash, now) {
            Some(kept) => Some(kept),
            None => {
                // One indexed lookup by digest, only for tokens that carry our tag.
                let row: Option<(String, Vec<u8>)> = with_conn!(&self.backend, |c| {
                    api_tokens::table
                        .filter(api_tokens::access_token_hash.eq(&access_hash))
                        .filter(api_tokens::revoked_at.is_null())
                        .select((api_tokens::organization_id, api_tokens::secret_hash))
                        .first(c)
                        .await
                        .optional()
                        .map_err(DbError::from)
                })?;
                row.map(|(organization, secret_hash)| {
                    let token = StoredToken {
                        organization,
                        secret_hash,
                    };
                    self.tokens.put(access_hash.clone(), token.clone(), now);
                    token
                })
            }
        };
        let secret_hash = sha256(credentials.secret_token());
        Ok(stored.and_then(|token| {
            bool::from(token.secret_hash.ct_eq(&secret_hash))
                .then(|| OrganizationId::new(token.organization))
        }))
    }
}

#[async_trait]
impl Administration for Store {
    async fn create_organization(
        &self,
        name: &OrganizationName,
    ) -> Result<(OrganizationId, IssuedToken), InfraError> {
        let id = uuid::Uuid::new_v4().to_string();
        let token = self.token_key().await?.issue()?;
        let (access_hash, secret_hash) = (sha256(&token.access_token), sha256(&token.secret_token));
        let name = name.as_str();
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
                    api_tokens::token_format.eq(FORMAT_TAGGED),
                ))
                .execute(c)
                .await?;
            Ok::<_, DbError>(())
        })?;
        Ok((OrganizationId::new(id), token))
    }

    async fn create_token(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<IssuedToken>, InfraError> {
        let token = self.token_key().await?.issue()?;
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
                    api_tokens::token_format.eq(FORMAT_TAGGED),
                ))
                .execute(c)
                .await?;
            Ok(true)
        })?;
        Ok(created.then_some(token))
    }

    async fn list_organizations(&self) -> Result<Vec<OrganizationSummary>, InfraError> {
        let rows: Vec<(String, String, chrono::DateTime<Utc>)> = with_conn!(&self.backend, |c| {
            organizations::table
                .select((
                    organizations::id,
                    organizations::name,
                    organizations::created_at,
                ))
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at)| OrganizationSummary {
                id: OrganizationId::new(id),
                name,
                created_at,
            })
            .collect())
    }

    async fn list_tokens(
        &self,
        organization: &OrganizationId,
    ) -> Result<Option<Vec<TokenSummary>>, InfraError> {
        let org = organization.as_str();
        type Row = (i64, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>);
        let rows: Option<Vec<Row>> = with_conn!(&self.backend, |c| {
            let exists: i64 = organizations::table
                .filter(organizations::id.eq(org))
                .count()
                .get_result(c)
                .await?;
            if exists == 0 {
                return Ok(None);
            }
            // Only what an operator may see: never a digest.
            let rows = api_tokens::table
                .filter(api_tokens::organization_id.eq(org))
                .select((
                    api_tokens::id,
                    api_tokens::created_at,
                    api_tokens::revoked_at,
                ))
                .order(api_tokens::id.asc())
                .load(c)
                .await?;
            Ok::<_, DbError>(Some(rows))
        })?;
        Ok(rows.map(|rows| {
            rows.into_iter()
                .map(|(id, created_at, revoked_at)| TokenSummary {
                    id,
                    created_at,
                    revoked_at,
                })
                .collect()
        }))
    }

    async fn organization_exists(&self, organization: &OrganizationId) -> Result<bool, InfraError> {
        let found: i64 = with_conn!(&self.backend, |c| {
            organizations::table
                .filter(organizations::id.eq(organization.as_str()))
                .count()
                .get_result(c)
                .await
                .map_err(DbError::from)
        })?;
        Ok(found > 0)
    }

    async fn revoke_token(&self, access_token: &str) -> Result<bool, InfraError> {
        let access_hash = sha256(access_token);
        self.tokens.forget(&access_hash);
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

    async fn sealed_key(&self, domain: &DomainName) -> Result<Option<SealedKey>, InfraError> {
        // The active key: the one mail is signed with.
        Ok(self.active_key(domain).await?.map(|(_, sealed)| sealed))
    }

    async fn sample_sealed_keys(
        &self,
        limit: usize,
    ) -> Result<Vec<(DomainName, SealedKey)>, InfraError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, Option<Vec<u8>>)> = with_conn!(&self.backend, |c| {
            dkim_keys::table
                .inner_join(domains::table)
                .filter(dkim_keys::private_key_sealed.is_not_null())
                .select((domains::name, dkim_keys::private_key_sealed))
                .order(dkim_keys::id.asc())
                .limit(limit)
                .load(c)
                .await
                .map_err(DbError::from)
        })?;
        rows.into_iter()
            .filter_map(|(name, sealed)| sealed.map(|sealed| (name, sealed)))
            .map(|(name, sealed)| {
                DomainName::parse(&name)
                    .map(|domain| (domain, SealedKey(sealed)))
                    .map_err(|e| DbError::Corrupt(format!("domain {name:?}: {e}")).into())
            })
            .collect()
    }

    async fn reseal_keys(
        &self,
        reseal: &Resealer,
        reseal_secret: &SecretResealer,
        reseal_answer: &AnswerResealer,
    ) -> Result<ResealCount, ResealError> {
        // Every key whose private half still exists: active, pending, retiring, and
        // revoked ones not yet destroyed.
        let outcome = in_transaction!(&self.backend, |c| {
            let rows: Vec<(i64, String, Option<Vec<u8>>)> = dkim_keys::table
                .inner_join(domains::table)
                .filter(dkim_keys::private_key_sealed.is_not_null())
                .select((dkim_keys::id, domains::name, dkim_keys::private_key_sealed))
                .order(dkim_keys::id.asc())
                .load(c)
                .await?;
            for (id, name, sealed) in &rows {
                let Some(sealed) = sealed else { continue };
                let domain = DomainName::parse(name)
                    .map_err(|e| DbError::Corrupt(format!("domain {name:?}: {e}")))?;
                let resealed = reseal(&domain, &SealedKey(sealed.clone())).map_err(|source| {
                    DbError::Aborted(Box::new(ResealError::Key {
                        domain: name.clone(),
                        source,
                    }))
                })?;
                diesel::update(dkim_keys::table.find(id))
                    .set(dkim_keys::private_key_sealed.eq(Some(resealed.0)))
                    .execute(c)
                    .await?;
            }
            let secrets: Vec<(String, Vec<u8>)> = webhook_endpoints::table
                .select((webhook_endpoints::id, webhook_endpoints::secret_sealed))
                .order(webhook_endpoints::id.asc())
                .load(c)
                .await?;
            for (id, sealed) in &secrets {
                let endpoint = WebhookId::parse(id)
                    .ok_or_else(|| DbError::Corrupt(format!("webhook id {id:?}")))?;
                let resealed = reseal_secret(&endpoint, sealed).map_err(|source| {
                    DbError::Aborted(Box::new(ResealError::WebhookSecret {
                        endpoint: id.clone(),
                        source,
                    }))
                })?;
                diesel::update(webhook_endpoints::table.find(id))
                    .set(webhook_endpoints::secret_sealed.eq(resealed))
                    .execute(c)
                    .await?;
            }
            // Kept Idempotency-Key answers (running keys have none yet).
            let answers: Vec<(String, String, Option<Vec<u8>>)> = idempotency_keys::table
                .filter(idempotency_keys::body.is_not_null())
                .select((
                    idempotency_keys::organization_id,
                    idempotency_keys::key,
                    idempotency_keys::body,
                ))
                .order((
                    idempotency_keys::organization_id.asc(),
                    idempotency_keys::key.asc(),
                ))
                .load(c)
                .await?;
            for (organization, key, kept) in &answers {
                let Some(kept) = kept else { continue };
                let parsed = IdempotencyKey::parse(key.as_bytes())
                    .ok_or_else(|| DbError::Corrupt(format!("Idempotency-Key {key:?}")))?;
                let resealed = reseal_answer(&OrganizationId::new(organization), &parsed, kept)
                    .map_err(|source| {
                        DbError::Aborted(Box::new(ResealError::Answer {
                            organization: organization.clone(),
                            source,
                        }))
                    })?;
                diesel::update(idempotency_keys::table.find((organization, key)))
                    .set(idempotency_keys::body.eq(Some(resealed)))
                    .execute(c)
                    .await?;
            }
            Ok::<_, DbError>(ResealCount {
                keys: rows.len(),
                webhook_secrets: secrets.len(),
                answers: answers.len(),
            })
        });
        outcome.map_err(|error| match error {
            DbError::Aborted(e) => match e.downcast::<ResealError>() {
                Ok(reseal) => *reseal,
                Err(other) => ResealError::Infra(DbError::Aborted(other).into()),
            },
            other => ResealError::Infra(other.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use domain_core::token_format::{ACCESS_PREFIX, SECRET_PREFIX};

    use super::*;
    use crate::test_support::{TestDatabase, backends};

    fn acme() -> OrganizationName {
        OrganizationName::parse("Acme").unwrap()
    }

    fn untagged_token(byte: u8) -> String {
        format!(
            "{ACCESS_PREFIX}{}",
            URL_SAFE_NO_PAD.encode([byte; RANDOM_BYTES])
        )
    }

    #[test]
    fn only_tokens_tagged_under_this_key_are_worth_a_lookup() {
        let key = TokenKey::new(&[1; RANDOM_BYTES], false);
        let token = key.issue().unwrap();
        assert!(key.worth_looking_up(&token.access_token));
        assert!(!key.worth_looking_up(&token.secret_token), "wrong prefix");
        let elsewhere = TokenKey::new(&[2; RANDOM_BYTES], false);
        assert!(
            !elsewhere.worth_looking_up(&token.access_token),
            "another deployment's key"
        );
        for bad in [
            "",
            "dak_",
            "dak_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            &format!("{}=", &token.access_token[..token.access_token.len() - 1]),
            &untagged_token(7),
        ] {
            assert!(!key.worth_looking_up(bad), "{bad:?}");
        }
        let with_untagged = TokenKey::new(&[1; RANDOM_BYTES], true);
        assert!(with_untagged.worth_looking_up(&untagged_token(7)));
        assert!(!with_untagged.worth_looking_up("dak_short"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef", false);
        let shown = format!("{key:?}");
        assert!(!shown.contains("0123456789"), "{shown}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_digests_of_the_tokens_are_stored_and_debug_hides_them() {
        for kind in backends() {
            let db = TestDatabase::new(kind).await;
            let store = db.store().await;
            let (_, token) = store.create_organization(&acme()).await.unwrap();
            let rows: Vec<(Vec<u8>, Vec<u8>, i16)> = with_conn!(&store.backend, |c| {
                api_tokens::table
                    .select((
                        api_tokens::access_token_hash,
                        api_tokens::secret_hash,
                        api_tokens::token_format,
                    ))
                    .load(c)
                    .await
                    .map_err(DbError::from)
            })
            .unwrap();
            assert_eq!(
                rows,
                vec![(
                    sha256(&token.access_token),
                    sha256(&token.secret_token),
                    FORMAT_TAGGED
                )],
                "{kind:?}"
            );
            let shown = format!("{token:?}");
            assert!(
                !shown.contains(&token.access_token[4..])
                    && !shown.contains(&token.secret_token[4..]),
                "{shown}"
            );
            drop(store);
            drop(db);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn untagged_tokens_from_before_tags_are_looked_up_while_any_is_live() {
        for kind in backends() {
            let db = TestDatabase::new(kind).await;
            let store = db.store().await;
            let (org, _) = store
                .create_organization(&OrganizationName::parse("Old").unwrap())
                .await
                .unwrap();
            // A pair as issued before tags: the migration left such rows at format 1.
            let (access, secret) = (untagged_token(7), format!("{SECRET_PREFIX}old-secret"));
            let (access_hash, secret_hash) = (sha256(&access), sha256(&secret));
            let org_id = org.as_str();
            with_conn!(&store.backend, |c| {
                diesel::insert_into(api_tokens::table)
                    .values((
                        api_tokens::organization_id.eq(org_id),
                        api_tokens::access_token_hash.eq(&access_hash),
                        api_tokens::secret_hash.eq(&secret_hash),
                        api_tokens::created_at.eq(Utc::now()),
                    ))
                    .execute(c)
                    .await
                    .map_err(DbError::from)
            })
            .unwrap();
            let old = ApiCredentials::from_headers(Some(&access), Some(&secret)).unwrap();

            // An instance started now (a restart after the upgrade) still accepts it.
            let restarted = db.store().await;
            assert_eq!(
                restarted.organization_for(&old).await.unwrap(),
                Some(org.clone()),
                "{kind:?}"
            );
            assert!(restarted.token_key.get().unwrap().untagged_live);

            // Once it is revoked, instances started afterwards reject the untagged
            // shape without a lookup.
            assert!(restarted.revoke_token(&access).await.unwrap());
            let after = db.store().await;
            assert_eq!(after.organization_for(&old).await.unwrap(), None);
            assert!(!after.token_key.get().unwrap().untagged_live, "{kind:?}");
            drop((store, restarted, after));
            drop(db);
        }
    }
}
