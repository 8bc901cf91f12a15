//! Unit tests of the validate use case on mocked ports, and of its record parsers.

use std::sync::Arc;

use chrono::Utc;
use mockall::predicate::eq;

use super::*;
use crate::ports::dns::{MockDns, MxRecord};
use crate::ports::store::{DomainDetail, MockDomainStore};
use crate::usecases::fixtures::{org, policy};

const DOMAIN: &str = "example.com";
const DKIM_NAME: &str = "s1._domainkey.example.com";
const DMARC_NAME: &str = "_dmarc.example.com";
const SPF: &str = "v=spf1 ip4:51.79.43.241 -all";
const DMARC: &str = "v=DMARC1; p=none; rua=mailto:dmarc@example.com";

/// A realistic RSA-2048 SubjectPublicKeyInfo in base64: 392 characters.
fn key() -> String {
    format!(
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}IDAQAB",
        "A".repeat(342)
    )
}

fn dkim_value(key: &str) -> String {
    format!("v=DKIM1; k=rsa; p={key}")
}

fn detail(name: &str, inbound: bool) -> DomainDetail {
    DomainDetail {
        domain: StoredDomain {
            name: DomainName::parse(name).unwrap(),
            organization: org(),
            selector: Selector::new("s1").unwrap(),
            public_key: key(),
            inbound_enabled: inbound,
            created_at: Utc::now(),
        },
        senders: Vec::new(),
    }
}

fn store_returning(detail: Option<DomainDetail>) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .with(eq(org()), eq(DomainName::parse(DOMAIN).unwrap()))
        .times(1)
        .return_once(move |_, _| Ok(detail));
    store
}

fn untouched_store() -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store.expect_domain_detail().never();
    store
}

fn untouched_dns() -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_txt().never();
    dns.expect_mx().never();
    dns
}

/// One TXT record per value, each a single string.
fn txt(values: &[&str]) -> Result<Vec<TxtRecord>, DnsError> {
    Ok(values
        .iter()
        .map(|v| TxtRecord(vec![v.as_bytes().to_vec()]))
        .collect())
}

