//! Domain Connect, synchronous flow, end to end: a stand-in DNS provider on loopback
//! (HTTPS with a CA the test makes with openssl, trusted through a test-only
//! setting) serves its settings and template support; the service discovers it
//! through the in-process DNS server's `_domainconnect` record and answers a signed
//! apply URL. The stand-in checks the signature with the public key it reads from
//! that DNS server (the TXT records `domain-api domain-connect pubkey` printed), as
//! does `openssl dgst -verify`, then applies the repository's template — SPFM merged
//! into the SPF already there — into the zone that server serves; the check the
//! Setup page runs on the customer's return then reads the domain verified.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dns_hickory::test_support::TestDnsServer;
use dns_hickory::{DnsConfig, HickoryDns};
use domain_core::ports::dns::Dns as _;
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use serde_json::Value;
use store_diesel::BackendKind;

use crate::helpers::TestApp;
use crate::lifecycle::{app_with, call, domain_path, verify};

const ZONE: &str = "shop-dc.example";
const SENDER_DOMAIN: &str = "mail.shop-dc.example";
const API_HOST: &str = "dc.dnsprovider.example";
const UX_HOST: &str = "connect.dnsprovider.example";
const PROVIDER_ID: &str = "mailservice.example";
const SERVICE_ID: &str = "sending-domain";
const PUBKEY_DOMAIN: &str = "keys.mailservice.example";
const KEY_HOST: &str = "_dck1";
const UNSUPPORTED: &str = "DNS provider does not support Domain Connect for this domain";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate it signed for both provider hosts (`ca.pem`,
/// `server.pem`, `server.key`), and the service's signing key (`dc.pem`).
fn make_keys(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=stand-in provider CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=dc.dnsprovider.example",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:{API_HOST},DNS:{UX_HOST}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "dc.pem",
        ],
    );
}

/// The stand-in DNS provider's HTTPS API: `/v2/{ZONE}/settings` and the support of
/// `{PROVIDER_ID}/{SERVICE_ID}`; everything else 404. Counts the requests.
struct StandIn {
    port: u16,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    fn start(dir: &Path) -> Self {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&requests), Arc::clone(&paths));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut line = String::new();
                let mut reader = BufReader::new(&mut tls);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                seen.lock().unwrap().push(path.clone());
                let (status, body) = answer(&path, port);
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Self {
            port,
            requests,
            paths,
        }
    }
}

fn answer(path: &str, port: u16) -> (&'static str, String) {
    if path == format!("/v2/{ZONE}/settings") {
        let settings = serde_json::json!({
            "providerId": "dnsprovider.example",
            "providerName": "StandIn",
            "providerDisplayName": "Stand-in DNS",
            "urlSyncUX": format!("https://{UX_HOST}:{port}"),
            "urlAPI": format!("https://{API_HOST}:{port}/api"),
        });
        return ("200 OK", settings.to_string());
    }
    if path == format!("/api/v2/domainTemplates/providers/{PROVIDER_ID}/services/{SERVICE_ID}") {
        return ("200 OK", String::new());
    }
    ("404 Not Found", "{}".to_owned())
}

