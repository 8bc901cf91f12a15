//! KeyGenerator port: a fresh DKIM key pair whose private half is already sealed.

use std::fmt;

use async_trait::async_trait;

use super::BoxError;
use crate::{DomainName, Selector};
use zeroize::Zeroizing;

/// A new DKIM key for one domain.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The selector its record is published under: `<selector>._domainkey.<domain>`.
    pub selector: Selector,
    /// SubjectPublicKeyInfo DER, base64 (`MIIBIjANBgkqhki…` for RSA-2048).
    pub public_key: String,
    /// The PKCS#8 private key, sealed by the generator and bound to its domain.
    pub sealed_private_key: SealedKey,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// An encrypted private key. Opaque to everything but the adapter that sealed it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(pub Vec<u8>);

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}

/// Generates DKIM keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyGenerator: Send + Sync {
    /// A new key pair for `domain`, sealed so that it only opens for that domain.
    /// Implementations must not block the async executor while generating.
    ///
    /// # Errors
    /// [`KeyError`] when generation or sealing failed.
    async fn generate(&self, domain: &DomainName) -> Result<DkimKey, KeyError>;
}

/// Generating, sealing, opening or PEM-encoding a key failed; the cause is logged,
/// never shown.
#[derive(Debug, thiserror::Error)]
#[error("DKIM key generation failed")]
pub struct KeyError(#[source] pub BoxError);

/// A private key in the clear (PKCS#8 DER), zeroed when dropped. Exists only inside
/// a [`KeyVault`] call chain; never logged (`Debug` prints its length only).
pub struct PrivateKey(pub Zeroizing<Vec<u8>>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({} bytes)", self.0.len())
    }
}

/// Opens and seals private keys under one master key, bound to their domain.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyVault: Send + Sync {
    /// Opens a key sealed for `domain`.
    ///
    /// # Errors
    /// [`KeyError`] when it does not open (wrong master key, wrong domain, tampered).
    fn open(&self, domain: &DomainName, sealed: &SealedKey) -> Result<PrivateKey, KeyError>;

    /// Seals `key` for `domain`.
    ///
    /// # Errors
    /// [`KeyError`] when the cipher or the random number generator fails.
    fn seal(&self, domain: &DomainName, key: &PrivateKey) -> Result<SealedKey, KeyError>;

    /// `key` as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), zeroed when dropped.
    ///
    /// # Errors
    /// [`KeyError`] when the key is not a PKCS#8 document.
    fn to_pem(&self, key: &PrivateKey) -> Result<Zeroizing<String>, KeyError>;
}
