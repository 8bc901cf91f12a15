//! Unit tests of the generate use case on mocked ports.

use std::sync::Arc;

use chrono::Utc;
use mockall::predicate::eq;

use super::*;
use crate::Selector;
use crate::ports::clock::SystemClock;
use crate::ports::dns::{DnsError, MockDns, MxRecord};
use crate::ports::keys::{KeyError, MockKeyGenerator, SealedKey};
use crate::ports::store::{MockDomainStore, Registered, StoredDomain};
use crate::usecases::fixtures::{org, policy};

const PUBLIC_KEY: &str = "MIIBIjANBgkqhkiNEWKEY";
const EXISTING_KEY: &str = "MIIBIjANBgkqhkiOLDKEY";

fn stored(owner: &str, name: &str, selector: &str, key: &str, inbound: bool) -> StoredDomain {
    StoredDomain::new(
        DomainName::parse(name).unwrap(),
        OrganizationId::new(owner),
        Selector::new(selector).unwrap(),
        key.into(),
        inbound,
        Utc::now(),
    )
}

fn new_key() -> DkimKey {
    DkimKey {
        selector: Selector::new("abc123").unwrap(),
        public_key: PUBLIC_KEY.into(),
        sealed_private_key: SealedKey(vec![1, 2, 3]),
    }
}

fn input(email: &str) -> GenerateInput {
    GenerateInput {
        email: Some(email.into()),
        ..GenerateInput::default()
    }
}

/// A store that reports no existing domain and stores whatever it is given.
fn store_creating_domains() -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_register_sender().returning(|reg| {
        let key = reg.new_key.expect("a new domain needs a key");
        Ok(Registered {
            domain: StoredDomain::new(
                reg.email.domain().clone(),
                reg.organization,
                key.selector,
                key.public_key,
                reg.enable_inbound,
                Utc::now(),
            ),
            domain_created: true,
        })
    });
    store
}

fn keys_generating_once() -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(1).returning(|_| Ok(new_key()));
    keys
}

fn untouched_keys() -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().never();
    keys
}

fn untouched_dns() -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_mx().never();
    dns
}

fn untouched_store() -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().never();
    store.expect_register_sender().never();
    store
}

fn use_case(store: MockDomainStore, keys: MockKeyGenerator, dns: MockDns) -> GenerateRecords {
    GenerateRecords::new(
        Arc::new(store),
        Arc::new(keys),
        Arc::new(dns),
        policy(),
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    )
}

fn dns_answering(result: Result<Vec<MxRecord>, DnsError>) -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_mx().times(1).return_once(move |_| result);
    dns
}

fn mx(host: &str) -> MxRecord {
    MxRecord {
        preference: 10,
        exchange: host.into(),
    }
}

// --- The seed's error table -------------------------------------------------------

#[tokio::test]
async fn rejects_a_missing_email_with_the_seed_text() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), GenerateInput::default())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, GenerateError::InvalidSender(raw) if raw.is_empty()),
        "{error:?}"
    );
}

#[tokio::test]
async fn rejects_a_malformed_email_echoing_it() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());

    let error = use_case.execute(&org(), input("bob@")).await.unwrap_err();

    assert!(
        matches!(&error, GenerateError::InvalidSender(raw) if raw == "bob@"),
        "{error:?}"
    );
}

#[tokio::test]
async fn rejects_a_padded_email_instead_of_trimming_it() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input(" noreply@example.com"))
        .await
        .unwrap_err();

    assert!(
        matches!(&error, GenerateError::InvalidSender(raw) if raw == " noreply@example.com"),
        "{error:?}"
    );
}

