//! The Domain Connect signing key (`DOMAIN_API_DOMAIN_CONNECT_KEY_FILE`): an RSA
//! private key in PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) that signs
//! apply URLs with RSA-SHA256 (PKCS#1 v1.5), and the TXT records that publish its
//! public half at the template's `syncPubKeyDomain` (`p=1,a=RS256,d=…`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain_core::ports::BoxError;
use domain_core::ports::domain_connect::ApplyUrlSigner;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::PrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use zeroize::Zeroizing;

/// The most base64 characters of the key in one TXT record (a TXT string holds 255
/// octets; `p=NN,a=RS256,d=` takes the rest).
pub const CHUNK: usize = 200;

/// The key could not be used; says why without any of the key.
#[derive(Debug, thiserror::Error)]
pub enum DomainConnectKeyError {
    /// No `PRIVATE KEY` or `RSA PRIVATE KEY` PEM block.
    #[error("no PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY) found")]
    NoPem,
    /// The block is not an RSA private key.
    #[error("the PEM block is not an RSA private key")]
    NotRsa,
    /// The key is too small or otherwise refused for signing.
    #[error("the RSA key cannot sign (at least 2048 bits are needed)")]
    Refused,
}

/// The signing key and its public half.
pub struct DomainConnectKey {
    pair: RsaKeyPair,
    /// SubjectPublicKeyInfo DER, base64.
    public_key: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for DomainConnectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainConnectKey(…)")
    }
}

impl DomainConnectKey {
    /// The key in `pem`.
    ///
    /// # Errors
    /// [`DomainConnectKeyError`].
    pub fn from_pem(pem: &str) -> Result<Self, DomainConnectKeyError> {
        let (label, der) = pem_block(pem).ok_or(DomainConnectKeyError::NoPem)?;
        let private = match label {
            "PRIVATE KEY" => PrivateKey::from_pkcs8_der(&der).ok(),
            _ => PrivateKey::from_pkcs1_der(&der).ok(),
        }
        .ok_or(DomainConnectKeyError::NotRsa)?;
        let pkcs8 = private
            .to_pkcs8_der()
            .map_err(|_| DomainConnectKeyError::NotRsa)?;
        let public = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|_| DomainConnectKeyError::NotRsa)?;
        let pair =
            RsaKeyPair::from_pkcs8(pkcs8.as_bytes()).map_err(|_| DomainConnectKeyError::Refused)?;
        Ok(Self {
            pair,
            public_key: STANDARD.encode(public.as_bytes()),
            rng: SystemRandom::new(),
        })
    }

    /// The public key: SubjectPublicKeyInfo DER, base64.
    #[must_use]
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The TXT records to publish at `<key host>.<syncPubKeyDomain>`, in order:
    /// `p=1,a=RS256,d=<first chunk>`, `p=2,…`.
    #[must_use]
    pub fn txt_records(&self) -> Vec<String> {
        self.public_key
            .as_bytes()
            .chunks(CHUNK)
            .enumerate()
            .map(|(n, chunk)| format!("p={},a=RS256,d={}", n + 1, String::from_utf8_lossy(chunk)))
            .collect()
    }

    /// The signature of `data`, base64.
    ///
    /// # Errors
    /// ring's refusal (not expected for a key it accepted).
    pub fn sign_bytes(&self, data: &[u8]) -> Result<String, ring::error::Unspecified> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut signature)?;
        Ok(STANDARD.encode(signature))
    }
}

impl ApplyUrlSigner for DomainConnectKey {
    fn sign(&self, query: &str) -> Result<String, BoxError> {
        self.sign_bytes(query.as_bytes())
            .map_err(|_| "the Domain Connect key could not sign".into())
    }
}

/// The first private-key PEM block: its label and DER.
fn pem_block(pem: &str) -> Option<(&'static str, Zeroizing<Vec<u8>>)> {
    for label in ["PRIVATE KEY", "RSA PRIVATE KEY"] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = pem.find(&begin) else {
            continue;
        };
        let body = &pem[start + begin.len()..];
        let stop = body.find(&end)?;
        let text: String = body[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD.decode(text.as_bytes()).ok()?;
        return Some((label, Zeroizing::new(der)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;

    fn generated() -> PrivateKey {
        let (_, pkcs8) = crate::generator::generate_pair().expect("a key");
        PrivateKey::from_pkcs8_der(pkcs8.as_bytes()).expect("pkcs8")
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let text = STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn pkcs8_pem(private: &PrivateKey) -> String {
        pem("PRIVATE KEY", private.to_pkcs8_der().unwrap().as_bytes())
    }

    #[test]
    fn reads_pkcs8_and_pkcs1_pem_alike_and_signs_verifiably() {
        let private = generated();
        let pkcs1 = pem(
            "RSA PRIVATE KEY",
            private.to_pkcs1_der().unwrap().as_bytes(),
        );
        let a = DomainConnectKey::from_pem(&pkcs8_pem(&private)).unwrap();
        let b = DomainConnectKey::from_pem(&format!("junk\n{pkcs1}")).unwrap();
        assert_eq!(a.public_key(), b.public_key());

        let sig = STANDARD.decode(a.sign_bytes(b"a=1&b=2").unwrap()).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            a.pair.public().as_ref(),
        );
        assert!(public.verify(b"a=1&b=2", &sig).is_ok());
        assert!(public.verify(b"a=1&b=3", &sig).is_err());
    }

    #[test]
    fn splits_the_public_key_into_numbered_records_that_join_back() {
        let key = DomainConnectKey::from_pem(&pkcs8_pem(&generated())).unwrap();
        let records = key.txt_records();
        assert!(records.len() >= 2, "{records:?}");
        let mut joined = String::new();
        for (n, record) in records.iter().enumerate() {
            let prefix = format!("p={},a=RS256,d=", n + 1);
            assert!(record.starts_with(&prefix), "{record}");
            assert!(record.len() <= 255);
            joined.push_str(&record[prefix.len()..]);
        }
        assert_eq!(joined, key.public_key());
    }

    #[test]
    fn refuses_what_is_not_an_rsa_private_key() {
        assert!(matches!(
            DomainConnectKey::from_pem("nothing"),
            Err(DomainConnectKeyError::NoPem)
        ));
        assert!(matches!(
            DomainConnectKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            Err(DomainConnectKeyError::NotRsa)
        ));
    }
}
