//! The master key that seals every DKIM private key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};

/// 32 bytes for AES-256-GCM. Never printed: `Debug` shows nothing of it, and it has
/// no `Display`.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key is not valid base64")]
    NotBase64,
    #[error("the master key must decode to exactly 32 bytes, got {0}")]
    WrongLength(usize),
    #[error("the system random number generator failed")]
    Random,
}

impl MasterKey {
    /// Parses the base64 form used in `DOMAIN_API_MASTER_KEY` and `data/master.key`.
    /// Surrounding white space (a trailing newline in a file) is ignored.
    ///
    /// # Errors
    /// [`MasterKeyError`] when it is not base64 of exactly 32 bytes. The error never
    /// contains the input.
    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| MasterKeyError::NotBase64)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::WrongLength(bytes.len()))?;
        Ok(Self(key))
    }

    /// A new random key.
    ///
    /// # Errors
    /// [`MasterKeyError::Random`] when the system RNG fails.
    pub fn generate() -> Result<Self, MasterKeyError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| MasterKeyError::Random)?;
        Ok(Self(key))
    }

    /// The base64 form, for writing the key file once.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_base64() {
        let key = MasterKey::generate().unwrap();
        let again = MasterKey::from_base64(&format!("{}\n", key.to_base64())).unwrap();
        assert_eq!(key.bytes(), again.bytes());
    }

    #[test]
    fn rejects_bad_input_without_echoing_it() {
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            MasterKeyError::NotBase64
        );
        let short = STANDARD.encode([7u8; 16]);
        let error = MasterKey::from_base64(&short).unwrap_err();
        assert_eq!(error, MasterKeyError::WrongLength(16));
        assert!(!error.to_string().contains(&short));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = MasterKey::generate().unwrap();
        let printed = format!("{key:?}");
        assert_eq!(printed, "MasterKey(<redacted>)");
        assert!(!printed.contains(&key.to_base64()));
    }
}
