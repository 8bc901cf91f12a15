//! DkimSigner port: a DKIM-Signature for a message, made with a domain's sealed key.

use async_trait::async_trait;

use super::BoxError;
use crate::{DomainName, SealedKey, Selector};

/// Signs RFC 5322 messages for a domain (rsa-sha256, relaxed/relaxed).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DkimSigner: Send + Sync {
    /// The `DKIM-Signature` header field for `message` (its headers, an empty line,
    /// its body), signed as `d=domain`, `s=selector` with the private key sealed in
    /// `sealed`: folded and terminated by CRLF, ready to be prepended to the message.
    /// The adapter opens the key only for the signature and wipes it afterwards.
    ///
    /// # Errors
    /// [`SignError::MissingFrom`] for a message without a `From` field (RFC 6376
    /// requires it to be signed); [`SignError::KeyDoesNotOpen`] when `sealed` does not
    /// open for `domain`; [`SignError::Unexpected`] for anything else.
    async fn sign(
        &self,
        domain: &DomainName,
        selector: &Selector,
        sealed: &SealedKey,
        message: &[u8],
    ) -> Result<String, SignError>;
}

/// Why a message was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The message has no `From` header field.
    #[error("the message has no From header field")]
    MissingFrom,
    /// The sealed key does not open: another master key, another domain's key, or a
    /// damaged blob. AES-GCM cannot tell which.
    #[error("the domain's DKIM key does not open under this master key")]
    KeyDoesNotOpen,
    /// The signer failed for another reason (a bug, a blocked thread pool).
    #[error("signing failed")]
    Unexpected(#[source] BoxError),
}
