//! DkimSigner port on `mail-auth` (its `ring` backend): rsa-sha256, relaxed/relaxed.
//! The domain's sealed PKCS#8 key is opened for one signature and the plaintext
//! buffer wiped when it is dropped; canonicalisation and the header's syntax are
//! mail-auth's, not ours.

use std::sync::Arc;

use async_trait::async_trait;
use domain_core::ports::signing::{DkimSigner, SignError};
use domain_core::{DomainName, SealedKey, Selector};
use mail_auth::AuthenticatedMessage;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner as Signer};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Sealer;

/// The header fields signed when the message has them: RFC 6376 §5.4.1's list, the
/// message's identity and MIME structure, and RFC 8058's one-click unsubscribe.
/// Fields the message lacks are not named, so relays may still add them.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The [`DkimSigner`] adapter.
#[derive(Debug, Clone)]
pub struct RsaDkimSigner {
    sealer: Arc<Sealer>,
}

impl RsaDkimSigner {
    #[must_use]
    pub fn new(sealer: Arc<Sealer>) -> Self {
        Self { sealer }
    }
}

#[async_trait]
impl DkimSigner for RsaDkimSigner {
    async fn sign(
        &self,
        domain: &DomainName,
        selector: &Selector,
        sealed: &SealedKey,
        message: &[u8],
    ) -> Result<String, SignError> {
        let sealer = Arc::clone(&self.sealer);
        let (domain, selector, sealed) = (domain.clone(), selector.clone(), sealed.clone());
        let message = message.to_vec();
        // An RSA-2048 private-key operation plus hashing the whole body: about a
        // millisecond for a small message, more for a large one. Keep it off the
        // async executor, as key generation is.
        tokio::task::spawn_blocking(move || {
            sign_blocking(&sealer, &domain, &selector, &sealed, &message)
        })
        .await
        .map_err(|e| SignError::Unexpected(Box::new(e)))?
    }
}

/// Signs on the calling thread (which must be allowed to block); see
/// [`DkimSigner::sign`] for the contract.
///
/// # Errors
/// [`SignError::MissingFrom`], [`SignError::KeyDoesNotOpen`], or
/// [`SignError::Unexpected`] when the opened key is not an RSA key ring accepts or
/// mail-auth fails.
pub fn sign_blocking(
    sealer: &Sealer,
    domain: &DomainName,
    selector: &Selector,
    sealed: &SealedKey,
    message: &[u8],
) -> Result<String, SignError> {
    let headers = headers_to_sign(message)?;
    // Zeroed when dropped, on every path out of this function. ring's parsed key
    // (`RsaKeyPair`) is not zeroed on drop: it lives only as long as this call.
    let pkcs8 = sealer
        .open(domain, sealed)
        .map_err(|_| SignError::KeyDoesNotOpen)?;
    let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pkcs8.as_slice(),
    )))
    .map_err(|e| SignError::Unexpected(Box::new(e)))?;
    let signature = Signer::from_key(key)
        .domain(domain.as_ascii())
        .selector(selector.as_str())
        .headers(headers)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| SignError::Unexpected(Box::new(e)))?;
    Ok(signature.to_header())
}

/// The names of [`SIGNED_HEADERS`] the message has, plus `From` once more:
/// "over-signing" it (RFC 6376 §8.15) makes a second `From` added in transit break
/// the signature instead of riding on it.
///
/// # Errors
/// [`SignError::MissingFrom`] when the message has no `From` field.
fn headers_to_sign(message: &[u8]) -> Result<Vec<&'static str>, SignError> {
    // mail-auth's own reading of the header section (the scanner its signer uses
    // too), so both agree on which fields the message has.
    let parsed = AuthenticatedMessage::parse(message).ok_or(SignError::MissingFrom)?;
    let has = |wanted: &str| {
        parsed
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(wanted.as_bytes()))
    };
    if !has("From") {
        return Err(SignError::MissingFrom);
    }
    let mut headers: Vec<&'static str> = SIGNED_HEADERS
        .iter()
        .copied()
        .filter(|name| has(name))
        .collect();
    headers.push("From");
    Ok(headers)
}

#[cfg(test)]
#[path = "signer_tests.rs"]
mod tests;
