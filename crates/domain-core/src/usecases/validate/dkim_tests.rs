//! Tests of the DKIM check: through the use case on a mocked zone, and of the tag-list
//! parser.

use super::*;
use crate::ports::dns::{DnsError, TxtRecord};
use crate::usecases::validate::CheckStatus;
use crate::usecases::validate::fixtures::*;

async fn dkim_check(zone: CustomerZone) -> RecordCheck {
    let report = validate(zone).await;
    check(&report, RecordKind::Dkim).clone()
}

fn dkim_published(values: &[&str]) -> CustomerZone {
    CustomerZone::correct().with_txt(DKIM_NAME, txt(values))
}

#[tokio::test]
async fn accepts_a_key_split_into_several_strings() {
    let value = dkim_value(&key());
    let (first, rest) = value.split_at(255);
    let record = TxtRecord(vec![first.as_bytes().to_vec(), rest.as_bytes().to_vec()]);

    let dkim = dkim_check(CustomerZone::correct().with_txt(DKIM_NAME, Ok(vec![record]))).await;

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
    let zone = CustomerZone::correct()
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
    let zone = CustomerZone::correct()
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
    let dkim =
        dkim_check(CustomerZone::correct().with_txt(DKIM_NAME, Err(DnsError::Timeout))).await;

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

#[test]
fn parses_tag_lists_leniently_about_white_space() {
    assert_eq!(
        tag_list(" v=DKIM1 ;k = rsa;; p=AB CD ;"),
        [("v", "DKIM1"), ("k", "rsa"), ("p", "AB CD")]
    );
    assert_eq!(tag_list("p=a=b"), [("p", "a=b")]);
    assert!(tag_list("no tags here").is_empty());
}
