//! Every setting, declared once: its flag, its `DOMAIN_API_*` variable, its default and
//! its meaning. `domain-api serve --help`, the configuration file's keys (the field
//! names: `bind`, `dns_timeout_ms` …) and README's table (checked by a test) all come
//! from these declarations.
//!
//! Values are kept as text here; `Config::from_settings` converts each one, and a bad
//! value stops the start with one line naming its variable. The command line, the
//! environment, the file and the default thus go through the same conversion.
//!
//! Adding a setting: a field in the group it belongs to, named as the variable
//! without `DOMAIN_API_` in snake case, with `env`, `default_value` (when there is a
//! plain one) and a doc comment; then its conversion where the group is converted
//! (`config/mod.rs`), and its row in README's table.

use clap::Args;

/// All the settings, in groups (each a heading of `--help`).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// A TOML file of settings: each key is a setting's name in snake case without
    /// DOMAIN_API_ (`bind = "127.0.0.1:8080"`). The command line wins over the
    /// environment, which wins over the file, which wins over the defaults; an unknown
    /// key stops the start.
    #[arg(long, env = "DOMAIN_API_CONFIG", value_name = "FILE")]
    pub config: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub records: RecordsArgs,
    #[command(flatten)]
    pub ownership: OwnershipArgs,
    #[command(flatten)]
    pub dkim: DkimArgs,
    #[command(flatten)]
    pub verifier: VerifierArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    #[command(flatten)]
    pub domain_connect: DomainConnectArgs,
}

/// The listeners and what every request is held to.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// Listen address.
    #[arg(
        long,
        env = "DOMAIN_API_BIND",
        default_value = "127.0.0.1:8080",
        value_name = "IP:PORT"
    )]
    pub bind: String,
    /// A second listener (e.g. 127.0.0.1:9090) for /healthz, /readyz, /metrics and the
    /// OpenAPI document, which then leave the public listener. Default: unset.
    #[arg(long, env = "DOMAIN_API_ADMIN_BIND", value_name = "IP:PORT")]
    pub admin_bind: Option<String>,
    /// After binding, write the address actually bound to this file (useful with port
    /// 0). Default: unset.
    #[arg(long, env = "DOMAIN_API_ADDR_FILE", value_name = "FILE")]
    pub addr_file: Option<String>,
    /// Bound on reading a whole request body; past it the answer is 408.
    #[arg(
        long,
        env = "DOMAIN_API_BODY_TIMEOUT_MS",
        default_value = "10000",
        value_name = "MS"
    )]
    pub body_timeout_ms: String,
    /// Origins allowed to show the Domain Setup page in a frame, space- or
    /// comma-separated: 'self' or https://host[:port]. Default: none
    /// (frame-ancestors 'none').
    #[arg(long, env = "DOMAIN_API_SETUP_FRAME_ANCESTORS", value_name = "ORIGINS")]
    pub setup_frame_ancestors: Option<String>,
    /// pretty or json (logs go to stderr; RUST_LOG filters them).
    #[arg(
        long,
        env = "DOMAIN_API_LOG_FORMAT",
        default_value = "pretty",
        value_name = "FORMAT"
    )]
    pub log_format: String,
    /// Tests only: a file holding whole seconds the service's clock runs ahead.
    #[arg(long, env = "DOMAIN_API_TEST_CLOCK_FILE", hide = true)]
    pub test_clock_file: Option<String>,
    /// Tests only: the port authoritative nameservers are asked on (NS addresses
    /// carry none; default 53).
    #[arg(long, env = "DOMAIN_API_TEST_NAMESERVER_PORT", hide = true)]
    pub test_nameserver_port: Option<String>,
    /// Tests only: a zone key validating lookups trust besides the root's,
    /// `<zone> <algorithm> <public key in hex>`.
    #[arg(long, env = "DOMAIN_API_TEST_DNSSEC_TRUST_ANCHOR", hide = true)]
    pub test_dnssec_trust_anchor: Option<String>,
}

