//! Unit tests of the sign use case on mocked ports.

use std::sync::Arc;

use mockall::predicate::eq;

use super::*;
use crate::SealedKey;
use crate::ports::InfraError;
use crate::ports::signing::MockDkimSigner;
use crate::ports::store::{MockDomainStore, SigningKey};

const MESSAGE: &[u8] = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello\r\n";
const HEADER: &str = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; b=SIG;\r\n";

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn key() -> SigningKey {
    SigningKey {
        selector: Selector::new("s1").unwrap(),
        sealed_private_key: SealedKey(vec![7, 7, 7]),
    }
}

/// A store that knows `name` and its key, and nothing else.
fn store_knowing(name: &'static str) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store
        .expect_signing_key()
        .returning(move |asked| Ok((asked == &domain(name)).then(key)));
    store
}

fn signer_answering(answer: fn() -> Result<String, SignError>) -> MockDkimSigner {
    let mut signer = MockDkimSigner::new();
    signer
        .expect_sign()
        .times(1)
        .returning(move |_, _, _, _| answer());
    signer
}

fn untouched_signer() -> MockDkimSigner {
    let mut signer = MockDkimSigner::new();
    signer.expect_sign().never();
    signer
}

fn use_case(store: MockDomainStore, signer: MockDkimSigner) -> SignMessage {
    SignMessage::new(Arc::new(store), Arc::new(signer))
}

#[tokio::test]
async fn signs_with_the_domains_key_and_returns_the_header_to_prepend() {
    let mut signer = MockDkimSigner::new();
    signer
        .expect_sign()
        .with(
            eq(domain("example.com")),
            eq(Selector::new("s1").unwrap()),
            eq(SealedKey(vec![7, 7, 7])),
            eq(MESSAGE.to_vec()),
        )
        .times(1)
        .returning(|_, _, _, _| Ok(HEADER.into()));
    let sign = use_case(store_knowing("example.com"), signer);

    let signed = sign.execute("example.com", MESSAGE).await.unwrap();

    assert_eq!(signed.domain, domain("example.com"));
    assert_eq!(signed.selector.as_str(), "s1");
    assert_eq!(signed.header, HEADER);
    assert_eq!(
        signed.prepend_to(MESSAGE),
        [HEADER.as_bytes(), MESSAGE].concat()
    );
}

#[tokio::test]
async fn looks_an_internationalised_domain_up_by_its_a_label() {
    let mut store = MockDomainStore::new();
    store
        .expect_signing_key()
        .with(eq(domain("xn--bcher-kva.example")))
        .times(1)
        .returning(|_| Ok(Some(key())));
    let sign = use_case(store, signer_answering(|| Ok(HEADER.into())));

    let signed = sign.execute("Bücher.example", MESSAGE).await.unwrap();

    assert_eq!(signed.domain.as_ascii(), "xn--bcher-kva.example");
}

#[tokio::test]
async fn refuses_an_unknown_domain_as_not_found_without_signing() {
    let sign = use_case(store_knowing("example.com"), untouched_signer());

    let error = sign.execute("example.org", MESSAGE).await.unwrap_err();

    assert!(matches!(error, SignMessageError::NotFound), "{error:?}");
}

#[tokio::test]
async fn refuses_an_invalid_domain_without_asking_the_store() {
    let mut store = MockDomainStore::new();
    store.expect_signing_key().never();
    let sign = use_case(store, untouched_signer());

    let error = sign.execute("not a domain", MESSAGE).await.unwrap_err();

    assert!(
        matches!(&error, SignMessageError::InvalidDomain(d) if d == "not a domain"),
        "{error:?}"
    );
}

#[tokio::test]
async fn reports_a_message_without_from_in_domain_terms() {
    let sign = use_case(
        store_knowing("example.com"),
        signer_answering(|| Err(SignError::MissingFrom)),
    );

    let error = sign
        .execute("example.com", b"Subject: hi\r\n\r\nbody\r\n")
        .await
        .unwrap_err();

    assert!(matches!(error, SignMessageError::MissingFrom), "{error:?}");
}

#[tokio::test]
async fn reports_a_key_that_does_not_open() {
    let sign = use_case(
        store_knowing("example.com"),
        signer_answering(|| Err(SignError::KeyDoesNotOpen)),
    );

    let error = sign.execute("example.com", MESSAGE).await.unwrap_err();

    assert!(
        matches!(error, SignMessageError::KeyDoesNotOpen),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_and_nothing_is_signed() {
    let mut store = MockDomainStore::new();
    store
        .expect_signing_key()
        .returning(|_| Err(InfraError::Unavailable("connection refused".into())));
    let sign = use_case(store, untouched_signer());

    let error = sign.execute("example.com", MESSAGE).await.unwrap_err();

    assert!(
        matches!(error, SignMessageError::Infra(InfraError::Unavailable(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failing_signer_is_unexpected() {
    let sign = use_case(
        store_knowing("example.com"),
        signer_answering(|| Err(SignError::Unexpected("backend".into()))),
    );

    let error = sign.execute("example.com", MESSAGE).await.unwrap_err();

    assert!(
        matches!(error, SignMessageError::Infra(InfraError::Unexpected(_))),
        "{error:?}"
    );
}

fn signed(header: &str) -> SignedMessage {
    SignedMessage {
        domain: domain("example.com"),
        selector: Selector::new("s1").unwrap(),
        header: header.into(),
    }
}

#[test]
fn the_header_is_prepended_as_is_to_a_crlf_message() {
    let signature = signed("DKIM-Signature: v=1;\r\n\tb=SIG;\r\n");

    assert_eq!(
        signature.prepend_to(MESSAGE),
        [b"DKIM-Signature: v=1;\r\n\tb=SIG;\r\n".as_slice(), MESSAGE].concat()
    );
    assert_eq!(
        signature.prepend_to(b""),
        b"DKIM-Signature: v=1;\r\n\tb=SIG;\r\n"
    );
}

#[test]
fn the_header_takes_the_line_endings_of_a_bare_lf_message() {
    let signature = signed("DKIM-Signature: v=1;\r\n\tb=SIG;\r\n");
    let message = b"From: a@example.com\nSubject: hi\r\n\nHello\n";

    assert_eq!(
        signature.prepend_to(message),
        [b"DKIM-Signature: v=1;\n\tb=SIG;\n".as_slice(), message].concat()
    );
}
