//! Fuzzes the generate endpoint from the request body inward: `parse_body`, then the
//! `GenerateRecords` use case on mockall doubles of its ports.
//!
//! Nothing may panic; every error must render as a non-empty single line (no CR, LF
//! or NUL: the text goes into a response body and a log line) with the status class
//! the seed's error table gives it; a success must be the three records for the
//! parsed sender's domain, free of control characters, in the seed's key order.
//!
//! The mocks are deterministic. Which store/DNS behaviour a run sees is a pure
//! function of the input bytes ([`Scenario::of`]), so every crash reproduces and the
//! corpus spreads over new domains, reused domains, conflicts and failures.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use actix_web::ResponseError;
use actix_web::body::MessageBody as _;
use api_actix::error::ApiError;
use api_actix::routes::generate::parse_body;
use domain_core::ports::InfraError;
use domain_core::ports::dns::{DnsError, MockDns, MxRecord};
use domain_core::ports::keys::{KeyError, MockKeyGenerator};
use domain_core::ports::store::{
    MockDomainStore, RegisterError, Registered, SenderRegistration, StoreError, StoredDomain,
};
use domain_core::ownership::{CreationLimits, Ownership, ReservedDomains};
use domain_core::ports::clock::SystemClock;
use domain_core::usecases::generate::{GenerateError, GenerateRecords};
use domain_core::usecases::verify::VerifySchedule;
use domain_core::{
    DkimKey, DomainName, EmailAddress, OrganizationId, RecordPolicy, RecordSet, SealedKey, Selector,
};
use libfuzzer_sys::fuzz_target;

const ORG: &str = "org-fuzz";
const OTHER_ORG: &str = "org-other";
const SELECTOR: &str = "fuzz2024";
const PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAfuzz";
const RELAY: &str = "inbound.sendtrim.com";

/// Built once: a current-thread runtime is enough, the mocks never yield.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
});

/// `FUZZ_TRACE=1` prints each input's scenario and outcome (for reproducing a crash
/// or checking that the corpus reaches every branch).
static TRACE: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_TRACE").is_some());

static POLICY: LazyLock<Arc<RecordPolicy>> = LazyLock::new(|| {
    Arc::new(
        RecordPolicy::new(
            vec![IpAddr::V4(Ipv4Addr::new(51, 79, 43, 241))],
            &[RELAY.to_owned(), "smtp.sendtrim.com".to_owned()],
        )
        .expect("the default policy is valid"),
    )
});

/// How the mocked ports behave for one input.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// Domain unknown: generate a key, store it; MX points at the relay.
    NewDomain,
    /// Domain already ours: reuse its key; MX lookup says NXDOMAIN.
    OwnDomain,
    /// Domain owned by another organization.
    ForeignDomain,
    /// The store reports the email as taken.
    EmailTaken,
    /// The domain vanished between read and write: the store asks for a key once.
    KeyRequiredOnce,
    /// The database is down.
    StoreUnavailable,
    /// Key generation fails.
    KeyFailure,
    /// A new domain beyond the organization's domain limit.
    DomainLimit,
    /// A new domain beyond the organization's new-domains-per-minute quota.
    RateLimited,
}

impl Scenario {
    const ALL: [Self; 9] = [
        Self::NewDomain,
        Self::OwnDomain,
        Self::ForeignDomain,
        Self::EmailTaken,
        Self::KeyRequiredOnce,
        Self::StoreUnavailable,
        Self::KeyFailure,
        Self::DomainLimit,
        Self::RateLimited,
    ];

    /// A byte sum, so that a mutation anywhere in the body (even white space) can
    /// move an input to another scenario.
    fn of(data: &[u8]) -> Self {
        let sum: usize = data.iter().map(|&b| usize::from(b)).sum();
        Self::ALL[sum % Self::ALL.len()]
    }
}

fn key() -> DkimKey {
    DkimKey {
        selector: Selector::new(SELECTOR).expect("valid selector"),
        public_key: PUBLIC_KEY.to_owned(),
        sealed_private_key: SealedKey(vec![0; 16]),
    }
}

fn stored(name: &DomainName, owner: &str, inbound: bool) -> StoredDomain {
    StoredDomain::new(
        name.clone(),
        OrganizationId::new(owner),
        Selector::new(SELECTOR).expect("valid selector"),
        PUBLIC_KEY.to_owned(),
        inbound,
        Default::default(),
    )
}

/// The store's answer when the unit of work succeeds: the domain as the request
/// asked for it.
fn echo(registration: &SenderRegistration) -> Result<Registered, RegisterError> {
    let owner = registration.organization.as_str();
    let mut domain = stored(
        registration.email.domain(),
        owner,
        registration.enable_inbound,
    );
    if let Some(key) = &registration.new_key {
        domain.selector = key.selector.clone();
        domain.public_key = key.public_key.clone();
    }
    Ok(Registered {
        domain,
        domain_created: registration.new_key.is_some(),
    })
}

