use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mockall::predicate::eq;

use super::*;
use crate::Selector;
use crate::lifecycle::{KeyRecord, KeyState};
use crate::ports::clock::SystemClock;
use crate::ports::dns::{MockDns, TxtRecord};
use crate::ports::domain_connect::{MockApplyUrlSigner, MockHttpsFetcher};
use crate::ports::store::{DomainDetail, MockDomainStore, StoredDomain};
use crate::usecases::fixtures::{org, policy};
use crate::usecases::verify::KeyPolicy;

const SETTINGS: &str = r#"{"providerId":"dns.example","providerName":"Example DNS",
  "urlSyncUX":"https://connect.dns.example","urlAPI":"https://api.dns.example/dc"}"#;

fn detail(domain: &str, inbound: bool) -> DomainDetail {
    let mut stored = StoredDomain::new(
        DomainName::parse(domain).unwrap(),
        org(),
        Selector::new("s1").unwrap(),
        "MIIBkey".into(),
        inbound,
        Utc::now(),
    );
    stored.zone = Some(DomainName::parse("example.com").unwrap());
    DomainDetail {
        domain: stored,
        senders: Vec::new(),
        keys: vec![KeyRecord {
            selector: Selector::new("s1").unwrap(),
            state: KeyState::Active,
            public_key: "MIIB+key/=".into(),
            created_at: Utc::now(),
            activated_at: Some(Utc::now()),
            retired_at: None,
            revoked_at: None,
        }],
    }
}

fn read(detail: Option<DomainDetail>) -> ReadDomains {
    let mut store = MockDomainStore::new();
    store
        .expect_domain_detail()
        .returning(move |_, _| Ok(detail.clone()));
    ReadDomains::new(
        Arc::new(store),
        policy(),
        KeyPolicy::default(),
        Arc::new(SystemClock),
    )
}

/// `_domainconnect.example.com` → `api.dns.example`; every host resolves to a public
/// address.
fn dns(domainconnect: Option<&'static str>) -> MockDns {
    let mut dns = MockDns::new();
    dns.expect_txt()
        .with(eq("_domainconnect.example.com"))
        .returning(move |_| match domainconnect {
            Some(host) => Ok(vec![TxtRecord(vec![host.as_bytes().to_vec()])]),
            None => Err(DnsError::NxDomain),
        });
    dns.expect_addresses()
        .returning(|_| Ok(vec!["9.9.9.9".parse().unwrap()]));
    dns
}

fn identity() -> ServiceIdentity {
    ServiceIdentity {
        provider_id: "mail.example".into(),
        service_id: "sending-domain".into(),
        key_host: "_dck1".into(),
    }
}

fn use_case(
    detail: Option<DomainDetail>,
    dns: MockDns,
    fetcher: MockHttpsFetcher,
    signer: MockApplyUrlSigner,
) -> DomainConnect {
    DomainConnect::new(
        read(detail),
        Arc::new(dns),
        Arc::new(fetcher),
        Some(Arc::new(signer)),
        Some(identity()),
        policy(),
        Arc::new(AddressPolicy::default()),
        Duration::from_secs(2),
    )
}

/// Answers the settings and the template-support URLs.
fn provider(support: u16) -> MockHttpsFetcher {
    let mut fetcher = MockHttpsFetcher::new();
    fetcher.expect_get().returning(move |request| {
        match request.url.as_str() {
            "https://api.dns.example/v2/example.com/settings" => FetchOutcome::Answered {
                status: 200,
                body: SETTINGS.as_bytes().to_vec(),
            },
            "https://api.dns.example/dc/v2/domainTemplates/providers/mail.example/services/sending-domain" => {
                FetchOutcome::Answered { status: support, body: Vec::new() }
            }
            other => panic!("unexpected GET {other}"),
        }
    });
    fetcher
}

fn signer() -> MockApplyUrlSigner {
    let mut signer = MockApplyUrlSigner::new();
    signer
        .expect_sign()
        .times(1)
        .returning(|query| Ok(format!("sig+of/{}=", query.len())));
    signer
}