fn mx(hosts: &[&str]) -> Result<Vec<MxRecord>, DnsError> {
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
struct Zone {
    txt: Vec<(String, Result<Vec<TxtRecord>, DnsError>)>,
    mx: Result<Vec<MxRecord>, DnsError>,
}

impl Zone {
    /// Everything published as the generate call told the customer, MX at our relay.
    fn correct() -> Self {
        Self {
            txt: vec![
                (DOMAIN.into(), txt(&[SPF])),
                (DKIM_NAME.into(), txt(&[&dkim_value(&key())])),
                (DMARC_NAME.into(), txt(&[DMARC])),
            ],
            mx: mx(&["inbound.sendtrim.com."]),
        }
    }

    fn with_txt(mut self, name: &str, answer: Result<Vec<TxtRecord>, DnsError>) -> Self {
        self.txt.retain(|(n, _)| n != name);
        self.txt.push((name.into(), answer));
        self
    }

    fn with_mx(self, mx: Result<Vec<MxRecord>, DnsError>) -> Self {
        Self { mx, ..self }
    }

    fn into_dns(self) -> MockDns {
        let mut dns = MockDns::new();
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

fn use_case(store: MockDomainStore, dns: MockDns) -> ValidateDomain {
    ValidateDomain::new(Arc::new(store), Arc::new(dns), policy())
}

/// Validates `example.com` (inbound off) against `zone`.
async fn validate(zone: Zone) -> ValidationReport {
    validate_with_inbound(zone, false).await
}

async fn validate_with_inbound(zone: Zone, inbound: bool) -> ValidationReport {
    let store = store_returning(Some(detail(DOMAIN, inbound)));
    use_case(store, zone.into_dns())
        .execute(&org(), DOMAIN)
        .await
        .unwrap()
}

fn check(report: &ValidationReport, kind: RecordKind) -> &RecordCheck {
    report.records.iter().find(|c| c.kind == kind).unwrap()
}

fn reason(check: &RecordCheck) -> &str {
    check.reason.as_deref().unwrap_or_default()
}

// --- The flow ----------------------------------------------------------------------

#[tokio::test]
async fn reports_verified_when_every_record_is_published_correctly() {
    let report = validate_with_inbound(Zone::correct(), true).await;

    assert!(report.verified);
    assert_eq!(report.domain, DOMAIN);
    let kinds: Vec<_> = report.records.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [RecordKind::Spf, RecordKind::Dkim, RecordKind::Dmarc]
    );
    assert!(report.records.iter().all(|c| c.status == CheckStatus::Ok));
    assert!(report.records.iter().all(|c| c.reason.is_none()));
    let dkim = check(&report, RecordKind::Dkim);
    assert_eq!(dkim.name, DKIM_NAME);
    assert_eq!(dkim.expected, dkim_value(&key()));
    assert_eq!(dkim.found, [dkim_value(&key())]);
    assert_eq!(check(&report, RecordKind::Spf).expected, SPF);
    assert_eq!(check(&report, RecordKind::Dmarc).expected, DMARC);
}

#[tokio::test]
async fn answers_not_found_when_the_domain_belongs_to_another_org() {
    let use_case = use_case(store_returning(None), untouched_dns());

    let error = use_case.execute(&org(), DOMAIN).await.unwrap_err();

    assert!(matches!(error, ValidateError::NotFound));
    assert!(matches!(error, ValidateError::NotFound), "{error:?}");
}

#[tokio::test]
async fn rejects_a_malformed_domain_echoing_it() {
    let use_case = use_case(untouched_store(), untouched_dns());

    let error = use_case.execute(&org(), "bad domain").await.unwrap_err();

    assert!(
        matches!(&error, ValidateError::InvalidDomain(raw) if raw == "bad domain"),
        "{error:?}"
    );
}

#[tokio::test]
async fn reports_an_unreachable_store_as_unavailable() {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(|_, _| Err(InfraError::Unavailable("connection refused".into())));
    let use_case = use_case(store, untouched_dns());

    let error = use_case.execute(&org(), DOMAIN).await.unwrap_err();

    assert!(matches!(
        error,
        ValidateError::Infra(InfraError::Unavailable(_))
    ));
}

#[tokio::test]
async fn reports_a_failing_store_as_unexpected() {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(|_, _| Err(InfraError::Unexpected("syntax error at or near".into())));
    let use_case = use_case(store, untouched_dns());

    let error = use_case.execute(&org(), DOMAIN).await.unwrap_err();

    assert!(matches!(
        error,
        ValidateError::Infra(InfraError::Unexpected(_))
    ));
}

#[tokio::test]
async fn looks_up_an_internationalised_domain_by_its_a_label() {
    let idn = "xn--bcher-kva.example";
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .with(eq(org()), eq(DomainName::parse(idn).unwrap()))
        .times(1)
        .return_once(move |_, _| Ok(Some(detail(idn, false))));
    let mut dns = MockDns::new();
    for name in [
        "xn--bcher-kva.example",
        "s1._domainkey.xn--bcher-kva.example",
        "s1._domainkey.xn--bcher-kva.example.xn--bcher-kva.example",
        "_dmarc.xn--bcher-kva.example",
    ] {
        dns.expect_txt()
            .with(eq(name.to_owned()))
            .times(1)
            .returning(|_| Err(DnsError::NoRecords));
    }
    dns.expect_mx()
        .times(1)
        .returning(|_| Err(DnsError::NoRecords));

    let report = use_case(store, dns)
        .execute(&org(), "bücher.example")
        .await
        .unwrap();

    assert_eq!(report.domain, idn);
    assert_eq!(
        report.records[1].name,
        "s1._domainkey.xn--bcher-kva.example"
    );
}

#[test]
fn the_execute_future_can_move_between_threads() {
    fn assert_send<T: Send>(_: T) {}
    let use_case = use_case(untouched_store(), untouched_dns());
    assert_send(use_case.execute(&org(), DOMAIN));
}

#[tokio::test]
async fn join_waits_for_both_futures_while_polling_them_together() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Awaited one after the other, the first would wait forever for the second.
    let waiting = async { rx.await.unwrap() };
    let sending = async { tx.send(7).unwrap() };

    let joined = tokio::time::timeout(std::time::Duration::from_secs(5), join(waiting, sending))
        .await
        .expect("join polls both futures");

    assert_eq!(joined, (7, ()));
}

// --- DNS outcomes, the same for every record --------------------------------------

#[tokio::test]
async fn reports_missing_when_the_name_does_not_exist() {
    let report = validate(Zone::correct().with_txt(DMARC_NAME, Err(DnsError::NxDomain))).await;

    let dmarc = check(&report, RecordKind::Dmarc);
    assert_eq!(dmarc.status, CheckStatus::Missing);
    assert_eq!(reason(dmarc), "No TXT record found at _dmarc.example.com.");
    assert!(!report.verified);
}

#[tokio::test]
async fn reports_missing_when_the_name_has_no_txt_records() {
    let report = validate(Zone::correct().with_txt(DOMAIN, Err(DnsError::NoRecords))).await;

    let spf = check(&report, RecordKind::Spf);
    assert_eq!(spf.status, CheckStatus::Missing);
    assert_eq!(reason(spf), "No TXT record found at example.com.");
    assert!(spf.found.is_empty());
}

#[tokio::test]
async fn reports_an_error_naming_the_outcome_when_the_lookup_fails() {
    for (failure, outcome) in [
        (DnsError::ServFail, "SERVFAIL"),
        (DnsError::Timeout, "timed out"),
        (
            DnsError::Unexpected("io: connection reset".into()),
            "resolver error",
        ),
    ] {
        let report = validate(Zone::correct().with_txt(DOMAIN, Err(failure))).await;

        let spf = check(&report, RecordKind::Spf);
        assert_eq!(spf.status, CheckStatus::Error);
        assert_eq!(
            reason(spf),
            format!("The DNS lookup for example.com failed ({outcome}); try again later.")
        );
        assert!(!report.verified);
    }
}

// --- SPF ---------------------------------------------------------------------------

async fn spf_check(records: &[&str]) -> RecordCheck {
    let report = validate(Zone::correct().with_txt(DOMAIN, txt(records))).await;
    check(&report, RecordKind::Spf).clone()
}

#[tokio::test]
async fn reports_spf_missing_with_the_expected_value_when_only_other_txt_records_exist() {
    let spf = spf_check(&["google-site-verification=abc123"]).await;

    assert_eq!(spf.status, CheckStatus::Missing);
    assert!(reason(&spf).contains(SPF), "{spf:?}");
    assert_eq!(spf.found, ["google-site-verification=abc123"]);
}

#[tokio::test]
async fn asks_to_merge_when_two_spf_records_are_published() {
    let spf = spf_check(&[SPF, "v=spf1 include:_spf.google.com ~all"]).await;

    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert_eq!(
        reason(&spf),
        "Found 2 SPF records at example.com; publish exactly one (RFC 7208 §3.2) — merge them."
    );
}

#[tokio::test]
async fn reports_a_mismatch_when_spf_needs_more_than_ten_lookups() {
    let includes: Vec<String> = (0..10)
        .map(|i| format!("include:spf{i}.example.net"))
        .collect();
    let record = format!("v=spf1 ip4:51.79.43.241 {} mx -all", includes.join(" "));

    let spf = spf_check(&[&record]).await;

    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert!(reason(&spf).contains("11 DNS lookups"), "{spf:?}");
    assert!(reason(&spf).contains("RFC 7208 §4.6.4"), "{spf:?}");
}

#[tokio::test]
async fn reports_a_mismatch_when_spf_allows_any_server() {
    for ending in ["+all", "all"] {
        let spf = spf_check(&[&format!("v=spf1 ip4:51.79.43.241 {ending}")]).await;

        assert_eq!(spf.status, CheckStatus::Mismatch);
        assert!(
            reason(&spf).contains("allows any server to send as your domain"),
            "{spf:?}"
        );
    }
}

#[tokio::test]
async fn names_the_mechanism_to_add_when_spf_omits_our_ip() {
    let spf = spf_check(&["v=spf1 include:_spf.google.com ~all"]).await;

    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert!(reason(&spf).contains("add ip4:51.79.43.241"), "{spf:?}");
}

#[tokio::test]
async fn does_not_count_a_failing_ip_mechanism_as_authorizing() {
    let spf = spf_check(&["v=spf1 -ip4:51.79.43.241 include:_spf.google.com ~all"]).await;

    assert_eq!(spf.status, CheckStatus::Mismatch);
}

#[tokio::test]
async fn accepts_spf_with_extra_mechanisms_and_any_case() {
    for record in [
        "v=spf1 include:_spf.google.com ip4:51.79.43.241 ~all",
        "V=SPF1 +IP4:51.79.43.241 -ALL",
        "  v=spf1 ip4:51.79.43.0/24 -all  ",
    ] {
        let spf = spf_check(&[record, "google-site-verification=abc123"]).await;

        assert_eq!(spf.status, CheckStatus::Ok, "{record}");
    }
}

#[tokio::test]
async fn reports_quoted_spf_as_a_mismatch() {
    let spf = spf_check(&["\"v=spf1 ip4:51.79.43.241 -all\""]).await;

    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert!(reason(&spf).contains("quotation marks"), "{spf:?}");
}

// --- DKIM --------------------------------------------------------------------------

async fn dkim_check(zone: Zone) -> RecordCheck {
    let report = validate(zone).await;
    check(&report, RecordKind::Dkim).clone()
}

fn dkim_published(values: &[&str]) -> Zone {
    Zone::correct().with_txt(DKIM_NAME, txt(values))
}

#[tokio::test]
async fn accepts_a_key_split_into_several_strings() {
    let value = dkim_value(&key());
    let (first, rest) = value.split_at(255);
    let record = TxtRecord(vec![first.as_bytes().to_vec(), rest.as_bytes().to_vec()]);

    let dkim = dkim_check(Zone::correct().with_txt(DKIM_NAME, Ok(vec![record]))).await;

    assert_eq!(dkim.status, CheckStatus::Ok);
    assert_eq!(dkim.found, [value]);
}

#[tokio::test]
async fn accepts_white_space_inside_the_key_and_a_missing_version_tag() {
    let key = key();
    let (head, tail) = key.split_at(200);
    let value = format!("k=rsa;  p={head} {tail} ;");

    let dkim = dkim_check(dkim_published(&[&value])).await;

    assert_eq!(dkim.status, CheckStatus::Ok);
}

#[tokio::test]
async fn accepts_dkim_when_one_of_several_records_carries_the_key() {
    let dkim = dkim_check(dkim_published(&["v=DKIM1; p=MIIBold", &dkim_value(&key())])).await;

    assert_eq!(dkim.status, CheckStatus::Ok);
}

#[tokio::test]
async fn reports_a_mismatch_when_the_dkim_value_keeps_its_quotes() {
    let quoted = format!("\"{}\"", dkim_value(&key()));

    let dkim = dkim_check(dkim_published(&[&quoted])).await;

    assert_eq!(dkim.status, CheckStatus::Mismatch);
    assert!(
        reason(&dkim)
            .starts_with("The value contains quotation marks; remove the surrounding quotes"),
        "{dkim:?}"
    );
}

#[tokio::test]
async fn reports_a_truncated_key_with_its_length_and_the_255_limit() {
    let truncated = &dkim_value(&key())[..255];

    let dkim = dkim_check(dkim_published(&[truncated])).await;

    assert_eq!(dkim.status, CheckStatus::Mismatch);
    assert!(
        reason(&dkim).starts_with("The key is truncated (237 of 392 characters)"),
        "{dkim:?}"
    );
    assert!(reason(&dkim).contains("255 characters"), "{dkim:?}");
}

#[tokio::test]
async fn finds_the_record_published_under_the_domain_appended_twice() {
    let doubled = "s1._domainkey.example.com.example.com";
    let zone = Zone::correct()
        .with_txt(DKIM_NAME, Err(DnsError::NxDomain))
        .with_txt(doubled, txt(&[&dkim_value(&key())]));

    let dkim = dkim_check(zone).await;

    assert_eq!(dkim.status, CheckStatus::Mismatch);
    assert_eq!(
        reason(&dkim),
        "The record was published at s1._domainkey.example.com.example.com: your DNS provider appends example.com to the host, so enter only s1._domainkey as the host."
    );
    assert_eq!(dkim.found, [dkim_value(&key())]);
    assert_eq!(dkim.name, DKIM_NAME);
}

#[tokio::test]
async fn reports_dkim_missing_when_neither_name_has_a_key_record() {
    let zone = Zone::correct()
        .with_txt(DKIM_NAME, Err(DnsError::NoRecords))
        .with_txt(
            "s1._domainkey.example.com.example.com",
            txt(&["wildcard-verification=1"]),
        );

    let dkim = dkim_check(zone).await;

    assert_eq!(dkim.status, CheckStatus::Missing);
    assert_eq!(
        reason(&dkim),
        "No TXT record found at s1._domainkey.example.com."
    );
    assert!(dkim.found.is_empty());
}

#[tokio::test]
async fn does_not_look_for_a_doubled_name_when_the_lookup_failed() {
    // The zone lists no doubled name, so a lookup of it would fail the test.
    let dkim = dkim_check(Zone::correct().with_txt(DKIM_NAME, Err(DnsError::Timeout))).await;

    assert_eq!(dkim.status, CheckStatus::Error);
}

#[tokio::test]
async fn reports_a_mismatch_when_another_key_is_published() {
    let other = format!(
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}",
        "B".repeat(348)
    );

    let dkim = dkim_check(dkim_published(&[&dkim_value(&other)])).await;

    assert_eq!(dkim.status, CheckStatus::Mismatch);
    assert_eq!(
        reason(&dkim),
        "The published key does not match the key for selector s1."
    );
}

