//! Read use cases: the organization's domains, and one domain in full.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::inbound_mx::InboundMx;
use crate::last_check::LastCheck;
use crate::lifecycle::{DomainStatus, KeyRecord, KeyState, Page, Paged};
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::store::{DomainDetail, DomainStore, SenderRecord, StoredDomain};
use crate::published::PublishedRecord;
use crate::usecases::verify::KeyPolicy;
use crate::{DomainName, OrganizationId, RecordPolicy, RecordSet, Zone};

/// Lists and describes an organization's domains. Another organization's domain is
/// reported exactly like one that does not exist.
#[derive(Clone)]
pub struct ReadDomains {
    store: Arc<dyn DomainStore>,
    policy: Arc<RecordPolicy>,
    keys: KeyPolicy,
    clock: Arc<dyn Clock>,
}

/// One domain with its status, what to publish now, its keys and its senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainView {
    /// The domain (A-labels).
    pub domain: DomainName,
    /// Whether inbound mail is on.
    pub inbound_enabled: bool,
    /// When `generate` created the domain.
    pub created_at: DateTime<Utc>,
    /// Whether the records have been seen published.
    pub status: DomainStatus,
    /// When the records were first seen correct.
    pub verified_at: Option<DateTime<Utc>>,
    /// When the records were last checked.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// When the next check is due; `None` when none is scheduled.
    pub next_check_at: Option<DateTime<Utc>>,
    /// The zone the records are published in: the one a check last found, else the
    /// registrable domain.
    pub zone: Zone,
    /// What to publish now: SPF, every key's record (newest first), DMARC.
    pub records: Vec<PublishedRecord>,
    /// Every key not yet safe to forget, newest first.
    pub dkim: Vec<KeyView>,
    /// Its sender addresses, oldest first.
    pub senders: Vec<SenderRecord>,
    /// The MX record inbound mail needs (listed with the records once inbound is on).
    pub inbound_mx: InboundMx,
    /// What the last check (at `last_checked_at`) found, record by record.
    pub last_check: Option<LastCheck>,
}

/// One DKIM key with the record to publish for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// The key as stored: selector, state, public key and timestamps.
    pub key: KeyRecord,
    /// A revoked key's record is `v=DKIM1; k=rsa; p=` (RFC 6376 §3.6.1).
    pub record: PublishedRecord,
    /// The revoked record may be deleted from DNS now.
    pub safe_to_remove: bool,
}

/// The TXT value of a revoked key (RFC 6376 §3.6.1: an empty `p=`).
pub const REVOKED_DKIM_VALUE: &str = "v=DKIM1; k=rsa; p=";

/// Why a domain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// No such domain for this organization (also another organization's domain).
    #[error("no such domain for this organization")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl ReadDomains {
    /// The use case over its ports; `keys` says when a revoked key's record may be
    /// removed from DNS.
    #[must_use]
    pub fn new(
        store: Arc<dyn DomainStore>,
        policy: Arc<RecordPolicy>,
        keys: KeyPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            policy,
            keys,
            clock,
        }
    }

    /// One page of the organization's domains, by name.
    ///
    /// # Errors
    /// [`ReadError`] when the store fails.
    pub async fn list(
        &self,
        organization: &OrganizationId,
        page: &Page<String>,
    ) -> Result<Paged<StoredDomain, String>, ReadError> {
        Ok(self.store.list_domains(organization, page).await?)
    }

    /// One domain, by the name as the caller typed it (Unicode or A-labels).
    ///
    /// # Errors
    /// [`ReadError::InvalidDomain`], [`ReadError::NotFound`] (also for another
    /// organization's domain), or a store failure.
    pub async fn detail(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<DomainView, ReadError> {
        let name =
            DomainName::parse(domain).map_err(|_| ReadError::InvalidDomain(domain.to_owned()))?;
        let detail = self
            .store
            .domain_detail(organization, &name)
            .await?
            .ok_or(ReadError::NotFound)?;
        Ok(self.view(detail))
    }

    /// The view of a stored domain, as of now.
    #[must_use]
    pub fn view(&self, detail: DomainDetail) -> DomainView {
        let DomainDetail {
            domain: stored,
            senders,
            keys,
        } = detail;
        let now = self.clock.now();
        let zone = Zone::of(&stored.name, stored.zone.as_ref());
        let ttl = self.policy.ttl();
        let base = RecordSet::render(
            &self.policy,
            &stored.name,
            &stored.selector,
            &stored.public_key,
        )
        .published(&stored.name, &zone, ttl);
        let dkim: Vec<KeyView> = keys
            .into_iter()
            .map(|key| {
                let mut set =
                    RecordSet::render(&self.policy, &stored.name, &key.selector, &key.public_key);
                if key.state == KeyState::Revoked {
                    REVOKED_DKIM_VALUE.clone_into(&mut set.dkim_value);
                }
                let record = set.published(&stored.name, &zone, ttl).swap_remove(1);
                KeyView {
                    safe_to_remove: self.keys.safe_to_remove(key.revoked_at, now),
                    key,
                    record,
                }
            })
            .collect();
        let mut records = Vec::with_capacity(dkim.len() + 2);
        records.extend(base.first().cloned());
        records.extend(dkim.iter().map(|k| k.record.clone()));
        records.extend(base.last().cloned());
        DomainView {
            inbound_mx: InboundMx::new(&self.policy, &stored.name, &zone, ttl),
            last_check: stored.last_check,
            domain: stored.name,
            inbound_enabled: stored.inbound_enabled,
            created_at: stored.created_at,
            status: stored.status,
            verified_at: stored.verified_at,
            last_checked_at: stored.last_checked_at,
            next_check_at: stored.next_check_at,
            zone,
            records,
            dkim,
            senders,
        }
    }
}