#[tokio::test]
async fn rejects_a_sender_domain_too_long_for_its_dkim_record_name() {
    // Valid as an address (a 253-octet domain), but `<selector>._domainkey.<domain>`
    // would exceed DNS's 253 octets.
    let label = "d".repeat(63);
    let long = format!("{label}.{label}.{label}.{}.com", "e".repeat(57));
    assert_eq!(long.len(), 253);
    let fits = format!(
        "{label}.{label}.{label}.{}.com",
        "i".repeat(MAX_SENDER_DOMAIN_OCTETS - 196)
    );
    assert_eq!(fits.len(), MAX_SENDER_DOMAIN_OCTETS);
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input(&format!("a@{long}")))
        .await
        .unwrap_err();

    assert!(matches!(error, GenerateError::InvalidSender(_)));
    let accepted = GenerateRecords::new(
        Arc::new(store_creating_domains()),
        Arc::new(keys_generating_once()),
        Arc::new(untouched_dns()),
        policy(),
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    );
    let records = accepted
        .execute(&org(), input(&format!("a@{fits}")))
        .await
        .unwrap();
    assert!(
        records.dkim_name.len() <= 253 - 6,
        "room for a 12-character selector"
    );
}

#[tokio::test]
async fn rejects_an_invalid_reply_to_with_the_seed_text() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());
    let request = GenerateInput {
        reply_to: Some("support@@example.com".into()),
        ..input("noreply@example.com")
    };

    let error = use_case.execute(&org(), request).await.unwrap_err();

    assert!(
        matches!(&error, GenerateError::InvalidReplyTo(raw) if raw == "support@@example.com"),
        "{error:?}"
    );
}

#[tokio::test]
async fn answers_domain_taken_when_another_org_owns_the_domain() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .with(eq(DomainName::parse("example.com").unwrap()))
        .times(1)
        .returning(|_| {
            Ok(Some(stored(
                "org-b",
                "example.com",
                "abc123",
                EXISTING_KEY,
                false,
            )))
        });
    store.expect_register_sender().never();
    let use_case = use_case(store, untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(error, GenerateError::DomainTaken), "{error:?}");
}

#[tokio::test]
async fn answers_domain_taken_when_another_org_wins_the_race_to_create_it() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store
        .expect_register_sender()
        .times(1)
        .returning(|_| Err(RegisterError::DomainTaken));
    let use_case = use_case(store, keys_generating_once(), untouched_dns());

    let error = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(error, GenerateError::DomainTaken), "{error:?}");
}

#[tokio::test]
async fn answers_email_taken_when_the_sender_exists() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "abc123",
            EXISTING_KEY,
            false,
        )))
    });
    store
        .expect_register_sender()
        .times(1)
        .returning(|_| Err(RegisterError::EmailTaken));
    let use_case = use_case(store, untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(error, GenerateError::EmailTaken), "{error:?}");
}

#[tokio::test]
async fn answers_the_opaque_500_text_when_key_generation_fails() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_register_sender().never();
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate()
        .returning(|_| Err(KeyError("entropy source failed".into())));
    let use_case = use_case(store, keys, untouched_dns());

    let error = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap_err();

    assert!(
        matches!(error, GenerateError::Infra(InfraError::Unexpected(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn reports_an_unreachable_store_as_unavailable() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .returning(|_| Err(InfraError::Unavailable("connection refused".into())));
    let use_case = use_case(store, untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(
        error,
        GenerateError::Infra(InfraError::Unavailable(_))
    ));
}

// --- Check order -----------------------------------------------------------------

#[tokio::test]
async fn checks_the_sender_before_the_reply_to() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());
    let request = GenerateInput {
        email: Some("bad".into()),
        reply_to: Some("also bad".into()),
        inbound: false,
    };

    let error = use_case.execute(&org(), request).await.unwrap_err();

    assert!(
        matches!(&error, GenerateError::InvalidSender(raw) if raw == "bad"),
        "{error:?}"
    );
}

#[tokio::test]
async fn checks_input_before_any_conflict() {
    // The store is never asked, so a taken domain or email cannot win over a 400.
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());
    let request = GenerateInput {
        reply_to: Some("nope".into()),
        ..input("noreply@example.com")
    };

    let error = use_case.execute(&org(), request).await.unwrap_err();

    assert!(matches!(error, GenerateError::InvalidReplyTo(_)));
}