#[tokio::test]
async fn reports_a_mismatch_for_a_record_that_is_not_a_key_record() {
    for (value, expected) in [
        ("v=DKIM1; k=rsa", "no p= tag"),
        ("v=spf1 -all", "must say v=DKIM1"),
        ("v=DKIM1; k=ed25519; p=MIIB", "use k=rsa"),
        ("v=DKIM1; k=rsa; p=", "revokes the key"),
    ] {
        let dkim = dkim_check(dkim_published(&[value])).await;

        assert_eq!(dkim.status, CheckStatus::Mismatch, "{value}");
        assert!(reason(&dkim).contains(expected), "{value}: {dkim:?}");
    }
}

// --- DMARC -------------------------------------------------------------------------

async fn dmarc_check(records: &[&str]) -> RecordCheck {
    let report = validate(Zone::correct().with_txt(DMARC_NAME, txt(records))).await;
    check(&report, RecordKind::Dmarc).clone()
}

#[tokio::test]
async fn accepts_a_stricter_dmarc_policy_and_another_report_address() {
    let dmarc = dmarc_check(&["v = DMARC1 ; P=Reject; rua=mailto:reports@example.org"]).await;

    assert_eq!(dmarc.status, CheckStatus::Ok);
}

#[tokio::test]
async fn reports_dmarc_missing_when_no_record_starts_with_v_dmarc1() {
    let dmarc = dmarc_check(&["p=none; v=DMARC1"]).await;

    assert_eq!(dmarc.status, CheckStatus::Missing);
    assert!(reason(&dmarc).contains(DMARC), "{dmarc:?}");
}