#[tokio::test]
async fn builds_the_signed_apply_url_of_a_subdomain_with_its_host_and_the_sending_group() {
    let connect = use_case(
        Some(detail("mail.example.com", false)),
        dns(Some("api.dns.example")),
        provider(200),
        signer(),
    );

    let found = connect
        .apply_url(
            &org(),
            "mail.example.com",
            "https://app.example/setup/mail.example.com?dc=1",
        )
        .await
        .unwrap();

    assert_eq!(found.provider, "Example DNS");
    let query = "domain=example.com&host=mail&dkimkey=MIIB%2Bkey%2F%3D&dkimselector=s1\
        &mxhost=inbound.sendtrim.com&spfrules=ip4%3A51.79.43.241&groupId=sending\
        &redirect_uri=https%3A%2F%2Fapp.example%2Fsetup%2Fmail.example.com%3Fdc%3D1";
    assert_eq!(
        found.apply_url,
        format!(
            "https://connect.dns.example/v2/domainTemplates/providers/mail.example/services/sending-domain/apply?{query}&key=_dck1&sig=sig%2Bof%2F{}%3D",
            query.len()
        )
    );
}

#[tokio::test]
async fn applies_the_inbound_group_too_when_inbound_is_on_and_no_host_at_the_apex() {
    let connect = use_case(
        Some(detail("example.com", true)),
        dns(Some("api.dns.example")),
        provider(200),
        signer(),
    );

    let found = connect
        .apply_url(&org(), "example.com", "https://r")
        .await
        .unwrap();

    assert!(
        found
            .apply_url
            .contains("apply?domain=example.com&dkimkey="),
        "{}",
        found.apply_url
    );
    assert!(
        found.apply_url.contains("&groupId=sending%2Cinbound&"),
        "{}",
        found.apply_url
    );
}

#[tokio::test]
async fn a_zone_without_a_domainconnect_record_is_not_supported() {
    let connect = use_case(
        Some(detail("example.com", false)),
        dns(None),
        MockHttpsFetcher::new(),
        MockApplyUrlSigner::new(),
    );

    let error = connect
        .apply_url(&org(), "example.com", "https://r")
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            ConnectError::NotSupported("no _domainconnect record")
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_provider_without_the_template_is_not_supported() {
    let connect = use_case(
        Some(detail("example.com", false)),
        dns(Some("api.dns.example")),
        provider(404),
        MockApplyUrlSigner::new(),
    );

    let error = connect
        .apply_url(&org(), "example.com", "https://r")
        .await
        .unwrap_err();

    assert!(
        matches!(error, ConnectError::NotSupported("template not supported")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_provider_at_a_private_address_is_never_asked() {
    let mut dns = MockDns::new();
    dns.expect_txt()
        .returning(|_| Ok(vec![TxtRecord(vec![b"api.dns.example".to_vec()])]));
    dns.expect_addresses()
        .returning(|_| Ok(vec!["10.0.0.7".parse().unwrap()]));
    let connect = use_case(
        Some(detail("example.com", false)),
        dns,
        MockHttpsFetcher::new(),
        MockApplyUrlSigner::new(),
    );

    let error = connect
        .apply_url(&org(), "example.com", "https://r")
        .await
        .unwrap_err();

    assert!(
        matches!(error, ConnectError::NotSupported("address not allowed")),
        "{error:?}"
    );
}

#[tokio::test]
async fn another_organizations_domain_is_not_found() {
    let connect = use_case(
        None,
        MockDns::new(),
        MockHttpsFetcher::new(),
        MockApplyUrlSigner::new(),
    );

    let error = connect
        .apply_url(&org(), "example.com", "https://r")
        .await
        .unwrap_err();

    assert!(matches!(error, ConnectError::NotFound), "{error:?}");
}

#[test]
fn the_query_names_every_variable_of_the_repositorys_template() {
    let template: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../domain-connect/domain-api.example.sending-domain.json"
    ))
    .unwrap();
    let mut variables: Vec<String> = Vec::new();
    for record in template["records"].as_array().unwrap() {
        for value in record.as_object().unwrap().values() {
            let text = value.as_str().unwrap_or_default();
            for part in text.split('%').skip(1).step_by(2) {
                if !["fqdn", "domain", "host"].contains(&part) {
                    variables.push(part.to_owned());
                }
            }
        }
    }
    variables.sort();
    variables.dedup();
    let view = read(None).view(detail("example.com", true));
    let query = apply_query(&view, &policy(), "https://r");
    let mut named: Vec<String> = query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap().to_owned())
        .filter(|name| !["domain", "host", "groupId", "redirect_uri"].contains(&name.as_str()))
        .collect();
    named.sort();
    assert_eq!(named, variables);
    let groups: Vec<&str> = template["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["groupId"].as_str().unwrap())
        .collect();
    assert!(
        groups
            .iter()
            .all(|g| [SENDING_GROUP, INBOUND_GROUP].contains(g))
    );
}

#[test]
fn encodes_all_but_the_unreserved_characters() {
    assert_eq!(encode("aZ0-._~ +/=:,%"), "aZ0-._~%20%2B%2F%3D%3A%2C%25");
}
