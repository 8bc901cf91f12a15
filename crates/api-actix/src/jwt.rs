//! Dashboard JWTs for `GET /api/v1/domains/validate`: HS256 only, the algorithm
//! pinned by construction, `exp` required.
//!
//! Why not the `jsonwebtoken` crate: its pure-Rust backend pulls `rsa` 0.9
//! (RUSTSEC-2023-0071) and its other backend a C build of aws-lc; we need one MAC,
//! which `ring` (already here for sealing) provides. A token whose header names any
//! other algorithm — `none`, `RS256`, `HS512` — is rejected before anything else.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain_core::OrganizationId;
use ring::hmac;

/// Shortest accepted secret: HS256 wants at least 256 bits of key.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// The longest lifetime a token may have unless configured otherwise
/// (`DOMAIN_API_JWT_MAX_TTL`).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The signing/verification key, and the longest lifetime a token may have.
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct JwtSecret {
    key: hmac::Key,
    max_ttl: Duration,
}

impl JwtSecret {
    /// A secret whose tokens may live up to [`DEFAULT_MAX_TTL`].
    ///
    /// # Errors
    /// When the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!("must be at least {MIN_SECRET_BYTES} bytes"));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            max_ttl: DEFAULT_MAX_TTL,
        })
    }

    /// The same secret with another longest lifetime.
    #[must_use]
    pub fn with_max_ttl(self, max_ttl: Duration) -> Self {
        Self { max_ttl, ..self }
    }

    /// The longest lifetime a token may have.
    #[must_use]
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSecret")
            .field("key", &"<redacted>")
            .field("max_ttl", &self.max_ttl)
            .finish()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    org: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// Why a token was refused. Deliberately coarse in what reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not three base64url parts")]
    Malformed,
    #[error("the token's algorithm is not HS256")]
    WrongAlgorithm,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's claims are missing or invalid")]
    BadClaims,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's lifetime exceeds the longest allowed")]
    LifetimeTooLong,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JwtSecret {
    /// Mints a token for `organization` valid for `ttl`.
    ///
    /// # Errors
    /// [`JwtError::LifetimeTooLong`] when `ttl` exceeds the longest lifetime.
    pub fn issue(&self, organization: &OrganizationId, ttl: Duration) -> Result<String, JwtError> {
        if ttl > self.max_ttl {
            return Err(JwtError::LifetimeTooLong);
        }
        let issued = now();
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        };
        let claims = Claims {
            org: organization.as_str().to_owned(),
            exp: issued + ttl.as_secs(),
            iat: Some(issued),
            nbf: None,
        };
        // Serialising two plain structs cannot fail.
        let encode = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        let signing_input = format!(
            "{}.{}",
            encode(&serde_json::to_vec(&header).unwrap_or_default()),
            encode(&serde_json::to_vec(&claims).unwrap_or_default())
        );
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", encode(tag.as_ref())))
    }

    /// Verifies `token` and returns the organization it speaks for.
    ///
    /// # Errors
    /// [`JwtError`] for any defect; the signature is checked before the claims are
    /// trusted, in constant time.
    pub fn verify(&self, token: &str) -> Result<OrganizationId, JwtError> {
        self.verify_at(token, now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<OrganizationId, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed)
        };
        let parsed: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| JwtError::Malformed)?;
        if parsed.alg != "HS256" {
            return Err(JwtError::WrongAlgorithm);
        }
        let signing_input_len = header.len() + 1 + claims.len();
        hmac::verify(
            &self.key,
            &token.as_bytes()[..signing_input_len],
            &decode(signature)?,
        )
        .map_err(|_| JwtError::BadSignature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(claims)?).map_err(|_| JwtError::BadClaims)?;
        if claims.org.is_empty() {
            return Err(JwtError::BadClaims);
        }
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(JwtError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(JwtError::NotYetValid);
        }
        // A token lives from `iat` (or, without it, from now) to `exp`: however
        // it was minted, it may not outlive the longest lifetime.
        let max = self.max_ttl.as_secs().saturating_add(LEEWAY_SECS);
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > max || claims.exp.saturating_sub(now) > max {
            return Err(JwtError::LifetimeTooLong);
        }
        Ok(OrganizationId::new(claims.org))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> JwtSecret {
        JwtSecret::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn forge(header: &str, claims: &str, key: &JwtSecret) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let tag = hmac::sign(&key.key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn a_token_it_issued_verifies_to_its_organization() {
        let token = secret()
            .issue(&OrganizationId::new("org-1"), Duration::from_secs(3600))
            .unwrap();
        assert_eq!(secret().verify(&token), Ok(OrganizationId::new("org-1")));
    }

    #[test]
    fn rejects_a_token_signed_with_another_secret() {
        let other = JwtSecret::new(b"ffffffffffffffffffffffffffffffff").unwrap();
        let token = other
            .issue(&OrganizationId::new("org-1"), Duration::from_secs(60))
            .unwrap();
        assert_eq!(secret().verify(&token), Err(JwtError::BadSignature));
    }

    #[test]
    fn pins_the_algorithm() {
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"org":"org-1","exp":9999999999}"#)
        );
        assert_eq!(secret().verify(&none), Err(JwtError::WrongAlgorithm));
        let hs512 = forge(
            r#"{"alg":"HS512"}"#,
            r#"{"org":"org-1","exp":9999999999}"#,
            &secret(),
        );
        assert_eq!(secret().verify(&hs512), Err(JwtError::WrongAlgorithm));
    }

    #[test]
    fn requires_exp_and_an_org() {
        let no_exp = forge(r#"{"alg":"HS256"}"#, r#"{"org":"org-1"}"#, &secret());
        assert_eq!(secret().verify(&no_exp), Err(JwtError::BadClaims));
        let empty_org = forge(
            r#"{"alg":"HS256"}"#,
            r#"{"org":"","exp":9999999999}"#,
            &secret(),
        );
        assert_eq!(secret().verify(&empty_org), Err(JwtError::BadClaims));
    }

    #[test]
    fn rejects_expired_and_not_yet_valid_tokens() {
        let expired = forge(r#"{"alg":"HS256"}"#, r#"{"org":"o","exp":1000}"#, &secret());
        assert_eq!(
            secret().verify_at(&expired, 1000 + LEEWAY_SECS + 1),
            Err(JwtError::Expired)
        );
        assert!(
            secret().verify_at(&expired, 1000 + LEEWAY_SECS).is_ok(),
            "leeway"
        );
        let future = forge(
            r#"{"alg":"HS256"}"#,
            r#"{"org":"o","exp":99999,"nbf":5000}"#,
            &secret(),
        );
        assert_eq!(
            secret().verify_at(&future, 1000),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn rejects_malformed_tokens_and_tampered_claims() {
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(secret().verify(bad).is_err(), "{bad:?}");
        }
        let token = secret()
            .issue(&OrganizationId::new("org-1"), Duration::from_secs(60))
            .unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(r#"{"org":"org-2","exp":9999999999}"#);
        parts[1] = &evil;
        assert_eq!(
            secret().verify(&parts.join(".")),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn refuses_to_issue_or_accept_a_token_that_outlives_the_longest_lifetime() {
        let short = secret().with_max_ttl(Duration::from_secs(3600));
        let org = OrganizationId::new("o");
        assert!(short.issue(&org, Duration::from_secs(3600)).is_ok());
        assert_eq!(
            short.issue(&org, Duration::from_secs(3601)),
            Err(JwtError::LifetimeTooLong)
        );
        let now: u64 = 2_000_000_000;
        // `exp` = 2^64 − 1, with and without `iat`.
        for claims in [
            format!(r#"{{"org":"o","exp":{}}}"#, u64::MAX),
            format!(r#"{{"org":"o","exp":{},"iat":{now}}}"#, u64::MAX),
            // Issued long ago for ten years: still too long a lifetime.
            format!(
                r#"{{"org":"o","exp":{},"iat":{}}}"#,
                now + 60,
                now - 10 * 365 * 86400
            ),
        ] {
            let token = forge(r#"{"alg":"HS256"}"#, &claims, &secret());
            assert_eq!(
                secret().verify_at(&token, now),
                Err(JwtError::LifetimeTooLong),
                "{claims}"
            );
        }
        // The default allows 30 days, not a second more (beyond the clock leeway).
        let month = DEFAULT_MAX_TTL.as_secs();
        let ok = forge(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"org":"o","exp":{},"iat":{now}}}"#, now + month),
            &secret(),
        );
        assert!(secret().verify_at(&ok, now).is_ok());
        let over = forge(
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"org":"o","exp":{}}}"#, now + month + LEEWAY_SECS + 1),
            &secret(),
        );
        assert_eq!(
            secret().verify_at(&over, now),
            Err(JwtError::LifetimeTooLong)
        );
    }

    #[test]
    fn refuses_short_secrets_and_hides_the_key() {
        assert!(JwtSecret::new(b"short").is_err());
        assert!(!format!("{:?}", secret()).contains("0123456789abcdef"));
        assert!(format!("{:?}", secret()).contains("<redacted>"));
    }
}