#[tokio::test]
async fn asks_for_exactly_one_dmarc_record() {
    let dmarc = dmarc_check(&[DMARC, "v=DMARC1; p=reject"]).await;

    assert_eq!(dmarc.status, CheckStatus::Mismatch);
    assert!(reason(&dmarc).contains("publish exactly one"), "{dmarc:?}");
}

#[tokio::test]
async fn reports_a_mismatch_when_dmarc_has_no_valid_policy() {
    for (record, expected) in [
        ("v=DMARC1; rua=mailto:dmarc@example.com", "no p= tag"),
        ("v=DMARC1; p=monitor", "p=monitor is not a DMARC policy"),
    ] {
        let dmarc = dmarc_check(&[record]).await;

        assert_eq!(dmarc.status, CheckStatus::Mismatch, "{record}");
        assert!(reason(&dmarc).contains(expected), "{record}: {dmarc:?}");
    }
}

#[tokio::test]
async fn reports_quoted_dmarc_as_a_mismatch() {
    let dmarc = dmarc_check(&["\"v=DMARC1; p=none\""]).await;

    assert_eq!(dmarc.status, CheckStatus::Mismatch);
    assert!(reason(&dmarc).contains("quotation marks"), "{dmarc:?}");
}

// --- Inbound -----------------------------------------------------------------------

