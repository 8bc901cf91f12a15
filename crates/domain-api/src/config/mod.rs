//! The configuration: settings declared once (`settings`), layered from the command
//! line, the environment, a TOML file and their defaults (`layers`), and converted
//! here into the typed values the rest of the program uses. Every bad value fails at
//! start with one line naming the variable; nothing secret is echoed.

mod layers;
mod secrets;
mod settings;
#[cfg(test)]
mod tests;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain_core::DomainName;
use domain_core::ownership::{CreationLimits, Ownership, ReservedDomains};
use domain_core::usecases::connect::ServiceIdentity;
use domain_core::usecases::verify::{KeyPolicy, VerifySchedule};
use domain_core::webhooks::{AddressPolicy, RetrySchedule};
use keys_rsa::MasterKey;

use api_actix::frame_ancestors::FrameAncestors;
use api_actix::jwt::JwtSecret;
use store_diesel::BackendKind;

pub use layers::{Origin, Origins, Refused, parse};
pub use settings::Settings;
use settings::{
    AuthArgs, DomainConnectArgs, IdempotencyArgs, OwnershipArgs, RecordsArgs, StoreArgs,
    VerifierArgs, WebhookArgs,
};

use secrets::{DATABASE_URL, JWT_SECRET, MASTER_KEY, secret};
use values::{
    count, duration, flag, given, invalid, list, list_of, millis, on_off, schedule, std_duration,
};

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
    /// The TTL of every record to publish, in seconds (`DOMAIN_API_RECORD_TTL`,
    /// default 3600).
    pub record_ttl: u32,
    pub dns_servers: Option<Vec<SocketAddr>>,
    pub dns_timeout: Duration,
    pub db_pool_size: usize,
    pub db_wait_timeout: Duration,
    /// Bound on one database statement or lock wait (`statement_timeout` and
    /// `lock_timeout` on PostgreSQL, `busy_timeout` on SQLite).
    pub db_statement_timeout: Duration,
    /// `DOMAIN_API_TOKEN_CACHE_TTL`: how long a looked-up token pair stays
    /// confirmed without a lookup (zero: never).
    pub token_cache_ttl: Duration,
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
    /// Tests only (`DOMAIN_API_TEST_NAMESERVER_PORT`): the port authoritative
    /// nameservers are asked on instead of 53.
    pub test_nameserver_port: Option<u16>,
    /// Tests only (`DOMAIN_API_TEST_DNSSEC_TRUST_ANCHOR`): a zone key DNSSEC
    /// validation trusts besides the root's (an in-process signed test zone).
    pub test_dnssec_trust_anchor: Option<dns_hickory::TrustAnchor>,
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
    /// The least time between two rotations of one domain
    /// (`DOMAIN_API_DKIM_ROTATION_INTERVAL`, default `24h`; `0` turns it off).
    pub dkim_rotation_interval: Duration,
    /// Requests that query DNS on an organization's behalf, per organization and
    /// minute, per instance (`DOMAIN_API_LIVE_CHECKS_PER_MINUTE`, default 120).
    pub live_checks_per_minute: u32,
    /// The bound on all the DNS work of one such request
    /// (`DOMAIN_API_CHECK_DEADLINE_MS`, default twice `DOMAIN_API_DNS_TIMEOUT_MS`).
    pub check_deadline: Duration,
    /// The bound on one organization's kept answers, in bytes
    /// (`DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG`, default 64 MiB).
    pub idempotency_max_bytes_per_org: u64,
    /// How long events (and their webhook deliveries) are kept
    /// (`DOMAIN_API_EVENT_RETENTION`, default `90d`, at least `1h`).
    pub event_retention: Duration,
    /// Whether `serve` applies pending migrations (`DOMAIN_API_MIGRATE`).
    pub migrate: MigrateMode,
    /// Domain Connect (`DOMAIN_API_DOMAIN_CONNECT_*`); `None` when off.
    pub domain_connect: Option<DomainConnectSettings>,
    /// Tests only (`DOMAIN_API_TEST_DOMAIN_CONNECT_CA_FILE`): extra CA certificates
    /// trusted for DNS providers.
    pub test_domain_connect_ca_file: Option<PathBuf>,
}

/// Domain Connect: who the service is at DNS providers, and its signing key's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConnectSettings {
    /// providerId, serviceId and the key host.
    pub identity: ServiceIdentity,
    /// `DOMAIN_API_DOMAIN_CONNECT_KEY_FILE`.
    pub key_file: PathBuf,
}

