//! The consumer's tests: its own code over domain-core's mocks.

use std::sync::Arc;

use domain_core::chrono::Utc;
use domain_core::ports::mocks::{MockDkimSigner, MockDns, MockDomainStore, MockKeyGenerator};
use domain_core::ports::store::{Registered, SigningKey, StoredDomain};
use domain_core::usecases::generate::{GenerateError, GenerateInput};
use domain_core::{DkimKey, OrganizationId, RecordPolicy, SealedKey, Selector};
use domain_core_consumer::{Refused, generator, records_for, sign_outgoing};

fn policy() -> RecordPolicy {
    RecordPolicy::new(
        vec!["192.0.2.10".parse().unwrap()],
        &["mx1.example.net".into()],
    )
    .unwrap()
}

#[test]
fn renders_records_and_zone_lines_without_any_port() {
    let selector = Selector::new("s1").unwrap();
    let (records, zone) =
        records_for("noreply@bücher.example", &policy(), &selector, "MIIBKEY").unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "xn--bcher-kva.example",
            "s1._domainkey.xn--bcher-kva.example",
            "_dmarc.xn--bcher-kva.example"
        ]
    );
    assert_eq!(
        zone.lines().filter(|l| l.contains(" IN TXT ")).count(),
        3,
        "{zone}"
    );
}

#[test]
fn refuses_public_suffixes_and_mailbox_providers_by_default() {
    let selector = Selector::new("s1").unwrap();
    let refused = |email| records_for(email, &policy(), &selector, "K").unwrap_err();
    assert_eq!(refused("x@co.uk"), Refused::NotASenderDomain);
    assert_eq!(refused("x@gmail.com"), Refused::Reserved);
    assert_eq!(refused("not an address"), Refused::Syntax);
}

#[tokio::test]
async fn generates_through_its_own_ports_and_refuses_gmail_before_any_lookup() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_register_sender().returning(|registration| {
        let key = registration.new_key.unwrap();
        Ok(Registered {
            domain: StoredDomain::new(
                registration.email.domain().clone(),
                registration.organization,
                key.selector,
                key.public_key,
                registration.enable_inbound,
                Utc::now(),
            ),
            domain_created: true,
        })
    });
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(1).returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("s2").unwrap(),
            public_key: "MIIBKEY".into(),
            sealed_private_key: SealedKey(vec![1]),
        })
    });
    let generate = generator(
        Arc::new(store),
        Arc::new(keys),
        Arc::new(MockDns::new()),
        Arc::new(policy()),
    );
    let org = OrganizationId::new("org-1");
    let input = |email: &str| GenerateInput {
        email: Some(email.into()),
        ..GenerateInput::default()
    };

    let records = generate
        .execute(&org, input("noreply@example.com"))
        .await
        .unwrap();
    assert_eq!(records.entries()[1].0, "s2._domainkey.example.com");

    let refused = generate
        .execute(&org, input("x@gmail.com"))
        .await
        .unwrap_err();
    assert!(matches!(refused, GenerateError::DomainTaken), "{refused:?}");
}

#[tokio::test]
async fn signs_mail_of_its_domains_and_leaves_others_unsigned() {
    let mut store = MockDomainStore::new();
    store.expect_signing_key().returning(|name| {
        Ok((name.as_ascii() == "example.com").then(|| SigningKey {
            selector: Selector::new("s1").unwrap(),
            sealed_private_key: SealedKey(vec![1]),
        }))
    });
    let mut signer = MockDkimSigner::new();
    signer
        .expect_sign()
        .returning(|_, _, _, _| Ok("DKIM-Signature: v=1; d=example.com; s=s1\r\n".into()));
    let (store, signer) = (Arc::new(store), Arc::new(signer));
    let message = b"From: a@example.com\r\n\r\nhello\r\n";

    let signed = sign_outgoing(store.clone(), signer.clone(), "example.com", message)
        .await
        .unwrap()
        .unwrap();
    assert!(signed.starts_with(b"DKIM-Signature: v=1; d=example.com; s=s1\r\nFrom:"));

    let other = sign_outgoing(store, signer, "other.example", message)
        .await
        .unwrap();
    assert_eq!(other, None);
}
