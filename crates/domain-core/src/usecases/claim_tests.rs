use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::Selector;
use crate::lifecycle::{KeyRecord, KeyState};
use crate::ownership::CreationLimits;
use crate::ports::claims::{Claim, MockClaimStore};
use crate::ports::clock::SystemClock;
use crate::ports::dns::{DnsError, Dnssec, MockDns, Nameserver, TxtRecord, ValidatedTxt};
use crate::ports::keys::{DkimKey, MockKeyGenerator, SealedKey};
use crate::ports::lifecycle::MockKeyGenerations;
use crate::ports::store::{DomainDetail, MockDomainStore, StoredDomain};
use crate::usecases::fixtures::{org, policy};
use crate::usecases::verify::{KeyPolicy, VerifySchedule};

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn name() -> DomainName {
    DomainName::parse("example.com").unwrap()
}

fn claim() -> Claim {
    Claim {
        domain: name(),
        token: "tok".into(),
        expires_at: Utc::now() + chrono::Duration::days(7),
    }
}

fn owned_detail() -> DomainDetail {
    DomainDetail {
        domain: StoredDomain::new(
            name(),
            org(),
            Selector::new("fresh").unwrap(),
            "MIIBfresh".into(),
            false,
            Utc::now(),
        ),
        senders: Vec::new(),
        keys: vec![KeyRecord {
            selector: Selector::new("fresh").unwrap(),
            state: KeyState::Active,
            public_key: "MIIBfresh".into(),
            created_at: Utc::now(),
            activated_at: Some(Utc::now()),
            retired_at: None,
            revoked_at: None,
        }],
    }
}

fn reads(detail: Option<DomainDetail>) -> MockDomainStore {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(move |_, _| Ok(detail.clone()));
    store
}

/// The zone `example.com` is found, but none of its nameservers: the resolver is
/// asked, as validate asks it.
fn without_nameservers(mut dns: MockDns) -> MockDns {
    dns.expect_soa()
        .withf(|name| name == "example.com")
        .returning(|_| Ok(()));
    dns.expect_nameservers()
        .withf(|zone| zone == "example.com")
        .returning(|_| Err(DnsError::ServFail));
    unsigned(dns)
}

/// `example.com` publishes no DNSKEY: nothing to validate, no validating lookup.
fn unsigned(mut dns: MockDns) -> MockDns {
    dns.expect_signed().returning(|_| Ok(false));
    dns.expect_txt_validated().never();
    dns
}

fn txt(values: &'static [&'static str]) -> MockDns {
    let mut dns = without_nameservers(MockDns::new());
    dns.expect_txt()
        .withf(|name| name == "_domain-api-claim.example.com")
        .returning(move |_| {
            Ok(values
                .iter()
                .map(|v| TxtRecord(vec![v.as_bytes().to_vec()]))
                .collect())
        });
    dns
}

fn no_keys() -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().never();
    keys
}

fn one_key() -> MockKeyGenerator {
    let mut keys = MockKeyGenerator::new();
    keys.expect_generate().times(1).returning(|_| {
        Ok(DkimKey {
            selector: Selector::new("fresh").unwrap(),
            public_key: "MIIBfresh".into(),
            sealed_private_key: SealedKey(vec![1]),
        })
    });
    keys
}

fn use_case(
    claims: MockClaimStore,
    dns: MockDns,
    keys: MockKeyGenerator,
    read: MockDomainStore,
) -> ClaimDomain {
    let clock = Arc::new(SystemClock);
    ClaimDomain::new(
        Arc::new(claims),
        ValidateDomain::new(Arc::new(MockDomainStore::new()), Arc::new(dns), policy()),
        Arc::new(keys),
        ReadDomains::new(
            Arc::new(read),
            policy(),
            KeyPolicy::default(),
            clock.clone(),
        ),
        clock,
        Arc::new(VerifySchedule::default()),
        WEEK,
    )
}

