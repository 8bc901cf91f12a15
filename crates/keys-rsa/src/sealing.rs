//! Sealing DKIM private keys: AES-256-GCM under the master key, the domain bound as
//! associated data so a sealed key moved to another domain's row fails to open.
//!
//! Format (version 1): `0x01 || nonce (12) || ciphertext || tag (16)`.

use std::fmt;

use domain_core::{DomainName, SealedKey};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::MasterKey;

const VERSION: u8 = 1;

/// Seals and opens private keys with one master key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed key is truncated or of an unknown format")]
    Malformed,
    /// Wrong master key, wrong domain, or tampered ciphertext: AES-GCM cannot tell
    /// which, and neither do we.
    #[error("the sealed key does not open under this master key for this domain")]
    WrongKeyOrDomain,
    #[error("sealing failed")]
    Seal,
}

impl Sealer {
    #[must_use]
    pub fn new(master: &MasterKey) -> Self {
        // AES-256 accepts every 32-byte key, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, master.bytes())
            .unwrap_or_else(|_| unreachable!("AES-256-GCM takes any 32-byte key"));
        Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// Encrypts `plaintext` for `domain`.
    ///
    /// # Errors
    /// [`SealError::Seal`] when the RNG or the cipher fails.
    pub fn seal(&self, domain: &DomainName, plaintext: &[u8]) -> Result<SealedKey, SealError> {
        self.seal_with(&aad(domain), plaintext)
    }

    fn seal_with(&self, aad: &[u8], plaintext: &[u8]) -> Result<SealedKey, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Seal)?;
        // Becomes the ciphertext in place; nothing of the plaintext is left in it.
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&buffer);
        Ok(SealedKey(sealed))
    }

    /// Decrypts a key sealed for `domain`.
    ///
    /// # Errors
    /// [`SealError::Malformed`] for an unreadable blob; [`SealError::WrongKeyOrDomain`]
    /// when authentication fails. Never returns garbage.
    /// The plaintext is zeroed when the returned buffer is dropped.
    pub fn open(
        &self,
        domain: &DomainName,
        sealed: &SealedKey,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_with(&aad(domain), sealed)
    }

    fn open_with(&self, aad: &[u8], sealed: &SealedKey) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (version, rest) = sealed.0.split_first().ok_or(SealError::Malformed)?;
        if *version != VERSION || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| SealError::WrongKeyOrDomain)?;
        Ok(Zeroizing::new(plaintext.to_vec()))
    }
}

fn aad(domain: &DomainName) -> Vec<u8> {
    format!("domain-api dkim v1 {domain}").into_bytes()
}

/// Associated data of keys waiting in the pool: they belong to no domain yet.
const POOL_AAD: &[u8] = b"domain-api dkim v1 pool";

impl Sealer {
    /// Seals a key that has no domain yet (a pooled key).
    pub(crate) fn seal_pooled(&self, plaintext: &[u8]) -> Result<SealedKey, SealError> {
        self.seal_with(POOL_AAD, plaintext)
    }

    /// Moves a pooled key to `domain`: opens it under the pool's associated data and
    /// seals it again under the domain's.
    pub(crate) fn reseal_pooled(
        &self,
        sealed: &SealedKey,
        domain: &DomainName,
    ) -> Result<SealedKey, SealError> {
        let plaintext = self.open_with(POOL_AAD, sealed)?;
        self.seal(domain, &plaintext)
    }
}

/// Associated data of a webhook endpoint's signing secret: bound to the endpoint.
fn webhook_aad(endpoint: &str) -> Vec<u8> {
    format!("domain-api webhook v1 {endpoint}").into_bytes()
}

impl Sealer {
    /// Seals a webhook endpoint's signing secret, bound to the endpoint's id.
    ///
    /// # Errors
    /// [`SealError::Seal`] when the RNG or the cipher fails.
    pub fn seal_webhook_secret(&self, endpoint: &str, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        Ok(self.seal_with(&webhook_aad(endpoint), secret)?.0)
    }

    /// Opens a webhook secret sealed for `endpoint`.
    ///
    /// # Errors
    /// As [`Sealer::open`].
    pub fn open_webhook_secret(
        &self,
        endpoint: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_with(&webhook_aad(endpoint), &SealedKey(sealed.to_vec()))
    }
}

/// Associated data of a kept Idempotency-Key answer: bound to its organization and
/// key, so a sealed answer copied to another key's row does not open.
fn answer_aad(organization: &str, key: &str) -> Vec<u8> {
    format!("domain-api idempotency v1 {organization}\0{key}").into_bytes()
}

impl Sealer {
    /// Seals the body of a kept Idempotency-Key answer.
    ///
    /// # Errors
    /// [`SealError::Seal`] when the RNG or the cipher fails.
    pub fn seal_answer(
        &self,
        organization: &str,
        key: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        Ok(self.seal_with(&answer_aad(organization, key), body)?.0)
    }

    /// Opens the body of a kept Idempotency-Key answer.
    ///
    /// # Errors
    /// As [`Sealer::open`].
    pub fn open_answer(
        &self,
        organization: &str,
        key: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open_with(&answer_aad(organization, key), &SealedKey(sealed.to_vec()))
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(name: &str) -> DomainName {
        DomainName::parse(name).unwrap()
    }

    #[test]
    fn opens_what_it_sealed() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        let sealed = sealer.seal(&domain("example.com"), b"private").unwrap();
        assert_eq!(
            sealer
                .open(&domain("example.com"), &sealed)
                .unwrap()
                .as_slice(),
            b"private"
        );
        assert!(!sealed.0.windows(7).any(|w| w == b"private"));
    }

    #[test]
    fn fails_loudly_under_a_wrong_master_key() {
        let sealed = Sealer::new(&MasterKey::generate().unwrap())
            .seal(&domain("example.com"), b"private")
            .unwrap();
        let other = Sealer::new(&MasterKey::generate().unwrap());
        assert_eq!(
            other.open(&domain("example.com"), &sealed).map(|_| ()),
            Err(SealError::WrongKeyOrDomain)
        );
    }

    #[test]
    fn binds_the_ciphertext_to_its_domain() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        let sealed = sealer.seal(&domain("example.com"), b"private").unwrap();
        assert_eq!(
            sealer.open(&domain("example.org"), &sealed).map(|_| ()),
            Err(SealError::WrongKeyOrDomain)
        );
    }

    #[test]
    fn rejects_truncated_or_unknown_blobs() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        for blob in [vec![], vec![1, 2, 3], vec![9; 64]] {
            assert_eq!(
                sealer.open(&domain("example.com"), &SealedKey(blob)),
                Err(SealError::Malformed)
            );
        }
    }
}