impl std::fmt::Debug for ReadDomains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDomains").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::Selector;
    use crate::ports::store::{DomainDetail, MockDomainStore};
    use crate::usecases::fixtures::policy;

    fn stored(name: &str) -> StoredDomain {
        StoredDomain::new(
            DomainName::parse(name).unwrap(),
            OrganizationId::new("org-a"),
            Selector::new("s1").unwrap(),
            "MIIBKEY".into(),
            true,
            Utc::now(),
        )
    }

    #[tokio::test]
    async fn describes_a_domain_with_its_records_and_senders() {
        let mut store = MockDomainStore::new();
        store
            .expect_domain_detail()
            .with(
                eq(OrganizationId::new("org-a")),
                eq(DomainName::parse("xn--bcher-kva.example").unwrap()),
            )
            .times(1)
            .returning(|_, _| {
                Ok(Some(DomainDetail {
                    domain: stored("xn--bcher-kva.example"),
                    senders: vec![SenderRecord {
                        email: "a@xn--bcher-kva.example".into(),
                        reply_to: None,
                        active: true,
                        created_at: Utc::now(),
                    }],
                    keys: vec![KeyRecord {
                        selector: Selector::new("s1").unwrap(),
                        state: KeyState::Active,
                        public_key: "MIIBKEY".into(),
                        created_at: Utc::now(),
                        activated_at: Some(Utc::now()),
                        retired_at: None,
                        revoked_at: None,
                    }],
                }))
            });
        let read = ReadDomains::new(
            Arc::new(store),
            policy(),
            KeyPolicy::default(),
            Arc::new(crate::ports::clock::SystemClock),
        );

        let view = read
            .detail(&OrganizationId::new("org-a"), "bücher.example")
            .await
            .unwrap();

        assert_eq!(view.records[1].name, "s1._domainkey.xn--bcher-kva.example");
        assert_eq!(view.records[1].value, "v=DKIM1; k=rsa; p=MIIBKEY");
        assert!(view.inbound_enabled);
        assert_eq!(view.senders.len(), 1);
    }

    #[tokio::test]
    async fn answers_not_found_for_a_domain_the_org_does_not_own() {
        let mut store = MockDomainStore::new();
        store.expect_domain_detail().returning(|_, _| Ok(None));
        let read = ReadDomains::new(
            Arc::new(store),
            policy(),
            KeyPolicy::default(),
            Arc::new(crate::ports::clock::SystemClock),
        );

        let error = read
            .detail(&OrganizationId::new("org-b"), "example.com")
            .await
            .unwrap_err();

        assert!(matches!(error, ReadError::NotFound), "{error:?}");
    }

    #[tokio::test]
    async fn rejects_an_invalid_domain_without_asking_the_store() {
        let mut store = MockDomainStore::new();
        store.expect_domain_detail().never();
        let read = ReadDomains::new(
            Arc::new(store),
            policy(),
            KeyPolicy::default(),
            Arc::new(crate::ports::clock::SystemClock),
        );

        let error = read
            .detail(&OrganizationId::new("org-a"), "not a domain")
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ReadError::InvalidDomain(raw) if raw == "not a domain"),
            "{error:?}"
        );
    }
}
