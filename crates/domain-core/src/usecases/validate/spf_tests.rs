//! Tests of the SPF check: through the use case on a mocked zone, and of its parsers.

use std::net::IpAddr;

use super::*;
use crate::usecases::validate::CheckStatus;
use crate::usecases::validate::fixtures::*;

async fn spf_check(records: &[&str]) -> RecordCheck {
    let report = validate(
        CustomerZone::correct()
            .with_txt(DOMAIN, txt(records))
            .others_nxdomain(),
    )
    .await;
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
fn authorizes_only_passing_ip_mechanisms_of_the_right_family() {
    let ip: IpAddr = "51.79.43.241".parse().unwrap();
    assert!(authorizes("ip4:51.79.43.241", ip));
    assert!(authorizes("+IP4:51.79.43.0/24", ip));
    assert!(!authorizes("-ip4:51.79.43.241", ip));
    assert!(!authorizes("~ip4:51.79.43.241", ip));
    assert!(!authorizes("ip6:51.79.43.241", ip));
    assert!(!authorizes("a:51.79.43.241", ip));
}