/// Domain Connect (synchronous flow): the service's template at DNS providers and
/// the key its apply URLs are signed with. Unset: the connect route answers 404.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Domain Connect")]
pub struct DomainConnectArgs {
    /// The template's providerId (domain-connect/README.md). Default: unset, Domain
    /// Connect off.
    #[arg(long, env = "DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID", value_name = "ID")]
    pub domain_connect_provider_id: Option<String>,
    /// The template's serviceId. Default: unset, Domain Connect off.
    #[arg(long, env = "DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID", value_name = "ID")]
    pub domain_connect_service_id: Option<String>,
    /// A file holding the RSA private key (PEM, at least 2048 bits) apply URLs are
    /// signed with. Default: unset, Domain Connect off.
    #[arg(long, env = "DOMAIN_API_DOMAIN_CONNECT_KEY_FILE", value_name = "FILE")]
    pub domain_connect_key_file: Option<String>,
    /// The host, under the template's syncPubKeyDomain, whose TXT records hold the
    /// public key (the apply URL's key parameter).
    #[arg(
        long,
        env = "DOMAIN_API_DOMAIN_CONNECT_KEY_HOST",
        default_value = "_dcpubkeyv1",
        value_name = "LABEL"
    )]
    pub domain_connect_key_host: String,
    /// Tests only: a PEM file of extra CA certificates trusted for DNS providers.
    #[arg(long, env = "DOMAIN_API_TEST_DOMAIN_CONNECT_CA_FILE", hide = true)]
    pub test_domain_connect_ca_file: Option<String>,
}

/// The database, its pool, and the master key that seals the DKIM keys.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database and master key")]
pub struct StoreArgs {
    /// sqlite://PATH or postgres://… (secret: also DOMAIN_API_DATABASE_URL_FILE or the
    /// credential database-url).
    #[arg(
        long,
        env = "DOMAIN_API_DATABASE_URL",
        default_value = "sqlite://data/domain-api.db",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: String,
    /// A file holding the database URL (instead of DOMAIN_API_DATABASE_URL, which may
    /// carry a password). Default: unset.
    #[arg(long, env = "DOMAIN_API_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<String>,
    /// Base64 of 32 bytes; required with PostgreSQL. Default: generated once into
    /// master.key beside the SQLite file.
    #[arg(
        long,
        env = "DOMAIN_API_MASTER_KEY",
        hide_env_values = true,
        value_name = "BASE64"
    )]
    pub master_key: Option<String>,
    /// A file holding the master key (instead of DOMAIN_API_MASTER_KEY). Default: unset.
    #[arg(long, env = "DOMAIN_API_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<String>,
    /// Set by systemd (LoadCredential=): the credentials master-key, jwt-secret and
    /// database-url found there are those secrets. Each secret may be given one way
    /// only.
    #[arg(long, env = "CREDENTIALS_DIRECTORY", value_name = "DIR")]
    pub credentials_directory: Option<String>,
    /// auto applies pending migrations at start; off never runs DDL; check refuses the
    /// start (exit 2) naming the pending ones.
    #[arg(
        long,
        env = "DOMAIN_API_MIGRATE",
        default_value = "auto",
        value_name = "MODE"
    )]
    pub migrate: String,
    /// Database connections per instance. Default: 16 with PostgreSQL, 4 with SQLite.
    #[arg(long, env = "DOMAIN_API_DB_POOL_SIZE", value_name = "N")]
    pub db_pool_size: Option<String>,
    /// Wait for a pooled connection before answering 503.
    #[arg(
        long,
        env = "DOMAIN_API_DB_WAIT_TIMEOUT_MS",
        default_value = "5000",
        value_name = "MS"
    )]
    pub db_wait_timeout_ms: String,
    /// Bound on one database statement or lock wait before answering 503.
    #[arg(
        long,
        env = "DOMAIN_API_DB_STATEMENT_TIMEOUT_MS",
        default_value = "5000",
        value_name = "MS"
    )]
    pub db_statement_timeout_ms: String,
    /// How long a looked-up API token pair stays confirmed without a lookup: the
    /// longest a token revoked elsewhere keeps working on this instance; `0s` looks
    /// every request's token up; at most 5m.
    #[arg(
        long,
        env = "DOMAIN_API_TOKEN_CACHE_TTL",
        default_value = "5s",
        value_name = "DURATION"
    )]
    pub token_cache_ttl: String,
}

/// The records the service hands out, and the DNS it checks them with.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Records and DNS")]
pub struct RecordsArgs {
    /// Comma list of sending IPv4/IPv6 addresses for SPF.
    #[arg(
        long,
        env = "DOMAIN_API_SPF_IPS",
        default_value = "51.79.43.241",
        value_name = "IPS"
    )]
    pub spf_ips: String,
    /// MX hosts that enable inbound.
    #[arg(
        long,
        env = "DOMAIN_API_INBOUND_MX_HOSTS",
        default_value = "inbound.sendtrim.com,smtp.sendtrim.com",
        value_name = "HOSTS"
    )]
    pub inbound_mx_hosts: String,
    /// TTL, in seconds, of every record to publish (detail, Setup page, zone file;
    /// 1 to 604800).
    #[arg(
        long,
        env = "DOMAIN_API_RECORD_TTL",
        default_value = "3600",
        value_name = "SECONDS"
    )]
    pub record_ttl: String,
    /// Comma list of ip:port nameservers. Default: the system resolver.
    #[arg(long, env = "DOMAIN_API_DNS_SERVERS", value_name = "SERVERS")]
    pub dns_servers: Option<String>,
    /// Bound on one DNS lookup.
    #[arg(
        long,
        env = "DOMAIN_API_DNS_TIMEOUT_MS",
        default_value = "2000",
        value_name = "MS"
    )]
    pub dns_timeout_ms: String,
    /// Bound on all the DNS work of one request that checks live (validate, verify,
    /// claim verify, turning inbound on, webhook creation). Default: twice the DNS
    /// timeout.
    #[arg(long, env = "DOMAIN_API_CHECK_DEADLINE_MS", value_name = "MS")]
    pub check_deadline_ms: Option<String>,
}

