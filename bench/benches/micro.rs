//! Micro-benchmarks of the hot pure functions behind POST /generate.
//!
//! - `rsa_2048`: one DKIM key as the service makes it (`keys_rsa::generate_key_blocking`:
//!   `rsa` 0.10 generation, SPKI + PKCS#8 encoding, AES-256-GCM sealing, selector),
//!   against OpenSSL 3 doing the same generation and encodings (comparison only).
//! - `records`: `RecordSet::render` of the three TXT records.
//! - `email`: `EmailAddress::parse` of a few shapes, IDN included.
//!
//! RSA generation is tens of milliseconds per key with a long tail (prime search is
//! random), so that group uses flat sampling and the minimum sample count.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use domain_core::{DomainName, EmailAddress, RecordPolicy, RecordSet, Selector};
use keys_rsa::{MasterKey, Sealer, generate_key_blocking};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

fn rsa_2048(c: &mut Criterion) {
    let sealer = Sealer::new(&MasterKey::generate().expect("master key"));
    let domain = DomainName::parse("example.com").expect("domain");

    let mut group = c.benchmark_group("rsa_2048");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(6));

    group.bench_function("rsa-0.10 generate_key_blocking (keygen+encode+seal)", |b| {
        b.iter(|| generate_key_blocking(&sealer, black_box(&domain)).expect("key"));
    });
    group.bench_function("openssl-3 keygen+encode", |b| {
        b.iter(|| {
            let rsa = Rsa::generate(black_box(2048)).expect("rsa");
            let spki = rsa.public_key_to_der().expect("spki");
            let pkey = PKey::from_rsa(rsa).expect("pkey");
            let pkcs8 = pkey.private_key_to_pkcs8().expect("pkcs8");
            (spki, pkcs8)
        });
    });
    group.finish();
}

fn records(c: &mut Criterion) {
    let policy = RecordPolicy::new(
        vec!["51.79.43.241".parse().expect("ip")],
        &[
            "inbound.sendtrim.com".to_owned(),
            "smtp.sendtrim.com".to_owned(),
        ],
    )
    .expect("policy");
    let domain = DomainName::parse("mail.example.com").expect("domain");
    let selector = Selector::new("k3x9q2m1a7zz").expect("selector");
    // A real RSA-2048 SubjectPublicKeyInfo is 294 bytes: 392 base64 characters.
    let public_key = format!(
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{}",
        "A".repeat(348)
    );

    let mut group = c.benchmark_group("records");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("RecordSet::render", |b| {
        b.iter(|| {
            RecordSet::render(
                black_box(&policy),
                black_box(&domain),
                black_box(&selector),
                black_box(&public_key),
            )
        });
    });
    group.finish();
}

fn email(c: &mut Criterion) {
    let cases = [
        ("ascii", "noreply@example.com"),
        ("mixed-case+subdomain", "First.Last+tag@Mail.Example.CO.UK"),
        ("idn-u-label", "info@bücher.example"),
        ("idn-a-label", "info@xn--bcher-kva.example"),
        ("rejected-no-domain", "bob@"),
    ];
    let mut group = c.benchmark_group("email");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, input) in cases {
        group.bench_function(format!("EmailAddress::parse {name}"), |b| {
            b.iter(|| EmailAddress::parse(black_box(input)));
        });
    }
    group.finish();
}

criterion_group!(benches, rsa_2048, records, email);
criterion_main!(benches);
