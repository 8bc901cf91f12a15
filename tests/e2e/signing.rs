//! `domain-api dkim sign` end to end: a domain generated over HTTP, a message signed
//! by the CLI, and the result verified by mail-auth against the record the API
//! returned, served by an in-process DNS server on 127.0.0.1.

use std::net::SocketAddr;

use dns_hickory::test_support::TestDnsServer;
use mail_auth::dkim::DkimError;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, Error, MessageAuthenticator};
use store_diesel::BackendKind;
use store_diesel::test_support::backends;

use crate::helpers::{TestApp, spawn_app};
use crate::lifecycle::{app_with, detail, rotate, verify as check_domain};

const MESSAGE: &[u8] = b"From: Billing <billing@shop.example>\r\n\
To: customer@example.net\r\n\
Subject: Your receipt\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <receipt-1@shop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Thank you for your order.\r\n";

/// Generates `shop.example` over HTTP and publishes the DKIM record the API returned
/// (name and value as given) in `dns`.
fn generate_and_publish(app: &TestApp, dns: &TestDnsServer) {
    let org = app.create_org("Shop");
    let answer = app.generate(&org, r#"{"email":"billing@shop.example"}"#);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let json = answer.json();
    let (name, value) = json.as_object().unwrap().iter().nth(1).unwrap();
    assert!(name.ends_with("._domainkey.shop.example"), "{name}");
    dns.add_txt_value(name, value.as_str().unwrap());
}

/// What mail-auth's verifier says of each DKIM-Signature in `signed`, resolving
/// through `dns` only.
pub async fn verify(dns: SocketAddr, signed: &[u8]) -> Vec<DkimResult> {
    let mut udp = ConnectionConfig::udp();
    udp.port = dns.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = dns.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        dns.ip(),
        true,
        vec![udp, tcp],
    )]);
    let authenticator = MessageAuthenticator::new(config, ResolverOpts::default()).unwrap();
    let message = AuthenticatedMessage::parse(signed).unwrap();
    authenticator
        .verify_dkim(&message)
        .await
        .into_iter()
        .map(|output| output.result().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_sign_output_verifies_against_the_record_the_api_returned() {
    for kind in backends() {
        let dns = TestDnsServer::start_in_thread();
        let app = spawn_app(kind).await;
        generate_and_publish(&app, &dns);

        let (ok, signed, stderr) =
            app.cli_with_stdin(&[], &["dkim", "sign", "--domain", "Shop.Example"], MESSAGE);

        assert!(ok, "{kind:?}: {stderr}");
        assert!(signed.starts_with(b"DKIM-Signature: v=1; a=rsa-sha256; "));
        assert!(signed.ends_with(MESSAGE), "the message follows unchanged");
        assert_eq!(
            verify(dns.addr(), &signed).await,
            [DkimResult::Pass],
            "{kind:?}"
        );

        let mut tampered = signed.clone();
        let at = tampered.len() - 4; // "order." becomes "ordes."
        tampered[at] ^= 0x01;
        let results = verify(dns.addr(), &tampered).await;
        assert!(
            matches!(
                results.as_slice(),
                [DkimResult::Neutral(Error::Dkim(
                    DkimError::FailedBodyHashMatch
                ))]
            ),
            "{kind:?}: one byte of the body changed, yet {results:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_sign_refuses_an_unknown_domain_and_a_message_without_from() {
    let dns = TestDnsServer::start_in_thread();
    let app = spawn_app(BackendKind::Sqlite).await;
    generate_and_publish(&app, &dns);

    let (ok, stdout, stderr) = app.cli_with_stdin(
        &[],
        &["dkim", "sign", "--domain", "nowhere.example"],
        MESSAGE,
    );
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("no such domain"), "{stderr}");

    let (ok, stdout, stderr) = app.cli_with_stdin(
        &[],
        &["dkim", "sign", "--domain", "shop.example"],
        b"To: customer@example.net\r\nSubject: anonymous\r\n\r\nHello\r\n",
    );
    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("no From header field"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dkim_sign_under_another_master_key_fails_without_printing_anything() {
    let dns = TestDnsServer::start_in_thread();
    let app = spawn_app(BackendKind::Sqlite).await;
    generate_and_publish(&app, &dns);

    let (ok, stdout, stderr) = app.cli_with_stdin(
        // 32 other bytes, base64: not the key the domain's key was sealed with.
        &[(
            "DOMAIN_API_MASTER_KEY",
            "b3RoZXItbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=",
        )],
        &["dkim", "sign", "--domain", "shop.example"],
        MESSAGE,
    );

    assert!(!ok);
    assert!(stdout.is_empty());
    assert!(stderr.contains("does not open"), "{stderr}");
}

/// The `s=` tag of a signed message's DKIM-Signature.
fn selector_of(signed: &[u8]) -> String {
    let text = String::from_utf8_lossy(signed);
    let header = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n", "");
    header
        .split(';')
        .map(str::trim)
        .find_map(|tag| tag.strip_prefix("s="))
        .unwrap_or_else(|| panic!("no s= tag in {header}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_signed_before_and_after_a_rotation_both_verify() {
    for kind in backends() {
        let dns = TestDnsServer::start_in_thread();
        let app = app_with(kind, &dns, &[]).await;
        let org = app.create_org("Shop");
        let answer = app.generate(&org, r#"{"email":"billing@shop.example"}"#);
        assert_eq!(answer.status, 201, "{kind:?}: {}", answer.body);
        let json = answer.json();
        let (name, value) = json.as_object().unwrap().iter().nth(1).unwrap();
        dns.add_txt_value(name, value.as_str().unwrap());

        let sign = || {
            let (ok, signed, stderr) =
                app.cli_with_stdin(&[], &["dkim", "sign", "--domain", "shop.example"], MESSAGE);
            assert!(ok, "{kind:?}: {stderr}");
            signed
        };
        let before = sign();

        let rotated = rotate(&app, &org, "shop.example");
        assert_eq!(rotated.status, 202, "{kind:?}: {}", rotated.body);
        let pending = &rotated.json()["dkim"][0];
        assert_eq!(pending["state"], "pending", "{kind:?}");
        let during = sign();
        assert_eq!(
            selector_of(&during),
            selector_of(&before),
            "{kind:?}: a pending key never signs"
        );
        dns.add_txt_value(
            pending["record"]["name"].as_str().unwrap(),
            pending["record"]["value"].as_str().unwrap(),
        );
        assert_eq!(check_domain(&app, &org, "shop.example").status, 200);
        let view = detail(&app, &org, "shop.example").json();
        assert_eq!(view["dkim"][0]["state"], "active", "{kind:?}: promoted");
        assert_eq!(view["dkim"][1]["state"], "retiring", "{kind:?}");

        let after = sign();

        assert_ne!(
            selector_of(&after),
            selector_of(&before),
            "{kind:?}: signs with the new key"
        );
        assert_eq!(
            selector_of(&after),
            pending["selector"].as_str().unwrap(),
            "{kind:?}"
        );
        for (when, signed) in [("before", &before), ("after", &after)] {
            assert_eq!(
                verify(dns.addr(), signed).await,
                [DkimResult::Pass],
                "{kind:?}: mail signed {when} the rotation, against the records published now"
            );
        }
    }
}
