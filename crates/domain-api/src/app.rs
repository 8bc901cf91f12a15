//! The composition root: builds every adapter from configuration and hands them to
//! the use cases and the HTTP edge. The only place that knows every crate.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api_actix::live_checks::{DeadlineDns, DeadlineFetcher};
use api_actix::metrics::{
    DbErrorCounters, DbPoolGauges, Gauges, KeyPoolGauges, MeteredDns, Metrics, OutboxGauges,
};
use api_actix::{AppState, Probes};
use async_trait::async_trait;
use dns_hickory::{DnsConfig, HickoryDns};
use domain_core::RecordPolicy;
use domain_core::ports::BoxError;
use domain_core::ports::clock::Clock;
use domain_core::ports::clock::SystemClock;
use domain_core::ports::dns::Dns;
use domain_core::ports::domain_connect::ApplyUrlSigner;
use domain_core::ports::keys::KeyGenerator;
use domain_core::ports::webhooks::DeliveryQueue;
use domain_core::usecases::admin::{ManageKeys, ManageOrganizations};
use domain_core::usecases::authenticate::Authenticate;
use domain_core::usecases::background::CheckDueDomains;
use domain_core::usecases::claim::ClaimDomain;
use domain_core::usecases::connect::DomainConnect;
use domain_core::usecases::create::CreateDomain;
use domain_core::usecases::generate::GenerateRecords;
use domain_core::usecases::idempotency::{GuardRetries, PruneExpiredAnswers};
use domain_core::usecases::key_budget::KeyBudget;
use domain_core::usecases::manage::ManageDomain;
use domain_core::usecases::read::ReadDomains;
use domain_core::usecases::retention::PruneOldEvents;
use domain_core::usecases::senders::{ListEvents, ManageSenders};
use domain_core::usecases::sign::SignMessage;
use domain_core::usecases::validate::ValidateDomain;
use domain_core::usecases::verify::VerifyDomain;
use domain_core::usecases::webhooks::{DeliverWebhooks, DeliverySettings, ManageWebhooks};
use keys_rsa::{
    DomainConnectKey, KeyPool, MasterKey, RingAnswerSealer, RingWebhookSecrets, RsaDkimSigner,
    RsaKeyGenerator, Sealer,
};
use store_diesel::{Store, StoreConfig};

use crate::config::{Config, MigrateMode};
use crate::janitor::Janitor;
use crate::verifier::Verifier;
use crate::webhook_sender::{AttemptRecorder, OutboxReading, Sender};

/// Readiness from the store, gauges from the store's and the key pool's counters and
/// the webhook sender's last reading of the outbox.
struct AdapterProbes {
    store: Arc<Store>,
    key_pool: Option<KeyPool>,
    outbox: Arc<OutboxReading>,
    clock: Arc<dyn Clock>,
}

/// How long `/readyz` waits for the database: a probe must answer in time even
/// while the database does not.
const READY_WITHIN: Duration = Duration::from_secs(1);

#[async_trait]
impl Probes for AdapterProbes {
    async fn ready(&self) -> Result<(), BoxError> {
        // A probe answers within its own second, whatever the store's deadlines.
        match tokio::time::timeout(READY_WITHIN, self.store.ping()).await {
            Ok(pinged) => pinged.map_err(Into::into),
            Err(_) => Err(format!("the database did not answer within {READY_WITHIN:?}").into()),
        }
    }

    fn gauges(&self) -> Gauges {
        let db = self.store.pool_status();
        let batched = self.store.group_commit_stats();
        let errors = self.store.db_error_counts();
        Gauges {
            key_pool: self.key_pool.as_ref().map(|pool| {
                let stats = pool.stats();
                KeyPoolGauges {
                    depth: stats.depth,
                    capacity: stats.capacity,
                    served_from_pool: stats.served_from_pool,
                    generated_inline: stats.generated_inline,
                    refills: stats.refills,
                    refill_seconds: stats.refill_seconds,
                }
            }),
            db_pool: Some(DbPoolGauges {
                max: db.max,
                open: db.open,
                in_use: db.in_use,
                waiting: db.waiting,
                register_batches: batched.batches,
                registrations_batched: batched.registrations,
                registrations_set_based: batched.set_based,
                registrations_one_by_one: batched.one_by_one,
            }),
            outbox: self.outbox.get().map(|stats| OutboxGauges {
                pending: stats.pending,
                oldest_age_seconds: stats.oldest.map_or(0.0, |oldest| {
                    (self.clock.now() - oldest).as_seconds_f64().max(0.0)
                }),
            }),
            db_errors: Some(DbErrorCounters {
                connection: errors.connection,
                timeout: errors.timeout,
                shutdown: errors.shutdown,
                disk_full: errors.disk_full,
                io: errors.io,
                resources: errors.resources,
            }),
        }
    }
}

