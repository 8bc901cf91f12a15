//! Organizations and the API token pair that authenticates them.

use std::fmt;

/// An organization's public identifier (opaque; the store chooses its form).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Wraps an identifier as the store issued it; nothing is checked.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The identifier as the store issued it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrganizationId({})", self.0)
    }
}

/// An organization's display name: 1 to 200 characters, not blank, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

/// The name breaks [`OrganizationName`]'s rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the organization name must be 1 to 200 characters with no control characters")]
pub struct InvalidOrganizationName;

impl OrganizationName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Checks a name as given; it is kept as is, not trimmed.
    ///
    /// # Errors
    /// [`InvalidOrganizationName`] for a blank, over-long or control-character name.
    pub fn parse(name: &str) -> Result<Self, InvalidOrganizationName> {
        if name.trim().is_empty()
            || name.chars().count() > Self::MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(InvalidOrganizationName);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest token accepted from a header; real tokens are 47 or 68 characters (base64url,
/// base64url), so anything far longer is rejected before it reaches the store.
const MAX_TOKEN_CHARS: usize = 256;

/// The `X-Api-Access-Token` / `X-Api-Secret-Token` pair, both present and non-blank.
/// `Debug` never prints either token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    access: String,
    secret: String,
}

/// Why a request carries no usable credentials. Deliberately does not say which
/// header was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing API credentials")]
pub struct MissingCredentials;

impl ApiCredentials {
    /// Builds the pair from the two header values.
    ///
    /// # Errors
    /// [`MissingCredentials`] when either is absent or blank. An over-long value is
    /// accepted here and simply matches no organization.
    pub fn from_headers(
        access: Option<&str>,
        secret: Option<&str>,
    ) -> Result<Self, MissingCredentials> {
        match (access, secret) {
            (Some(a), Some(s)) if !a.trim().is_empty() && !s.trim().is_empty() => Ok(Self {
                access: a.to_owned(),
                secret: s.to_owned(),
            }),
            _ => Err(MissingCredentials),
        }
    }

    /// The `X-Api-Access-Token` value as received (`dak_…` when it is one of ours).
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access
    }

    /// The `X-Api-Secret-Token` value as received; a secret, never to be logged.
    #[must_use]
    pub fn secret_token(&self) -> &str {
        &self.secret
    }

    /// Tokens we never issue (too long) cannot match; no lookup is needed.
    #[must_use]
    pub fn is_plausible(&self) -> bool {
        self.access.len() <= MAX_TOKEN_CHARS && self.secret.len() <= MAX_TOKEN_CHARS
    }
}

impl fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiCredentials(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_both_headers_non_blank() {
        assert!(ApiCredentials::from_headers(Some("a"), Some("s")).is_ok());
        for (a, s) in [
            (None, Some("s")),
            (Some("a"), None),
            (Some("  "), Some("s")),
            (Some("a"), Some("")),
        ] {
            assert_eq!(ApiCredentials::from_headers(a, s), Err(MissingCredentials));
        }
    }

    #[test]
    fn organization_names_are_one_to_200_characters_without_controls() {
        assert!(OrganizationName::parse("Acme").is_ok());
        assert!(OrganizationName::parse(&"é".repeat(200)).is_ok());
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(201)] {
            assert_eq!(
                OrganizationName::parse(bad),
                Err(InvalidOrganizationName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_tokens() {
        let creds = ApiCredentials::from_headers(Some("access-xyz"), Some("secret-xyz")).unwrap();
        let printed = format!("{creds:?}");
        assert!(!printed.contains("access-xyz") && !printed.contains("secret-xyz"));
    }
}