#[tokio::test]
async fn checks_domain_ownership_before_the_email() {
    // Another org's domain: the email registration (which would also conflict) is
    // never attempted.
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-b",
            "example.com",
            "abc123",
            EXISTING_KEY,
            false,
        )))
    });
    store.expect_register_sender().never();
    let use_case = use_case(store, untouched_keys(), untouched_dns());

    let error = use_case
        .execute(&org(), input("taken@example.com"))
        .await
        .unwrap_err();

    assert!(matches!(error, GenerateError::DomainTaken));
}

// --- Creation and reuse ----------------------------------------------------------

#[tokio::test]
async fn creates_a_new_domain_with_one_fresh_key_and_returns_its_records() {
    let use_case = use_case(
        store_creating_domains(),
        keys_generating_once(),
        untouched_dns(),
    );

    let records = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap();

    assert_eq!(
        records.entries(),
        [
            ("SPF", "v=spf1 ip4:51.79.43.241 -all"),
            (
                "abc123._domainkey.example.com",
                "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiNEWKEY"
            ),
            ("_dmarc", "v=DMARC1; p=none; rua=mailto:dmarc@example.com"),
        ]
    );
}

#[tokio::test]
async fn reuses_the_existing_key_when_the_org_already_owns_the_domain() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "old1",
            EXISTING_KEY,
            false,
        )))
    });
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_none() && reg.email.to_string() == "second@example.com")
        .times(1)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "old1", EXISTING_KEY, false),
                domain_created: false,
            })
        });
    let use_case = use_case(store, untouched_keys(), untouched_dns());

    let records = use_case
        .execute(&org(), input("second@example.com"))
        .await
        .unwrap();

    assert_eq!(records.dkim_name, "old1._domainkey.example.com");
    assert_eq!(
        records.dkim_value,
        format!("v=DKIM1; k=rsa; p={EXISTING_KEY}")
    );
}

#[tokio::test]
async fn returns_the_stored_key_when_a_concurrent_call_created_the_domain_first() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_register_sender().returning(|_| {
        Ok(Registered {
            domain: stored("org-a", "example.com", "winner", EXISTING_KEY, false),
            domain_created: false,
        })
    });
    let use_case = use_case(store, keys_generating_once(), untouched_dns());

    let records = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap();

    assert_eq!(records.dkim_name, "winner._domainkey.example.com");
}

#[tokio::test]
async fn generates_a_key_after_all_when_the_domain_vanished_before_the_write() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "old1",
            EXISTING_KEY,
            false,
        )))
    });
    let mut seq = mockall::Sequence::new();
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_none())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(RegisterError::KeyRequired));
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_some())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "abc123", PUBLIC_KEY, false),
                domain_created: true,
            })
        });
    let use_case = use_case(store, keys_generating_once(), untouched_dns());

    let records = use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap();

    assert_eq!(records.dkim_name, "abc123._domainkey.example.com");
}

#[tokio::test]
async fn registers_the_reply_to_and_the_sender_as_parsed() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store
        .expect_register_sender()
        .withf(|reg| {
            reg.organization == org()
                && reg.email.to_string() == "NoReply@example.com"
                && reg.reply_to.as_ref().map(ToString::to_string).as_deref()
                    == Some("support@example.com")
        })
        .times(1)
        .returning(|reg| {
            Ok(Registered {
                domain: stored(
                    "org-a",
                    "example.com",
                    "abc123",
                    PUBLIC_KEY,
                    reg.enable_inbound,
                ),
                domain_created: true,
            })
        });
    let use_case = use_case(store, keys_generating_once(), untouched_dns());
    let request = GenerateInput {
        reply_to: Some("support@example.com".into()),
        ..input("NoReply@EXAMPLE.com")
    };

    use_case.execute(&org(), request).await.unwrap();
}

