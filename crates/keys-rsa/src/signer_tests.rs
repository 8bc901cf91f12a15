//! Signatures checked by mail-auth's verifier, which fetches the key's TXT record
//! from an authoritative DNS server on 127.0.0.1 as a receiving MTA would.

use std::net::SocketAddr;

use dns_hickory::test_support::TestDnsServer;
use domain_core::DkimKey;
use mail_auth::dkim::DkimError;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, Error, MessageAuthenticator};

use super::*;
use crate::{MasterKey, generate_key_blocking};

const MESSAGE: &[u8] = b"From: Joe <joe@example.com>\r\n\
To: Suzie <suzie@shopping.example.net>\r\n\
Subject: Is dinner ready?\r\n\
Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n\
Message-ID: <20030712040037.46341.5F8J@example.com>\r\n\
X-Mailer: not signed\r\n\
\r\n\
Hi.\r\n\
\r\n\
We lost the game.  Are you hungry yet?\r\n";

struct Fixture {
    sealer: Arc<Sealer>,
    domain: DomainName,
    key: DkimKey,
    dns: TestDnsServer,
}

impl Fixture {
    /// A fresh key for example.com, its record published the way `generate` returns it.
    async fn new() -> Self {
        let sealer = Arc::new(Sealer::new(&MasterKey::generate().unwrap()));
        let domain = DomainName::parse("example.com").unwrap();
        let key = generate_key_blocking(&sealer, &domain).unwrap();
        let dns = TestDnsServer::start().await;
        dns.add_txt_value(
            &format!("{}._domainkey.example.com", key.selector),
            &format!("v=DKIM1; k=rsa; p={}", key.public_key),
        );
        Self {
            sealer,
            domain,
            key,
            dns,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<String, SignError> {
        sign_blocking(
            &self.sealer,
            &self.domain,
            &self.key.selector,
            &self.key.sealed_private_key,
            message,
        )
    }

    async fn verify(&self, signed: &[u8]) -> Vec<DkimResult> {
        verify(self.dns.addr(), signed).await
    }
}

/// What mail-auth's verifier says of each DKIM-Signature in `signed`, resolving
/// through `dns` only.
async fn verify(dns: SocketAddr, signed: &[u8]) -> Vec<DkimResult> {
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

fn tag<'a>(header: &'a str, name: &str) -> &'a str {
    let unfolded = header.split_once(':').unwrap().1;
    unfolded
        .split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {header}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_message_verifies_against_the_published_record() {
    let fixture = Fixture::new().await;

    let header = fixture.sign(MESSAGE).unwrap();
    let signed = [header.as_bytes(), MESSAGE].concat();

    assert_eq!(fixture.verify(&signed).await, [DkimResult::Pass]);
    assert!(header.starts_with("DKIM-Signature: v=1; a=rsa-sha256; "));
    assert_eq!(tag(&header, "c"), "relaxed/relaxed");
    assert_eq!(tag(&header, "d"), "example.com");
    assert_eq!(tag(&header, "s"), fixture.key.selector.as_str());
    assert!(header.ends_with(";\r\n"), "{header:?}");
    // Folded: the tag list may make the first line long (never near RFC 5322's 998),
    // the rest are wrapped at 76 plus the leading tab.
    let mut lines = header.trim_end().split("\r\n");
    assert!(lines.next().unwrap().len() < 998);
    assert!(
        lines.all(|line| line.starts_with('\t') && line.len() <= 78),
        "{header}"
    );
    assert!(
        !header.replace("\r\n", "").contains(['\r', '\n']),
        "{header:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_one_byte_of_the_body_fails_verification() {
    let fixture = Fixture::new().await;
    let header = fixture.sign(MESSAGE).unwrap();
    let mut signed = [header.as_bytes(), MESSAGE].concat();
    let at = signed.len() - 5;
    signed[at] ^= 0x01; // "yet?" becomes "yeu?"

    let results = fixture.verify(&signed).await;

    // mail-auth reports a body-hash mismatch as "neutral" (RFC 6376 §6.1.3: ignore
    // the signature): either way, not a pass.
    assert!(
        matches!(
            results.as_slice(),
            [DkimResult::Neutral(Error::Dkim(
                DkimError::FailedBodyHashMatch
            ))]
        ),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_a_signed_header_fails_verification_but_an_unsigned_one_does_not() {
    let fixture = Fixture::new().await;
    let header = fixture.sign(MESSAGE).unwrap();
    let signed = [header.as_bytes(), MESSAGE].concat();
    let with = |from: &str, to: &str| {
        String::from_utf8(signed.clone())
            .unwrap()
            .replacen(from, to, 1)
            .into_bytes()
    };

    let subject = fixture
        .verify(&with("Is dinner ready?", "Is dinner ready!"))
        .await;
    let mailer = fixture.verify(&with("not signed", "changed")).await;

    assert!(
        matches!(subject.as_slice(), [DkimResult::Fail(_)]),
        "{subject:?}"
    );
    assert_eq!(mailer, [DkimResult::Pass]);
}

#[tokio::test(flavor = "multi_thread")]
async fn relaxed_canonicalisation_tolerates_white_space_and_header_case() {
    let fixture = Fixture::new().await;
    let header = fixture.sign(MESSAGE).unwrap();
    let reformatted = String::from_utf8(MESSAGE.to_vec())
        .unwrap()
        .replace(
            "Subject: Is dinner ready?",
            "SUBJECT:   Is dinner\r\n ready?  ",
        )
        .replace("the game.  Are", "the game. \t Are")
        + "\r\n\r\n";
    assert_ne!(reformatted.as_bytes(), MESSAGE);
    let signed = [header.as_bytes(), reformatted.as_bytes()].concat();

    assert_eq!(fixture.verify(&signed).await, [DkimResult::Pass]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_from_added_in_transit_fails_verification() {
    let fixture = Fixture::new().await;
    let header = fixture.sign(MESSAGE).unwrap();
    let signed = [
        header.as_bytes(),
        b"From: Mallory <m@evil.example>\r\n",
        MESSAGE,
    ]
    .concat();

    let results = fixture.verify(&signed).await;

    assert!(
        matches!(results.as_slice(), [DkimResult::Fail(_)]),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_fields_present_are_named_and_from_is_over_signed() {
    let fixture = Fixture::new().await;

    let header = fixture.sign(MESSAGE).unwrap();

    let unfolded: String = header.replace("\r\n\t", "").replace("\r\n", "");
    assert_eq!(
        tag(&unfolded, "h").to_ascii_lowercase(),
        // mail-auth lists the fields bottom-up; From a second time, for none.
        "message-id:date:subject:to:from:from"
    );
}

#[test]
fn a_message_without_from_is_refused_before_the_key_is_opened() {
    // A key that cannot open: reaching it would be KeyDoesNotOpen, not MissingFrom.
    let sealer = Sealer::new(&MasterKey::generate().unwrap());
    let domain = DomainName::parse("example.com").unwrap();

    let result = sign_blocking(
        &sealer,
        &domain,
        &Selector::new("s1").unwrap(),
        &SealedKey(vec![1; 64]),
        b"To: a@example.net\r\nSubject: no sender\r\n\r\nbody\r\n",
    );

    assert!(matches!(result, Err(SignError::MissingFrom)), "{result:?}");
}

#[test]
fn a_key_sealed_for_another_domain_does_not_open() {
    let sealer = Sealer::new(&MasterKey::generate().unwrap());
    let other = generate_key_blocking(&sealer, &DomainName::parse("example.org").unwrap()).unwrap();

    let result = sign_blocking(
        &sealer,
        &DomainName::parse("example.com").unwrap(),
        &other.selector,
        &other.sealed_private_key,
        MESSAGE,
    );

    assert!(
        matches!(result, Err(SignError::KeyDoesNotOpen)),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_port_signs_off_the_executor_with_the_same_result() {
    let fixture = Fixture::new().await;
    let signer = RsaDkimSigner::new(Arc::clone(&fixture.sealer));

    let header = signer
        .sign(
            &fixture.domain,
            &fixture.key.selector,
            &fixture.key.sealed_private_key,
            MESSAGE,
        )
        .await
        .unwrap();

    let signed = [header.as_bytes(), MESSAGE].concat();
    assert_eq!(fixture.verify(&signed).await, [DkimResult::Pass]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_with_bare_lf_line_endings_verifies_as_written_and_as_sent() {
    // A `.eml` file written on Unix; an MTA sends it with CRLF.
    let fixture = Fixture::new().await;
    let written = String::from_utf8(MESSAGE.to_vec())
        .unwrap()
        .replace("\r\n", "\n");

    let header = fixture.sign(written.as_bytes()).unwrap();

    let as_written = [header.replace("\r\n", "\n").as_bytes(), written.as_bytes()].concat();
    let as_sent = [header.as_bytes(), MESSAGE].concat();
    assert_eq!(fixture.verify(&as_written).await, [DkimResult::Pass]);
    assert_eq!(fixture.verify(&as_sent).await, [DkimResult::Pass]);
}
