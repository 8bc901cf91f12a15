//! Tests of the inbound (MX) check through the use case on a mocked zone.

use crate::ports::dns::DnsError;
use crate::usecases::validate::CheckStatus;
use crate::usecases::validate::fixtures::*;

#[tokio::test]
async fn reports_inbound_ready_when_an_mx_points_at_our_relay() {
    let zone = CustomerZone::correct().with_mx(mx(&["aspmx.l.google.com.", "SMTP.sendtrim.com."]));

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
        let report = validate(CustomerZone::correct().with_mx(Err(failure))).await;

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
    let report = validate(CustomerZone::correct().with_mx(mx(&["aspmx.l.google.com."]))).await;

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
    let report = validate(CustomerZone::correct().with_mx(Err(DnsError::ServFail))).await;

    assert_eq!(report.inbound.status, CheckStatus::Error);
    assert!(!report.inbound.mx_ready);
}

#[tokio::test]
async fn is_not_verified_when_inbound_is_enabled_but_mx_points_elsewhere() {
    let zone = CustomerZone::correct().with_mx(mx(&["aspmx.l.google.com."]));

    let report = validate_with_inbound(zone, true).await;

    assert!(!report.verified);
}

#[tokio::test]
async fn is_verified_without_our_mx_when_inbound_is_disabled() {
    let zone = CustomerZone::correct().with_mx(mx(&["aspmx.l.google.com."]));

    let report = validate_with_inbound(zone, false).await;

    assert!(!report.inbound.enabled);
    assert!(report.verified);
}