// --- Record rendering through the use case ---------------------------------------

#[tokio::test]
async fn renders_records_under_a_subdomain_sender() {
    let use_case = use_case(
        store_creating_domains(),
        keys_generating_once(),
        untouched_dns(),
    );

    let records = use_case
        .execute(&org(), input("noreply@mail.example.com"))
        .await
        .unwrap();

    assert_eq!(records.dkim_name, "abc123._domainkey.mail.example.com");
    assert_eq!(
        records.dmarc,
        "v=DMARC1; p=none; rua=mailto:dmarc@mail.example.com"
    );
}

#[tokio::test]
async fn renders_records_for_an_idn_sender_in_a_labels() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .with(eq(DomainName::parse("xn--bcher-kva.example").unwrap()))
        .times(1)
        .returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_register_sender().returning(|reg| {
        Ok(Registered {
            domain: stored(
                "org-a",
                reg.email.domain().as_ascii(),
                "abc123",
                PUBLIC_KEY,
                false,
            ),
            domain_created: true,
        })
    });
    let use_case = use_case(store, keys_generating_once(), untouched_dns());

    let records = use_case
        .execute(&org(), input("noreply@bücher.example"))
        .await
        .unwrap();

    assert_eq!(records.dkim_name, "abc123._domainkey.xn--bcher-kva.example");
    assert_eq!(
        records.dmarc,
        "v=DMARC1; p=none; rua=mailto:dmarc@xn--bcher-kva.example"
    );
}

// --- Inbound outcomes ------------------------------------------------------------

/// Runs a new-domain call with `inbound: true` against `dns` and checks the flag the
/// store is asked to set; the call itself must succeed whatever DNS says.
async fn assert_inbound_registered_as(dns: MockDns, expected: bool) {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store
        .expect_register_sender()
        .withf(move |reg| reg.enable_inbound == expected)
        .times(1)
        .returning(|reg| {
            Ok(Registered {
                domain: stored(
                    "org-a",
                    "example.com",
                    "abc123",
                    PUBLIC_KEY,
                    reg.enable_inbound,
                ),
                domain_created: true,
            })
        });
    let use_case = use_case(store, keys_generating_once(), dns);
    let request = GenerateInput {
        inbound: true,
        ..input("noreply@example.com")
    };

    let result = use_case.execute(&org(), request).await;

    assert!(
        result.is_ok(),
        "inbound outcomes never fail the call: {result:?}"
    );
}

#[tokio::test]
async fn enables_inbound_when_an_mx_host_is_one_of_ours() {
    let dns = dns_answering(Ok(vec![
        mx("mx1.elsewhere.net."),
        mx("Inbound.SendTrim.com."),
    ]));
    assert_inbound_registered_as(dns, true).await;
}

#[tokio::test]
async fn leaves_inbound_off_when_mx_points_elsewhere() {
    let dns = dns_answering(Ok(vec![mx("aspmx.l.google.com.")]));
    assert_inbound_registered_as(dns, false).await;
}

#[tokio::test]
async fn leaves_inbound_off_when_the_domain_has_no_mx() {
    assert_inbound_registered_as(dns_answering(Err(DnsError::NoRecords)), false).await;
}

#[tokio::test]
async fn leaves_inbound_off_when_dns_fails() {
    for failure in [
        DnsError::NxDomain,
        DnsError::ServFail,
        DnsError::Timeout,
        DnsError::Unexpected("io".into()),
    ] {
        assert_inbound_registered_as(dns_answering(Err(failure)), false).await;
    }
}

#[tokio::test]
async fn does_not_look_up_mx_when_inbound_is_not_requested() {
    let use_case = use_case(
        store_creating_domains(),
        keys_generating_once(),
        untouched_dns(),
    );

    use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap();
}