/// Who may take which domain, and how fast.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Domains and ownership")]
pub struct OwnershipArgs {
    /// Comma list of names nobody may take, with all their subdomains. Default: the
    /// inbound MX hosts' registrable domains and 24 mailbox providers.
    #[arg(long, env = "DOMAIN_API_RESERVED_DOMAINS", value_name = "NAMES")]
    pub reserved_domains: Option<String>,
    /// Domains one organization may own.
    #[arg(
        long,
        env = "DOMAIN_API_MAX_DOMAINS_PER_ORG",
        default_value = "1000",
        value_name = "N"
    )]
    pub max_domains_per_org: String,
    /// Senders one domain may have; more get 403.
    #[arg(
        long,
        env = "DOMAIN_API_MAX_SENDERS_PER_DOMAIN",
        default_value = "1000",
        value_name = "N"
    )]
    pub max_senders_per_domain: String,
    /// How long events (and their webhook deliveries) are kept; at least 1h.
    #[arg(
        long,
        env = "DOMAIN_API_EVENT_RETENTION",
        default_value = "90d",
        value_name = "DURATION"
    )]
    pub event_retention: String,
    /// DKIM keys generated per organization in any 60 s (new domains, rotations and
    /// claims share it); more get 429.
    #[arg(
        long,
        env = "DOMAIN_API_NEW_DOMAINS_PER_MINUTE",
        default_value = "60",
        value_name = "N"
    )]
    pub new_domains_per_minute: String,
    /// Requests that query DNS on an organization's behalf, per organization and
    /// minute, per instance; more get 429.
    #[arg(
        long,
        env = "DOMAIN_API_LIVE_CHECKS_PER_MINUTE",
        default_value = "120",
        value_name = "N"
    )]
    pub live_checks_per_minute: String,
    /// How long a claim stays open.
    #[arg(
        long,
        env = "DOMAIN_API_CLAIM_TTL",
        default_value = "7d",
        value_name = "DURATION"
    )]
    pub claim_ttl: String,
}

/// DKIM keys: the pool of ready keys and their lifecycle.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DKIM keys")]
pub struct DkimArgs {
    /// Pre-generated DKIM keys kept ready (0 disables the pool).
    #[arg(
        long,
        env = "DOMAIN_API_KEY_POOL_SIZE",
        default_value = "16",
        value_name = "N"
    )]
    pub key_pool_size: String,
    /// Least time between two rotations of one domain; 0 turns it off.
    #[arg(
        long,
        env = "DOMAIN_API_DKIM_ROTATION_INTERVAL",
        default_value = "24h",
        value_name = "DURATION"
    )]
    pub dkim_rotation_interval: String,
    /// A replaced DKIM key stays retiring this long, then is revoked.
    #[arg(
        long,
        env = "DOMAIN_API_DKIM_RETIRE_AFTER",
        default_value = "7d",
        value_name = "DURATION"
    )]
    pub dkim_retire_after: String,
    /// A revoked key's record becomes safeToRemove this long after revocation.
    #[arg(
        long,
        env = "DOMAIN_API_DKIM_REVOKED_KEEP",
        default_value = "30d",
        value_name = "DURATION"
    )]
    pub dkim_revoked_keep: String,
}

/// The background verifier.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Background verifier")]
pub struct VerifierArgs {
    /// on, or off to stop this instance's background verifier.
    #[arg(
        long,
        env = "DOMAIN_API_VERIFIER",
        default_value = "on",
        value_name = "ON|OFF"
    )]
    pub verifier: String,
    /// Delays between background checks of a pending domain; the last repeats.
    #[arg(
        long,
        env = "DOMAIN_API_VERIFY_SCHEDULE",
        default_value = "1m,5m,15m,1h,6h,12h,24h",
        value_name = "DURATIONS"
    )]
    pub verify_schedule: String,
    /// Delay between background checks of a verified or failing domain.
    #[arg(
        long,
        env = "DOMAIN_API_VERIFY_INTERVAL",
        default_value = "24h",
        value_name = "DURATION"
    )]
    pub verify_interval: String,
    /// Background checks in flight per instance.
    #[arg(
        long,
        env = "DOMAIN_API_VERIFY_CONCURRENCY",
        default_value = "4",
        value_name = "N"
    )]
    pub verify_concurrency: String,
    /// How often an idle verifier looks for due domains.
    #[arg(
        long,
        env = "DOMAIN_API_VERIFY_POLL_INTERVAL",
        default_value = "1s",
        value_name = "DURATION"
    )]
    pub verify_poll_interval: String,
}

