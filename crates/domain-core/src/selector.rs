//! `Selector`: the DKIM selector naming a key under `_domainkey`.

use std::fmt;

/// A DKIM selector: 1–63 lower-case ASCII letters and digits, so it is always a
/// single valid DNS label.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Selector(String);

/// The selector is not 1–63 lower-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a DKIM selector is 1 to 63 lower-case letters and digits")]
pub struct SelectorError;

impl Selector {
    /// Checks a selector as given; it is neither trimmed nor lower-cased.
    ///
    /// # Errors
    /// [`SelectorError`] when `value` is not 1–63 lower-case letters and digits.
    pub fn new(value: impl Into<String>) -> Result<Self, SelectorError> {
        let value = value.into();
        let valid = (1..=63).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(value))
        } else {
            Err(SelectorError)
        }
    }

    /// The selector: the first label of `<selector>._domainkey.<domain>`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lower_case_alphanumerics_only() {
        assert!(Selector::new("abc123").is_ok());
        for bad in ["", "ABC", "a-b", "a.b", &"a".repeat(64)] {
            assert_eq!(Selector::new(bad), Err(SelectorError), "{bad:?}");
        }
    }
}