impl DomainConnectArgs {
    fn settings(&self) -> Result<Option<DomainConnectSettings>, ConfigError> {
        let provider = given(self.domain_connect_provider_id.as_ref());
        let service = given(self.domain_connect_service_id.as_ref());
        let key_file = given(self.domain_connect_key_file.as_ref());
        let (provider, service, key_file) = match (provider, service, key_file) {
            (None, None, None) => return Ok(None),
            (Some(p), Some(s), Some(k)) => (p, s, k),
            (None, ..) => {
                return Err(invalid(
                    "DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID",
                    "required with the other DOMAIN_API_DOMAIN_CONNECT_* settings",
                ));
            }
            (_, None, _) => {
                return Err(invalid(
                    "DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID",
                    "required with the other DOMAIN_API_DOMAIN_CONNECT_* settings",
                ));
            }
            (.., None) => {
                return Err(invalid(
                    "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE",
                    "required with the other DOMAIN_API_DOMAIN_CONNECT_* settings",
                ));
            }
        };
        let id = |value: &str, variable: &'static str| {
            let value = value.trim();
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(invalid(
                    variable,
                    "expected letters, digits, '.', '-' or '_'",
                ));
            }
            Ok(value.to_owned())
        };
        Ok(Some(DomainConnectSettings {
            identity: ServiceIdentity {
                provider_id: id(provider, "DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID")?,
                service_id: id(service, "DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID")?,
                key_host: id(
                    &self.domain_connect_key_host,
                    "DOMAIN_API_DOMAIN_CONNECT_KEY_HOST",
                )?,
            },
            key_file: PathBuf::from(key_file),
        }))
    }
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