#[tokio::test]
async fn reports_inbound_ready_when_an_mx_points_at_our_relay() {
    let zone = Zone::correct().with_mx(mx(&["aspmx.l.google.com.", "SMTP.sendtrim.com."]));

    let report = validate_with_inbound(zone, true).await;

    assert!(report.inbound.enabled);
    assert!(report.inbound.mx_ready);
    assert_eq!(report.inbound.status, CheckStatus::Ok);
    assert_eq!(
        report.inbound.mx_hosts,
        ["aspmx.l.google.com", "SMTP.sendtrim.com"]
    );
    assert!(report.verified);
}

#[tokio::test]
async fn reports_inbound_missing_when_the_domain_has_no_mx() {
    for failure in [DnsError::NoRecords, DnsError::NxDomain] {
        let report = validate(Zone::correct().with_mx(Err(failure))).await;

        assert!(!report.inbound.mx_ready);
        assert_eq!(report.inbound.status, CheckStatus::Missing);
        assert_eq!(
            report.inbound.reason.as_deref(),
            Some("No MX record points at inbound.sendtrim.com or smtp.sendtrim.com.")
        );
    }
}

#[tokio::test]
async fn names_where_mx_points_when_it_points_elsewhere() {
    let report = validate(Zone::correct().with_mx(mx(&["aspmx.l.google.com."]))).await;

    assert_eq!(report.inbound.status, CheckStatus::Mismatch);
    let reason = report.inbound.reason.unwrap_or_default();
    assert!(reason.contains("point at aspmx.l.google.com"), "{reason}");
    assert!(
        reason.contains("inbound.sendtrim.com or smtp.sendtrim.com"),
        "{reason}"
    );
}

