//! Sign: the DKIM-Signature of a message from one of our domains, made with the
//! domain's key. The reason private keys are kept: the platform's sending service
//! (or `domain-api dkim sign`) calls this before handing a message on.

use std::sync::Arc;

use crate::ports::InfraError;
use crate::ports::signing::{DkimSigner, SignError};
use crate::ports::store::DomainStore;
use crate::{DomainName, Selector};

/// Signs messages with the key of the domain they are sent from. It checks no
/// ownership: the caller is the platform itself, not a customer.
#[derive(Clone)]
pub struct SignMessage {
    store: Arc<dyn DomainStore>,
    signer: Arc<dyn DkimSigner>,
}

/// A signature ready to be prepended to the message it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// The signing domain (`d=`), in its A-label form.
    pub domain: DomainName,
    /// The key's selector (`s=`): its record is `<selector>._domainkey.<domain>`.
    pub selector: Selector,
    /// The `DKIM-Signature` header field, folded and terminated by CRLF.
    pub header: String,
}

impl SignedMessage {
    /// The signed message: the header field followed by `message` byte for byte.
    /// When `message` ends its first line with a bare LF (a file written on Unix),
    /// the header's folds and end are written with LF too, so the result keeps one
    /// line-ending convention; relaxed canonicalisation reads both alike.
    #[must_use]
    pub fn prepend_to(&self, message: &[u8]) -> Vec<u8> {
        let header = if uses_bare_lf(message) {
            self.header.replace("\r\n", "\n")
        } else {
            self.header.clone()
        };
        let mut signed = Vec::with_capacity(header.len() + message.len());
        signed.extend_from_slice(header.as_bytes());
        signed.extend_from_slice(message);
        signed
    }
}

/// Whether the first line of `message` ends with LF alone.
fn uses_bare_lf(message: &[u8]) -> bool {
    match message.iter().position(|&b| b == b'\n') {
        Some(0) => true,
        Some(at) => message[at - 1] != b'\r',
        None => false,
    }
}

/// Why a message was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignMessageError {
    /// Not a domain name; carries the value as given.
    #[error("invalid domain {0:?}")]
    InvalidDomain(String),
    /// No domain of that name.
    #[error("no such domain")]
    NotFound,
    /// The message has no From header field, which DKIM must sign.
    #[error("the message has no From header field")]
    MissingFrom,
    /// The domain's key does not open under this master key (or is damaged).
    #[error("the domain's DKIM key does not open under this master key")]
    KeyDoesNotOpen,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<SignError> for SignMessageError {
    fn from(error: SignError) -> Self {
        match error {
            SignError::MissingFrom => Self::MissingFrom,
            SignError::KeyDoesNotOpen => Self::KeyDoesNotOpen,
            SignError::Unexpected(e) => Self::Infra(InfraError::Unexpected(e)),
        }
    }
}

impl SignMessage {
    /// The use case over the store (for the active key) and a signer.
    #[must_use]
    pub fn new(store: Arc<dyn DomainStore>, signer: Arc<dyn DkimSigner>) -> Self {
        Self { store, signer }
    }

    /// Signs `message` (RFC 5322: headers, an empty line, the body) for `domain`
    /// (Unicode or A-labels) with the domain's key.
    ///
    /// # Errors
    /// [`SignMessageError::InvalidDomain`], [`SignMessageError::NotFound`],
    /// [`SignMessageError::MissingFrom`], [`SignMessageError::KeyDoesNotOpen`], or an
    /// infrastructure failure.
    pub async fn execute(
        &self,
        domain: &str,
        message: &[u8],
    ) -> Result<SignedMessage, SignMessageError> {
        let name = DomainName::parse(domain)
            .map_err(|_| SignMessageError::InvalidDomain(domain.to_owned()))?;
        let key = self
            .store
            .signing_key(&name)
            .await?
            .ok_or(SignMessageError::NotFound)?;
        let header = self
            .signer
            .sign(&name, &key.selector, &key.sealed_private_key, message)
            .await?;
        Ok(SignedMessage {
            domain: name,
            selector: key.selector,
            header,
        })
    }
}

impl std::fmt::Debug for SignMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignMessage").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
