//! The routes over domain-core's mocks, for the route tests: an `AppState` whose use
//! cases sit on mockall doubles of every port, two organizations with API tokens
//! (`org-a`, `org-b`), a dashboard JWT secret, a fixed clock, and a helper that
//! drives one request through `configure` with `actix_web::test`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::body::to_bytes;
use actix_web::http::header;
use actix_web::test::{TestRequest, call_service, init_service};
use actix_web::{App, web};
use chrono::{DateTime, TimeZone as _, Utc};
use domain_core::lifecycle::{KeyRecord, KeyState};
use domain_core::ownership::{DEFAULT_CLAIM_TTL, Ownership};
use domain_core::ports::BoxError;
use domain_core::ports::InfraError;
use domain_core::ports::claims::MockClaimStore;
use domain_core::ports::clock::Clock;
use domain_core::ports::credentials::MockCredentials;
use domain_core::ports::dns::{DnsError, MockDns};
use domain_core::ports::domain_connect::MockHttpsFetcher;
use domain_core::ports::idempotency::{Begun, Guarded, IdempotencyStore, MockAnswerSealer};
use domain_core::ports::keys::MockKeyGenerator;
use domain_core::ports::lifecycle::{MockEventStore, MockKeyLifecycleStore, MockSenderStore};
use domain_core::ports::store::{DomainDetail, MockDomainStore, SenderRecord, StoredDomain};
use domain_core::ports::webhooks::{IssuedSecret, MockWebhookSecrets, MockWebhookStore};
use domain_core::usecases::authenticate::Authenticate;
use domain_core::usecases::claim::ClaimDomain;
use domain_core::usecases::connect::DomainConnect;
use domain_core::usecases::create::CreateDomain;
use domain_core::usecases::generate::GenerateRecords;
use domain_core::usecases::idempotency::{DEFAULT_LEASE, DEFAULT_TTL, GuardRetries};
use domain_core::usecases::manage::ManageDomain;
use domain_core::usecases::read::ReadDomains;
use domain_core::usecases::senders::{ListEvents, ManageSenders};
use domain_core::usecases::validate::ValidateDomain;
use domain_core::usecases::verify::{KeyPolicy, VerifyDomain, VerifySchedule};
use domain_core::usecases::webhooks::{DEFAULT_MAX_ENDPOINTS, ManageWebhooks};
use domain_core::webhooks::{AddressPolicy, WebhookId, WebhookSecret};
use domain_core::{DomainName, OrganizationId, RecordPolicy, Selector};

use crate::frame_ancestors::FrameAncestors;
use crate::jwt::JwtSecret;
use crate::metrics::{Gauges, Metrics};
use crate::{AppState, Probes};

pub(crate) const JWT_SECRET: &[u8] = b"a-route-test-secret-of-at-least-32-bytes";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// The organizations the test tokens belong to.
pub(crate) fn org_a() -> OrganizationId {
    OrganizationId::new("org-a")
}

pub(crate) fn org_b() -> OrganizationId {
    OrganizationId::new("org-b")
}

/// The fixed "now" of every route test.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 16, 15, 47)
        .single()
        .expect("a valid time")
}

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

struct ReadyProbes;

#[async_trait::async_trait]
impl Probes for ReadyProbes {
    async fn ready(&self) -> Result<(), BoxError> {
        Ok(())
    }

    fn gauges(&self) -> Gauges {
        Gauges::default()
    }
}

/// The route tests run without the idempotency middleware: its store is never asked.
struct NoIdempotency;

#[async_trait::async_trait(?Send)]
impl IdempotencyStore for NoIdempotency {
    async fn begin(&self, _: &Guarded) -> Result<Begun, InfraError> {
        Err(InfraError::unexpected(
            "the route tests have no idempotency store",
        ))
    }
}

/// The doubles behind an [`AppState`]; set expectations, then [`Mocks::state`].
pub(crate) struct Mocks {
    pub store: MockDomainStore,
    pub lifecycle: MockKeyLifecycleStore,
    pub senders: MockSenderStore,
    pub events: MockEventStore,
    pub claims: MockClaimStore,
    pub webhooks: MockWebhookStore,
    pub dns: MockDns,
    pub keys: MockKeyGenerator,
    /// `false`: no JWT secret configured.
    pub jwt: bool,
    /// Who may frame the Setup page (none unless a test says otherwise).
    pub frame_ancestors: FrameAncestors,
}

