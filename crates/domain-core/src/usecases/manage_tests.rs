use std::sync::Arc;

use chrono::Utc;

use super::*;
use crate::Selector;
use crate::lifecycle::{KeyRecord, KeyState};
use crate::ports::clock::SystemClock;
use crate::ports::dns::{MockDns, MxRecord};
use crate::ports::keys::{DkimKey, MockKeyGenerator, SealedKey};
use crate::ports::lifecycle::MockKeyLifecycleStore;
use crate::ports::store::{DomainDetail, MockDomainStore, StoredDomain};
use crate::usecases::fixtures::{org, policy};
use crate::usecases::verify::KeyPolicy;

fn detail(keys: &[(&str, KeyState)]) -> DomainDetail {
    DomainDetail {
        domain: StoredDomain::new(
            DomainName::parse("example.com").unwrap(),
            org(),
            Selector::new("old").unwrap(),
            "MIIBold".into(),
            false,
            Utc::now(),
        ),
        senders: Vec::new(),
        keys: keys
            .iter()
            .map(|(selector, state)| KeyRecord {
                selector: Selector::new(*selector).unwrap(),
                state: *state,
                public_key: format!("MIIB{selector}"),
                created_at: Utc::now(),
                activated_at: None,
                retired_at: None,
                revoked_at: None,
            })
            .collect(),
    }
}

fn reads(detail: Option<DomainDetail>) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(move |_, _| Ok(detail.clone()));
    store
}

fn use_case(
    read: MockDomainStore,
    lifecycle: MockKeyLifecycleStore,
    keys: MockKeyGenerator,
    dns: MockDns,
) -> ManageDomain {
    let clock = Arc::new(SystemClock);
    ManageDomain::new(
        Arc::new(lifecycle),
        Arc::new(keys),
        Arc::new(dns),
        policy(),
        ReadDomains::new(
            Arc::new(read),
            policy(),
            KeyPolicy::default(),
            clock.clone(),
        ),
        clock,
    )
}

fn no_keys() -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().never();
    keys
}

#[tokio::test]
async fn refuses_a_second_rotation_without_generating_a_key() {
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle.expect_start_rotation().never();
    let manage = use_case(
        reads(Some(detail(&[
            ("new", KeyState::Pending),
            ("old", KeyState::Active),
        ]))),
        lifecycle,
        no_keys(),
        MockDns::new(),
    );

    let error = manage.rotate(&org(), "example.com").await.unwrap_err();

    assert!(
        matches!(error, ManageError::RotationInProgress),
        "{error:?}"
    );
}

#[tokio::test]
async fn starts_a_rotation_with_a_new_key() {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(1).returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("new").unwrap(),
            public_key: "MIIBnew".into(),
            sealed_private_key: SealedKey(vec![1]),
        })
    });
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle
        .expect_start_rotation()
        .withf(|o, d, key, _| {
            *o == org() && d.as_ascii() == "example.com" && key.selector.as_str() == "new"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));

    let view = use_case(
        reads(Some(detail(&[("old", KeyState::Active)]))),
        lifecycle,
        keys,
        MockDns::new(),
    )
    .rotate(&org(), "example.com")
    .await
    .unwrap();

    assert_eq!(view.domain.as_ascii(), "example.com");
}

#[tokio::test]
async fn a_rotation_lost_to_a_racing_one_is_in_progress() {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("new").unwrap(),
            public_key: "MIIBnew".into(),
            sealed_private_key: SealedKey(vec![1]),
        })
    });
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle
        .expect_start_rotation()
        .returning(|_, _, _, _| Err(RotateError::InProgress));

    let error = use_case(
        reads(Some(detail(&[("old", KeyState::Active)]))),
        lifecycle,
        keys,
        MockDns::new(),
    )
    .rotate(&org(), "example.com")
    .await
    .unwrap_err();

    assert!(
        matches!(error, ManageError::RotationInProgress),
        "{error:?}"
    );
}

#[tokio::test]
async fn answers_not_found_for_another_organization_s_domain_without_dns() {
    let mut dns = MockDns::new();
    dns.expect_mx().never();
    let manage = use_case(reads(None), MockKeyLifecycleStore::new(), no_keys(), dns);

    for error in [
        manage.rotate(&org(), "example.com").await.unwrap_err(),
        manage
            .set_inbound(&org(), "example.com", true)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(error, ManageError::NotFound), "{error:?}");
    }
}

