//! `EmailAddress`: a sender or reply-to address, parsed once and kept valid.

use std::fmt;

use validator::ValidateEmail;

use crate::domain_name::{DomainName, DomainNameError};

/// RFC 5321 §4.5.3.1.1: the local part is at most 64 octets.
const MAX_LOCAL_OCTETS: usize = 64;
/// RFC 5321 path limit (256) less the angle brackets.
const MAX_ADDRESS_OCTETS: usize = 254;

/// A mailbox `local@domain`. The value keeps the local part's case (it is the
/// customer's); the domain is lower-cased and held as A-labels.
/// [`EmailAddress::canonical`] (all lower-case) is the case-insensitive identity used
/// for "Email is already taken", and the form the store keeps for senders.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    local: String,
    domain: DomainName,
}

/// Why an address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The input is the empty string.
    #[error("the address is empty")]
    Empty,
    /// White space or a control character anywhere, leading and trailing included:
    /// nothing is trimmed.
    #[error("the address contains white space or a control character")]
    ControlOrSpace,
    /// No `@` separates a local part from a domain.
    #[error("the address has no '@'")]
    MissingAt,
    /// The local part (before the last `@`) is empty or longer than 64 octets
    /// (RFC 5321 §4.5.3.1.1).
    #[error("the local part is empty or longer than {MAX_LOCAL_OCTETS} octets")]
    LocalLength,
    /// The local part is not an RFC 5322 dot-atom: quoted, with a leading, trailing or
    /// doubled dot, or with a character outside atext (such as a second `@`).
    #[error("the local part is not a dot-atom")]
    LocalSyntax,
    /// `local@domain`, with the domain as A-labels, is longer than 254 octets (the
    /// RFC 5321 path limit less its angle brackets).
    #[error("the address is longer than {MAX_ADDRESS_OCTETS} octets")]
    TooLong,
    /// The part after the last `@` is not a valid sender domain.
    #[error("the domain is invalid: {0}")]
    Domain(#[from] DomainNameError),
    /// Every rule above holds, but `validator`'s email syntax check still rejects
    /// the address.
    #[error("the address fails the email syntax check")]
    Syntax,
}

impl EmailAddress {
    /// Parses an address exactly as given: nothing is trimmed, so a padded address is
    /// invalid rather than silently repaired.
    ///
    /// ```
    /// use domain_core::{EmailAddress, EmailError};
    ///
    /// let address = EmailAddress::parse("first.middle.last@a.b.c.bücher.example")?;
    /// assert_eq!(address.local_part(), "first.middle.last");
    /// assert_eq!(address.domain().as_ascii(), "a.b.c.xn--bcher-kva.example");
    /// assert_eq!(address.to_string(), "first.middle.last@a.b.c.xn--bcher-kva.example");
    ///
    /// assert!(matches!(EmailAddress::parse(" padded@example.com"), Err(EmailError::ControlOrSpace)));
    /// assert!(EmailAddress::parse("no-at-sign.example.com").is_err());
    /// # Ok::<(), EmailError>(())
    /// ```
    ///
    /// # Errors
    /// An [`EmailError`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        if input.is_empty() {
            return Err(EmailError::Empty);
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(EmailError::ControlOrSpace);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(EmailError::MissingAt)?;
        if local.is_empty() || local.len() > MAX_LOCAL_OCTETS {
            return Err(EmailError::LocalLength);
        }
        if !is_dot_atom(local) {
            return Err(EmailError::LocalSyntax);
        }
        let domain = DomainName::parse(domain)?;
        if local.len() + 1 + domain.as_ascii().len() > MAX_ADDRESS_OCTETS {
            return Err(EmailError::TooLong);
        }
        let address = Self {
            local: local.to_owned(),
            domain,
        };
        // Belt and braces: the address on the wire must also pass `validator`'s check.
        if !address.to_string().validate_email() {
            return Err(EmailError::Syntax);
        }
        Ok(address)
    }

    /// The local part, case preserved.
    #[must_use]
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain the address sends from.
    #[must_use]
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// Lower-cased local part and A-label domain: two addresses that differ only in
    /// case or in the script of their domain are the same sender.
    #[must_use]
    pub fn canonical(&self) -> String {
        format!("{}@{}", self.local.to_ascii_lowercase(), self.domain)
    }
}

/// RFC 5322 dot-atom over printable ASCII: atext runs separated by single dots.
fn is_dot_atom(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
    })
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_local_part_and_lower_cases_the_domain() {
        let email = EmailAddress::parse("NoReply@Mail.Example.com").unwrap();
        assert_eq!(email.to_string(), "NoReply@mail.example.com");
        assert_eq!(email.canonical(), "noreply@mail.example.com");
        assert_eq!(email.domain().as_ascii(), "mail.example.com");
    }

    #[test]
    fn converts_an_idn_domain_to_a_labels() {
        let email = EmailAddress::parse("noreply@bücher.example").unwrap();
        assert_eq!(email.to_string(), "noreply@xn--bcher-kva.example");
    }

    #[test]
    fn rejects_invalid_addresses() {
        let cases = [
            ("", EmailError::Empty),
            ("bob@", EmailError::Domain(DomainNameError::Empty)),
            ("bob", EmailError::MissingAt),
            ("@example.com", EmailError::LocalLength),
            (" bob@example.com", EmailError::ControlOrSpace),
            ("bob@example.com ", EmailError::ControlOrSpace),
            ("bob\r\n@example.com", EmailError::ControlOrSpace),
            ("bob\0@example.com", EmailError::ControlOrSpace),
            (
                "bob@localhost",
                EmailError::Domain(DomainNameError::SingleLabel),
            ),
            (
                "bob@[127.0.0.1]",
                EmailError::Domain(DomainNameError::IpLiteral),
            ),
            (".bob@example.com", EmailError::LocalSyntax),
            ("bo..b@example.com", EmailError::LocalSyntax),
            ("\"bob\"@example.com", EmailError::LocalSyntax),
            ("bob@ex@ample.com", EmailError::LocalSyntax),
        ];
        for (input, expected) in cases {
            assert_eq!(EmailAddress::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn enforces_rfc_5321_lengths() {
        let local64 = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("a{local64}@example.com")),
            Err(EmailError::LocalLength)
        );
        let label = "b".repeat(63);
        let domain = format!("{label}.{label}.{label}.cc");
        assert_eq!(
            EmailAddress::parse(&format!("{local64}@{domain}")),
            Err(EmailError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(local in "[a-zA-Z0-9_+-]{1,20}", domain in "[a-zA-Z]{1,10}\\.[a-zA-Z]{2,6}") {
            let once = EmailAddress::parse(&format!("{local}@{domain}")).unwrap();
            let twice = EmailAddress::parse(&once.to_string()).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(once.domain().as_ascii(), domain.to_ascii_lowercase());
            prop_assert_eq!(once.local_part(), local.as_str());
        }

        #[test]
        fn never_panics_on_arbitrary_input(input in "\\PC{0,300}") {
            if let Ok(email) = EmailAddress::parse(&input) {
                prop_assert!(email.local_part().len() <= MAX_LOCAL_OCTETS);
                prop_assert!(email.to_string().len() <= MAX_ADDRESS_OCTETS);
            }
        }
    }
}