#[tokio::test]
async fn opening_a_claim_hands_out_the_record_and_a_week_to_publish_it() {
    let mut claims = MockClaimStore::new();
    claims
        .expect_open_claim()
        .withf(|o, d, now, expires| {
            *o == org()
                && d.as_ascii() == "example.com"
                && *expires - *now == chrono::Duration::days(7)
        })
        .returning(|_, d, _, expires| {
            Ok(Claim {
                domain: d.clone(),
                token: "tok".into(),
                expires_at: expires,
            })
        });
    let challenge = use_case(claims, MockDns::new(), no_keys(), MockDomainStore::new())
        .open(&org(), "EXAMPLE.com")
        .await
        .unwrap();
    assert_eq!(challenge.record_name, "_domain-api-claim.example.com");
    assert_eq!(challenge.record_value, "domain-api-claim=tok");
}

#[tokio::test]
async fn opening_reports_a_free_or_own_domain_and_refuses_a_bad_name_before_the_store() {
    for (store_says, expected) in [
        (OpenClaimError::NotFound, "NotFound"),
        (OpenClaimError::OwnDomain, "OwnDomain"),
    ] {
        let mut claims = MockClaimStore::new();
        let mut answer = Some(store_says);
        claims
            .expect_open_claim()
            .returning(move |_, _, _, _| Err(answer.take().unwrap()));
        let error = use_case(claims, MockDns::new(), no_keys(), MockDomainStore::new())
            .open(&org(), "example.com")
            .await
            .unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{error:?}");
    }
    let mut claims = MockClaimStore::new();
    claims.expect_open_claim().never();
    let error = use_case(claims, MockDns::new(), no_keys(), MockDomainStore::new())
        .open(&org(), "not a domain")
        .await
        .unwrap_err();
    assert!(matches!(error, ClaimError::InvalidDomain(ref raw) if raw == "not a domain"));
}

#[tokio::test]
async fn a_missing_or_wrong_record_transfers_nothing_and_draws_no_key() {
    for (dns, label) in [
        (
            txt(&["domain-api-claim=someone-else", "v=spf1 -all"]),
            "wrong value",
        ),
        (
            {
                let mut dns = without_nameservers(MockDns::new());
                dns.expect_txt().returning(|_| Err(DnsError::NxDomain));
                dns
            },
            "no record",
        ),
    ] {
        let mut claims = MockClaimStore::new();
        claims
            .expect_find_claim()
            .returning(|_, _, _| Ok(Some(claim())));
        claims.expect_transfer().never();
        let error = use_case(claims, dns, no_keys(), MockDomainStore::new())
            .verify(&org(), "example.com")
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClaimError::RecordNotFound(ref n) if n == "_domain-api-claim.example.com"),
            "{label}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_published_record_transfers_the_domain_with_a_new_key() {
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims
        .expect_transfer()
        .withf(|o, c, key, now, first, max| {
            *max == u32::MAX
                && *o == org()
                && c.token == "tok"
                && key.selector.as_str() == "fresh"
                && *first > *now
                && *first - *now <= chrono::Duration::seconds(66)
        })
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(()));
    let view = use_case(
        claims,
        txt(&["v=spf1 -all", "domain-api-claim=tok"]),
        one_key(),
        reads(Some(owned_detail())),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap();
    assert_eq!(view.domain.as_ascii(), "example.com");
}

#[tokio::test]
async fn without_an_open_claim_verify_says_whether_the_domain_is_already_ours() {
    for (detail, own) in [(Some(owned_detail()), true), (None, false)] {
        let mut claims = MockClaimStore::new();
        claims.expect_find_claim().returning(|_, _, _| Ok(None));
        let mut dns = MockDns::new();
        dns.expect_txt().never();
        let error = use_case(claims, dns, no_keys(), reads(detail))
            .verify(&org(), "example.com")
            .await
            .unwrap_err();
        if own {
            assert!(matches!(error, ClaimError::OwnDomain), "{error:?}");
        } else {
            assert!(matches!(error, ClaimError::NoOpenClaim), "{error:?}");
        }
    }
}

