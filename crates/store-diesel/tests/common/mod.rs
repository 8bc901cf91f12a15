//! Helpers shared by the store's test files: fixed keys, registrations, and a runner
//! over every configured backend. Each test file uses a subset.
#![allow(dead_code, reason = "each test file uses only some of these helpers")]
#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use domain_core::lifecycle::Page;
use domain_core::ownership::{CreationLimits, ancestors};
use domain_core::ports::admin::Administration;
use domain_core::ports::store::{CreationRules, SenderRegistration};
use domain_core::{DkimKey, EmailAddress, OrganizationId, OrganizationName, SealedKey, Selector};
use store_diesel::Store;

/// A key whose public and sealed halves are derived from its selector.
pub fn key(selector: &str) -> DkimKey {
    DkimKey {
        selector: Selector::new(selector).unwrap(),
        public_key: format!("MIIBIjANBgkqhki{selector}"),
        sealed_private_key: SealedKey(selector.as_bytes().to_vec()),
    }
}

/// Limits no test reaches unless it means to.
pub const GENEROUS: CreationLimits = CreationLimits {
    max_domains: 1_000_000,
    per_minute: 1_000_000,
    max_senders_per_domain: 1_000_000,
};

pub fn registration(
    org: &OrganizationId,
    email: &str,
    new_key: Option<DkimKey>,
) -> SenderRegistration {
    registration_within(org, email, new_key, GENEROUS)
}

/// A registration held to `limits`, with the ancestors generate would compute.
pub fn registration_within(
    org: &OrganizationId,
    email: &str,
    new_key: Option<DkimKey>,
    limits: CreationLimits,
) -> SenderRegistration {
    let email = EmailAddress::parse(email).unwrap();
    SenderRegistration {
        organization: org.clone(),
        creation: CreationRules {
            ancestors: ancestors(email.domain()),
            limits,
            first_check_at: chrono::Utc::now() + chrono::Duration::minutes(1),
        },
        email,
        reply_to: None,
        new_key,
        enable_inbound: false,
    }
}

/// One page holding everything a test creates.
pub fn all<C>() -> Page<C> {
    Page {
        after: None,
        limit: 1000,
    }
}

/// How many events the organization has.
pub async fn event_count(store: &Store, org: &OrganizationId) -> usize {
    use domain_core::ports::lifecycle::EventStore as _;
    store.list_events(org, &all()).await.unwrap().items.len()
}

pub async fn org(store: &Store, name: &str) -> OrganizationId {
    store
        .create_organization(&OrganizationName::parse(name).unwrap())
        .await
        .unwrap()
        .0
}

/// Runs the body once per backend, each on a fresh, migrated database; `$db` is the
/// `TestDatabase` when the body needs a second store on it.
#[macro_export]
macro_rules! on_every_backend {
    (|$store:ident, $kind:ident| $body:expr) => {
        on_every_backend!(|$store, $kind, _db| $body)
    };
    (|$store:ident, $kind:ident, $db:ident| $body:expr) => {
        for $kind in store_diesel::test_support::backends() {
            let $db = store_diesel::test_support::TestDatabase::new($kind).await;
            let $store = std::sync::Arc::new($db.store().await);
            $body;
            drop($store);
            drop($db);
        }
    };
}

/// `org` claims `domain` now and takes it over with a new key of `selector`, as a
/// claim whose DNS proof was found does.
pub async fn claim_and_transfer(store: &Store, org: &OrganizationId, domain: &str, selector: &str) {
    use domain_core::ports::claims::ClaimStore as _;
    let now = chrono::Utc::now();
    let name = domain_core::DomainName::parse(domain).unwrap();
    let claim = store
        .open_claim(org, &name, now, now + chrono::Duration::days(7))
        .await
        .unwrap();
    store
        .transfer(org, &claim, key(selector), now, now, u32::MAX)
        .await
        .unwrap();
}