#[tokio::test]
async fn reports_an_inbound_error_when_the_mx_lookup_fails() {
    let report = validate(Zone::correct().with_mx(Err(DnsError::ServFail))).await;

    assert_eq!(report.inbound.status, CheckStatus::Error);
    assert!(!report.inbound.mx_ready);
}

#[tokio::test]
async fn is_not_verified_when_inbound_is_enabled_but_mx_points_elsewhere() {
    let zone = Zone::correct().with_mx(mx(&["aspmx.l.google.com."]));

    let report = validate_with_inbound(zone, true).await;

    assert!(!report.verified);
}

#[tokio::test]
async fn is_verified_without_our_mx_when_inbound_is_disabled() {
    let zone = Zone::correct().with_mx(mx(&["aspmx.l.google.com."]));

    let report = validate_with_inbound(zone, false).await;

    assert!(!report.inbound.enabled);
    assert!(report.verified);
}

// --- Parsers -----------------------------------------------------------------------

#[test]
fn recognises_spf_records_by_their_version_term() {
    for yes in ["v=spf1", "v=spf1 -all", "V=SPF1 ip4:192.0.2.1 -all"] {
        assert!(is_spf(yes), "{yes}");
    }
    for no in [
        "v=spf10 -all",
        "v=spf",
        "spf1 -all",
        "v=DKIM1; p=x",
        "",
        "v=spf1\t-all",
    ] {
        assert!(!is_spf(no), "{no}");
    }
}

