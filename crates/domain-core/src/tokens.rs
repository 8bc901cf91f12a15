//! The API token format. Tokens are shown once and stored only as digests.
//!
//! An access token is `dak_` + base64url(32 random bytes ‖ 16-byte tag), the tag
//! proving the token was issued by this deployment (the adapter computes it with a
//! keyed MAC: the key never leaves the store). A secret token is `das_` +
//! base64url(32 random bytes). Access tokens from before tags existed are `dak_` +
//! base64url(32 random bytes).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Prefix of every access token.
pub const ACCESS_PREFIX: &str = "dak_";
/// Prefix of every secret token.
pub const SECRET_PREFIX: &str = "das_";
/// Random bytes in each token: 256 bits.
pub const RANDOM_BYTES: usize = 32;
/// Bytes of the issuer tag appended to an access token's random part.
pub const TAG_BYTES: usize = 16;

/// base64url without padding of 32 + 16 bytes, and of 32 bytes.
const TAGGED_CHARS: usize = 64;
const UNTAGGED_CHARS: usize = 43;

/// A freshly issued token pair: the only time the plaintext exists. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// `X-Api-Access-Token`.
    pub access_token: String,
    /// `X-Api-Secret-Token`.
    pub secret_token: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedToken(<redacted>)")
    }
}

impl IssuedToken {
    /// Encodes a pair from its random parts and the access token's tag.
    #[must_use]
    pub fn encode(
        access_random: &[u8; RANDOM_BYTES],
        tag: &[u8; TAG_BYTES],
        secret_random: &[u8; RANDOM_BYTES],
    ) -> Self {
        let mut access = [0u8; RANDOM_BYTES + TAG_BYTES];
        access[..RANDOM_BYTES].copy_from_slice(access_random);
        access[RANDOM_BYTES..].copy_from_slice(tag);
        Self {
            access_token: format!("{ACCESS_PREFIX}{}", URL_SAFE_NO_PAD.encode(access)),
            secret_token: format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret_random)),
        }
    }
}

/// What an access token presented by a caller looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTokenShape {
    /// Tagged: the random part and the tag to check.
    Tagged {
        /// The 32 random bytes.
        random: [u8; RANDOM_BYTES],
        /// The tag as presented.
        tag: [u8; TAG_BYTES],
    },
    /// The untagged form issued before tags existed.
    Untagged,
    /// Not a token of ours in any form.
    Foreign,
}

impl AccessTokenShape {
    /// Reads an access token's shape without any secret.
    #[must_use]
    pub fn of(access: &str) -> Self {
        let Some(body) = access.strip_prefix(ACCESS_PREFIX) else {
            return Self::Foreign;
        };
        let mut decoded = [0u8; RANDOM_BYTES + TAG_BYTES];
        match body.len() {
            TAGGED_CHARS => match URL_SAFE_NO_PAD.decode_slice(body, &mut decoded) {
                Ok(n) if n == decoded.len() => {
                    let mut random = [0u8; RANDOM_BYTES];
                    let mut tag = [0u8; TAG_BYTES];
                    random.copy_from_slice(&decoded[..RANDOM_BYTES]);
                    tag.copy_from_slice(&decoded[RANDOM_BYTES..]);
                    Self::Tagged { random, tag }
                }
                _ => Self::Foreign,
            },
            UNTAGGED_CHARS
                if URL_SAFE_NO_PAD.decode_slice(body, &mut decoded) == Ok(RANDOM_BYTES) =>
            {
                Self::Untagged
            }
            _ => Self::Foreign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_pair_reads_back_as_tagged_with_its_parts() {
        let token = IssuedToken::encode(&[7; RANDOM_BYTES], &[9; TAG_BYTES], &[1; RANDOM_BYTES]);
        assert!(token.access_token.starts_with("dak_") && token.access_token.len() == 68);
        assert!(token.secret_token.starts_with("das_") && token.secret_token.len() == 47);
        assert_eq!(
            AccessTokenShape::of(&token.access_token),
            AccessTokenShape::Tagged {
                random: [7; RANDOM_BYTES],
                tag: [9; TAG_BYTES]
            }
        );
    }

    #[test]
    fn tells_untagged_and_foreign_tokens_apart() {
        let untagged = format!("dak_{}", URL_SAFE_NO_PAD.encode([3u8; RANDOM_BYTES]));
        assert_eq!(AccessTokenShape::of(&untagged), AccessTokenShape::Untagged);
        for foreign in [
            "",
            "dak_",
            "das_abc",
            "xyz",
            &format!("dak_{}!", &untagged[4..46]),
        ] {
            assert_eq!(
                AccessTokenShape::of(foreign),
                AccessTokenShape::Foreign,
                "{foreign}"
            );
        }
    }

    #[test]
    fn debug_hides_an_issued_pair() {
        let token = IssuedToken::encode(&[7; RANDOM_BYTES], &[9; TAG_BYTES], &[1; RANDOM_BYTES]);
        let printed = format!("{token:?}");
        assert!(!printed.contains(&token.access_token[4..]) && !printed.contains("das_"));
    }
}
