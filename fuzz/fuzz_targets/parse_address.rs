//! Fuzzes `EmailAddress::parse` and `DomainName::parse` with arbitrary UTF-8.
//!
//! Neither may panic, and whatever they accept must hold the invariants the rest of
//! the service relies on without re-checking: an ASCII, lower-case A-label domain
//! within RFC 1035 lengths, a local part within RFC 5321's, and parsing the
//! rendered value again gives the same value (normalisation is idempotent).

#![no_main]

use domain_core::{DomainName, EmailAddress};
use libfuzzer_sys::fuzz_target;

const MAX_LOCAL_OCTETS: usize = 64;
const MAX_ADDRESS_OCTETS: usize = 254;
const MAX_DOMAIN_OCTETS: usize = 253;
const MAX_LABEL_OCTETS: usize = 63;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = DomainName::parse(input) {
        check_domain(&domain, input);
    }
    if let Ok(email) = EmailAddress::parse(input) {
        check_email(&email, input);
    }
});

fn check_domain(domain: &DomainName, input: &str) {
    let ascii = domain.as_ascii();
    assert!(
        ascii.is_ascii(),
        "{input:?} gave a non-ASCII domain {ascii:?}"
    );
    assert_eq!(
        ascii,
        ascii.to_ascii_lowercase(),
        "{input:?} gave an upper-case domain"
    );
    assert_eq!(domain.to_string(), ascii, "Display is not the A-label form");
    assert!(
        ascii.len() <= MAX_DOMAIN_OCTETS,
        "{input:?} gave a {}-octet domain",
        ascii.len()
    );
    let labels: Vec<&str> = ascii.split('.').collect();
    assert!(labels.len() >= 2, "{input:?} gave a single-label domain");
    for label in &labels {
        assert!(
            (1..=MAX_LABEL_OCTETS).contains(&label.len()),
            "{input:?} gave label {label:?}"
        );
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{input:?} gave non-LDH label {label:?}"
        );
    }
    let again = DomainName::parse(&domain.to_string())
        .unwrap_or_else(|e| panic!("{input:?} → {ascii:?} does not parse again: {e}"));
    assert_eq!(&again, domain, "{input:?}: re-parsing changed the domain");
    // The Unicode form shown to people names the same domain: an A-label is accepted
    // only if it is the canonical encoding of its U-label.
    let unicode = domain.to_unicode();
    let from_unicode = DomainName::parse(&unicode)
        .unwrap_or_else(|e| panic!("{input:?} → {ascii:?} → {unicode:?} does not parse: {e}"));
    assert_eq!(
        &from_unicode, domain,
        "{input:?}: the Unicode form {unicode:?} names another domain"
    );
}

fn check_email(email: &EmailAddress, input: &str) {
    let local = email.local_part();
    assert!(
        (1..=MAX_LOCAL_OCTETS).contains(&local.len()),
        "{input:?} gave a {}-octet local part",
        local.len()
    );
    assert!(local.is_ascii(), "{input:?} gave a non-ASCII local part");
    check_domain(email.domain(), input);
    let rendered = email.to_string();
    assert!(
        rendered.len() <= MAX_ADDRESS_OCTETS,
        "{input:?} gave a {}-octet address",
        rendered.len()
    );
    assert_eq!(rendered, format!("{local}@{}", email.domain()));
    assert_eq!(email.canonical(), rendered.to_ascii_lowercase());
    let again = EmailAddress::parse(&rendered)
        .unwrap_or_else(|e| panic!("{input:?} → {rendered:?} does not parse again: {e}"));
    assert_eq!(&again, email, "{input:?}: re-parsing changed the address");
}
