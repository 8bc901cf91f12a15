//! KeyGenerator port: a fresh DKIM key pair whose private half is already sealed.

use std::fmt;

use async_trait::async_trait;

use super::BoxError;
use crate::{DomainName, Selector};

/// A new DKIM key for one domain.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
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

#[derive(Debug, thiserror::Error)]
#[error("DKIM key generation failed")]
pub struct KeyError(#[source] pub BoxError);