#[tokio::test]
async fn turns_inbound_on_only_with_mx_at_our_relay_naming_the_hosts_otherwise() {
    let mut dns = MockDns::new();
    dns.expect_mx().times(1).returning(|_| {
        Ok(vec![MxRecord {
            preference: 10,
            exchange: "mx.elsewhere.example.".into(),
        }])
    });
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle.expect_set_inbound().never();
    let manage = use_case(
        reads(Some(detail(&[("old", KeyState::Active)]))),
        lifecycle,
        no_keys(),
        dns,
    );

    let error = manage
        .set_inbound(&org(), "example.com", true)
        .await
        .unwrap_err();

    assert!(
        matches!(&error, ManageError::MxNotReady(hosts) if hosts == &["inbound.sendtrim.com", "smtp.sendtrim.com"]),
        "{error:?}"
    );
}

#[tokio::test]
async fn turns_inbound_off_without_any_lookup() {
    let mut dns = MockDns::new();
    dns.expect_mx().never();
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle
        .expect_set_inbound()
        .withf(|_, _, enabled| !enabled)
        .times(1)
        .returning(|_, _, _| Ok(true));

    use_case(
        reads(Some(detail(&[("old", KeyState::Active)]))),
        lifecycle,
        no_keys(),
        dns,
    )
    .set_inbound(&org(), "example.com", false)
    .await
    .unwrap();
}

#[tokio::test]
async fn deleting_a_domain_the_org_does_not_have_is_not_found() {
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle.expect_delete_domain().returning(|_, _| Ok(false));

    let error = use_case(MockDomainStore::new(), lifecycle, no_keys(), MockDns::new())
        .delete(&org(), "example.com")
        .await
        .unwrap_err();

    assert!(matches!(error, ManageError::NotFound), "{error:?}");
}

fn budget(latest: Vec<chrono::DateTime<Utc>>, per_minute: u32) -> KeyBudget {
    let mut store = crate::ports::lifecycle::MockKeyGenerations::new();
    store
        .expect_latest_key_generations()
        .returning(move |_, _| Ok(latest.clone()));
    KeyBudget::new(
        Arc::new(store),
        crate::ownership::CreationLimits {
            max_domains: 1000,
            per_minute,
            max_senders_per_domain: 1000,
        },
    )
}

fn never_started() -> MockKeyLifecycleStore {
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle.expect_start_rotation().never();
    lifecycle
}

/// 679 keys in 45 s from one organization by looping rotate → publish → verify:
/// a domain rotates at most once per interval (since its last rotation), refused
/// before a key is generated, with how long to wait.
#[tokio::test]
async fn a_domain_rotates_at_most_once_per_interval() {
    // Two keys: the newer one is a rotation made just now.
    let manage = use_case(
        reads(Some(detail(&[
            ("new", KeyState::Active),
            ("old", KeyState::Retiring),
        ]))),
        never_started(),
        no_keys(),
        MockDns::new(),
    )
    .with_key_budget(budget(Vec::new(), 60), DEFAULT_ROTATION_INTERVAL);

    match manage.rotate(&org(), "example.com").await.unwrap_err() {
        ManageError::TooManyKeys(wait) => {
            assert!(wait > Duration::from_secs(23 * 3600), "{wait:?}");
            assert!(wait <= DEFAULT_ROTATION_INTERVAL, "{wait:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// Rotations draw on the one key budget new domains and claims draw on.
#[tokio::test]
async fn a_rotation_past_the_key_budget_generates_no_key() {
    let now = Utc::now();
    let latest = vec![now - chrono::Duration::seconds(10); 3];
    let manage = use_case(
        reads(Some(detail(&[("old", KeyState::Active)]))),
        never_started(),
        no_keys(),
        MockDns::new(),
    )
    .with_key_budget(budget(latest, 3), DEFAULT_ROTATION_INTERVAL);

    match manage.rotate(&org(), "example.com").await.unwrap_err() {
        ManageError::TooManyKeys(wait) => assert!((49..=51).contains(&wait.as_secs()), "{wait:?}"),
        other => panic!("{other:?}"),
    }
}

/// The operator's rotation (a compromised key) passes both.
#[tokio::test]
async fn the_operator_rotates_past_the_interval_and_the_budget() {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(1).returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("urgent").unwrap(),
            public_key: "MIIBurgent".into(),
            sealed_private_key: SealedKey(vec![1]),
        })
    });
    let mut lifecycle = MockKeyLifecycleStore::new();
    lifecycle
        .expect_start_rotation()
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let now = Utc::now();
    let manage = use_case(
        reads(Some(detail(&[
            ("new", KeyState::Active),
            ("old", KeyState::Retiring),
        ]))),
        lifecycle,
        keys,
        MockDns::new(),
    )
    .with_key_budget(budget(vec![now; 3], 3), DEFAULT_ROTATION_INTERVAL);

    assert!(
        manage
            .rotate_as_operator(&org(), "example.com")
            .await
            .is_ok()
    );
}