impl Mocks {
    /// Every port answering nothing (a call without an expectation fails the test),
    /// except DNS, which answers NXDOMAIN for every name, and credentials, below.
    pub(crate) fn new() -> Self {
        let mut dns = MockDns::new();
        dns.expect_txt().returning(|_| Err(DnsError::NxDomain));
        dns.expect_mx().returning(|_| Err(DnsError::NxDomain));
        dns.expect_soa().returning(|_| Err(DnsError::NxDomain));
        dns.expect_nameservers()
            .returning(|_| Err(DnsError::NxDomain));
        dns.expect_addresses()
            .returning(|_| Ok(vec!["93.184.216.34".parse().expect("an address")]));
        Self {
            store: MockDomainStore::new(),
            lifecycle: MockKeyLifecycleStore::new(),
            senders: MockSenderStore::new(),
            events: MockEventStore::new(),
            claims: MockClaimStore::new(),
            webhooks: MockWebhookStore::new(),
            dns,
            keys: MockKeyGenerator::new(),
            jwt: true,
            frame_ancestors: FrameAncestors::none(),
        }
    }

    /// The store serves `detail` to org-a (and nothing to anyone else); the returned
    /// handle lets a test change it, as a write would.
    pub(crate) fn serve(&mut self, detail: DomainDetail) -> Arc<Mutex<Option<DomainDetail>>> {
        let shared = Arc::new(Mutex::new(Some(detail)));
        let served = Arc::clone(&shared);
        self.store
            .expect_domain_detail()
            .returning(move |organization, name| {
                let detail = served.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(detail
                    .clone()
                    .filter(|d| &d.domain.organization == organization && &d.domain.name == name))
            });
        shared
    }

    pub(crate) fn state(self) -> AppState {
        let mut credentials = MockCredentials::new();
        credentials.expect_organization_for().returning(|pair| {
            Ok(match (pair.access_token(), pair.secret_token()) {
                ("acc-a", "sec-a") => Some(org_a()),
                ("acc-b", "sec-b") => Some(org_b()),
                _ => None,
            })
        });
        let policy = Arc::new(
            RecordPolicy::new(
                vec!["51.79.43.241".parse().expect("an IP")],
                &["inbound.sendtrim.com".into(), "smtp.sendtrim.com".into()],
            )
            .expect("a valid policy"),
        );
        let clock: Arc<dyn Clock> = Arc::new(FixedClock);
        let store: Arc<MockDomainStore> = Arc::new(self.store);
        let lifecycle: Arc<MockKeyLifecycleStore> = Arc::new(self.lifecycle);
        let dns: Arc<MockDns> = Arc::new(self.dns);
        let keys: Arc<MockKeyGenerator> = Arc::new(self.keys);
        let keys_policy = KeyPolicy::default();
        let read = ReadDomains::new(store.clone(), policy.clone(), keys_policy, clock.clone());
        let validate = ValidateDomain::new(store.clone(), dns.clone(), policy.clone());
        let generate = GenerateRecords::new(
            store.clone(),
            keys.clone(),
            dns.clone(),
            policy.clone(),
            Arc::new(Ownership::default()),
            Arc::new(VerifySchedule::default()),
            clock.clone(),
        );
        AppState {
            authenticate: Authenticate::new(Arc::new(credentials)),
            webhooks: ManageWebhooks::new(
                Arc::new(self.webhooks),
                Arc::new(webhook_secrets()),
                dns.clone(),
                clock.clone(),
                Arc::new(AddressPolicy::default()),
                DEFAULT_MAX_ENDPOINTS,
            ),
            idempotency: GuardRetries::new(
                Arc::new(NoIdempotency),
                Arc::new(MockAnswerSealer::new()),
                clock.clone(),
                DEFAULT_TTL,
                DEFAULT_LEASE,
            ),
            create: CreateDomain::new(generate.clone(), read.clone()),
            generate,
            connect: DomainConnect::new(
                read.clone(),
                dns.clone(),
                Arc::new(MockHttpsFetcher::new()),
                None,
                None,
                policy.clone(),
                Arc::new(AddressPolicy::default()),
                Duration::from_secs(1),
            ),
            claim: ClaimDomain::new(
                Arc::new(self.claims),
                validate.clone(),
                keys.clone(),
                read.clone(),
                clock.clone(),
                Arc::new(VerifySchedule::default()),
                DEFAULT_CLAIM_TTL,
            ),
            manage: ManageDomain::new(
                lifecycle.clone(),
                keys,
                dns,
                policy,
                read.clone(),
                clock.clone(),
            ),
            verify: VerifyDomain::new(
                validate.clone(),
                lifecycle,
                clock,
                keys_policy,
                Arc::new(VerifySchedule::default()),
            ),
            read,
            validate,
            senders: ManageSenders::new(Arc::new(self.senders)),
            events: ListEvents::new(Arc::new(self.events)),
            jwt: self
                .jwt
                .then(|| JwtSecret::new(JWT_SECRET).expect("a long enough secret")),
            probes: Arc::new(ReadyProbes),
            metrics: Arc::new(Metrics::default()),
            body_timeout: Duration::from_secs(5),
            frame_ancestors: self.frame_ancestors,
            live_checks: Arc::new(crate::live_checks::LiveChecks::with_defaults(Arc::new(
                crate::live_checks::tests::MemoryLog::default(),
            ))),
        }
    }
}

