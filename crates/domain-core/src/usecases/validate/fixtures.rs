//! Test fixtures shared by the validate tests: a mocked store holding `example.com`
//! and a mocked zone that answers each name it lists exactly once.

use std::sync::Arc;

use chrono::Utc;
use mockall::predicate::eq;

use super::{RecordCheck, RecordKind, ValidateDomain, ValidationReport};
use crate::ports::dns::{DnsError, MockDns, MxRecord, TxtRecord};
use crate::ports::store::{DomainDetail, MockDomainStore, StoredDomain};
use crate::usecases::fixtures::{org, policy};
use crate::{DomainName, Selector};

pub(super) const DOMAIN: &str = "example.com";
pub(super) const DKIM_NAME: &str = "s1._domainkey.example.com";
pub(super) const DMARC_NAME: &str = "_dmarc.example.com";
pub(super) const SPF: &str = "v=spf1 ip4:51.79.43.241 -all";
pub(super) const DMARC: &str = "v=DMARC1; p=none; rua=mailto:dmarc@example.com";

/// A realistic RSA-2048 SubjectPublicKeyInfo in base64: 392 characters.
pub(super) fn key() -> String {
    format!(
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}IDAQAB",
        "A".repeat(342)
    )
}

pub(super) fn dkim_value(key: &str) -> String {
    format!("v=DKIM1; k=rsa; p={key}")
}

pub(super) fn detail(name: &str, inbound: bool) -> DomainDetail {
    DomainDetail {
        domain: StoredDomain::new(
            DomainName::parse(name).unwrap(),
            org(),
            Selector::new("s1").unwrap(),
            key(),
            inbound,
            Utc::now(),
        ),
        senders: Vec::new(),
        keys: Vec::new(),
    }
}

pub(super) fn store_returning(detail: Option<DomainDetail>) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .with(eq(org()), eq(DomainName::parse(DOMAIN).unwrap()))
        .times(1)
        .return_once(move |_, _| Ok(detail));
    store
}

pub(super) fn untouched_store() -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store.expect_domain_detail().never();
    store
}

pub(super) fn untouched_dns() -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_txt().never();
    dns.expect_mx().never();
    dns
}

/// One TXT record per value, each a single string.
pub(super) fn txt(values: &[&str]) -> Result<Vec<TxtRecord>, DnsError> {
    Ok(values
        .iter()
        .map(|v| TxtRecord(vec![v.as_bytes().to_vec()]))
        .collect())
}

pub(super) fn mx(hosts: &[&str]) -> Result<Vec<MxRecord>, DnsError> {
    Ok(hosts
        .iter()
        .map(|h| MxRecord {
            preference: 10,
            exchange: (*h).into(),
        })
        .collect())
}

/// What the customer's zone answers. Every name listed must be queried exactly once,
/// and a query for a name not listed fails the test.
pub(super) struct CustomerZone {
    txt: Vec<(String, Result<Vec<TxtRecord>, DnsError>)>,
    mx: Result<Vec<MxRecord>, DnsError>,
    /// Answer names not listed with NXDOMAIN instead of failing the test (the SPF
    /// change-set follows `include:` names the verdict tests do not care about).
    others_nxdomain: bool,
}

impl CustomerZone {
    /// Everything published as the generate call told the customer, MX at our relay.
    pub(super) fn correct() -> Self {
        Self {
            txt: vec![
                (DOMAIN.into(), txt(&[SPF])),
                (DKIM_NAME.into(), txt(&[&dkim_value(&key())])),
                (DMARC_NAME.into(), txt(&[DMARC])),
            ],
            mx: mx(&["inbound.sendtrim.com."]),
            others_nxdomain: false,
        }
    }

    /// Names not listed answer NXDOMAIN, any number of times.
    pub(super) fn others_nxdomain(self) -> Self {
        Self {
            others_nxdomain: true,
            ..self
        }
    }

    pub(super) fn with_txt(mut self, name: &str, answer: Result<Vec<TxtRecord>, DnsError>) -> Self {
        self.txt.retain(|(n, _)| n != name);
        self.txt.push((name.into(), answer));
        self
    }

    pub(super) fn with_mx(self, mx: Result<Vec<MxRecord>, DnsError>) -> Self {
        Self { mx, ..self }
    }

    pub(super) fn into_dns(self) -> MockDns {
        let mut dns = MockDns::new();
        // No nameserver found: the records are asked of the resolver.
        dns.expect_nameservers()
            .returning(|_| Err(DnsError::NoRecords));
        // `example.com` is the zone apex.
        dns.expect_soa().returning(|name| {
            if name == DOMAIN {
                Ok(())
            } else {
                Err(DnsError::NoRecords)
            }
        });
        if self.others_nxdomain {
            let listed: Vec<String> = self.txt.iter().map(|(n, _)| n.clone()).collect();
            dns.expect_txt()
                .withf(move |name| !listed.iter().any(|n| n == name))
                .returning(|_| Err(DnsError::NxDomain));
        }
        for (name, answer) in self.txt {
            dns.expect_txt()
                .with(eq(name))
                .times(1)
                .return_once(move |_| answer);
        }
        let mx = self.mx;
        dns.expect_mx()
            .with(eq(DomainName::parse(DOMAIN).unwrap()))
            .times(1)
            .return_once(move |_| mx);
        dns
    }
}

pub(super) fn use_case(store: MockDomainStore, dns: MockDns) -> ValidateDomain {
    ValidateDomain::new(Arc::new(store), Arc::new(dns), policy())
}

/// Validates `example.com` (inbound off) against `zone`.
pub(super) async fn validate(zone: CustomerZone) -> ValidationReport {
    validate_with_inbound(zone, false).await
}

pub(super) async fn validate_with_inbound(zone: CustomerZone, inbound: bool) -> ValidationReport {
    let store = store_returning(Some(detail(DOMAIN, inbound)));
    use_case(store, zone.into_dns())
        .execute(&org(), DOMAIN)
        .await
        .unwrap()
}

pub(super) fn check(report: &ValidationReport, kind: RecordKind) -> &RecordCheck {
    report.records.iter().find(|c| c.kind == kind).unwrap()
}

pub(super) fn reason(check: &RecordCheck) -> &str {
    check.reason.as_deref().unwrap_or_default()
}