/// The repository's template as the stand-in has it onboarded: the service's ids and
/// its key domain.
fn onboarded_template() -> Value {
    let mut template: Value = serde_json::from_str(include_str!(
        "../../domain-connect/domain-api.example.sending-domain.json"
    ))
    .unwrap();
    template["providerId"] = PROVIDER_ID.into();
    template["serviceId"] = SERVICE_ID.into();
    template["syncPubKeyDomain"] = PUBKEY_DOMAIN.into();
    template
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An apply URL taken apart: its path, the signed part of its query (everything but
/// `sig` and `key`, as sent), its parameters decoded, and `sig`.
struct Apply {
    path: String,
    signed: String,
    params: Vec<(String, String)>,
    sig: String,
    key: String,
}

impl Apply {
    fn parse(url: &str) -> Self {
        let (path, query) = url.split_once('?').unwrap();
        let mut signed = Vec::new();
        let mut params = Vec::new();
        let (mut sig, mut key) = (String::new(), String::new());
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap();
            match name {
                "sig" => sig = percent_decode(value),
                "key" => key = percent_decode(value),
                _ => {
                    signed.push(pair);
                    params.push((name.to_owned(), percent_decode(value)));
                }
            }
        }
        Self {
            path: path.to_owned(),
            signed: signed.join("&"),
            params,
            sig,
            key,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn resolver(dns: &TestDnsServer) -> HickoryDns {
    HickoryDns::new(&DnsConfig {
        servers: Some(vec![dns.addr()]),
        timeout: Duration::from_secs(2),
        nameserver_port: 53,
        trust_anchors: Vec::new(),
    })
    .unwrap()
}

/// The public key (SubjectPublicKeyInfo DER) the TXT records at `name` carry,
/// joined in `p=` order.
async fn public_key(dns: &TestDnsServer, name: &str) -> Vec<u8> {
    let records = resolver(dns).await.txt(name).await.unwrap();
    let mut parts: Vec<(u32, String)> = records
        .iter()
        .map(|r| {
            let text = r.joined();
            let mut p = 0;
            let mut d = String::new();
            for field in text.split(',') {
                match field.split_once('=').unwrap() {
                    ("p", n) => p = n.parse().unwrap(),
                    ("a", alg) => assert_eq!(alg, "RS256"),
                    ("d", data) => d = data.to_owned(),
                    other => panic!("unexpected field {other:?}"),
                }
            }
            (p, d)
        })
        .collect();
    parts.sort();
    let joined: String = parts.into_iter().map(|(_, d)| d).collect();
    STANDARD.decode(joined).unwrap()
}

/// The stand-in's check of a signature: RSA-SHA256 with the key from DNS.
fn signature_holds(spki: &[u8], data: &str, sig: &str) -> bool {
    let public = rsa::PublicKey::from_public_key_der(spki).unwrap();
    let pkcs1 = public.to_pkcs1_der().unwrap();
    let Ok(sig) = STANDARD.decode(sig) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pkcs1.as_bytes(),
    )
    .verify(data.as_bytes(), &sig)
    .is_ok()
}

/// `openssl dgst -sha256 -verify`: an implementation independent of the service's.
fn openssl_verifies(dir: &Path, spki: &[u8], data: &str, sig: &str) -> bool {
    let lines: Vec<String> = STANDARD
        .encode(spki)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    std::fs::write(
        dir.join("pub.pem"),
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("data.txt"), data).unwrap();
    std::fs::write(dir.join("sig.bin"), STANDARD.decode(sig).unwrap()).unwrap();
    let output = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.bin",
            "data.txt",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("Verified OK")
}

/// What the stand-in does with an apply URL the customer's browser brings: checks
/// the signature with the key in DNS, then writes the template's records (the
/// groups asked for, variables filled in, SPFM merged into the SPF record there)
/// into the zone `dns` serves. Refuses an unsigned or tampered URL.
async fn apply(dns: &TestDnsServer, url: &str) -> Result<String, &'static str> {
    let apply = Apply::parse(url);
    let template = onboarded_template();
    let spki = public_key(
        dns,
        &format!(
            "{}.{}",
            apply.key,
            template["syncPubKeyDomain"].as_str().unwrap()
        ),
    )
    .await;
    if !signature_holds(&spki, &apply.signed, &apply.sig) {
        return Err("bad signature");
    }
    let domain = apply.param("domain").unwrap();
    let fqdn = match apply.param("host") {
        Some(host) => format!("{host}.{domain}"),
        None => domain.to_owned(),
    };
    let groups: Vec<&str> = apply
        .param("groupId")
        .map_or_else(Vec::new, |g| g.split(',').collect());
    let fill = |text: &str| -> String {
        let mut out = String::new();
        let mut parts = text.split('%');
        out.push_str(parts.next().unwrap());
        let mut variable = true;
        for part in parts {
            if variable {
                out.push_str(&match part {
                    "fqdn" => fqdn.clone(),
                    "domain" => domain.to_owned(),
                    name => apply
                        .param(name)
                        .unwrap_or_else(|| panic!("no {name}"))
                        .to_owned(),
                });
            } else {
                out.push_str(part);
            }
            variable = !variable;
        }
        out
    };
    let name_of = |host: &str| {
        let host = fill(host);
        if host == "@" {
            fqdn.clone()
        } else {
            format!("{host}.{fqdn}")
        }
    };
    let resolver = resolver(dns).await;
    for record in template["records"].as_array().unwrap() {
        let group = record["groupId"].as_str().unwrap_or_default();
        if !groups.is_empty() && !groups.contains(&group) {
            continue;
        }
        let name = name_of(record["host"].as_str().unwrap());
        match record["type"].as_str().unwrap() {
            "SPFM" => {
                let existing: Vec<String> = match resolver.txt(&name).await {
                    Ok(records) => records.iter().map(|r| r.joined()).collect(),
                    Err(_) => Vec::new(),
                };
                let rules = fill(record["spfRules"].as_str().unwrap());
                let (spf, others): (Vec<String>, Vec<String>) =
                    existing.into_iter().partition(|v| v.starts_with("v=spf1"));
                let merged = match spf.first() {
                    Some(old) => {
                        let terms: Vec<&str> = old
                            .split_whitespace()
                            .skip(1)
                            .filter(|t| !t.ends_with("all"))
                            .collect();
                        format!("v=spf1 {} {rules} ~all", terms.join(" "))
                    }
                    None => format!("v=spf1 {rules} ~all"),
                };
                dns.clear(&name);
                for value in others {
                    dns.add_txt_value(&name, &value);
                }
                dns.add_txt_value(&name, &merged);
            }
            "TXT" => dns.add_txt_value(&name, &fill(record["data"].as_str().unwrap())),
            "MX" => dns.add_mx(
                &name,
                u16::try_from(record["priority"].as_u64().unwrap()).unwrap(),
                &fill(record["pointsTo"].as_str().unwrap()),
            ),
            other => panic!("the stand-in does not apply {other}"),
        }
    }
    Ok(apply.param("redirect_uri").unwrap().to_owned())
}

/// The service configured for Domain Connect, trusting the stand-in's CA, with the
/// DNS server as its resolver; the stand-in's hosts on 127.0.0.1 (allowed).
async fn service(dns: &TestDnsServer, dir: &Path, configured: bool) -> TestApp {
    let key = dir.join("dc.pem").display().to_string();
    let ca = dir.join("ca.pem").display().to_string();
    let mut env = vec![
        ("DOMAIN_API_WEBHOOK_ALLOW_NETS", "127.0.0.1/32".to_owned()),
        ("DOMAIN_API_TEST_DOMAIN_CONNECT_CA_FILE", ca),
        ("DOMAIN_API_DOMAIN_CONNECT_KEY_HOST", KEY_HOST.to_owned()),
    ];
    if configured {
        env.extend([
            (
                "DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID",
                PROVIDER_ID.to_owned(),
            ),
            (
                "DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID",
                SERVICE_ID.to_owned(),
            ),
            ("DOMAIN_API_DOMAIN_CONNECT_KEY_FILE", key),
        ]);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app_with(BackendKind::Sqlite, dns, &env).await
}

/// The public key's TXT records as `domain-api domain-connect pubkey` prints them,
/// published at `KEY_HOST.PUBKEY_DOMAIN`.
fn publish_pubkey(app: &TestApp, dns: &TestDnsServer) -> usize {
    let (ok, out, err) = app.cli(&["domain-connect", "pubkey"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    for line in &lines {
        let prefix = format!("{KEY_HOST} 3600 IN TXT \"");
        let value = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("not a zone-file TXT line: {line}"));
        dns.add_txt_value(&format!("{KEY_HOST}.{PUBKEY_DOMAIN}"), value);
    }
    lines.len()
}

fn connect(app: &TestApp, org: &crate::helpers::Org, domain: &str) -> crate::helpers::Answer {
    call(
        app,
        org,
        "GET",
        &format!("{}/connect", domain_path(domain)),
        None,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_signed_apply_url_sets_the_domain_up_at_the_provider_and_the_check_reads_it_verified() {
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let provider = StandIn::start(dir.path());
    let dns = TestDnsServer::start_in_thread();
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    dns.add_txt_value(
        &format!("_domainconnect.{ZONE}"),
        &format!("{API_HOST}:{}", provider.port),
    );
    dns.add_address(API_HOST, localhost);
    dns.add_address(UX_HOST, localhost);
    // The customer already sends through another service.
    dns.add_txt_value(SENDER_DOMAIN, "v=spf1 include:_spf.othermail.example ~all");
    dns.add_txt_value(SENDER_DOMAIN, "site-verification=abc");
    let app = service(&dns, dir.path(), true).await;
    assert!(publish_pubkey(&app, &dns) >= 2);
    let org = app.create_org("Acme");
    let generated = app.generate(&org, &format!(r#"{{"email":"noreply@{SENDER_DOMAIN}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);

    let answer = connect(&app, &org, SENDER_DOMAIN);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["provider"], "Stand-in DNS", "{body}");
    let url = body["applyUrl"].as_str().unwrap();
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        *provider.paths.lock().unwrap(),
        vec![
            format!("/v2/{ZONE}/settings"),
            format!("/api/v2/domainTemplates/providers/{PROVIDER_ID}/services/{SERVICE_ID}"),
        ]
    );
    let parsed = Apply::parse(url);
    assert_eq!(
        parsed.path,
        format!(
            "https://{UX_HOST}:{}/v2/domainTemplates/providers/{PROVIDER_ID}/services/{SERVICE_ID}/apply",
            provider.port
        )
    );
    assert_eq!(parsed.param("domain"), Some(ZONE));
    assert_eq!(parsed.param("host"), Some("mail"));
    assert_eq!(parsed.param("groupId"), Some("sending"));
    assert_eq!(parsed.key, KEY_HOST);
    assert!(url.ends_with(&format!(
        "&key={KEY_HOST}&sig={}",
        percent_encoded(&parsed.sig)
    )));

    // An independent implementation agrees with the signature, and refuses it over
    // another query.
    let spki = public_key(&dns, &format!("{KEY_HOST}.{PUBKEY_DOMAIN}")).await;
    assert!(openssl_verifies(
        dir.path(),
        &spki,
        &parsed.signed,
        &parsed.sig
    ));
    let tampered = parsed.signed.replace("groupId=sending", "groupId=inbound");
    assert!(!openssl_verifies(dir.path(), &spki, &tampered, &parsed.sig));
    // The stand-in refuses a tampered URL and changes nothing.
    let forged = url.replace("dkimselector=", "dkimselector=x");
    assert_eq!(apply(&dns, &forged).await, Err("bad signature"));
    let before = verify(&app, &org, SENDER_DOMAIN).json();
    assert_eq!(before["verified"], false, "{before}");

    // The customer consents at the provider; the browser comes back to the Setup
    // page, which checks the domain.
    let back = apply(&dns, url).await.unwrap();
    assert_eq!(
        back,
        format!(
            "{}?domainconnect=applied",
            app.url(&format!("/setup/{SENDER_DOMAIN}"))
        )
    );
    let report = verify(&app, &org, SENDER_DOMAIN).json();
    assert_eq!(report["verified"], true, "{report}");
    let spf: Vec<String> = resolver(&dns)
        .await
        .txt(SENDER_DOMAIN)
        .await
        .unwrap()
        .iter()
        .map(|r| r.joined())
        .collect();
    assert!(
        spf.contains(&"v=spf1 include:_spf.othermail.example ip4:51.79.43.241 ~all".to_owned()),
        "{spf:?}"
    );
    assert!(spf.contains(&"site-verification=abc".to_owned()), "{spf:?}");
    let detail = call(&app, &org, "GET", &domain_path(SENDER_DOMAIN), None).json();
    assert_eq!(detail["status"], "verified", "{detail}");
}

fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_domainconnect_record_or_configuration_there_is_no_apply_url() {
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let provider = StandIn::start(dir.path());
    let dns = TestDnsServer::start_in_thread();
    dns.add_address(API_HOST, "127.0.0.1".parse().unwrap());
    let app = service(&dns, dir.path(), true).await;
    let org = app.create_org("Acme");
    let generated = app.generate(&org, &format!(r#"{{"email":"noreply@{SENDER_DOMAIN}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);

    // No `_domainconnect` record: 404 with the sentence, the provider never asked.
    let answer = connect(&app, &org, SENDER_DOMAIN);
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.body, UNSUPPORTED);
    assert_eq!(provider.requests.load(Ordering::SeqCst), 0);

    // Another organization's domain is not found, as everywhere.
    let other = app.create_org("Other");
    let answer = connect(&app, &other, SENDER_DOMAIN);
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body, "Domain not found");

    // The record names a provider that has no settings for the zone: the same 404.
    dns.add_txt_value(
        &format!("_domainconnect.{ZONE}"),
        &format!("{API_HOST}:{}", provider.port),
    );
    let other_zone = "elsewhere-dc.example";
    let generated = app.generate(&org, &format!(r#"{{"email":"noreply@{other_zone}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);
    dns.add_txt_value(
        &format!("_domainconnect.{other_zone}"),
        &format!("{API_HOST}:{}", provider.port),
    );
    let answer = connect(&app, &org, other_zone);
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.body, UNSUPPORTED);
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);

    // A provider at a loopback address the service may not reach: never asked.
    let strict = app_with(
        BackendKind::Sqlite,
        &dns,
        &[
            ("DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID", PROVIDER_ID),
            ("DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID", SERVICE_ID),
            (
                "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
                &dir.path().join("dc.pem").display().to_string(),
            ),
        ],
    )
    .await;
    let org = strict.create_org("Acme");
    assert_eq!(
        strict
            .generate(&org, &format!(r#"{{"email":"noreply@{ZONE}"}}"#))
            .status,
        201
    );
    let answer = connect(&strict, &org, ZONE);
    assert_eq!((answer.status, answer.body.as_str()), (404, UNSUPPORTED));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);

    // Not configured: the same 404, and `pubkey` says what is missing.
    let off = service(&dns, dir.path(), false).await;
    let org = off.create_org("Acme");
    assert_eq!(
        off.generate(&org, &format!(r#"{{"email":"noreply@{ZONE}"}}"#))
            .status,
        201
    );
    let answer = connect(&off, &org, ZONE);
    assert_eq!((answer.status, answer.body.as_str()), (404, UNSUPPORTED));
    let (ok, _, err) = off.cli(&["domain-connect", "pubkey"]);
    assert!(!ok);
    assert!(err.contains("Domain Connect is not configured"), "{err}");
}

/// The Setup page in a real browser: "Set up automatically at <provider>" links to the
/// apply URL; back from the provider (`?domainconnect=applied`, no token in the
/// address) it signs in with the token the tab kept and checks the domain.
#[tokio::test(flavor = "multi_thread")]
async fn the_setup_page_links_to_the_provider_and_checks_the_domain_when_the_customer_comes_back() {
    let Some(browser) = crate::browser::Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let provider = StandIn::start(dir.path());
    let dns = TestDnsServer::start_in_thread();
    let localhost: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    dns.add_txt_value(
        &format!("_domainconnect.{ZONE}"),
        &format!("{API_HOST}:{}", provider.port),
    );
    dns.add_address(API_HOST, localhost);
    let app = service(&dns, dir.path(), true).await;
    publish_pubkey(&app, &dns);
    let org = app.create_org("Acme");
    let generated = app.generate(&org, &format!(r#"{{"email":"noreply@{SENDER_DOMAIN}"}}"#));
    assert_eq!(generated.status, 201, "{}", generated.body);
    let token = crate::lifecycle::jwt(&app, &org);

    browser.goto(&app.url(&format!("/setup/{SENDER_DOMAIN}#token={token}")));
    crate::setup_page::wait_loaded(&browser);
    browser.wait_for(
        "the Domain Connect link",
        "return !document.getElementById('connect').hidden;",
        &[],
    );
    let link = browser.run(
        "const a = document.getElementById('connect-link'); return [a.textContent, a.href];",
        &[],
    );
    assert_eq!(link[0], "Set up automatically at Stand-in DNS");
    let href = link[1].as_str().unwrap().to_owned();
    assert!(
        href.starts_with(&format!(
            "https://{UX_HOST}:{}/v2/domainTemplates/providers/{PROVIDER_ID}/services/{SERVICE_ID}/apply?",
            provider.port
        )),
        "{href}"
    );
    assert_eq!(
        crate::setup_page::statuses(&browser),
        ["unchecked", "unchecked", "unchecked"]
    );
    // The click keeps the token for the return; the provider's host does not
    // resolve here, so the navigation itself is left out.
    browser.run(
        "document.getElementById('connect-link').addEventListener('click', e => e.preventDefault());",
        &[],
    );
    browser.click("#connect-link");

    // The customer consents at the provider, which sends the browser back.
    let back = apply(&dns, &href).await.unwrap();
    browser.goto(&back);
    browser.wait_for(
        "the check on return",
        "return !document.getElementById('check-summary').hidden;",
        &[],
    );
    assert_eq!(crate::setup_page::statuses(&browser), ["ok", "ok", "ok"]);
    assert_eq!(
        browser.run(
            "return [document.getElementById('domain-status').textContent, location.search, location.hash, sessionStorage.length];",
            &[]
        ),
        serde_json::json!(["Verified", "", "", 0])
    );
    crate::setup_page::assert_no_console_errors(&browser, |_| false);
}
