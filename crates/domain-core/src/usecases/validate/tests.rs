//! Unit tests of the validate use case on mocked ports: the flow, the answers that
//! are the same for every record, and the wire names.

use mockall::predicate::eq;

use super::fixtures::*;
use super::*;
use crate::ports::InfraError;
use crate::ports::dns::MockDns;
use crate::ports::store::MockDomainStore;
use crate::usecases::fixtures::org;

// --- The flow ----------------------------------------------------------------------

#[tokio::test]
async fn reports_verified_when_every_record_is_published_correctly() {
    let report = validate_with_inbound(CustomerZone::correct(), true).await;

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
    dns.expect_nameservers()
        .returning(|_| Err(DnsError::NoRecords));
    dns.expect_soa()
        .with(eq(idn))
        .times(1)
        .returning(|_| Ok(()));

    let report = use_case(store, dns)
        .execute(&org(), "bücher.example")
        .await
        .unwrap();

    assert_eq!(report.domain, idn);
    assert_eq!(
        report.records[1].name,
        "s1._domainkey.xn--bcher-kva.example"
    );
    assert_eq!(report.zone.name().as_ascii(), idn);
    assert_eq!(report.records[1].host, "s1._domainkey");
}

#[tokio::test]
async fn records_are_placed_in_the_zone_the_soa_lookup_finds() {
    let sub = "mail.example.com";
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(move |_, _| Ok(Some(detail(sub, false))));
    let mut dns = MockDns::new();
    dns.expect_txt().returning(|_| Err(DnsError::NoRecords));
    dns.expect_mx().returning(|_| Err(DnsError::NoRecords));
    dns.expect_nameservers()
        .returning(|_| Err(DnsError::NoRecords));
    // A zone of its own: hosts relative to the sender domain.
    dns.expect_soa()
        .with(eq(sub))
        .times(1)
        .returning(|_| Ok(()));
    dns.expect_soa()
        .with(eq(DOMAIN))
        .times(1)
        .returning(|_| Ok(()));

    let report = use_case(store, dns).execute(&org(), sub).await.unwrap();

    assert_eq!(report.zone.name().as_ascii(), sub);
    assert_eq!(report.zone.source(), crate::ZoneSource::Soa);
    let hosts: Vec<&str> = report.records.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["@", "s1._domainkey", "_dmarc"]);
    assert_eq!(report.ttl, crate::ZONE_TTL);
}

#[tokio::test]
async fn a_failed_soa_lookup_falls_back_to_the_registrable_domain() {
    let sub = "mail.example.com";
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(move |_, _| Ok(Some(detail(sub, false))));
    let mut dns = MockDns::new();
    dns.expect_txt().returning(|_| Err(DnsError::NoRecords));
    dns.expect_mx().returning(|_| Err(DnsError::NoRecords));
    dns.expect_nameservers()
        .returning(|_| Err(DnsError::NoRecords));
    dns.expect_soa().returning(|_| Err(DnsError::ServFail));

    let report = use_case(store, dns).execute(&org(), sub).await.unwrap();

    assert_eq!(report.zone.name().as_ascii(), DOMAIN);
    assert_eq!(report.zone.source(), crate::ZoneSource::Registrable);
    let hosts: Vec<&str> = report.records.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, ["mail", "s1._domainkey.mail", "_dmarc.mail"]);
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

#[tokio::test]
async fn join_all_polls_every_future_together_and_keeps_their_order() {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let (last_tx, last_rx) = tokio::sync::oneshot::channel();
    // The first waits for the last: awaited in turn, the first would wait forever.
    let futures: Vec<std::pin::Pin<Box<dyn Future<Output = u8> + Send>>> = vec![
        Box::pin(async { first_rx.await.unwrap() }),
        Box::pin(async {
            first_tx.send(1).unwrap();
            last_rx.await.unwrap()
        }),
        Box::pin(async {
            last_tx.send(2).unwrap();
            3
        }),
    ];

    let joined = tokio::time::timeout(std::time::Duration::from_secs(5), join_all(futures))
        .await
        .expect("join_all polls every future");

    assert_eq!(joined, vec![1, 2, 3]);
}

// --- DNS outcomes, the same for every record --------------------------------------

#[tokio::test]
async fn reports_missing_when_the_name_does_not_exist() {
    let report =
        validate(CustomerZone::correct().with_txt(DMARC_NAME, Err(DnsError::NxDomain))).await;

    let dmarc = check(&report, RecordKind::Dmarc);
    assert_eq!(dmarc.status, CheckStatus::Missing);
    assert_eq!(reason(dmarc), "No TXT record found at _dmarc.example.com.");
    assert!(!report.verified);
}

#[tokio::test]
async fn reports_missing_when_the_name_has_no_txt_records() {
    let report = validate(CustomerZone::correct().with_txt(DOMAIN, Err(DnsError::NoRecords))).await;

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
        let report = validate(CustomerZone::correct().with_txt(DOMAIN, Err(failure))).await;

        let spf = check(&report, RecordKind::Spf);
        assert_eq!(spf.status, CheckStatus::Error);
        assert_eq!(
            reason(spf),
            format!("The DNS lookup for example.com failed ({outcome}); try again later.")
        );
        assert!(!report.verified);
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
