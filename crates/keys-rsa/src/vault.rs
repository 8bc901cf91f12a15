//! KeyVault port on the [`Sealer`]: open, seal and print private keys for the admin
//! use cases (export, master-key rotation).

use domain_core::ports::keys::{KeyError, KeyVault, PrivateKey};
use domain_core::{DomainName, SealedKey};
use rsa::PrivateKey as RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use zeroize::Zeroizing;

use crate::Sealer;

impl KeyVault for Sealer {
    fn open(&self, domain: &DomainName, sealed: &SealedKey) -> Result<PrivateKey, KeyError> {
        Sealer::open(self, domain, sealed)
            .map(PrivateKey)
            .map_err(|e| KeyError(Box::new(e)))
    }

    fn seal(&self, domain: &DomainName, key: &PrivateKey) -> Result<SealedKey, KeyError> {
        Sealer::seal(self, domain, &key.0).map_err(|e| KeyError(Box::new(e)))
    }

    fn to_pem(&self, key: &PrivateKey) -> Result<Zeroizing<String>, KeyError> {
        // Parse before printing: never hand an operator something that is not a key.
        let parsed = RsaPrivateKey::from_pkcs8_der(&key.0).map_err(|e| KeyError(Box::new(e)))?;
        parsed
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use rsa::pkcs8::EncodePublicKey as _;

    use super::*;
    use crate::{MasterKey, generate_key_blocking};

    fn domain() -> DomainName {
        DomainName::parse("example.com").unwrap()
    }

    #[test]
    fn prints_an_opened_key_as_pkcs8_pem_that_parses_back_to_the_public_key() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        let key = generate_key_blocking(&sealer, &domain()).unwrap();

        let opened = KeyVault::open(&sealer, &domain(), &key.sealed_private_key).unwrap();
        let pem = sealer.to_pem(&opened).unwrap();

        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let private = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        let public = private.to_public_key().to_public_key_der().unwrap();
        assert_eq!(STANDARD.encode(public.as_bytes()), key.public_key);
    }

    #[test]
    fn a_key_sealed_by_another_master_key_does_not_open() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        let other = Sealer::new(&MasterKey::generate().unwrap());
        let key = generate_key_blocking(&sealer, &domain()).unwrap();

        assert!(KeyVault::open(&other, &domain(), &key.sealed_private_key).is_err());
    }

    #[test]
    fn refuses_to_print_bytes_that_are_not_a_key() {
        let sealer = Sealer::new(&MasterKey::generate().unwrap());
        assert!(
            sealer
                .to_pem(&PrivateKey(Zeroizing::new(vec![1, 2, 3])))
                .is_err()
        );
    }
}