impl Config {
    /// Converts the settings, whatever their origin, into the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable with a bad value.
    pub fn from_settings(settings: &Settings, origins: &Origins) -> Result<Self, ConfigError> {
        let Settings {
            config: _,
            server,
            store,
            records,
            ownership,
            dkim,
            verifier,
            webhooks,
            auth,
            idempotency,
            domain_connect,
        } = settings;

        let (database_url, kind) = store.database_url(origins)?;
        let master_key = store.master_key(&database_url, kind)?;
        let inbound_mx_hosts: Vec<String> =
            list(&records.inbound_mx_hosts).map(str::to_owned).collect();
        let dns_timeout = millis(
            &records.dns_timeout_ms,
            "DOMAIN_API_DNS_TIMEOUT_MS",
            1..=60_000,
        )?;

        Ok(Self {
            bind: socket(&server.bind, "DOMAIN_API_BIND", "127.0.0.1:8080")?,
            addr_file: given(server.addr_file.as_ref()).map(PathBuf::from),
            admin_bind: given(server.admin_bind.as_ref())
                .map(|v| socket(v, "DOMAIN_API_ADMIN_BIND", "127.0.0.1:9090"))
                .transpose()?,
            master_key,
            spf_ips: records.spf_ips()?,
            record_ttl: count(&records.record_ttl, "DOMAIN_API_RECORD_TTL", 1..=604_800)?,
            dns_servers: given(records.dns_servers.as_ref())
                .map(|v| {
                    list_of(v, "DOMAIN_API_DNS_SERVERS", |s| {
                        s.parse().map_err(|_| format!("{s:?} is not ip:port"))
                    })
                })
                .transpose()?,
            dns_timeout,
            check_deadline: match given(records.check_deadline_ms.as_ref()) {
                Some(v) => millis(v, "DOMAIN_API_CHECK_DEADLINE_MS", 1..=120_000)?,
                None => 2 * dns_timeout,
            },
            // SQLite runs one writer at a time, so a few connections serve as well as
            // many and each one keeps its own page cache; PostgreSQL gets a real pool.
            db_pool_size: match given(store.db_pool_size.as_ref()) {
                Some(v) => count(v, "DOMAIN_API_DB_POOL_SIZE", 1..=1000)?,
                None if kind == BackendKind::Sqlite => 4,
                None => 16,
            },
            db_wait_timeout: millis(
                &store.db_wait_timeout_ms,
                "DOMAIN_API_DB_WAIT_TIMEOUT_MS",
                1..=600_000,
            )?,
            db_statement_timeout: millis(
                &store.db_statement_timeout_ms,
                "DOMAIN_API_DB_STATEMENT_TIMEOUT_MS",
                1..=600_000,
            )?,
            token_cache_ttl: {
                let ttl = std_duration(&store.token_cache_ttl, "DOMAIN_API_TOKEN_CACHE_TTL")?;
                if ttl > Duration::from_secs(300) {
                    return Err(invalid("DOMAIN_API_TOKEN_CACHE_TTL", "must be at most 5m"));
                }
                ttl
            },
            log_format: match server.log_format.trim() {
                "pretty" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                _ => return Err(invalid("DOMAIN_API_LOG_FORMAT", "expected pretty or json")),
            },
            jwt_secret: auth.jwt_secret(store)?,
            setup_frame_ancestors: match given(server.setup_frame_ancestors.as_ref()) {
                None => FrameAncestors::none(),
                Some(v) => FrameAncestors::parse(v)
                    .map_err(|e| invalid("DOMAIN_API_SETUP_FRAME_ANCESTORS", e.to_string()))?,
            },
            key_pool_size: count(&dkim.key_pool_size, "DOMAIN_API_KEY_POOL_SIZE", 0..=1024)?,
            body_timeout: millis(
                &server.body_timeout_ms,
                "DOMAIN_API_BODY_TIMEOUT_MS",
                1..=600_000,
            )?,
            ownership: ownership.ownership(&inbound_mx_hosts)?,
            claim_ttl: std_duration(&ownership.claim_ttl, "DOMAIN_API_CLAIM_TTL")?,
            test_clock_file: given(server.test_clock_file.as_ref()).map(PathBuf::from),
            test_nameserver_port: given(server.test_nameserver_port.as_ref())
                .map(|v| count(v, "DOMAIN_API_TEST_NAMESERVER_PORT", 1..=65_535))
                .transpose()?,
            test_dnssec_trust_anchor: given(server.test_dnssec_trust_anchor.as_ref())
                .map(|v| {
                    dns_hickory::TrustAnchor::parse(v).ok_or_else(|| {
                        invalid(
                            "DOMAIN_API_TEST_DNSSEC_TRUST_ANCHOR",
                            "expected <zone> <algorithm> <public key in hex>".to_owned(),
                        )
                    })
                })
                .transpose()?,
            verify_schedule: verifier.schedule()?,
            verifier: verifier.settings()?,
            dkim_keys: KeyPolicy {
                retire_after: duration(&dkim.dkim_retire_after, "DOMAIN_API_DKIM_RETIRE_AFTER")?,
                revoked_keep: duration(&dkim.dkim_revoked_keep, "DOMAIN_API_DKIM_REVOKED_KEEP")?,
            },
            webhooks: webhooks.settings()?,
            idempotency_ttl: std_duration(
                &idempotency.idempotency_ttl,
                "DOMAIN_API_IDEMPOTENCY_TTL",
            )?,
            idempotency_lease: idempotency.lease()?,
            dkim_rotation_interval: match dkim.dkim_rotation_interval.trim() {
                "0" | "0s" => Duration::ZERO,
                v => std_duration(v, "DOMAIN_API_DKIM_ROTATION_INTERVAL")?,
            },
            live_checks_per_minute: count(
                &ownership.live_checks_per_minute,
                "DOMAIN_API_LIVE_CHECKS_PER_MINUTE",
                1..=1_000_000,
            )?,
            idempotency_max_bytes_per_org: count(
                &idempotency.idempotency_max_bytes_per_org,
                "DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG",
                1..=1 << 40,
            )?,
            event_retention: ownership.event_retention()?,
            domain_connect: domain_connect.settings()?,
            test_domain_connect_ca_file: given(domain_connect.test_domain_connect_ca_file.as_ref())
                .map(PathBuf::from),
            migrate: match store.migrate.trim() {
                "auto" => MigrateMode::Auto,
                "off" => MigrateMode::Off,
                "check" => MigrateMode::Check,
                _ => return Err(invalid("DOMAIN_API_MIGRATE", "expected auto, off or check")),
            },
            database_url,
            inbound_mx_hosts,
        })
    }

