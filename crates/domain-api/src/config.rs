//! Configuration from `DOMAIN_API_*` environment variables. Every bad value fails at
//! start with one line naming the variable; nothing secret is echoed.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain_core::DomainName;
use domain_core::ownership::{CreationLimits, DEFAULT_CLAIM_TTL, Ownership, ReservedDomains};
use domain_core::usecases::verify::{KeyPolicy, VerifySchedule};
use domain_core::usecases::webhooks::DEFAULT_MAX_ENDPOINTS;
use domain_core::webhooks::{AddressPolicy, RetrySchedule};
use keys_rsa::MasterKey;

use api_actix::frame_ancestors::FrameAncestors;
use api_actix::jwt::{DEFAULT_MAX_TTL, JwtSecret};
use store_diesel::BackendKind;

/// How the background verifier runs in this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierSettings {
    /// Checks in flight at once (`DOMAIN_API_VERIFY_CONCURRENCY`, default 4).
    pub concurrency: usize,
    /// How long an idle verifier waits before looking for due domains again
    /// (`DOMAIN_API_VERIFY_POLL_INTERVAL`, default `1s`).
    pub poll: Duration,
}

/// Webhooks: who may be reached, how deliveries are retried, and how this instance's
/// sender runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `DOMAIN_API_WEBHOOK_ALLOW_HTTP`, `…_ALLOW_NETS`, `…_ALLOW_PRIVATE`.
    pub policy: AddressPolicy,
    /// `DOMAIN_API_WEBHOOK_RETRY_SCHEDULE` (default `5s,5m,30m,2h,5h,10h,10h`).
    pub retry: RetrySchedule,
    /// Bound on one delivery (`DOMAIN_API_WEBHOOK_TIMEOUT_MS`, default 5000).
    pub timeout: Duration,
    /// Endpoints per organization (`DOMAIN_API_MAX_WEBHOOKS_PER_ORG`, default 20).
    pub max_endpoints: usize,
    /// The sender in this instance; `None` when `DOMAIN_API_WEBHOOK_SENDER=off`.
    pub sender: Option<SenderSettings>,
}

/// How this instance's webhook sender runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderSettings {
    /// Deliveries in flight at once (`DOMAIN_API_WEBHOOK_CONCURRENCY`, default 16).
    pub concurrency: usize,
    /// Of those, at most this many for one organization
    /// (`DOMAIN_API_WEBHOOK_CONCURRENCY_PER_ORG`, default 4).
    pub per_organization: usize,
    /// How long an idle sender waits before looking again
    /// (`DOMAIN_API_WEBHOOK_POLL_INTERVAL`, default `1s`).
    pub poll: Duration,
    /// How long delivered and failed deliveries are kept
    /// (`DOMAIN_API_WEBHOOK_RETENTION`, default `30d`).
    pub retention: Duration,
}

/// Settings for the server and every CLI command.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Where to write the address actually bound (useful with port 0), if anywhere.
    pub addr_file: Option<PathBuf>,
    /// `DOMAIN_API_ADMIN_BIND`: a second listener for `/healthz`, `/readyz`,
    /// `/metrics` and the OpenAPI document, which then leave the public one.
    pub admin_bind: Option<SocketAddr>,
    pub database_url: String,
    pub master_key: MasterKeySource,
    pub spf_ips: Vec<IpAddr>,
    pub inbound_mx_hosts: Vec<String>,
    pub dns_servers: Option<Vec<SocketAddr>>,
    pub dns_timeout: Duration,
    pub db_pool_size: usize,
    pub db_wait_timeout: Duration,
    /// Bound on one database statement or lock wait (`statement_timeout` and
    /// `lock_timeout` on PostgreSQL, `busy_timeout` on SQLite).
    pub db_statement_timeout: Duration,
    pub log_format: LogFormat,
    /// `DOMAIN_API_JWT_SECRET`; `None` disables the validate endpoint (404).
    pub jwt_secret: Option<JwtSecret>,
    /// `DOMAIN_API_SETUP_FRAME_ANCESTORS`: origins that may frame the Setup page
    /// (none by default).
    pub setup_frame_ancestors: FrameAncestors,
    /// Pre-generated DKIM keys kept ready; 0 disables the pool.
    pub key_pool_size: usize,
    /// Bound on reading one whole request body (`DOMAIN_API_BODY_TIMEOUT_MS`).
    pub body_timeout: Duration,
    /// What new domains are held to: `DOMAIN_API_RESERVED_DOMAINS`,
    /// `DOMAIN_API_MAX_DOMAINS_PER_ORG`, `DOMAIN_API_NEW_DOMAINS_PER_MINUTE`.
    pub ownership: Ownership,
    /// How long a claim stays open (`DOMAIN_API_CLAIM_TTL`, default 7 days).
    pub claim_ttl: Duration,
    /// Tests only (`DOMAIN_API_TEST_CLOCK_FILE`): a file holding whole seconds that the
    /// service's clock runs ahead of the system's, read at each reading of the
    /// clock, so an end-to-end test moves time on instead of sleeping.
    pub test_clock_file: Option<PathBuf>,
    /// When domains are checked (`DOMAIN_API_VERIFY_SCHEDULE`,
    /// `DOMAIN_API_VERIFY_INTERVAL`).
    pub verify_schedule: VerifySchedule,
    /// The background verifier; `None` when `DOMAIN_API_VERIFIER=off`.
    pub verifier: Option<VerifierSettings>,
    /// How long DKIM keys stay retiring and revoked (`DOMAIN_API_DKIM_RETIRE_AFTER`,
    /// `DOMAIN_API_DKIM_REVOKED_KEEP`).
    pub dkim_keys: KeyPolicy,
    /// Webhooks (`DOMAIN_API_WEBHOOK_*`).
    pub webhooks: WebhookSettings,
    /// How long an `Idempotency-Key`'s answer is replayed (`DOMAIN_API_IDEMPOTENCY_TTL`,
    /// default `24h`).
    pub idempotency_ttl: Duration,
    /// How long a running keyed request holds its key before a retry may take it
    /// over (`DOMAIN_API_IDEMPOTENCY_LEASE`, default `30s`): what a crashed
    /// instance's keys wait.
    pub idempotency_lease: Duration,
    /// The bound on one organization's kept answers, in bytes
    /// (`DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`, default 64 MiB).
    pub idempotency_max_bytes_per_org: u64,
    /// How long events (and their webhook deliveries) are kept
    /// (`DOMAIN_API_EVENT_RETENTION`, default `90d`, at least `1h`).
    pub event_retention: Duration,
    /// The least time between two rotations of one domain
    /// (`DOMAIN_API_DKIM_ROTATION_INTERVAL`, default `24h`; `0` turns it off).
    pub dkim_rotation_interval: Duration,
    /// Requests that query DNS on an organization's behalf, per organization and
    /// minute, per instance (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`, default 120).
    pub live_checks_per_minute: u32,
    /// The bound on all the DNS work of one such request
    /// (`DOMAIN_API_CHECK_DEADLINE_MS`, default twice `DOMAIN_API_DNS_TIMEOUT_MS`).
    pub check_deadline: Duration,
    /// Whether `serve` applies pending migrations (`DOMAIN_API_MIGRATE`).
    pub migrate: MigrateMode,
}

