//! The change-set on a mocked zone: the cases a customer's DNS actually has.

use super::*;
use crate::usecases::fixtures::policy;
use crate::usecases::validate::fixtures::*;
use crate::usecases::validate::{RecordKind, ValidationReport};

const GOOGLE: &str = "v=spf1 include:_spf.google.com ~all";
const GOOGLE_INCLUDE: &str = "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com include:_netblocks3.google.com ~all";
const M365: &str = "v=spf1 include:spf.protection.outlook.com -all";

fn change(report: &ValidationReport, kind: RecordKind) -> ChangeSet {
    check(report, kind).change.clone().expect("a change-set")
}

/// The zone with `spf` at the apex and `extra` TXT records elsewhere.
async fn with_spf(spf: &[&str], extra: &[(&str, &[&str])]) -> ValidationReport {
    let mut zone = CustomerZone::correct().with_txt(DOMAIN, txt(spf));
    for (name, values) in extra {
        zone = zone.with_txt(name, txt(values));
    }
    validate(zone).await
}

fn google_zone() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("_spf.google.com", &[GOOGLE_INCLUDE][..]),
        (
            "_netblocks.google.com",
            &["v=spf1 ip4:35.190.247.0/24 ~all"][..],
        ),
        (
            "_netblocks2.google.com",
            &["v=spf1 ip6:2001:4860:4000::/36 ~all"][..],
        ),
        (
            "_netblocks3.google.com",
            &["v=spf1 ip4:172.217.0.0/19 ~all"][..],
        ),
    ]
}

#[tokio::test]
async fn no_spf_record_adds_ours() {
    let report = with_spf(&["google-site-verification=abc"], &[]).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.action, ChangeAction::Add);
    assert_eq!(spf.suggested_value, SPF);
    assert!(spf.existing.is_empty());
    assert_eq!(spf.lookups, Some(0));
}

#[tokio::test]
async fn our_record_needs_nothing() {
    let report = validate(CustomerZone::correct()).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(
        (spf.action, spf.suggested_value.as_str()),
        (ChangeAction::None, SPF)
    );
    assert!(spf.existing.is_empty());
    let dmarc = change(&report, RecordKind::Dmarc);
    assert_eq!(
        (dmarc.action, dmarc.suggested_value.as_str()),
        (ChangeAction::Keep, DMARC)
    );
    assert!(dmarc.existing.is_empty());
}

#[tokio::test]
async fn google_workspace_is_merged_keeping_its_include_and_softfail() {
    let report = with_spf(&[GOOGLE], &google_zone()).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.action, ChangeAction::Replace);
    assert_eq!(spf.existing, [GOOGLE]);
    assert_eq!(
        spf.suggested_value,
        "v=spf1 include:_spf.google.com ip4:51.79.43.241 ~all"
    );
    // include:_spf.google.com (1) + its three includes (3).
    assert_eq!(spf.lookups, Some(4));
    assert_eq!(spf.warning, None);
}

#[tokio::test]
async fn microsoft_365_is_merged_keeping_its_hardfail() {
    let report = with_spf(
        &[M365],
        &[(
            "spf.protection.outlook.com",
            &["v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 -all"][..],
        )],
    )
    .await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(
        spf.suggested_value,
        "v=spf1 include:spf.protection.outlook.com ip4:51.79.43.241 -all"
    );
    assert_eq!(spf.lookups, Some(1));
}

#[tokio::test]
async fn two_spf_records_become_one_and_the_warning_names_the_one_to_delete() {
    let report = with_spf(
        &[GOOGLE, "v=spf1 include:mailgun.org -all"],
        &[
            google_zone().as_slice(),
            &[("mailgun.org", &["v=spf1 ip4:198.61.254.0/23 -all"][..])],
        ]
        .concat(),
    )
    .await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.action, ChangeAction::Replace);
    assert_eq!(
        spf.suggested_value,
        "v=spf1 include:_spf.google.com include:mailgun.org ip4:51.79.43.241 ~all"
    );
    let warning = spf.warning.unwrap();
    assert!(
        warning.contains(
            "delete v=spf1 include:mailgun.org -all and replace v=spf1 include:_spf.google.com ~all"
        ),
        "{warning}"
    );
    // Google's four, and include:mailgun.org.
    assert_eq!(spf.lookups, Some(5));
}