    /// The master key, never creating one: the SQLite default's key file must exist.
    ///
    /// # Errors
    /// [`ConfigError`] when the key file is missing, unreadable or not a key.
    pub fn load_master_key(&self) -> Result<MasterKey, ConfigError> {
        match &self.master_key {
            MasterKeySource::Given { key, .. } => Ok(key.clone()),
            MasterKeySource::File(path) => secrets::read_key_file(path),
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
            MasterKeySource::File(path) => secrets::read_or_create_key_file(path),
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

fn socket(value: &str, variable: &'static str, example: &str) -> Result<SocketAddr, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(variable, format!("expected ip:port, e.g. {example}")))
}

impl StoreArgs {
    /// The database URL (a secret: also its file or credential) and its backend.
    fn database_url(&self, origins: &Origins) -> Result<(String, BackendKind), ConfigError> {
        // The declared default is no giving of the secret: a file or a credential
        // may give it then.
        let explicit =
            (origins.of("database_url") != Origin::Default).then_some(self.database_url.as_str());
        let url = secret(
            &DATABASE_URL,
            explicit,
            self.database_url_file.as_ref(),
            self.credentials_directory.as_ref(),
        )?
        .map_or_else(
            || self.database_url.trim().to_owned(),
            |(url, _)| url.trim().to_owned(),
        );
        let kind = BackendKind::of_url(&url).map_err(|_| {
            invalid(
                "DOMAIN_API_DATABASE_URL",
                "expected postgres://… or sqlite://PATH",
            )
        })?;
        Ok((url, kind))
    }

    fn master_key(
        &self,
        database_url: &str,
        kind: BackendKind,
    ) -> Result<MasterKeySource, ConfigError> {
        match secret(
            &MASTER_KEY,
            self.master_key.as_deref(),
            self.master_key_file.as_ref(),
            self.credentials_directory.as_ref(),
        )? {
            Some((v, origin)) => Ok(MasterKeySource::Given {
                key: MasterKey::from_base64(&v)
                    .map_err(|e| invalid("DOMAIN_API_MASTER_KEY", e.to_string()))?,
                origin,
            }),
            None if kind == BackendKind::Sqlite => Ok(MasterKeySource::File(
                secrets::master_key_path(database_url),
            )),
            None => Err(invalid(
                "DOMAIN_API_MASTER_KEY",
                "required with PostgreSQL (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
            )),
        }
    }
}

impl AuthArgs {
    fn jwt_secret(&self, store: &StoreArgs) -> Result<Option<JwtSecret>, ConfigError> {
        // The longest lifetime of a dashboard JWT: `jwt issue` refuses more, the
        // server refuses a token that has more.
        let max_ttl = std_duration(&self.jwt_max_ttl, "DOMAIN_API_JWT_MAX_TTL")?;
        secret(
            &JWT_SECRET,
            self.jwt_secret.as_deref(),
            self.jwt_secret_file.as_ref(),
            store.credentials_directory.as_ref(),
        )?
        .map(|(v, _)| {
            JwtSecret::new(v.as_bytes())
                .map(|secret| secret.with_max_ttl(max_ttl))
                .map_err(|reason| invalid("DOMAIN_API_JWT_SECRET", reason))
        })
        .transpose()
    }
}

impl RecordsArgs {
    fn spf_ips(&self) -> Result<Vec<IpAddr>, ConfigError> {
        let ips = list_of(&self.spf_ips, "DOMAIN_API_SPF_IPS", |ip| {
            ip.parse()
                .map_err(|_| format!("{ip:?} is not an IP address"))
        })?;
        if ips.is_empty() {
            return Err(invalid(
                "DOMAIN_API_SPF_IPS",
                "at least one IP address is required",
            ));
        }
        Ok(ips)
    }
}

impl OwnershipArgs {
    fn event_retention(&self) -> Result<Duration, ConfigError> {
        let retention = std_duration(&self.event_retention, "DOMAIN_API_EVENT_RETENTION")?;
        if retention < Duration::from_secs(3600) {
            return Err(invalid("DOMAIN_API_EVENT_RETENTION", "must be at least 1h"));
        }
        Ok(retention)
    }

    fn ownership(&self, inbound_mx_hosts: &[String]) -> Result<Ownership, ConfigError> {
        let reserved = match given(self.reserved_domains.as_ref()) {
            None => ReservedDomains::default_for(inbound_mx_hosts),
            Some(v) => ReservedDomains::new(list_of(v, "DOMAIN_API_RESERVED_DOMAINS", |name| {
                DomainName::parse(name).map_err(|e| format!("{name:?} is not a domain name: {e}"))
            })?),
        };
        let limits = CreationLimits {
            max_domains: count(
                &self.max_domains_per_org,
                "DOMAIN_API_MAX_DOMAINS_PER_ORG",
                1..=10_000_000,
            )?,
            per_minute: count(
                &self.new_domains_per_minute,
                "DOMAIN_API_NEW_DOMAINS_PER_MINUTE",
                1..=100_000,
            )?,
            max_senders_per_domain: count(
                &self.max_senders_per_domain,
                "DOMAIN_API_MAX_SENDERS_PER_DOMAIN",
                1..=10_000_000,
            )?,
        };
        Ok(Ownership { reserved, limits })
    }
}

impl VerifierArgs {
    fn schedule(&self) -> Result<VerifySchedule, ConfigError> {
        let pending = schedule(&self.verify_schedule, "DOMAIN_API_VERIFY_SCHEDULE")?
            .into_iter()
            .map(|d| {
                chrono::TimeDelta::from_std(d)
                    .map_err(|_| invalid("DOMAIN_API_VERIFY_SCHEDULE", "too long"))
            })
            .collect::<Result<_, _>>()?;
        let interval = duration(&self.verify_interval, "DOMAIN_API_VERIFY_INTERVAL")?;
        VerifySchedule::new(pending, interval)
            .ok_or_else(|| invalid("DOMAIN_API_VERIFY_SCHEDULE", "needs at least one delay"))
    }

    fn settings(&self) -> Result<Option<VerifierSettings>, ConfigError> {
        let settings = VerifierSettings {
            concurrency: count(
                &self.verify_concurrency,
                "DOMAIN_API_VERIFY_CONCURRENCY",
                1..=256,
            )?,
            poll: std_duration(
                &self.verify_poll_interval,
                "DOMAIN_API_VERIFY_POLL_INTERVAL",
            )?,
        };
        Ok(on_off(&self.verifier, "DOMAIN_API_VERIFIER")?.then_some(settings))
    }
}

impl WebhookArgs {
    fn settings(&self) -> Result<WebhookSettings, ConfigError> {
        let allow_nets = match given(self.webhook_allow_nets.as_ref()) {
            None => Vec::new(),
            Some(v) => list_of(v, "DOMAIN_API_WEBHOOK_ALLOW_NETS", |net| {
                net.parse::<ipnet::IpNet>()
                    .or_else(|_| net.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{net:?} is not a network (CIDR) or an address"))
            })?,
        };
        let policy = AddressPolicy {
            allow_http: flag(&self.webhook_allow_http, "DOMAIN_API_WEBHOOK_ALLOW_HTTP")?,
            allow_nets,
            allow_private: flag(
                &self.webhook_allow_private,
                "DOMAIN_API_WEBHOOK_ALLOW_PRIVATE",
            )?,
        };
        let concurrency = count(
            &self.webhook_concurrency,
            "DOMAIN_API_WEBHOOK_CONCURRENCY",
            1..=1024,
        )?;
        let per_organization: usize = count(
            &self.webhook_concurrency_per_org,
            "DOMAIN_API_WEBHOOK_CONCURRENCY_PER_ORG",
            1..=1024,
        )?;
        let sender = SenderSettings {
            concurrency,
            per_organization: per_organization.min(concurrency),
            poll: std_duration(
                &self.webhook_poll_interval,
                "DOMAIN_API_WEBHOOK_POLL_INTERVAL",
            )?,
            retention: std_duration(&self.webhook_retention, "DOMAIN_API_WEBHOOK_RETENTION")?,
        };
        Ok(WebhookSettings {
            policy,
            retry: RetrySchedule::new(schedule(
                &self.webhook_retry_schedule,
                "DOMAIN_API_WEBHOOK_RETRY_SCHEDULE",
            )?),
            timeout: millis(
                &self.webhook_timeout_ms,
                "DOMAIN_API_WEBHOOK_TIMEOUT_MS",
                1..=60_000,
            )?,
            max_endpoints: count(
                &self.max_webhooks_per_org,
                "DOMAIN_API_MAX_WEBHOOKS_PER_ORG",
                1..=1000,
            )?,
            sender: on_off(&self.webhook_sender, "DOMAIN_API_WEBHOOK_SENDER")?.then_some(sender),
        })
    }
}

impl IdempotencyArgs {
    fn lease(&self) -> Result<Duration, ConfigError> {
        let lease = std_duration(&self.idempotency_lease, "DOMAIN_API_IDEMPOTENCY_LEASE")?;
        if lease < Duration::from_secs(1) {
            return Err(invalid(
                "DOMAIN_API_IDEMPOTENCY_LEASE",
                "must be at least 1s",
            ));
        }
        Ok(lease)
    }
}