/// Connects the store (pool only; no connection yet).
///
/// # Errors
/// When the database URL or pool settings are unusable.
pub fn connect_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let mut store_config = StoreConfig::new(config.database_url.clone());
    store_config.max_connections = config.db_pool_size;
    store_config.wait_timeout = config.db_wait_timeout;
    // Waiting for a connection includes opening one when the pool has room: one bound.
    store_config.connect_timeout = config.db_wait_timeout;
    store_config.statement_timeout = config.db_statement_timeout;
    store_config.token_cache_ttl = config.token_cache_ttl;
    let store = Store::connect(&store_config)
        .context("Failed to set up the database pool (DOMAIN_API_DATABASE_URL)")?;
    Ok(Arc::new(store))
}

/// Connects the store and applies pending migrations.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrated_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = connect_store(config)?;
    store
        .migrate()
        .await
        .context("Failed to apply database migrations")?;
    Ok(store)
}

/// A start refused before serving (exit status 2, like a bad setting): the master
/// key does not belong to the database, migrations are pending under
/// `DOMAIN_API_MIGRATE=check`, a secret is given twice.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartRefused(pub String);

/// Fails unless the configured database exists: every command but `serve` and
/// `migrate` works on an existing database and creates none (a command run in the
/// wrong directory must not leave a new database and master key behind).
///
/// # Errors
/// `no database at <path>; set DOMAIN_API_DATABASE_URL` for a missing SQLite file.
pub fn require_database(config: &Config) -> anyhow::Result<()> {
    match config.sqlite_path() {
        Some(path) if !path.exists() => {
            anyhow::bail!(
                "no database at {}; set DOMAIN_API_DATABASE_URL",
                path.display()
            )
        }
        _ => Ok(()),
    }
}

/// The store of an existing, migrated database (see [`require_database`]). Runs no
/// migration: a database with pending ones is refused, pointing at `domain-api
/// migrate`.
///
/// # Errors
/// When there is no database, it cannot be reached, or migrations are pending.
pub async fn existing_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    require_database(config)?;
    let store = connect_store(config)?;
    let pending = store
        .pending_migrations()
        .await
        .context("Failed to read which migrations the database has")?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database at {} has {} pending migration(s) ({}); run `domain-api migrate` first",
            describe_database(config),
            pending.len(),
            pending.join(", ")
        );
    }
    Ok(store)
}

/// The store `serve` runs on, migrated as `DOMAIN_API_MIGRATE` says: `auto` applies
/// pending migrations, `off` runs no DDL (and warns of pending ones), `check`
/// refuses the start while any is pending.
///
/// # Errors
/// [`StartRefused`] under `check` with pending migrations; any failure to reach or migrate the database.
async fn store_for_serving(config: &Config) -> anyhow::Result<Arc<Store>> {
    let mode = config.migrate;
    if mode == MigrateMode::Auto {
        return migrated_store(config).await;
    }
    let store = connect_store(config)?;
    let pending = store.pending_migrations().await;
    match (mode, pending) {
        (MigrateMode::Check, Ok(pending)) if !pending.is_empty() => Err(StartRefused(format!(
            "DOMAIN_API_MIGRATE=check: {} migration(s) pending: {}; run `domain-api migrate` first",
            pending.len(),
            pending.join(", ")
        ))
        .into()),
        (MigrateMode::Check, Err(error)) => Err(anyhow::Error::new(error)
            .context("DOMAIN_API_MIGRATE=check: failed to read which migrations the database has")),
        (_, Ok(pending)) if !pending.is_empty() => {
            tracing::warn!(
                pending = %pending.join(", "),
                "migrations are pending and DOMAIN_API_MIGRATE=off: run `domain-api migrate`"
            );
            Ok(store)
        }
        (_, Err(error)) => {
            tracing::warn!(error = %error, "DOMAIN_API_MIGRATE=off: could not read which migrations the database has");
            Ok(store)
        }
        (_, Ok(_)) => Ok(store),
    }
}