#[tokio::test]
async fn does_not_look_up_mx_when_inbound_is_already_on() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "abc123",
            PUBLIC_KEY,
            true,
        )))
    });
    store
        .expect_register_sender()
        .withf(|reg| !reg.enable_inbound)
        .times(1)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "abc123", PUBLIC_KEY, true),
                domain_created: false,
            })
        });
    let use_case = use_case(store, untouched_keys(), untouched_dns());
    let request = GenerateInput {
        inbound: true,
        ..input("second@example.com")
    };

    use_case.execute(&org(), request).await.unwrap();
}

#[tokio::test]
async fn public_suffixes_and_special_use_names_are_invalid_senders_before_any_lookup() {
    let use_case = use_case(untouched_store(), untouched_keys(), untouched_dns());
    for email in [
        "x@co.uk",
        "x@github.io",
        "x@gov.uk",
        "x@in-addr.arpa",
        "x@foo.local",
        "x@printer.internal",
        "x@abc.onion",
        "x@a.localhost",
    ] {
        let error = use_case.execute(&org(), input(email)).await.unwrap_err();
        assert!(
            matches!(&error, GenerateError::InvalidSender(raw) if raw == email),
            "{email}: {error:?}"
        );
    }
}

#[tokio::test]
async fn reserved_names_and_their_subdomains_are_taken_before_any_lookup() {
    let use_case = GenerateRecords::new(
        Arc::new(untouched_store()),
        Arc::new(untouched_keys()),
        Arc::new(untouched_dns()),
        policy(),
        Arc::new(Ownership {
            reserved: ownership::ReservedDomains::default_for(&["inbound.sendtrim.com".into()]),
            ..Ownership::default()
        }),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    );
    for email in [
        "postmaster@gmail.com",
        "noreply@sendtrim.com",
        "a@mail.sendtrim.com",
        "b@eu.outlook.com",
    ] {
        let error = use_case.execute(&org(), input(email)).await.unwrap_err();
        assert!(
            matches!(error, GenerateError::DomainTaken),
            "{email}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_new_domain_is_admitted_with_its_ancestors_and_limits_before_a_key_is_drawn() {
    for (refusal, check) in [
        (
            RegisterError::DomainLimit,
            (|e: &GenerateError| matches!(e, GenerateError::DomainLimit))
                as fn(&GenerateError) -> bool,
        ),
        (
            RegisterError::RateLimited {
                retry_after: Duration::from_secs(7),
            },
            |e| matches!(e, GenerateError::RateLimited(wait) if wait.as_secs() == 7),
        ),
        (RegisterError::DomainTaken, |e| {
            matches!(e, GenerateError::DomainTaken)
        }),
    ] {
        let mut store = MockDomainStore::new();
        store.expect_find_domain().returning(|_| Ok(None));
        let mut answer = Some(refusal);
        store
            .expect_admit_creation()
            .withf(|o, rules| {
                *o == org()
                    && rules
                        .ancestors
                        .iter()
                        .map(DomainName::as_ascii)
                        .eq(["example.co.uk", "b.example.co.uk"])
                    && rules.limits == ownership::CreationLimits::default()
            })
            .times(1)
            .returning(move |_, _| Err(answer.take().unwrap()));
        store.expect_register_sender().never();
        let error = use_case(store, untouched_keys(), untouched_dns())
            .execute(&org(), input("x@a.b.example.co.uk"))
            .await
            .unwrap_err();
        assert!(check(&error), "{error:?}");
    }
}

#[tokio::test]
async fn reusing_an_owned_domain_is_never_held_to_the_creation_rules() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "abc123",
            EXISTING_KEY,
            false,
        )))
    });
    store.expect_admit_creation().never();
    store.expect_register_sender().times(1).returning(|reg| {
        Ok(Registered {
            domain: stored(
                "org-a",
                "example.com",
                "abc123",
                EXISTING_KEY,
                reg.enable_inbound,
            ),
            domain_created: false,
        })
    });
    use_case(store, untouched_keys(), untouched_dns())
        .execute(&org(), input("second@example.com"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rate_limited_organization_is_refused_without_the_store_until_its_wait_is_over() {
    use std::sync::atomic::{AtomicI64, Ordering};

    use crate::ports::clock::MockClock;

    let start = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let elapsed_ms = Arc::new(AtomicI64::new(0));
    let mut clock = MockClock::new();
    let ticks = Arc::clone(&elapsed_ms);
    clock
        .expect_now()
        .returning(move || start + chrono::Duration::milliseconds(ticks.load(Ordering::SeqCst)));
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    let mut sequence = mockall::Sequence::new();
    store
        .expect_admit_creation()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _| {
            Err(RegisterError::RateLimited {
                retry_after: Duration::from_secs(10),
            })
        });
    // Once the wait is over the store decides again.
    store
        .expect_admit_creation()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _| Ok(()));
    store.expect_register_sender().times(1).returning(|reg| {
        Ok(Registered {
            domain: stored(
                "org-a",
                reg.email.domain().as_ascii(),
                "abc123",
                PUBLIC_KEY,
                false,
            ),
            domain_created: true,
        })
    });
    let use_case = GenerateRecords::new(
        Arc::new(store),
        Arc::new(keys_generating_once()),
        Arc::new(untouched_dns()),
        policy(),
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        Arc::new(clock),
    );

    let first = use_case
        .execute(&org(), input("a@one.example"))
        .await
        .unwrap_err();
    assert!(
        matches!(first, GenerateError::RateLimited(w) if w.as_secs() == 10),
        "{first:?}"
    );
    // 2.5 s later: known without asking the store, and the wait has shrunk.
    elapsed_ms.store(2_500, Ordering::SeqCst);
    let second = use_case
        .execute(&org(), input("a@two.example"))
        .await
        .unwrap_err();
    assert!(
        matches!(second, GenerateError::RateLimited(w) if w.as_secs() == 8),
        "{second:?}"
    );
    // Past the wait, the store is asked again.
    elapsed_ms.store(10_001, Ordering::SeqCst);
    use_case
        .execute(&org(), input("a@three.example"))
        .await
        .unwrap();
}

