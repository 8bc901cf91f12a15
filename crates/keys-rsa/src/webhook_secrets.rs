//! WebhookSecrets port: endpoint ids and signing secrets from the OS random source,
//! secrets sealed under the master key (bound to the endpoint's id, so a sealed
//! secret copied to another endpoint's row does not open), HMAC-SHA256 from `ring`.

use std::sync::Arc;

use domain_core::ports::keys::KeyError;
use domain_core::ports::webhooks::{IssuedSecret, WebhookSecrets};
use domain_core::webhooks::{WebhookId, WebhookSecret};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::Sealer;

/// Secret length in bytes: Standard Webhooks asks for 24 to 64.
const SECRET_BYTES: usize = 24;

/// [`WebhookSecrets`] with `ring` and the master key's [`Sealer`].
#[derive(Debug)]
pub struct RingWebhookSecrets {
    sealer: Arc<Sealer>,
    rng: SystemRandom,
}

impl RingWebhookSecrets {
    #[must_use]
    pub fn new(sealer: Arc<Sealer>) -> Self {
        Self {
            sealer,
            rng: SystemRandom::new(),
        }
    }
}

impl WebhookSecrets for RingWebhookSecrets {
    fn issue(&self) -> Result<IssuedSecret, KeyError> {
        let mut id = [0u8; 16];
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        self.rng
            .fill(&mut id)
            .and_then(|()| self.rng.fill(&mut secret))
            .map_err(|_| KeyError("the system random number generator failed".into()))?;
        let id = WebhookId::from_random(id);
        let secret = WebhookSecret(secret);
        let sealed = self.seal(&id, &secret)?;
        Ok(IssuedSecret { id, secret, sealed })
    }

    fn seal(&self, id: &WebhookId, secret: &WebhookSecret) -> Result<Vec<u8>, KeyError> {
        self.sealer
            .seal_webhook_secret(id.as_str(), &secret.0)
            .map_err(|e| KeyError(Box::new(e)))
    }

    fn open(&self, id: &WebhookId, sealed: &[u8]) -> Result<WebhookSecret, KeyError> {
        self.sealer
            .open_webhook_secret(id.as_str(), sealed)
            .map(WebhookSecret)
            .map_err(|e| KeyError(Box::new(e)))
    }

    fn sign(&self, secret: &WebhookSecret, content: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
        hmac::sign(&key, content).as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn secrets() -> RingWebhookSecrets {
        RingWebhookSecrets::new(Arc::new(Sealer::new(&MasterKey::generate().unwrap())))
    }

    #[test]
    fn an_issued_secret_opens_for_its_endpoint_only() {
        let secrets = secrets();
        let issued = secrets.issue().unwrap();
        assert_eq!(issued.secret.0.len(), SECRET_BYTES);
        let opened = secrets.open(&issued.id, &issued.sealed).unwrap();
        assert_eq!(*opened.0, *issued.secret.0);
        let other = WebhookId::from_random([9; 16]);
        assert!(secrets.open(&other, &issued.sealed).is_err());
        let another = secrets.issue().unwrap();
        assert_ne!(another.id, issued.id);
        assert_ne!(*another.secret.0, *issued.secret.0);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_content() {
        // RFC 4231 test case 2.
        let secret = WebhookSecret(Zeroizing::new(b"Jefe".to_vec()));
        let mac = secrets().sign(&secret, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