#[test]
fn counts_every_spf_term_that_causes_a_dns_lookup() {
    let terms = [
        "include:_spf.google.com",
        "a",
        "a:mail.example.com",
        "a/24",
        "mx",
        "-mx:mx.example.com",
        "~mx/24",
        "?ptr",
        "ptr:example.com",
        "+exists:%{i}.example.com",
        "redirect=_spf.example.com",
    ];
    assert_eq!(count_dns_lookups(&terms), 11);

    let free = [
        "ip4:192.0.2.1",
        "ip6:2001:db8::/32",
        "-all",
        "exp=explain.example.com",
        "aa",
        "mxx:host",
    ];
    assert_eq!(count_dns_lookups(&free), 0);
}

#[test]
fn matches_ip_networks_exactly_or_by_prefix() {
    let v4: IpAddr = "51.79.43.241".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    for (network, ip, expected) in [
        ("51.79.43.241", v4, true),
        ("51.79.43.241/32", v4, true),
        ("51.79.43.0/24", v4, true),
        ("51.79.42.0/24", v4, false),
        ("51.64.0.0/10", v4, true),
        ("0.0.0.0/0", v4, true),
        ("51.79.43.240", v4, false),
        ("51.79.43.241/33", v4, false),
        ("51.79.43.241/", v4, false),
        ("51.79.43.241/+8", v4, false),
        ("not-an-ip", v4, false),
        ("2001:db8::/32", v4, false),
        ("2001:db8::/32", v6, true),
        ("2001:db8::1", v6, true),
        ("2001:db9::/32", v6, false),
        ("::/0", v6, true),
        ("2001:db8::/129", v6, false),
        ("51.79.43.0/24", v6, false),
    ] {
        assert_eq!(network_contains(network, ip), expected, "{network} ∋ {ip}");
    }
}

#[test]
fn authorizes_only_passing_ip_mechanisms_of_the_right_family() {
    let ip: IpAddr = "51.79.43.241".parse().unwrap();
    assert!(authorizes("ip4:51.79.43.241", ip));
    assert!(authorizes("+IP4:51.79.43.0/24", ip));
    assert!(!authorizes("-ip4:51.79.43.241", ip));
    assert!(!authorizes("~ip4:51.79.43.241", ip));
    assert!(!authorizes("ip6:51.79.43.241", ip));
    assert!(!authorizes("a:51.79.43.241", ip));
}

#[test]
fn parses_tag_lists_leniently_about_white_space() {
    assert_eq!(
        tag_list(" v=DKIM1 ;k = rsa;; p=AB CD ;"),
        [("v", "DKIM1"), ("k", "rsa"), ("p", "AB CD")]
    );
    assert_eq!(tag_list("p=a=b"), [("p", "a=b")]);
    assert!(tag_list("no tags here").is_empty());
}

#[test]
fn recognises_dmarc_records_by_their_first_tag() {
    for yes in ["v=DMARC1; p=none", "V = DMARC1;p=reject", "v=DMARC1"] {
        assert!(is_dmarc(yes), "{yes}");
    }
    for no in [
        "v=dmarc1; p=none",
        "p=none; v=DMARC1",
        "v=DMARC2; p=none",
        "",
    ] {
        assert!(!is_dmarc(no), "{no}");
    }
}

#[test]
fn names_kinds_and_statuses_as_the_wire_does() {
    let kinds = [RecordKind::Spf, RecordKind::Dkim, RecordKind::Dmarc].map(RecordKind::as_str);
    assert_eq!(kinds, ["SPF", "DKIM", "DMARC"]);
    let statuses = [
        CheckStatus::Ok,
        CheckStatus::Missing,
        CheckStatus::Mismatch,
        CheckStatus::Error,
    ]
    .map(CheckStatus::as_str);
    assert_eq!(statuses, ["ok", "missing", "mismatch", "error"]);
}
