//! Tests of the DMARC check: through the use case on a mocked zone, and of its parser.

use super::*;
use crate::usecases::validate::CheckStatus;
use crate::usecases::validate::fixtures::*;

async fn dmarc_check(records: &[&str]) -> RecordCheck {
    let report = validate(CustomerZone::correct().with_txt(DMARC_NAME, txt(records))).await;
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