// --- A domain registered on lately: no read before the registration ---------------

/// A store where org-a owns example.com, reading it `reads` times in all and
/// registering `registers` senders on it.
fn store_owning_example_com(reads: usize, registers: usize) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().times(reads).returning(|_| {
        Ok(Some(stored(
            "org-a",
            "example.com",
            "old1",
            EXISTING_KEY,
            false,
        )))
    });
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_none())
        .times(registers)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "old1", EXISTING_KEY, false),
                domain_created: false,
            })
        });
    store
}

#[tokio::test]
async fn a_domain_registered_on_lately_is_not_read_again_before_the_next_registration() {
    // Three registrations on one domain: one read, before the first.
    let use_case = use_case(
        store_owning_example_com(1, 3),
        untouched_keys(),
        untouched_dns(),
    );
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        let records = use_case.execute(&org(), input(email)).await.unwrap();
        assert_eq!(records.dkim_name, "old1._domainkey.example.com");
    }
}

#[tokio::test]
async fn asking_for_inbound_reads_the_domain_even_when_it_is_known() {
    // Inbound needs the domain's current flag: read every time.
    let mut dns = MockDns::new();
    dns.expect_mx().returning(|_| Ok(vec![]));
    let use_case = use_case(store_owning_example_com(2, 2), untouched_keys(), dns);
    use_case
        .execute(&org(), input("a@example.com"))
        .await
        .unwrap();
    let inbound = GenerateInput {
        inbound: true,
        ..input("b@example.com")
    };
    use_case.execute(&org(), inbound).await.unwrap();
}