#[tokio::test]
async fn a_claim_lost_to_a_racing_change_is_no_longer_open() {
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims
        .expect_transfer()
        .returning(|_, _, _, _, _, _| Err(TransferError::NoOpenClaim));
    let error = use_case(
        claims,
        txt(&["domain-api-claim=tok"]),
        one_key(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    assert!(matches!(error, ClaimError::NoOpenClaim), "{error:?}");
}

fn budget(latest: Vec<DateTime<Utc>>, limits: CreationLimits) -> KeyBudget {
    let mut store = MockKeyGenerations::new();
    store
        .expect_latest_key_generations()
        .returning(move |_, _| Ok(latest.clone()));
    KeyBudget::new(Arc::new(store), limits)
}

/// A claim generated a key outside the per-minute budget: it now draws on the one
/// new domains and rotations draw on, and is refused before a key is generated.
#[tokio::test]
async fn a_claim_past_the_key_budget_draws_no_key() {
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims.expect_transfer().never();
    let now = Utc::now();
    let limits = CreationLimits {
        max_domains: 10,
        per_minute: 2,
        max_senders_per_domain: 1000,
    };
    let latest = vec![
        now - chrono::Duration::seconds(1),
        now - chrono::Duration::seconds(30),
    ];
    let error = use_case(
        claims,
        txt(&["domain-api-claim=tok"]),
        no_keys(),
        MockDomainStore::new(),
    )
    .with_key_budget(budget(latest, limits))
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    match error {
        ClaimError::TooManyKeys(wait) => assert!(
            (29..=31).contains(&wait.as_secs()),
            "the older of the two frees a slot in about 30 s: {wait:?}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A claim took an organization past its domain limit (5 → 6): the store is asked
/// to refuse it at the limit, and says so.
#[tokio::test]
async fn a_claim_past_the_domain_limit_is_refused_and_transfers_nothing() {
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims
        .expect_transfer()
        .withf(|_, _, _, _, _, max| *max == 5)
        .times(1)
        .returning(|_, _, _, _, _, _| Err(TransferError::DomainLimit));
    let limits = CreationLimits {
        max_domains: 5,
        per_minute: 60,
        max_senders_per_domain: 1000,
    };
    let error = use_case(
        claims,
        txt(&["domain-api-claim=tok"]),
        one_key(),
        MockDomainStore::new(),
    )
    .with_key_budget(budget(Vec::new(), limits))
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    assert!(matches!(error, ClaimError::DomainLimit), "{error:?}");
}

/// `example.com` served by ns1–ns3 (127.0.0.2–4); `serves(address)` says whether
/// that nameserver serves the claim record. The resolver is never asked for it.
fn at_nameservers(serves: fn(std::net::IpAddr) -> Result<bool, DnsError>) -> MockDns {
    unsigned(signed_at_nameservers(serves))
}

/// As [`at_nameservers`], the zone's DNSSEC standing left to the test.
fn signed_at_nameservers(serves: fn(std::net::IpAddr) -> Result<bool, DnsError>) -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_soa()
        .withf(|name| name == "example.com")
        .returning(|_| Ok(()));
    dns.expect_nameservers()
        .withf(|zone| zone == "example.com")
        .returning(|_| {
            Ok((2..=4)
                .map(|i| Nameserver {
                    host: format!("ns{}.example.com", i - 1),
                    addresses: vec![std::net::IpAddr::from([127, 0, 0, i])],
                })
                .collect())
        });
    dns.expect_txt_at()
        .withf(|_, name| name == "_domain-api-claim.example.com")
        .returning(move |server, _| match serves(server)? {
            true => Ok(vec![TxtRecord(vec![b"domain-api-claim=tok".to_vec()])]),
            false => Err(DnsError::NxDomain),
        });
    dns.expect_txt().never();
    dns
}

fn open_claim_never_transferred() -> MockClaimStore {
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims.expect_transfer().never();
    claims
}

#[tokio::test]
async fn a_lagging_secondary_holds_the_transfer_back_and_is_named() {
    let dns = at_nameservers(|server| Ok(server != std::net::IpAddr::from([127, 0, 0, 4])));
    let error = use_case(
        open_claim_never_transferred(),
        dns,
        no_keys(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    match error {
        ClaimError::NotOnEveryNameserver { name, tally } => {
            assert_eq!(name, "_domain-api-claim.example.com");
            assert_eq!(tally.summary(), "published on 2 of 3 nameservers");
            assert_eq!(tally.lagging, ["ns3.example.com (127.0.0.4)"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_record_on_no_nameserver_is_not_found_and_the_resolver_is_not_asked() {
    // The resolver is not asked (`at_nameservers` expects no `txt`): the
    // nameservers answered.
    let dns = at_nameservers(|_| Ok(false));
    let error = use_case(
        open_claim_never_transferred(),
        dns,
        no_keys(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    assert!(
        matches!(error, ClaimError::RecordNotFound(ref n) if n == "_domain-api-claim.example.com"),
        "{error:?}"
    );
}

#[tokio::test]
async fn nameservers_that_do_not_answer_prove_nothing() {
    let dns = at_nameservers(|_| Err(DnsError::Timeout));
    let error = use_case(
        open_claim_never_transferred(),
        dns,
        no_keys(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    assert!(matches!(error, ClaimError::RecordNotFound(_)), "{error:?}");
}

#[tokio::test]
async fn served_by_every_answering_nameserver_the_domain_is_transferred() {
    // ns3 does not answer: it holds nothing back (as in validate).
    let dns = at_nameservers(|server| {
        if server == std::net::IpAddr::from([127, 0, 0, 4]) {
            Err(DnsError::Timeout)
        } else {
            Ok(true)
        }
    });
    let mut claims = MockClaimStore::new();
    claims
        .expect_find_claim()
        .returning(|_, _, _| Ok(Some(claim())));
    claims
        .expect_transfer()
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(()));
    let view = use_case(claims, dns, one_key(), reads(Some(owned_detail())))
        .verify(&org(), "example.com")
        .await
        .unwrap();
    assert_eq!(view.domain.as_ascii(), "example.com");
}

/// `example.com` is signed (DNSKEY at its apex); the validating lookup answers
/// `dnssec` with the claim's value.
fn signed(dnssec: Dnssec) -> MockDns {
    let mut dns = signed_at_nameservers(|_| Ok(true));
    dns.expect_signed()
        .withf(|zone| zone == "example.com")
        .returning(|_| Ok(true));
    dns.expect_txt_validated()
        .withf(|name| name == "_domain-api-claim.example.com")
        .times(1)
        .returning(move |_| {
            Ok(ValidatedTxt {
                dnssec,
                records: vec![TxtRecord(vec![b"domain-api-claim=tok".to_vec()])],
            })
        });
    dns
}

#[tokio::test]
async fn in_a_signed_zone_a_bogus_answer_transfers_nothing() {
    let error = use_case(
        open_claim_never_transferred(),
        signed(Dnssec::Bogus),
        no_keys(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    match error {
        ClaimError::NotValidated { name, zone } => {
            assert_eq!(name, "_domain-api-claim.example.com");
            assert_eq!(zone, "example.com");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn in_a_signed_zone_a_validated_answer_transfers_the_domain() {
    for dnssec in [Dnssec::Secure, Dnssec::Insecure] {
        let mut claims = MockClaimStore::new();
        claims
            .expect_find_claim()
            .returning(|_, _, _| Ok(Some(claim())));
        claims
            .expect_transfer()
            .times(1)
            .returning(|_, _, _, _, _, _| Ok(()));
        let view = use_case(
            claims,
            signed(dnssec),
            one_key(),
            reads(Some(owned_detail())),
        )
        .verify(&org(), "example.com")
        .await
        .unwrap();
        assert_eq!(view.domain.as_ascii(), "example.com", "{dnssec:?}");
    }
}

#[tokio::test]
async fn in_a_signed_zone_a_failed_dnskey_lookup_transfers_nothing() {
    let mut dns = signed_at_nameservers(|_| Ok(true));
    dns.expect_signed().returning(|_| Err(DnsError::Timeout));
    dns.expect_txt_validated().never();
    let error = use_case(
        open_claim_never_transferred(),
        dns,
        no_keys(),
        MockDomainStore::new(),
    )
    .verify(&org(), "example.com")
    .await
    .unwrap_err();
    assert!(
        matches!(error, ClaimError::NotValidated { .. }),
        "{error:?}"
    );
}
