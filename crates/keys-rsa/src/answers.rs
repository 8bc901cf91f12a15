//! AnswerSealer port: kept Idempotency-Key answers sealed under the master key with
//! AES-256-GCM, bound to their organization and key (an answer may hold a secret
//! shown once, such as a new webhook's signing secret).

use std::sync::Arc;

use domain_core::OrganizationId;
use domain_core::ports::idempotency::{AnswerSealer, IdempotencyKey};
use domain_core::ports::keys::KeyError;

use crate::Sealer;

/// [`AnswerSealer`] with the master key's [`Sealer`].
#[derive(Debug)]
pub struct RingAnswerSealer {
    sealer: Arc<Sealer>,
}

impl RingAnswerSealer {
    #[must_use]
    pub fn new(sealer: Arc<Sealer>) -> Self {
        Self { sealer }
    }
}

impl AnswerSealer for RingAnswerSealer {
    fn seal(
        &self,
        organization: &OrganizationId,
        key: &IdempotencyKey,
        body: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.sealer
            .seal_answer(organization.as_str(), key.as_str(), body)
            .map_err(|e| KeyError(Box::new(e)))
    }

    fn open(
        &self,
        organization: &OrganizationId,
        key: &IdempotencyKey,
        sealed: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        self.sealer
            .open_answer(organization.as_str(), key.as_str(), sealed)
            .map(|body| body.to_vec())
            .map_err(|e| KeyError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn key(value: &str) -> IdempotencyKey {
        IdempotencyKey::parse(value.as_bytes()).unwrap()
    }

    #[test]
    fn an_answer_opens_for_its_organization_and_key_only() {
        let sealer = RingAnswerSealer::new(Arc::new(Sealer::new(&MasterKey::generate().unwrap())));
        let (org, other_org) = (OrganizationId::new("org-a"), OrganizationId::new("org-b"));
        let body = br#"{"secret":"whsec_abc"}"#;

        let sealed = sealer.seal(&org, &key("k1"), body).unwrap();

        assert!(
            !sealed.windows(5).any(|w| w == b"whsec"),
            "no plaintext in the sealed bytes"
        );
        assert_eq!(sealer.open(&org, &key("k1"), &sealed).unwrap(), body);
        assert!(sealer.open(&org, &key("k2"), &sealed).is_err());
        assert!(sealer.open(&other_org, &key("k1"), &sealed).is_err());
        let another_master =
            RingAnswerSealer::new(Arc::new(Sealer::new(&MasterKey::generate().unwrap())));
        assert!(another_master.open(&org, &key("k1"), &sealed).is_err());
    }
}