/// The database for the start's log line: the SQLite file's absolute path, or the
/// PostgreSQL URL without its password.
#[must_use]
pub fn describe_database(config: &Config) -> String {
    match config.sqlite_path() {
        Some(path) => path.display().to_string(),
        None => without_password(&config.database_url),
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &url[scheme_end..scheme_end + at];
    match userinfo.split_once(':') {
        Some((user, _)) => format!(
            "{}{user}:***{}",
            &url[..scheme_end],
            &url[scheme_end + at..]
        ),
        None => url.to_owned(),
    }
}

/// How many stored DKIM keys a start tries its master key on.
const MASTER_KEY_SAMPLE: usize = 16;

/// What `serve` starts on: the database (created and migrated when it is new) and a
/// master key that belongs to it. A new SQLite database gets a new key file beside
/// it; an existing one must have its key, and a key that opens none of the stored
/// DKIM keys refuses the start rather than serve (and seal new keys) under it.
///
/// # Errors
/// [`StartRefused`] when the key is missing or does not belong to the database;
/// any failure to reach or migrate the database.
pub async fn open_for_serving(config: &Config) -> anyhow::Result<(Arc<Store>, MasterKey)> {
    let database = describe_database(config);
    let new_database = config.sqlite_path().is_some_and(|path| !path.exists());
    if new_database && config.migrate != MigrateMode::Auto {
        // Under `off` and `check` no database is created, so neither is a key.
        return Err(StartRefused(format!(
            "no database at {database}; DOMAIN_API_MIGRATE={} creates none: run `domain-api migrate` first",
            config.migrate.as_str()
        ))
        .into());
    }
    let master_key = if new_database {
        config
            .load_or_create_master_key()
            .context("Failed to load the master key")?
    } else {
        config.load_master_key().map_err(|error| {
            StartRefused(format!(
                "the database at {database} exists, but its master key cannot be loaded ({error}); \
                 restore the key its DKIM keys were sealed with (or set DOMAIN_API_MASTER_KEY): \
                 a new key would open none of them"
            ))
        })?
    };
    tracing::info!(
        %database,
        master_key = %config.master_key.describe(),
        "database and master key"
    );
    let store = store_for_serving(config).await?;
    let sealer = Arc::new(Sealer::new(&master_key));
    let check = ManageKeys::new(
        store.clone(),
        sealer.clone(),
        Arc::new(RingWebhookSecrets::new(sealer.clone())),
        Arc::new(RingAnswerSealer::new(sealer)),
    )
    .check_master_key(MASTER_KEY_SAMPLE)
    .await
    .context("Failed to read the stored DKIM keys")?;
    if check.opens_none() {
        return Err(StartRefused(format!(
            "the master key ({}) opens none of the {} DKIM keys tried in the database at {database}: \
             it is not the key they were sealed with",
            config.master_key.describe(),
            check.tried
        ))
        .into());
    }
    Ok((store, master_key))
}

/// The organization and token use cases over an existing store.
///
/// # Errors
/// When there is no database, or it cannot be reached or migrated.
pub async fn organizations(config: &Config) -> anyhow::Result<ManageOrganizations> {
    Ok(ManageOrganizations::new(existing_store(config).await?))
}

/// The key administration use cases over an existing store and the configured
/// master key.
///
/// # Errors
/// When there is no database, it cannot be reached or migrated, or the master key
/// cannot be loaded.
pub async fn keys(config: &Config) -> anyhow::Result<ManageKeys> {
    let store = existing_store(config).await?;
    let master_key = config
        .load_master_key()
        .context("Failed to load the master key")?;
    let sealer = Arc::new(Sealer::new(&master_key));
    Ok(ManageKeys::new(
        store,
        sealer.clone(),
        Arc::new(RingWebhookSecrets::new(sealer.clone())),
        Arc::new(RingAnswerSealer::new(sealer)),
    ))
}

/// The sign use case: the store's keys, opened with the configured master key.
///
/// # Errors
/// When the master key cannot be loaded.
pub fn sign_message(config: &Config, store: Arc<Store>) -> anyhow::Result<SignMessage> {
    let master_key = config
        .load_master_key()
        .context("Failed to load the master key")?;
    let signer = RsaDkimSigner::new(Arc::new(Sealer::new(&master_key)));
    Ok(SignMessage::new(store, Arc::new(signer)))
}

/// Builds the application state from configuration; also returns the key pool so
/// the caller can start its refill on the runtime.
///
/// # Errors
/// When the DNS resolver, the record policy or the webhook client cannot be set up.
pub fn build_state(
    config: &Config,
    store: Arc<Store>,
    master_key: &MasterKey,
) -> anyhow::Result<Built> {
    let sealer = Arc::new(Sealer::new(master_key));
    let webhook_secrets = Arc::new(RingWebhookSecrets::new(Arc::clone(&sealer)));
    let answer_sealer = Arc::new(RingAnswerSealer::new(Arc::clone(&sealer)));
    let dns = HickoryDns::new(&DnsConfig {
        servers: config.dns_servers.clone(),
        timeout: config.dns_timeout,
        nameserver_port: config.test_nameserver_port.unwrap_or(53),
        trust_anchors: config.test_dnssec_trust_anchor.iter().cloned().collect(),
    })
    .context("Failed to set up the DNS resolver (DOMAIN_API_DNS_SERVERS)")?;
    let metrics = Arc::new(Metrics::default());
    // Inside the metering, so lookups ended by a request's deadline count as timeouts.
    let dns = Arc::new(DeadlineDns::new(Arc::new(dns)));
    let dns: Arc<dyn Dns> = Arc::new(MeteredDns::new(dns, Arc::clone(&metrics)));
    let key_pool =
        (config.key_pool_size > 0).then(|| KeyPool::new(Arc::clone(&sealer), config.key_pool_size));
    let keys: Arc<dyn KeyGenerator> = match &key_pool {
        Some(pool) => Arc::new(pool.clone()),
        None => Arc::new(RsaKeyGenerator::new(sealer)),
    };
    let policy = Arc::new(
        RecordPolicy::new(config.spf_ips.clone(), &config.inbound_mx_hosts)
            .context("DOMAIN_API_INBOUND_MX_HOSTS / DOMAIN_API_SPF_IPS")?
            .with_ttl(config.record_ttl),
    );
    let clock: Arc<dyn Clock> = match &config.test_clock_file {
        None => Arc::new(SystemClock),
        Some(path) => Arc::new(FileOffsetClock(path.clone())),
    };
    let schedule = Arc::new(config.verify_schedule.clone());
    // One key-generation budget: new domains (inside the registration), rotations
    // and claims (before they generate their key).
    let key_budget = KeyBudget::new(store.clone(), config.ownership.limits);
    let read = ReadDomains::new(
        store.clone(),
        policy.clone(),
        config.dkim_keys,
        clock.clone(),
    );
    let validate = ValidateDomain::new(store.clone(), dns.clone(), policy.clone());
    let verify = VerifyDomain::new(
        validate.clone(),
        store.clone(),
        clock.clone(),
        config.dkim_keys,
        schedule.clone(),
    );
    // A check makes a handful of lookups, each bounded by the DNS timeout: a lease
    // of ten of those outlasts any check, and is what a crashed instance's domains
    // wait before another instance checks them.
    let lease = (config.dns_timeout * 10).max(Duration::from_secs(5));
    let checks = CheckDueDomains::new(
        store.clone(),
        store.clone(),
        verify.clone(),
        clock.clone(),
        lease,
    );
    let webhook_policy = Arc::new(config.webhooks.policy.clone());
    // Attempts are recorded in batches, one transaction each.
    let recorder: Arc<dyn DeliveryQueue> = AttemptRecorder::start(store.clone());
    let deliveries = DeliverWebhooks::new(
        recorder,
        webhook_secrets.clone(),
        dns.clone(),
        Arc::new(
            webhooks_rustls::HttpWebhookSender::new(concat!(
                "domain-api-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .context("Failed to set up the webhook TLS client (the system's trust store)")?,
        ),
        clock.clone(),
        DeliverySettings {
            policy: webhook_policy.clone(),
            retry: Arc::new(config.webhooks.retry.clone()),
            timeout: config.webhooks.timeout,
        },
    );
    let outbox = Arc::new(OutboxReading::default());
    let generate = GenerateRecords::new(
        store.clone(),
        keys.clone(),
        dns.clone(),
        policy.clone(),
        Arc::new(config.ownership.clone()),
        schedule.clone(),
        clock.clone(),
    );
    let state = AppState {
        authenticate: Authenticate::new(store.clone()),
        idempotency: GuardRetries::new(
            store.clone(),
            answer_sealer,
            clock.clone(),
            config.idempotency_ttl,
            config.idempotency_lease,
        )
        .with_max_bytes_per_org(store.clone(), config.idempotency_max_bytes_per_org),
        webhooks: ManageWebhooks::new(
            store.clone(),
            webhook_secrets,
            dns.clone(),
            clock.clone(),
            webhook_policy,
            config.webhooks.max_endpoints,
        ),
        create: CreateDomain::new(generate.clone(), read.clone()),
        generate,
        connect: domain_connect(config, read.clone(), dns.clone(), policy.clone())?,
        claim: ClaimDomain::new(
            store.clone(),
            validate.clone(),
            keys.clone(),
            read.clone(),
            clock.clone(),
            schedule.clone(),
            config.claim_ttl,
        )
        .with_key_budget(key_budget.clone()),
        manage: ManageDomain::new(
            store.clone(),
            keys,
            dns,
            policy,
            read.clone(),
            clock.clone(),
        )
        .with_key_budget(key_budget, config.dkim_rotation_interval),
        verify: verify.clone(),
        senders: ManageSenders::new(store.clone()),
        events: ListEvents::new(store.clone()),
        read,
        validate,
        jwt: config.jwt_secret.clone(),
        probes: Arc::new(AdapterProbes {
            store: store.clone(),
            key_pool: key_pool.clone(),
            outbox: outbox.clone(),
            clock: clock.clone(),
        }),
        metrics,
        body_timeout: config.body_timeout,
        frame_ancestors: config.setup_frame_ancestors.clone(),
        live_checks: Arc::new(api_actix::live_checks::LiveChecks::new(
            config.live_checks_per_minute,
            config.check_deadline,
            store.clone(),
        )),
    };
    Ok(Built {
        state,
        key_pool,
        checks,
        deliveries,
        prune_answers: PruneExpiredAnswers::new(store.clone(), clock.clone()),
        prune_events: PruneOldEvents::new(store.clone(), clock, config.event_retention)
            .context("DOMAIN_API_EVENT_RETENTION is too long")?,
        queue: store,
        outbox,
    })
}

/// What the server runs: the HTTP state, the key pool to refill, the background
/// checks, the webhook deliveries.
pub struct Built {
    pub state: AppState,
    pub key_pool: Option<KeyPool>,
    pub checks: CheckDueDomains,
    pub deliveries: DeliverWebhooks,
    pub queue: Arc<Store>,
    pub outbox: Arc<OutboxReading>,
    /// Expired Idempotency-Key answers, removed by the janitor.
    pub prune_answers: PruneExpiredAnswers,
    /// Events past their retention, removed by the janitor.
    pub prune_events: PruneOldEvents,
}

/// Opens the database and its master key ([`open_for_serving`]), then serves HTTP until SIGINT/SIGTERM.
///
/// # Errors
/// When start-up fails: configuration, migrations, or binding the address.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let (store, master_key) = open_for_serving(&config).await?;
    let Built {
        state,
        key_pool,
        checks,
        deliveries,
        queue,
        outbox,
        prune_answers,
        prune_events,
    } = build_state(&config, store, &master_key)?;
    if let Some(pool) = &key_pool {
        // Ends with the runtime; never holds up shutdown (see main).
        pool.start_refill();
    }
    let listener = TcpListener::bind(config.bind)
        .with_context(|| format!("Failed to bind {} (DOMAIN_API_BIND)", config.bind))?;
    // The address actually bound: with port 0 the kernel picks one, and this line
    // is how a supervisor (or a test) learns it.
    let addr = listener
        .local_addr()
        .context("Failed to read the bound address")?;
    let admin = match config.admin_bind {
        None => None,
        Some(admin_bind) => {
            let admin = TcpListener::bind(admin_bind)
                .with_context(|| format!("Failed to bind {admin_bind} (DOMAIN_API_ADMIN_BIND)"))?;
            let admin_addr = admin
                .local_addr()
                .context("Failed to read the bound admin address")?;
            tracing::info!(addr = %admin_addr, "admin listening (/healthz, /readyz, /metrics, /api/v1/openapi.json)");
            Some(admin)
        }
    };
    tracing::info!(%addr, "listening");
    if let Some(path) = &config.addr_file {
        write_addr_file(path, addr)?;
    }
    let verifier = config
        .verifier
        .map(|settings| Verifier::start(checks, Arc::clone(&state.metrics), settings));
    let janitor = Janitor::start(prune_answers, prune_events);
    let sender = config.webhooks.sender.map(|settings| {
        Sender::start(
            deliveries,
            queue,
            outbox,
            Arc::clone(&state.metrics),
            settings,
        )
    });
    // actix-web stops on SIGTERM/SIGINT (finishing requests in flight); then the
    // verifier finishes the checks in flight, and the sender its deliveries.
    let (server, admin) = api_actix::server::serve_with_admin(state, listener, admin)
        .context("Failed to start the HTTP server")?;
    let served = match admin {
        None => server.await,
        Some(admin) => {
            let (public, admin) = tokio::join!(server, admin);
            public.and(admin)
        }
    }
    .context("HTTP server failed");
    janitor.stop().await;
    if let Some(verifier) = verifier {
        verifier.stop(Duration::from_secs(10)).await;
    }
    if let Some(sender) = sender {
        sender
            .stop(config.webhooks.timeout + Duration::from_secs(5))
            .await;
    }
    served
}

/// Writes the bound address to `path` atomically (a reader never sees half of it).
fn write_addr_file(path: &std::path::Path, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let staged = path.with_extension("tmp");
    std::fs::write(&staged, format!("{addr}\n"))
        .and_then(|()| std::fs::rename(&staged, path))
        .with_context(|| format!("Failed to write {} (DOMAIN_API_ADDR_FILE)", path.display()))
}

/// The system's clock moved on by the whole seconds written in a file (tests only:
/// `DOMAIN_API_TEST_CLOCK_FILE`). A missing or unreadable file means no offset.
#[derive(Debug)]
struct FileOffsetClock(std::path::PathBuf);

impl Clock for FileOffsetClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let offset = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now() + chrono::TimeDelta::seconds(offset)
    }
}

/// Domain Connect's use case: configured (the identity and the signing key read from
/// its file) or off, every domain then answered "not supported".
fn domain_connect(
    config: &Config,
    read: ReadDomains,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
) -> anyhow::Result<DomainConnect> {
    let extra_roots = match &config.test_domain_connect_ca_file {
        None => None,
        Some(path) => Some(std::fs::read(path).with_context(|| {
            format!(
                "Failed to read DOMAIN_API_TEST_DOMAIN_CONNECT_CA_FILE ({})",
                path.display()
            )
        })?),
    };
    let fetcher = webhooks_rustls::HttpsGetter::new(
        concat!("domain-api/", env!("CARGO_PKG_VERSION")),
        extra_roots.as_deref(),
    )
    .context("Failed to set up the Domain Connect TLS client (the system's trust store)")?;
    let (signer, identity) = match &config.domain_connect {
        None => (None, None),
        Some(settings) => {
            let key: Arc<dyn ApplyUrlSigner> =
                Arc::new(load_domain_connect_key(&settings.key_file)?);
            (Some(key), Some(settings.identity.clone()))
        }
    };
    Ok(DomainConnect::new(
        read,
        dns,
        // One deadline for the discovery's lookups and requests together.
        Arc::new(DeadlineFetcher::new(Arc::new(fetcher))),
        signer,
        identity,
        policy,
        Arc::new(config.webhooks.policy.clone()),
        config.check_deadline,
    ))
}

/// The Domain Connect signing key in `path` (PEM).
///
/// # Errors
/// The file cannot be read or holds no usable RSA private key.
pub fn load_domain_connect_key(path: &std::path::Path) -> anyhow::Result<DomainConnectKey> {
    let pem = std::fs::read_to_string(path).with_context(|| {
        format!(
            "Failed to read DOMAIN_API_DOMAIN_CONNECT_KEY_FILE ({})",
            path.display()
        )
    })?;
    DomainConnectKey::from_pem(&pem).context("DOMAIN_API_DOMAIN_CONNECT_KEY_FILE")
}