fn use_case(scenario: Scenario) -> GenerateRecords {
    let mut store = MockDomainStore::new();
    let mut keys = MockKeyGenerator::new();
    let mut dns = MockDns::new();

    store
        .expect_find_domain()
        .returning(move |name| match scenario {
            Scenario::OwnDomain => Ok(Some(stored(name, ORG, false))),
            Scenario::ForeignDomain => Ok(Some(stored(name, OTHER_ORG, false))),
            Scenario::StoreUnavailable => Err(StoreError::Unavailable("connection refused".into())),
            _ => Ok(None),
        });
    store
        .expect_admit_creation()
        .returning(move |_, _| match scenario {
            Scenario::DomainLimit => Err(RegisterError::DomainLimit),
            Scenario::RateLimited => Err(RegisterError::RateLimited {
                retry_after: std::time::Duration::from_secs(42),
            }),
            _ => Ok(()),
        });
    let asked_for_key = AtomicBool::new(false);
    store
        .expect_register_sender()
        .returning(move |registration| match scenario {
            Scenario::EmailTaken => Err(RegisterError::EmailTaken),
            Scenario::KeyRequiredOnce if !asked_for_key.swap(true, Ordering::Relaxed) => {
                Err(RegisterError::KeyRequired)
            }
            _ => echo(&registration),
        });
    keys.expect_generate().returning(move |_| match scenario {
        Scenario::KeyFailure => Err(KeyError("entropy source failed".into())),
        _ => Ok(key()),
    });
    dns.expect_mx().returning(move |_| match scenario {
        Scenario::OwnDomain => Err(DnsError::NxDomain),
        _ => Ok(vec![MxRecord {
            preference: 10,
            exchange: format!("{RELAY}."),
        }]),
    });
    dns.expect_txt().returning(|_| Err(DnsError::NoRecords));

    GenerateRecords::new(
        Arc::new(store),
        Arc::new(keys),
        Arc::new(dns),
        Arc::clone(&POLICY),
        Arc::new(Ownership {
            reserved: ReservedDomains::default_for(&[RELAY.to_owned()]),
            limits: CreationLimits::default(),
        }),
        Arc::new(VerifySchedule::default()),
        Arc::new(SystemClock),
    )
}

fuzz_target!(|data: &[u8]| {
    let input = match parse_body(data) {
        Ok(input) => input,
        Err(error) => {
            if *TRACE {
                eprintln!("parse_body: {error:?}");
            }
            check_error(&error);
            assert_eq!(error.status_code().as_u16(), 400, "{error:?}");
            return;
        }
    };
    let sender = input.email.clone();
    let scenario = Scenario::of(data);
    let outcome = RUNTIME.block_on(use_case(scenario).execute(&OrganizationId::new(ORG), input));
    if *TRACE {
        eprintln!("{scenario:?}: {outcome:?}");
    }
    match outcome {
        Ok(records) => check_records(&records, sender.as_deref()),
        Err(error) => {
            let expected = expected_status(&error);
            let error = ApiError::from(error);
            check_error(&error);
            assert_eq!(error.status_code().as_u16(), expected, "{error:?}");
        }
    }
});

fn expected_status(error: &GenerateError) -> u16 {
    match error {
        GenerateError::InvalidSender(_) | GenerateError::InvalidReplyTo(_) => 400,
        GenerateError::DomainTaken | GenerateError::EmailTaken => 409,
        GenerateError::DomainLimit | GenerateError::SenderLimit => 403,
        GenerateError::RateLimited(_) => 429,
        GenerateError::Infra(InfraError::Unavailable(_)) => 503,
        GenerateError::Infra(InfraError::Unexpected(_)) => 500,
    }
}

/// The text that ends up in a response body (and so in any log line that shows it).
fn check_error(error: &ApiError) {
    let body = error
        .error_response()
        .into_body()
        .try_into_bytes()
        .unwrap_or_else(|_| panic!("a streamed error body for {error:?}"));
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(!text.is_empty(), "empty error text for {error:?}");
    assert!(
        !text.contains(['\r', '\n', '\0']),
        "error text {text:?} breaks the line"
    );
}

fn check_records(records: &RecordSet, sender: Option<&str>) {
    let sender = sender.expect("a success needs a sender");
    let email = EmailAddress::parse(sender).expect("a success needs a valid sender");
    let domain = email.domain();
    let entries = records.entries();
    assert_eq!(entries.len(), 3);
    for (name, value) in entries {
        assert!(!name.is_empty() && !value.is_empty());
        assert!(
            !name.chars().chain(value.chars()).any(char::is_control),
            "control character in {name:?}: {value:?}"
        );
    }
    assert_eq!(entries[0].0, "SPF");
    assert_eq!(entries[1].0, format!("{SELECTOR}._domainkey.{domain}"));
    assert_eq!(entries[2].0, "_dmarc");
    assert_eq!(entries[0].1, "v=spf1 ip4:51.79.43.241 -all");
    assert_eq!(entries[1].1, format!("v=DKIM1; k=rsa; p={PUBLIC_KEY}"));
    assert_eq!(
        entries[2].1,
        format!("v=DMARC1; p=none; rua=mailto:dmarc@{domain}")
    );
}