#[tokio::test]
async fn a_redirect_stays_last_and_is_counted_through() {
    let report = with_spf(
        &["v=spf1 redirect=_spf.example.net"],
        &[("_spf.example.net", &["v=spf1 a mx -all"][..])],
    )
    .await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(
        spf.suggested_value,
        "v=spf1 ip4:51.79.43.241 redirect=_spf.example.net"
    );
    // redirect (1) + a (1) + mx (1).
    assert_eq!(spf.lookups, Some(3));
}

#[tokio::test]
async fn a_chain_of_nine_lookups_passes_and_eleven_is_warned_about() {
    let nine: Vec<(String, Vec<String>)> = (0..8)
        .map(|i| {
            let next = if i < 7 {
                format!("v=spf1 include:c{}.example.net -all", i + 1)
            } else {
                "v=spf1 a -all".to_owned()
            };
            (format!("c{i}.example.net"), vec![next])
        })
        .collect();
    let owned: Vec<(&str, Vec<&str>)> = nine
        .iter()
        .map(|(n, v)| (n.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    let extra: Vec<(&str, &[&str])> = owned.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let report = with_spf(&["v=spf1 include:c0.example.net ~all"], &extra).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.lookups, Some(9));
    assert_eq!(spf.warning, None);

    let report = with_spf(&["v=spf1 include:c0.example.net a mx ~all"], &extra).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.lookups, Some(11));
    assert!(spf.warning.unwrap().contains("needs 11 DNS lookups"));
}

#[tokio::test]
async fn a_loop_is_counted_once_and_noted() {
    let report = with_spf(
        &["v=spf1 include:loop.example.net -all"],
        &[(
            "loop.example.net",
            &["v=spf1 include:loop.example.net -all"][..],
        )],
    )
    .await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.lookups, Some(2));
    assert!(spf.warning.unwrap().contains("more than once"));
}

#[tokio::test]
async fn plus_all_is_kept_as_theirs_with_a_warning() {
    let report = with_spf(&["v=spf1 mx +all"], &[]).await;
    let spf = change(&report, RecordKind::Spf);
    assert_eq!(spf.suggested_value, "v=spf1 mx ip4:51.79.43.241 +all");
    assert!(spf.warning.unwrap().contains("+all"));
}

#[tokio::test]
async fn an_existing_dmarc_record_is_kept() {
    let theirs = "v=DMARC1; p=reject; rua=mailto:dmarc@corp.example";
    let report = validate(CustomerZone::correct().with_txt(DMARC_NAME, txt(&[theirs]))).await;
    let dmarc = change(&report, RecordKind::Dmarc);
    assert_eq!(dmarc.action, ChangeAction::Keep);
    assert_eq!(dmarc.suggested_value, theirs);
    assert_eq!(dmarc.existing, [theirs]);
    let none =
        validate(CustomerZone::correct().with_txt(DMARC_NAME, txt(&["something else"]))).await;
    let dmarc = change(&none, RecordKind::Dmarc);
    assert_eq!(
        (dmarc.action, dmarc.suggested_value.as_str()),
        (ChangeAction::Add, DMARC)
    );
}

#[test]
fn the_merge_keeps_their_terms_once_and_adds_only_what_is_missing() {
    let policy = policy();
    assert_eq!(
        merge_spf(&["v=spf1 ip4:51.79.43.241 include:x.example ~all"], &policy),
        "v=spf1 ip4:51.79.43.241 include:x.example ~all"
    );
    assert_eq!(
        merge_spf(
            &["v=spf1 a", "v=spf1 a mx ?all exp=explain.example"],
            &policy
        ),
        "v=spf1 a mx ip4:51.79.43.241 ?all exp=explain.example"
    );
}

#[tokio::test]
async fn the_report_a_background_check_judges_by_has_no_change_set_and_follows_no_include() {
    // A strict zone: a lookup of _spf.google.com would fail the test.
    let zone = CustomerZone::correct().with_txt(DOMAIN, txt(&[GOOGLE]));
    let report = use_case(untouched_store(), zone.into_dns())
        .report(&detail(DOMAIN, false).domain)
        .await;
    assert!(report.records.iter().all(|r| r.change.is_none()));
}