/// `DOMAIN_API_MIGRATE`: what `serve` does about pending migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateMode {
    /// `auto` (the default): applies them, then serves.
    Auto,
    /// `off`: never runs DDL (a role with DML rights only will do); a pending
    /// migration is logged as a warning.
    Off,
    /// `check`: a pending migration refuses the start (exit 2), naming it.
    Check,
}

impl MigrateMode {
    /// The setting's value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Off => "off",
            Self::Check => "check",
        }
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given (`DOMAIN_API_MASTER_KEY`, `…_FILE` or the `master-key` credential),
    /// already parsed; `origin` says which, for the start's log line.
    Given { key: MasterKey, origin: String },
    /// SQLite without `DOMAIN_API_MASTER_KEY`: a file beside the database, generated
    /// on first use with mode 0600.
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One bad setting: which variable, and why.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

fn invalid(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/domain-api.db";

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable with a bad value.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable with a bad value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind = match get("DOMAIN_API_BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid("DOMAIN_API_BIND", "expected ip:port, e.g. 127.0.0.1:8080"))?,
        };

        let admin_bind = get("DOMAIN_API_ADMIN_BIND")
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    invalid(
                        "DOMAIN_API_ADMIN_BIND",
                        "expected ip:port, e.g. 127.0.0.1:9090",
                    )
                })
            })
            .transpose()?;

        let addr_file = get("DOMAIN_API_ADDR_FILE")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);

        let database_url = secret(&get, &DATABASE_URL)?.map_or_else(
            || DEFAULT_DATABASE_URL.to_owned(),
            |(url, _)| url.trim().to_owned(),
        );
        let kind = BackendKind::of_url(&database_url).map_err(|_| {
            invalid(
                "DOMAIN_API_DATABASE_URL",
                "expected postgres://… or sqlite://PATH",
            )
        })?;

        let master_key = match secret(&get, &MASTER_KEY)? {
            Some((v, origin)) => MasterKeySource::Given {
                key: MasterKey::from_base64(&v)
                    .map_err(|e| invalid("DOMAIN_API_MASTER_KEY", e.to_string()))?,
                origin,
            },
            None if kind == BackendKind::Sqlite => {
                MasterKeySource::File(master_key_path(&database_url))
            }
            None => {
                return Err(invalid(
                    "DOMAIN_API_MASTER_KEY",
                    "required with PostgreSQL (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
                ));
            }
        };

        let spf_ips = match get("DOMAIN_API_SPF_IPS") {
            None => vec![IpAddr::from([51, 79, 43, 241])],
            Some(v) => split_list(&v)
                .map(|ip| {
                    ip.parse().map_err(|_| {
                        invalid("DOMAIN_API_SPF_IPS", format!("{ip:?} is not an IP address"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        if spf_ips.is_empty() {
            return Err(invalid(
                "DOMAIN_API_SPF_IPS",
                "at least one IP address is required",
            ));
        }

        let inbound_mx_hosts: Vec<String> = match get("DOMAIN_API_INBOUND_MX_HOSTS") {
            None => vec!["inbound.sendtrim.com".into(), "smtp.sendtrim.com".into()],
            Some(v) => split_list(&v).map(str::to_owned).collect(),
        };

        let dns_servers = match get("DOMAIN_API_DNS_SERVERS") {
            None => None,
            Some(v) => Some(
                split_list(&v)
                    .map(|s| {
                        s.parse().map_err(|_| {
                            invalid("DOMAIN_API_DNS_SERVERS", format!("{s:?} is not ip:port"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };

        let dns_timeout =
            Duration::from_millis(number(&get, "DOMAIN_API_DNS_TIMEOUT_MS", 2000, 1..=60_000)?);
        // SQLite runs one writer at a time, so a few connections serve as well as many
        // and each one keeps its own page cache; PostgreSQL gets a real pool.
        let default_pool = if kind == BackendKind::Sqlite { 4 } else { 16 };
        let db_pool_size = usize::try_from(number(
            &get,
            "DOMAIN_API_DB_POOL_SIZE",
            default_pool,
            1..=1000,
        )?)
        .map_err(|_| invalid("DOMAIN_API_DB_POOL_SIZE", "out of range"))?;
        let db_wait_timeout = Duration::from_millis(number(
            &get,
            "DOMAIN_API_DB_WAIT_TIMEOUT_MS",
            5000,
            1..=600_000,
        )?);
        let db_statement_timeout = Duration::from_millis(number(
            &get,
            "DOMAIN_API_DB_STATEMENT_TIMEOUT_MS",
            5000,
            1..=600_000,
        )?);

        let log_format = match get("DOMAIN_API_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(invalid("DOMAIN_API_LOG_FORMAT", "expected pretty or json")),
        };

        // The longest lifetime of a dashboard JWT: `jwt issue` refuses more, the
        // server refuses a token that has more.
        let jwt_max_ttl = std_duration(&get, "DOMAIN_API_JWT_MAX_TTL", DEFAULT_MAX_TTL)?;
        let jwt_secret = secret(&get, &JWT_SECRET)?
            .map(|(v, _)| {
                JwtSecret::new(v.as_bytes())
                    .map(|secret| secret.with_max_ttl(jwt_max_ttl))
                    .map_err(|reason| invalid("DOMAIN_API_JWT_SECRET", reason))
            })
            .transpose()?;

        let setup_frame_ancestors = match get("DOMAIN_API_SETUP_FRAME_ANCESTORS") {
            None => FrameAncestors::none(),
            Some(v) => FrameAncestors::parse(&v)
                .map_err(|e| invalid("DOMAIN_API_SETUP_FRAME_ANCESTORS", e.to_string()))?,
        };

        let reserved = match get("DOMAIN_API_RESERVED_DOMAINS") {
            None => ReservedDomains::default_for(&inbound_mx_hosts),
            Some(v) => ReservedDomains::new(
                split_list(&v)
                    .map(|name| {
                        DomainName::parse(name).map_err(|e| {
                            invalid(
                                "DOMAIN_API_RESERVED_DOMAINS",
                                format!("{name:?} is not a domain name: {e}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let limits = CreationLimits {
            max_domains: u32::try_from(number(
                &get,
                "DOMAIN_API_MAX_DOMAINS_PER_ORG",
                u64::from(CreationLimits::default().max_domains),
                1..=10_000_000,
            )?)
            .map_err(|_| invalid("DOMAIN_API_MAX_DOMAINS_PER_ORG", "out of range"))?,
            per_minute: u32::try_from(number(
                &get,
                "DOMAIN_API_NEW_DOMAINS_PER_MINUTE",
                u64::from(CreationLimits::default().per_minute),
                1..=100_000,
            )?)
            .map_err(|_| invalid("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "out of range"))?,
            max_senders_per_domain: u32::try_from(number(
                &get,
                "DOMAIN_API_MAX_SENDERS_PER_DOMAIN",
                u64::from(CreationLimits::default().max_senders_per_domain),
                1..=10_000_000,
            )?)
            .map_err(|_| invalid("DOMAIN_API_MAX_SENDERS_PER_DOMAIN", "out of range"))?,
        };
        let ownership = Ownership { reserved, limits };
        let claim_ttl = std_duration(&get, "DOMAIN_API_CLAIM_TTL", DEFAULT_CLAIM_TTL)?;
        let test_clock_file = get("DOMAIN_API_TEST_CLOCK_FILE").map(PathBuf::from);

        let schedule_defaults = VerifySchedule::default();
        let verify_schedule = match (
            get("DOMAIN_API_VERIFY_SCHEDULE"),
            get("DOMAIN_API_VERIFY_INTERVAL"),
        ) {
            (None, None) => schedule_defaults,
            (schedule, interval) => {
                let pending = match schedule {
                    None => schedule_defaults.pending().to_vec(),
                    Some(text) => crate::durations::parse_schedule(&text)
                        .map_err(|e| invalid("DOMAIN_API_VERIFY_SCHEDULE", e.to_string()))?
                        .into_iter()
                        .map(|d| {
                            chrono::TimeDelta::from_std(d)
                                .map_err(|_| invalid("DOMAIN_API_VERIFY_SCHEDULE", "too long"))
                        })
                        .collect::<Result<_, _>>()?,
                };
                let interval = match interval {
                    None => schedule_defaults.interval(),
                    Some(_) => duration(
                        &get,
                        "DOMAIN_API_VERIFY_INTERVAL",
                        chrono::TimeDelta::zero(),
                    )?,
                };
                VerifySchedule::new(pending, interval).ok_or_else(|| {
                    invalid("DOMAIN_API_VERIFY_SCHEDULE", "needs at least one delay")
                })?
            }
        };
        let verifier = match get("DOMAIN_API_VERIFIER").as_deref().map(str::trim) {
            None | Some("on") => Some(VerifierSettings {
                concurrency: usize::try_from(number(
                    &get,
                    "DOMAIN_API_VERIFY_CONCURRENCY",
                    4,
                    1..=256,
                )?)
                .map_err(|_| invalid("DOMAIN_API_VERIFY_CONCURRENCY", "out of range"))?,
                poll: std_duration(
                    &get,
                    "DOMAIN_API_VERIFY_POLL_INTERVAL",
                    Duration::from_secs(1),
                )?,
            }),
            Some("off") => None,
            Some(_) => return Err(invalid("DOMAIN_API_VERIFIER", "expected on or off")),
        };

        let key_pool_size =
            usize::try_from(number(&get, "DOMAIN_API_KEY_POOL_SIZE", 16, 0..=1024)?)
                .map_err(|_| invalid("DOMAIN_API_KEY_POOL_SIZE", "out of range"))?;

        let body_timeout = Duration::from_millis(number(
            &get,
            "DOMAIN_API_BODY_TIMEOUT_MS",
            10_000,
            1..=600_000,
        )?);

        let defaults = KeyPolicy::default();
        let dkim_keys = KeyPolicy {
            retire_after: duration(&get, "DOMAIN_API_DKIM_RETIRE_AFTER", defaults.retire_after)?,
            revoked_keep: duration(&get, "DOMAIN_API_DKIM_REVOKED_KEEP", defaults.revoked_keep)?,
        };

        let dkim_rotation_interval = match get("DOMAIN_API_DKIM_ROTATION_INTERVAL")
            .as_deref()
            .map(str::trim)
        {
            Some("0" | "0s") => Duration::ZERO,
            _ => std_duration(
                &get,
                "DOMAIN_API_DKIM_ROTATION_INTERVAL",
                domain_core::usecases::manage::DEFAULT_ROTATION_INTERVAL,
            )?,
        };

        let live_checks_per_minute = u32::try_from(number(
            &get,
            "DOMAIN_API_LIVE_CHECKS_PER_MINUTE",
            u64::from(api_actix::live_checks::DEFAULT_PER_MINUTE),
            1..=1_000_000,
        )?)
        .map_err(|_| invalid("DOMAIN_API_LIVE_CHECKS_PER_MINUTE", "out of range"))?;
        let check_deadline = Duration::from_millis(number(
            &get,
            "DOMAIN_API_CHECK_DEADLINE_MS",
            2 * u64::try_from(dns_timeout.as_millis()).unwrap_or(u64::MAX / 2),
            1..=120_000,
        )?);

        let webhooks = webhook_settings(&get)?;
        let idempotency_ttl = std_duration(
            &get,
            "DOMAIN_API_IDEMPOTENCY_TTL",
            domain_core::usecases::idempotency::DEFAULT_TTL,
        )?;
        let event_retention = std_duration(
            &get,
            "DOMAIN_API_EVENT_RETENTION",
            domain_core::usecases::retention::DEFAULT_EVENT_RETENTION,
        )?;
        if event_retention < Duration::from_secs(3600) {
            return Err(invalid("DOMAIN_API_EVENT_RETENTION", "must be at least 1h"));
        }
        let idempotency_max_bytes_per_org = number(
            &get,
            "DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG",
            domain_core::usecases::idempotency::DEFAULT_MAX_BYTES_PER_ORG,
            1..=1 << 40,
        )?;
        let idempotency_lease = std_duration(
            &get,
            "DOMAIN_API_IDEMPOTENCY_LEASE",
            domain_core::usecases::idempotency::DEFAULT_LEASE,
        )?;
        if idempotency_lease < Duration::from_secs(1) {
            return Err(invalid(
                "DOMAIN_API_IDEMPOTENCY_LEASE",
                "must be at least 1s",
            ));
        }

        let migrate = match get("DOMAIN_API_MIGRATE").as_deref().map(str::trim) {
            None | Some("auto") => MigrateMode::Auto,
            Some("off") => MigrateMode::Off,
            Some("check") => MigrateMode::Check,
            Some(_) => {
                return Err(invalid("DOMAIN_API_MIGRATE", "expected auto, off or check"));
            }
        };

        Ok(Self {
            bind,
            addr_file,
            admin_bind,
            database_url,
            master_key,
            spf_ips,
            inbound_mx_hosts,
            dns_servers,
            dns_timeout,
            db_pool_size,
            db_wait_timeout,
            db_statement_timeout,
            log_format,
            jwt_secret,
            setup_frame_ancestors,
            key_pool_size,
            body_timeout,
            ownership,
            claim_ttl,
            test_clock_file,
            verify_schedule,
            verifier,
            dkim_keys,
            webhooks,
            idempotency_ttl,
            idempotency_lease,
            idempotency_max_bytes_per_org,
            event_retention,
            dkim_rotation_interval,
            live_checks_per_minute,
            check_deadline,
            migrate,
        })
    }

    /// The master key, never creating one: the SQLite default's key file must exist.
    ///
    /// # Errors
    /// [`ConfigError`] when the key file is missing, unreadable or not a key.
    pub fn load_master_key(&self) -> Result<MasterKey, ConfigError> {
        match &self.master_key {
            MasterKeySource::Given { key, .. } => Ok(key.clone()),
            MasterKeySource::File(path) => read_key_file(path),
        }
    }

    /// The master key, generating the SQLite default's key file when there is none:
    /// only for a start that creates the database itself (`serve`, `migrate`).
    ///
    /// # Errors
    /// [`ConfigError`] when the key file cannot be read, created or parsed.
    pub fn load_or_create_master_key(&self) -> Result<MasterKey, ConfigError> {
        match &self.master_key {
            MasterKeySource::Given { key, .. } => Ok(key.clone()),
            MasterKeySource::File(path) => read_or_create_key_file(path),
        }
    }

    /// The SQLite database file this configuration names; `None` for PostgreSQL.
    #[must_use]
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.database_url
            .strip_prefix("sqlite://")
            .map(|path| absolute(Path::new(path)))
    }
}

impl MasterKeySource {
    /// Where the key comes from, for the start's log line (never the key itself).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Given { origin, .. } => origin.clone(),
            Self::File(path) => format!("file {}", absolute(path).display()),
        }
    }
}

/// `path` made absolute against the working directory (symbolic links kept).
#[must_use]
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn webhook_settings(get: &impl Fn(&str) -> Option<String>) -> Result<WebhookSettings, ConfigError> {
    let allow_nets = match get("DOMAIN_API_WEBHOOK_ALLOW_NETS") {
        None => Vec::new(),
        Some(v) => split_list(&v)
            .map(|net| {
                net.parse::<ipnet::IpNet>()
                    .or_else(|_| net.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            "DOMAIN_API_WEBHOOK_ALLOW_NETS",
                            format!("{net:?} is not a network (CIDR) or an address"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let policy = AddressPolicy {
        allow_http: flag(get, "DOMAIN_API_WEBHOOK_ALLOW_HTTP")?,
        allow_nets,
        allow_private: flag(get, "DOMAIN_API_WEBHOOK_ALLOW_PRIVATE")?,
    };
    let retry = match get("DOMAIN_API_WEBHOOK_RETRY_SCHEDULE") {
        None => RetrySchedule::standard(),
        Some(text) => RetrySchedule::new(
            crate::durations::parse_schedule(&text)
                .map_err(|e| invalid("DOMAIN_API_WEBHOOK_RETRY_SCHEDULE", e.to_string()))?,
        ),
    };
    let timeout = Duration::from_millis(number(
        get,
        "DOMAIN_API_WEBHOOK_TIMEOUT_MS",
        5000,
        1..=60_000,
    )?);
    let max_endpoints = usize::try_from(number(
        get,
        "DOMAIN_API_MAX_WEBHOOKS_PER_ORG",
        DEFAULT_MAX_ENDPOINTS as u64,
        1..=1000,
    )?)
    .map_err(|_| invalid("DOMAIN_API_MAX_WEBHOOKS_PER_ORG", "out of range"))?;
    let sender = match get("DOMAIN_API_WEBHOOK_SENDER").as_deref().map(str::trim) {
        None | Some("on") => {
            let concurrency =
                usize::try_from(number(get, "DOMAIN_API_WEBHOOK_CONCURRENCY", 16, 1..=1024)?)
                    .map_err(|_| invalid("DOMAIN_API_WEBHOOK_CONCURRENCY", "out of range"))?;
            let per_organization = usize::try_from(number(
                get,
                "DOMAIN_API_WEBHOOK_CONCURRENCY_PER_ORG",
                4,
                1..=1024,
            )?)
            .map_err(|_| invalid("DOMAIN_API_WEBHOOK_CONCURRENCY_PER_ORG", "out of range"))?;
            Some(SenderSettings {
                concurrency,
                per_organization: per_organization.min(concurrency),
                poll: std_duration(
                    get,
                    "DOMAIN_API_WEBHOOK_POLL_INTERVAL",
                    Duration::from_secs(1),
                )?,
                retention: std_duration(
                    get,
                    "DOMAIN_API_WEBHOOK_RETENTION",
                    Duration::from_secs(30 * 24 * 3600),
                )?,
            })
        }
        Some("off") => None,
        Some(_) => return Err(invalid("DOMAIN_API_WEBHOOK_SENDER", "expected on or off")),
    };
    Ok(WebhookSettings {
        policy,
        retry,
        timeout,
        max_endpoints,
        sender,
    })
}

/// A secret setting, given in exactly one of three ways: the variable itself, a file
/// named by `<variable>_FILE` (kept out of the environment of every child and of
/// `/proc/<pid>/environ`), or the systemd credential `credential`
/// (`$CREDENTIALS_DIRECTORY/<credential>`, from the unit's `LoadCredential=`).
pub struct SecretSetting {
    pub variable: &'static str,
    pub file_variable: &'static str,
    pub credential: &'static str,
}

pub const MASTER_KEY: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_MASTER_KEY",
    file_variable: "DOMAIN_API_MASTER_KEY_FILE",
    credential: "master-key",
};
pub const JWT_SECRET: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_JWT_SECRET",
    file_variable: "DOMAIN_API_JWT_SECRET_FILE",
    credential: "jwt-secret",
};
pub const DATABASE_URL: SecretSetting = SecretSetting {
    variable: "DOMAIN_API_DATABASE_URL",
    file_variable: "DOMAIN_API_DATABASE_URL_FILE",
    credential: "database-url",
};

/// The secret's value and where it came from (never the value itself), or `None`
/// when it is given no way. A file's trailing line break is not part of the value.
///
/// # Errors
/// [`ConfigError`] naming the setting when it is given more than one way, or the
/// file's variable when the file cannot be read.
fn secret(
    get: &impl Fn(&str) -> Option<String>,
    setting: &SecretSetting,
) -> Result<Option<(String, String)>, ConfigError> {
    let mut given: Vec<(String, Option<(PathBuf, &'static str)>)> = Vec::new();
    if get(setting.variable).is_some() {
        given.push((setting.variable.to_owned(), None));
    }
    if let Some(path) = get(setting.file_variable) {
        let path = PathBuf::from(path.trim());
        given.push((
            format!("{} {}", setting.file_variable, path.display()),
            Some((path, setting.file_variable)),
        ));
    }
    if let Some(directory) = get("CREDENTIALS_DIRECTORY") {
        let path = Path::new(directory.trim()).join(setting.credential);
        // Absent is fine; present but out of reach is not (never fall back to,
        // say, a new key because the credential could not be looked at).
        let present = match std::fs::metadata(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(invalid(
                    "CREDENTIALS_DIRECTORY",
                    format!("{}: {e}", path.display()),
                ));
            }
        };
        if present {
            given.push((
                format!("credential {} ({})", setting.credential, path.display()),
                Some((path, "CREDENTIALS_DIRECTORY")),
            ));
        }
    }
    match given.as_slice() {
        [] => Ok(None),
        [(origin, None)] => Ok(get(setting.variable).map(|value| (value, origin.clone()))),
        [(origin, Some((path, variable)))] => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(variable, format!("reading {} failed: {e}", path.display()))
            })?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.trim().is_empty() {
                return Err(invalid(variable, format!("{} is empty", path.display())));
            }
            Ok(Some((value, origin.clone())))
        }
        several => Err(invalid(
            setting.variable,
            format!(
                "given more than once ({}): give it one way",
                several
                    .iter()
                    .map(|(origin, _)| origin.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// A `1`/`0` (or `true`/`false`) setting, off when unset.
fn flag(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<bool, ConfigError> {
    match get(variable).as_deref().map(str::trim) {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(invalid(variable, "expected 1 or 0")),
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(value) = get(variable) else {
        return Ok(default);
    };
    let parsed: u64 = value.trim().parse().map_err(|_| {
        invalid(
            variable,
            format!("expected a whole number, got {:?}", value.trim()),
        )
    })?;
    if range.contains(&parsed) {
        Ok(parsed)
    } else {
        Err(invalid(
            variable,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// A duration setting (`30s`, `5m`, `7d`; see `durations`), or `default` when unset.
fn duration(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: chrono::TimeDelta,
) -> Result<chrono::TimeDelta, ConfigError> {
    if get(variable).is_none() {
        return Ok(default);
    }
    let parsed = std_duration(get, variable, Duration::ZERO)?;
    chrono::TimeDelta::from_std(parsed).map_err(|_| invalid(variable, "too long"))
}

/// A duration setting as a `std` duration, or `default` when unset.
fn std_duration(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = get(variable) else {
        return Ok(default);
    };
    crate::durations::parse_duration(value.trim()).map_err(|e| invalid(variable, e.to_string()))
}

/// `master.key` in the SQLite database's directory (`data/master.key` by default).
fn master_key_path(database_url: &str) -> PathBuf {
    let path = Path::new(
        database_url
            .strip_prefix("sqlite://")
            .unwrap_or(database_url),
    );
    path.parent().unwrap_or(Path::new(".")).join("master.key")
}

const KEY_FILE_VARIABLE: &str = "DOMAIN_API_MASTER_KEY";

/// Reads the key file, which must exist.
fn read_key_file(path: &Path) -> Result<MasterKey, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            KEY_FILE_VARIABLE,
            format!(
                "unset, and reading {} failed: {e}",
                absolute(path).display()
            ),
        )
    })?;
    MasterKey::from_base64(&contents).map_err(|e| {
        invalid(
            KEY_FILE_VARIABLE,
            format!("unset, and {}: {e}", absolute(path).display()),
        )
    })
}

fn read_or_create_key_file(path: &Path) -> Result<MasterKey, ConfigError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let file_error = |what: &str, e: std::io::Error| {
        invalid(
            KEY_FILE_VARIABLE,
            format!("unset, and {what} {} failed: {e}", path.display()),
        )
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| file_error("creating the directory of", e))?;
    }
    // create_new: of two processes starting at once, exactly one writes the key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let key =
                MasterKey::generate().map_err(|e| invalid(KEY_FILE_VARIABLE, e.to_string()))?;
            file.write_all(format!("{}\n", key.to_base64()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error("writing", e))?;
            tracing::warn!(path = %path.display(), "generated a new master key; back it up: without it no DKIM key can be opened");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut contents = String::new();
            for _ in 0..50 {
                contents = std::fs::read_to_string(path).map_err(|e| file_error("reading", e))?;
                if !contents.trim().is_empty() {
                    break;
                }
                // Another process created the file a moment ago and is still writing it.
                std::thread::sleep(Duration::from_millis(20));
            }
            MasterKey::from_base64(&contents).map_err(|e| {
                invalid(
                    KEY_FILE_VARIABLE,
                    format!("unset, and {}: {e}", path.display()),
                )
            })
        }
        Err(e) => Err(file_error("creating", e)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_to_the_embedded_sqlite_setup() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.database_url, "sqlite://data/domain-api.db");
        assert!(
            matches!(&config.master_key, MasterKeySource::File(p) if p == Path::new("data/master.key"))
        );
        assert_eq!(config.spf_ips, vec![IpAddr::from([51, 79, 43, 241])]);
        assert_eq!(
            config.inbound_mx_hosts,
            ["inbound.sendtrim.com", "smtp.sendtrim.com"]
        );
        assert_eq!(config.dns_timeout, Duration::from_millis(2000));
        assert_eq!(config.check_deadline, Duration::from_millis(4000));
        assert_eq!(config.db_statement_timeout, Duration::from_millis(5000));
        assert!(config.dns_servers.is_none());
        assert_eq!(
            config.db_pool_size, 4,
            "SQLite serializes writers: a small pool"
        );
        assert_eq!(config.body_timeout, Duration::from_secs(10));
        assert_eq!(config.dkim_keys.retire_after, chrono::TimeDelta::days(7));
        assert_eq!(config.dkim_keys.revoked_keep, chrono::TimeDelta::days(30));
        assert_eq!(config.setup_frame_ancestors, FrameAncestors::none());
        assert_eq!(config.migrate, MigrateMode::Auto);
        assert_eq!(config.admin_bind, None);
    }

    #[test]
    fn reads_each_secret_from_a_file_or_a_systemd_credential() {
        let dir = tempfile::tempdir().unwrap();
        let key = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
        let jwt = "a-dashboard-jwt-secret-of-at-least-32-bytes";
        let url = "postgres://u:p@127.0.0.1/db";
        for (name, value) in [("key", key), ("jwt", jwt), ("url", url)] {
            std::fs::write(dir.path().join(name), format!("{value}\n")).unwrap();
        }
        let file = |name: &str| dir.path().join(name).display().to_string();
        let from_files = config(&[
            ("DOMAIN_API_MASTER_KEY_FILE", &file("key")),
            ("DOMAIN_API_JWT_SECRET_FILE", &file("jwt")),
            ("DOMAIN_API_DATABASE_URL_FILE", &file("url")),
        ])
        .unwrap();
        assert_eq!(from_files.database_url, url);
        assert!(matches!(
            &from_files.master_key,
            MasterKeySource::Given { key: k, origin } if k.to_base64() == key
                && *origin == format!("DOMAIN_API_MASTER_KEY_FILE {}", file("key"))
        ));
        // The file's line break is not part of the secret: a token it signs verifies
        // under the secret given as the variable.
        let with_env_secret = config(&[("DOMAIN_API_JWT_SECRET", jwt)]).unwrap();
        let organization = domain_core::OrganizationId::new("org-1");
        let token = from_files
            .jwt_secret
            .as_ref()
            .unwrap()
            .issue(&organization, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            with_env_secret.jwt_secret.unwrap().verify(&token).unwrap(),
            organization
        );

        let credentials = tempfile::tempdir().unwrap();
        for (name, value) in [
            ("master-key", key),
            ("jwt-secret", jwt),
            ("database-url", url),
        ] {
            std::fs::write(credentials.path().join(name), value).unwrap();
        }
        let directory = credentials.path().display().to_string();
        let from_credentials = config(&[("CREDENTIALS_DIRECTORY", &directory)]).unwrap();
        assert_eq!(from_credentials.database_url, url);
        assert!(from_credentials.jwt_secret.is_some());
        assert!(
            from_credentials
                .master_key
                .describe()
                .starts_with("credential master-key"),
            "{}",
            from_credentials.master_key.describe()
        );

        // Given twice, whichever two ways: the start stops, naming the setting.
        for (variable, twice) in [
            (
                "DOMAIN_API_MASTER_KEY",
                vec![
                    ("DOMAIN_API_MASTER_KEY", key),
                    ("DOMAIN_API_MASTER_KEY_FILE", &file("key")),
                ],
            ),
            (
                "DOMAIN_API_JWT_SECRET",
                vec![
                    ("DOMAIN_API_JWT_SECRET", jwt),
                    ("CREDENTIALS_DIRECTORY", &directory),
                ],
            ),
            (
                "DOMAIN_API_DATABASE_URL",
                vec![
                    ("DOMAIN_API_DATABASE_URL_FILE", &file("url")),
                    ("CREDENTIALS_DIRECTORY", &directory),
                ],
            ),
        ] {
            let error = config(&twice).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
            assert!(error.reason.contains("more than once"), "{error}");
            assert!(!error.to_string().contains(key) && !error.to_string().contains(jwt));
        }

        let missing = dir.path().join("nowhere").display().to_string();
        let error = config(&[("DOMAIN_API_JWT_SECRET_FILE", &missing)]).unwrap_err();
        assert_eq!(error.variable, "DOMAIN_API_JWT_SECRET_FILE");

        // A credentials directory that cannot be looked into stops the start: never a
        // silent fallback (to a new key file, say).
        let not_a_directory = file("key");
        let error = config(&[("CREDENTIALS_DIRECTORY", &not_a_directory)]).unwrap_err();
        assert_eq!(error.variable, "CREDENTIALS_DIRECTORY", "{error}");
    }

    #[test]
    fn reads_the_migrate_mode() {
        for (value, mode) in [
            ("auto", MigrateMode::Auto),
            ("off", MigrateMode::Off),
            (" check ", MigrateMode::Check),
        ] {
            let config = config(&[("DOMAIN_API_MIGRATE", value)]).unwrap();
            assert_eq!(config.migrate, mode);
        }
        let error = config(&[("DOMAIN_API_MIGRATE", "yes")]).unwrap_err();
        assert_eq!(error.variable, "DOMAIN_API_MIGRATE");
    }

    #[test]
    fn reads_the_origins_that_may_frame_the_setup_page() {
        let config = config(&[(
            "DOMAIN_API_SETUP_FRAME_ANCESTORS",
            "https://dash.example.com, https://admin.example.com",
        )])
        .unwrap();
        assert_eq!(
            config.setup_frame_ancestors.directive(),
            "https://dash.example.com https://admin.example.com"
        );
    }

    #[test]
    fn reads_the_dkim_key_durations() {
        let config = config(&[
            ("DOMAIN_API_DKIM_RETIRE_AFTER", "1s"),
            ("DOMAIN_API_DKIM_REVOKED_KEEP", " 2h 30m "),
        ])
        .unwrap();
        assert_eq!(config.dkim_keys.retire_after, chrono::TimeDelta::seconds(1));
        assert_eq!(
            config.dkim_keys.revoked_keep,
            chrono::TimeDelta::minutes(150)
        );
    }

    #[test]
    fn reads_the_ownership_and_verifier_settings() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.ownership.limits, CreationLimits::default());
        assert!(
            defaults
                .ownership
                .reserved
                .contains(&DomainName::parse("mail.sendtrim.com").unwrap())
        );
        assert_eq!(defaults.claim_ttl, DEFAULT_CLAIM_TTL);
        assert_eq!(defaults.verify_schedule, VerifySchedule::default());
        assert_eq!(
            defaults.verifier,
            Some(VerifierSettings {
                concurrency: 4,
                poll: Duration::from_secs(1)
            })
        );
        let set = config(&[
            ("DOMAIN_API_RESERVED_DOMAINS", "corp.example, other.test"),
            ("DOMAIN_API_MAX_DOMAINS_PER_ORG", "5"),
            ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "2"),
            ("DOMAIN_API_CLAIM_TTL", "1h"),
            ("DOMAIN_API_VERIFY_SCHEDULE", "1s, 2s"),
            ("DOMAIN_API_VERIFY_INTERVAL", "1h"),
            ("DOMAIN_API_VERIFIER", "off"),
        ])
        .unwrap();
        assert_eq!(
            set.ownership.reserved.names(),
            ["corp.example", "other.test"]
        );
        assert_eq!(
            set.ownership.limits,
            CreationLimits {
                max_domains: 5,
                per_minute: 2,
                max_senders_per_domain: 1000,
            }
        );
        assert_eq!(set.claim_ttl, Duration::from_secs(3600));
        assert_eq!(
            set.verify_schedule,
            VerifySchedule::new(
                vec![chrono::TimeDelta::seconds(1), chrono::TimeDelta::seconds(2)],
                chrono::TimeDelta::hours(1)
            )
            .unwrap()
        );
        assert_eq!(set.verifier, None);
        for (variable, value) in [
            ("DOMAIN_API_RESERVED_DOMAINS", "not a domain"),
            ("DOMAIN_API_MAX_DOMAINS_PER_ORG", "0"),
            ("DOMAIN_API_NEW_DOMAINS_PER_MINUTE", "many"),
            ("DOMAIN_API_CLAIM_TTL", "forever"),
            ("DOMAIN_API_JWT_MAX_TTL", "soon"),
            ("DOMAIN_API_VERIFY_SCHEDULE", "1m,,5m"),
            ("DOMAIN_API_VERIFY_INTERVAL", "0s"),
            ("DOMAIN_API_VERIFIER", "maybe"),
            ("DOMAIN_API_VERIFY_CONCURRENCY", "0"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
        }
    }

    #[test]
    fn reads_the_body_timeout_in_milliseconds() {
        let config = config(&[("DOMAIN_API_BODY_TIMEOUT_MS", "300")]).unwrap();
        assert_eq!(config.body_timeout, Duration::from_millis(300));
    }

    #[test]
    fn gives_postgres_a_larger_pool() {
        let key = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";
        let pg = config(&[
            ("DOMAIN_API_DATABASE_URL", "postgres://u:p@h/d"),
            ("DOMAIN_API_MASTER_KEY", key),
        ])
        .unwrap();
        assert_eq!(pg.db_pool_size, 16);
    }

    #[test]
    fn names_the_variable_of_a_bad_value() {
        let cases = [
            ("DOMAIN_API_BIND", "nowhere"),
            ("DOMAIN_API_ADMIN_BIND", "9090"),
            ("DOMAIN_API_DATABASE_URL", "mysql://x"),
            ("DOMAIN_API_MASTER_KEY", "short"),
            ("DOMAIN_API_SPF_IPS", "51.79.43.241,not-an-ip"),
            ("DOMAIN_API_DNS_SERVERS", "127.0.0.1"),
            ("DOMAIN_API_DNS_TIMEOUT_MS", "0"),
            ("DOMAIN_API_DNS_TIMEOUT_MS", "soon"),
            ("DOMAIN_API_LOG_FORMAT", "xml"),
            ("DOMAIN_API_JWT_SECRET", "too-short"),
            ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "*"),
            (
                "DOMAIN_API_SETUP_FRAME_ANCESTORS",
                "https://dash.example.com/app",
            ),
            ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "http://*.com"),
            ("DOMAIN_API_SETUP_FRAME_ANCESTORS", "https://*.co.uk"),
            (
                "DOMAIN_API_SETUP_FRAME_ANCESTORS",
                "http://dash.example.com",
            ),
            ("DOMAIN_API_KEY_POOL_SIZE", "-1"),
            ("DOMAIN_API_BODY_TIMEOUT_MS", "0"),
            ("DOMAIN_API_BODY_TIMEOUT_MS", "10s"),
            ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS", "0"),
            ("DOMAIN_API_DB_STATEMENT_TIMEOUT_MS", "600001"),
            ("DOMAIN_API_DKIM_RETIRE_AFTER", "7"),
            ("DOMAIN_API_DKIM_RETIRE_AFTER", "0s"),
            ("DOMAIN_API_DKIM_REVOKED_KEEP", "forever"),
            ("DOMAIN_API_DKIM_ROTATION_INTERVAL", "daily"),
            ("DOMAIN_API_LIVE_CHECKS_PER_MINUTE", "0"),
            ("DOMAIN_API_CHECK_DEADLINE_MS", "0"),
            ("DOMAIN_API_MAX_SENDERS_PER_DOMAIN", "0"),
            ("DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG", "64MiB"),
            ("DOMAIN_API_EVENT_RETENTION", "59m"),
            ("DOMAIN_API_EVENT_RETENTION", "forever"),
            ("DOMAIN_API_CHECK_DEADLINE_MS", "2s"),
            ("DOMAIN_API_DKIM_REVOKED_KEEP", "100000000000y"),
        ];
        for (variable, value) in cases {
            let error = config(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value}");
            assert!(error.to_string().starts_with(variable));
        }
    }

    #[test]
    fn requires_a_master_key_with_postgres() {
        let error =
            config(&[("DOMAIN_API_DATABASE_URL", "postgres://u:p@localhost/db")]).unwrap_err();
        assert_eq!(error.variable, "DOMAIN_API_MASTER_KEY");
    }

    #[test]
    fn never_echoes_a_bad_master_key() {
        let error =
            config(&[("DOMAIN_API_MASTER_KEY", "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0")]).unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn generates_the_key_file_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("master.key");

        let first = read_or_create_key_file(&path).unwrap();
        let second = read_or_create_key_file(&path).unwrap();

        assert_eq!(first.to_base64(), second.to_base64());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