/// A store where org-a's first registration on example.com reads it, then registers
/// (so the use case knows it), in a sequence the test goes on with.
fn known_after_one_registration() -> (MockDomainStore, mockall::Sequence) {
    let mut store = MockDomainStore::new();
    let mut seq = mockall::Sequence::new();
    store
        .expect_find_domain()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(Some(stored(
                "org-a",
                "example.com",
                "old1",
                EXISTING_KEY,
                false,
            )))
        });
    store
        .expect_register_sender()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "old1", EXISTING_KEY, false),
                domain_created: false,
            })
        });
    (store, seq)
}

#[tokio::test]
async fn a_known_domain_deleted_since_is_created_again_the_whole_way() {
    // Known, then gone: the store wants a key, and the call starts over with the read
    // and the new-domain rules (admission, a key) instead of trusting the memory.
    let (mut store, mut seq) = known_after_one_registration();
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_none())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(RegisterError::KeyRequired));
    store
        .expect_find_domain()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    store
        .expect_admit_creation()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    store
        .expect_register_sender()
        .withf(|reg| reg.new_key.is_some())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", "abc123", PUBLIC_KEY, false),
                domain_created: true,
            })
        });
    let use_case = use_case(store, keys_generating_once(), untouched_dns());
    use_case
        .execute(&org(), input("a@example.com"))
        .await
        .unwrap();
    let records = use_case
        .execute(&org(), input("b@example.com"))
        .await
        .unwrap();
    assert_eq!(records.dkim_name, "abc123._domainkey.example.com");
}

#[tokio::test]
async fn a_known_domain_claimed_by_another_organization_since_is_taken_and_forgotten() {
    let (mut store, mut seq) = known_after_one_registration();
    store
        .expect_register_sender()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(RegisterError::DomainTaken));
    // Forgotten: the next call reads it again (and is told it is another's).
    store
        .expect_find_domain()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(Some(stored(
                "org-b",
                "example.com",
                "new1",
                PUBLIC_KEY,
                false,
            )))
        });
    let use_case = use_case(store, untouched_keys(), untouched_dns());
    use_case
        .execute(&org(), input("a@example.com"))
        .await
        .unwrap();
    for email in ["b@example.com", "c@example.com"] {
        let refused = use_case.execute(&org(), input(email)).await.unwrap_err();
        assert!(matches!(refused, GenerateError::DomainTaken), "{refused:?}");
    }
}

/// A clock that stands still until moved.
#[derive(Debug)]
struct StillClock(Mutex<DateTime<Utc>>);

impl Clock for StillClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn a_new_domains_first_check_is_counted_from_its_creation_not_from_the_request() {
    // Drawing the key takes 30 s (a cold pool on a busy machine): the first check
    // is still a minute (plus jitter) after the domain is stored.
    let start = Utc::now();
    let clock = Arc::new(StillClock(Mutex::new(start)));
    let mut keys = MockKeyGenerator::new();
    let moved = Arc::clone(&clock);
    keys.expect_generate().times(1).returning(move |_| {
        *moved.0.lock().unwrap() += chrono::Duration::seconds(30);
        Ok(new_key())
    });
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    let stored_at = start + chrono::Duration::seconds(30);
    store
        .expect_register_sender()
        .withf(move |reg| {
            let first = (reg.creation.first_check_at - stored_at).num_seconds();
            (60..=66).contains(&first)
        })
        .times(1)
        .returning(|reg| {
            let key = reg.new_key.expect("a key");
            Ok(Registered {
                domain: StoredDomain::new(
                    reg.email.domain().clone(),
                    reg.organization,
                    key.selector,
                    key.public_key,
                    false,
                    Utc::now(),
                ),
                domain_created: true,
            })
        });
    let use_case = GenerateRecords::new(
        Arc::new(store),
        Arc::new(keys),
        Arc::new(untouched_dns()),
        policy(),
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        clock,
    );
    use_case
        .execute(&org(), input("noreply@example.com"))
        .await
        .unwrap();
}
