//! Unit tests of creating a domain on its own, on mocked ports.

use std::sync::Arc;

use chrono::Utc;
use mockall::predicate::eq;

use super::*;
use crate::lifecycle::{KeyRecord, KeyState};
use crate::ownership::Ownership;
use crate::ports::clock::SystemClock;
use crate::ports::dns::{MockDns, MxRecord};
use crate::ports::keys::{MockKeyGenerator, SealedKey};
use crate::ports::store::{DomainDetail, MockDomainStore, StoredDomain};
use crate::usecases::fixtures::{org, policy};
use crate::usecases::verify::{KeyPolicy, VerifySchedule};
use crate::{DkimKey, Selector};

fn stored(owner: &str, name: &str, inbound: bool) -> StoredDomain {
    StoredDomain::new(
        DomainName::parse(name).unwrap(),
        OrganizationId::new(owner),
        Selector::new("abc123").unwrap(),
        "MIIBKEY".into(),
        inbound,
        Utc::now(),
    )
}

fn detail_of(domain: StoredDomain) -> DomainDetail {
    DomainDetail {
        keys: vec![KeyRecord {
            selector: domain.selector.clone(),
            state: KeyState::Active,
            public_key: domain.public_key.clone(),
            created_at: domain.created_at,
            activated_at: Some(domain.created_at),
            retired_at: None,
            revoked_at: None,
        }],
        domain,
        senders: vec![],
    }
}

fn keys(times: usize) -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(times).returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("abc123").unwrap(),
            public_key: "MIIBKEY".into(),
            sealed_private_key: SealedKey(vec![1, 2, 3]),
        })
    });
    keys
}

fn dns(mx: &[&str]) -> MockDns {
    let mut dns = MockDns::new();
    let records: Vec<MxRecord> = mx
        .iter()
        .map(|host| MxRecord {
            preference: 10,
            exchange: (*host).into(),
        })
        .collect();
    dns.expect_mx()
        .times(usize::from(!mx.is_empty()))
        .return_once(move |_| Ok(records));
    dns
}

fn use_case(store: MockDomainStore, keys: MockKeyGenerator, dns: MockDns) -> CreateDomain {
    let store = Arc::new(store);
    let generate = GenerateRecords::new(
        store.clone(),
        Arc::new(keys),
        Arc::new(dns),
        policy(),
        Arc::new(Ownership::default()),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    );
    let read = ReadDomains::new(store, policy(), KeyPolicy::default(), Arc::new(SystemClock));
    CreateDomain::new(generate, read)
}

fn input(name: &str, inbound: bool) -> CreateInput {
    CreateInput {
        name: Some(name.into()),
        inbound,
    }
}

#[tokio::test]
async fn creates_a_new_domain_with_a_key_and_no_sender() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store
        .expect_admit_creation()
        .times(1)
        .returning(|_, _| Ok(()));
    store
        .expect_create_domain()
        .withf(|c| c.name.as_ascii() == "example.com" && c.new_key.is_some() && !c.enable_inbound)
        .times(1)
        .returning(|c| {
            Ok(Registered {
                domain: stored(c.organization.as_str(), "example.com", false),
                domain_created: true,
            })
        });
    store.expect_register_sender().never();
    store
        .expect_domain_detail()
        .with(eq(org()), eq(DomainName::parse("example.com").unwrap()))
        .returning(|_, _| Ok(Some(detail_of(stored("org-a", "example.com", false)))));
    let use_case = use_case(store, keys(1), dns(&[]));

    let created = use_case
        .execute(&org(), input("Example.COM", false))
        .await
        .unwrap();

    assert!(created.created);
    assert_eq!(created.view.domain.as_ascii(), "example.com");
    assert!(created.view.senders.is_empty());
}

#[tokio::test]
async fn answers_the_organizations_own_domain_without_a_key_or_a_write() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .returning(|_| Ok(Some(stored("org-a", "example.com", false))));
    store.expect_admit_creation().never();
    store.expect_create_domain().never();
    store
        .expect_domain_detail()
        .returning(|_, _| Ok(Some(detail_of(stored("org-a", "example.com", false)))));
    let use_case = use_case(store, keys(0), dns(&[]));

    let created = use_case
        .execute(&org(), input("example.com", false))
        .await
        .unwrap();

    assert!(!created.created);
}

#[tokio::test]
async fn refuses_another_organizations_domain_before_drawing_a_key() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .returning(|_| Ok(Some(stored("org-b", "example.com", false))));
    store.expect_create_domain().never();
    let use_case = use_case(store, keys(0), dns(&[]));

    let error = use_case
        .execute(&org(), input("example.com", false))
        .await
        .unwrap_err();

    assert!(matches!(error, CreateError::DomainTaken), "{error:?}");
}

#[tokio::test]
async fn refuses_inbound_without_the_mx_before_drawing_a_key() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store.expect_admit_creation().returning(|_, _| Ok(()));
    store.expect_create_domain().never();
    let use_case = use_case(store, keys(0), dns(&["mx.elsewhere.example"]));

    let error = use_case
        .execute(&org(), input("example.com", true))
        .await
        .unwrap_err();

    assert!(
        matches!(&error, CreateError::MxNotReady(hosts) if hosts.len() == 2),
        "{error:?}"
    );
}

#[tokio::test]
async fn turns_inbound_on_for_its_own_domain_when_the_mx_points_at_the_relay() {
    let mut store = MockDomainStore::new();
    store
        .expect_find_domain()
        .returning(|_| Ok(Some(stored("org-a", "example.com", false))));
    store.expect_admit_creation().never();
    store
        .expect_create_domain()
        .withf(|c| c.new_key.is_none() && c.enable_inbound)
        .times(1)
        .returning(|_| {
            Ok(Registered {
                domain: stored("org-a", "example.com", true),
                domain_created: false,
            })
        });
    store
        .expect_domain_detail()
        .returning(|_, _| Ok(Some(detail_of(stored("org-a", "example.com", true)))));
    let use_case = use_case(store, keys(0), dns(&["inbound.sendtrim.com."]));

    let created = use_case
        .execute(&org(), input("example.com", true))
        .await
        .unwrap();

    assert!(!created.created);
    assert!(created.view.inbound_enabled);
}

#[tokio::test]
async fn rejects_a_public_suffix_a_special_use_name_and_a_missing_name() {
    for raw in ["co.uk", "printer.local", "not a domain", ""] {
        let mut store = MockDomainStore::new();
        store.expect_find_domain().never();
        let use_case = use_case(store, keys(0), dns(&[]));

        let error = use_case
            .execute(&org(), input(raw, false))
            .await
            .unwrap_err();

        assert!(
            matches!(&error, CreateError::InvalidDomain(echo) if echo == raw),
            "{raw}: {error:?}"
        );
    }
}

#[tokio::test]
async fn passes_the_stores_quota_refusals_on() {
    let mut store = MockDomainStore::new();
    store.expect_find_domain().returning(|_| Ok(None));
    store
        .expect_admit_creation()
        .times(1)
        .returning(|_, _| Err(RegisterError::DomainLimit));
    store.expect_create_domain().never();
    let use_case = use_case(store, keys(0), dns(&[]));

    let error = use_case
        .execute(&org(), input("example.com", false))
        .await
        .unwrap_err();

    assert!(matches!(error, CreateError::DomainLimit), "{error:?}");
}