/// Webhooks: who may be reached, retries, and this instance's sender.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookArgs {
    /// on, or off to stop this instance's webhook sender.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_SENDER",
        default_value = "on",
        value_name = "ON|OFF"
    )]
    pub webhook_sender: String,
    /// Bound on one webhook delivery attempt.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_TIMEOUT_MS",
        default_value = "5000",
        value_name = "MS"
    )]
    pub webhook_timeout_ms: String,
    /// Waits between delivery attempts; then the delivery has failed.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h",
        value_name = "DURATIONS"
    )]
    pub webhook_retry_schedule: String,
    /// Deliveries in flight at once in this instance.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_CONCURRENCY",
        default_value = "16",
        value_name = "N"
    )]
    pub webhook_concurrency: String,
    /// Of those, at most this many for one organization.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_CONCURRENCY_PER_ORG",
        default_value = "4",
        value_name = "N"
    )]
    pub webhook_concurrency_per_org: String,
    /// How often an idle sender looks for due deliveries.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_POLL_INTERVAL",
        default_value = "1s",
        value_name = "DURATION"
    )]
    pub webhook_poll_interval: String,
    /// How long delivered and failed deliveries are kept.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_RETENTION",
        default_value = "30d",
        value_name = "DURATION"
    )]
    pub webhook_retention: String,
    /// Webhook endpoints per organization.
    #[arg(
        long,
        env = "DOMAIN_API_MAX_WEBHOOKS_PER_ORG",
        default_value = "20",
        value_name = "N"
    )]
    pub max_webhooks_per_org: String,
    /// 1 accepts http webhook URLs.
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_ALLOW_HTTP",
        default_value = "0",
        value_name = "0|1"
    )]
    pub webhook_allow_http: String,
    /// CIDRs a webhook may reach although private or loopback (an internal receiver).
    /// Default: none.
    #[arg(long, env = "DOMAIN_API_WEBHOOK_ALLOW_NETS", value_name = "NETS")]
    pub webhook_allow_nets: Option<String>,
    /// 1 lets webhooks reach any address (tests only).
    #[arg(
        long,
        env = "DOMAIN_API_WEBHOOK_ALLOW_PRIVATE",
        default_value = "0",
        value_name = "0|1"
    )]
    pub webhook_allow_private: String,
}

/// Dashboard JWTs for the validate endpoint.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Dashboard JWTs")]
pub struct AuthArgs {
    /// HS256 secret, at least 32 bytes, for dashboard JWTs (secret: also
    /// DOMAIN_API_JWT_SECRET_FILE or the credential jwt-secret). Default: unset, the
    /// validate endpoint answers 404.
    #[arg(
        long,
        env = "DOMAIN_API_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<String>,
    /// A file holding the JWT secret (instead of DOMAIN_API_JWT_SECRET). Default: unset.
    #[arg(long, env = "DOMAIN_API_JWT_SECRET_FILE", value_name = "FILE")]
    pub jwt_secret_file: Option<String>,
    /// Longest lifetime of a dashboard JWT: `jwt issue` refuses more, the server
    /// refuses a token that has more.
    #[arg(
        long,
        env = "DOMAIN_API_JWT_MAX_TTL",
        default_value = "30d",
        value_name = "DURATION"
    )]
    pub jwt_max_ttl: String,
}

/// Idempotency-Key: how long answers are kept and keys are held.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Idempotency")]
pub struct IdempotencyArgs {
    /// How long an Idempotency-Key's answer is replayed.
    #[arg(
        long,
        env = "DOMAIN_API_IDEMPOTENCY_TTL",
        default_value = "24h",
        value_name = "DURATION"
    )]
    pub idempotency_ttl: String,
    /// How long a running keyed request holds its key before a retry may take it over
    /// (what a crashed instance's keys wait); at least 1s.
    #[arg(
        long,
        env = "DOMAIN_API_IDEMPOTENCY_LEASE",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub idempotency_lease: String,
    /// Bytes one organization's kept Idempotency-Key answers may take (as stored);
    /// past it a new key gets 429.
    #[arg(
        long,
        env = "DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG",
        default_value = "67108864",
        value_name = "BYTES"
    )]
    pub idempotency_max_bytes_per_org: String,
}