/// Every endpoint gets id `wh_0101…` and a secret of 24 bytes of 7.
fn webhook_secrets() -> MockWebhookSecrets {
    let mut secrets = MockWebhookSecrets::new();
    secrets.expect_issue().returning(|| {
        Ok(IssuedSecret {
            id: WebhookId::from_random([1; 16]),
            secret: WebhookSecret(zeroize::Zeroizing::new(vec![7; 24])),
            sealed: b"sealed".to_vec(),
        })
    });
    secrets
}

/// A response as the tests look at it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: String,
    pub allow: Option<String>,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
    /// Every header, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The value of header `name` (lower-case), if sent.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Status and body, for asserting a plain-text answer in one line.
    pub(crate) fn text(&self) -> (u16, &str) {
        assert_eq!(self.content_type, TEXT, "{}", self.body);
        (self.status, self.body.as_str())
    }
}

/// Runs one request through every route.
pub(crate) async fn call(state: AppState, request: TestRequest) -> Answer {
    call_shared(&web::Data::new(state), request).await
}

/// Runs one request through every route, on a state shared between requests.
pub(crate) async fn call_shared(state: &web::Data<AppState>, request: TestRequest) -> Answer {
    let app = init_service(
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(crate::problem::negotiate))
            .configure(super::configure)
            .default_service(web::to(super::not_found)),
    )
    .await;
    let response = call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap_or_default().to_owned())
    };
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let allow = header(header::ALLOW);
    let www_authenticate = header(header::WWW_AUTHENTICATE);
    let retry_after = header(header::RETRY_AFTER);
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = to_bytes(response.into_body())
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        allow,
        www_authenticate,
        retry_after,
        body,
        headers,
    }
}

/// A request carrying org-a's API tokens.
pub(crate) fn as_org_a(request: TestRequest) -> TestRequest {
    request
        .insert_header(("X-Api-Access-Token", "acc-a"))
        .insert_header(("X-Api-Secret-Token", "sec-a"))
}

/// A request carrying org-b's API tokens.
pub(crate) fn as_org_b(request: TestRequest) -> TestRequest {
    request
        .insert_header(("X-Api-Access-Token", "acc-b"))
        .insert_header(("X-Api-Secret-Token", "sec-b"))
}

/// A request carrying a dashboard JWT for `organization`.
pub(crate) fn with_jwt(request: TestRequest, organization: &OrganizationId) -> TestRequest {
    let secret = JwtSecret::new(JWT_SECRET).expect("a long enough secret");
    let token = secret
        .issue(organization, Duration::from_secs(300))
        .expect("a lifetime within the limit");
    request.insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
}

pub(crate) fn key(selector: &str, state: KeyState, public_key: &str) -> KeyRecord {
    KeyRecord {
        selector: Selector::new(selector).expect("a valid selector"),
        state,
        public_key: public_key.into(),
        created_at: now(),
        activated_at: None,
        retired_at: None,
        revoked_at: None,
    }
}

/// `example.com`, owned by org-a, with `keys` (newest first; the active key is
/// `s1`/`MIIBOLD`) and one active sender.
pub(crate) fn detail(keys: Vec<KeyRecord>) -> DomainDetail {
    DomainDetail {
        domain: StoredDomain::new(
            DomainName::parse("example.com").expect("a valid domain"),
            org_a(),
            Selector::new("s1").expect("a valid selector"),
            "MIIBOLD".into(),
            false,
            now(),
        ),
        senders: vec![SenderRecord {
            email: "noreply@example.com".into(),
            reply_to: None,
            active: true,
            created_at: now(),
        }],
        keys,
    }
}

/// The active key `s1` alone.
pub(crate) fn active_only() -> DomainDetail {
    let mut active = key("s1", KeyState::Active, "MIIBOLD");
    active.activated_at = Some(now());
    detail(vec![active])
}
