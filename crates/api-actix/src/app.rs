//! The composition root: builds every adapter from configuration and hands them to
//! the use cases. The only place that knows every crate.

use std::sync::Arc;

use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context as _;
use dns_hickory::{DnsConfig, HickoryDns};
use domain_core::RecordPolicy;
use domain_core::ports::keys::KeyGenerator;
use domain_core::usecases::authenticate::Authenticate;
use domain_core::usecases::generate::GenerateRecords;
use domain_core::usecases::read::ReadDomains;
use domain_core::usecases::validate::ValidateDomain;
use keys_rsa::{KeyPool, RsaKeyGenerator, Sealer};
use store_diesel::{Store, StoreConfig};

use crate::config::Config;
use crate::jwt::JwtSecret;
use crate::metrics::{Gauges, MeteredDns, Metrics};
use crate::routes;
use crate::telemetry;

/// What handlers share: the use cases and the store (for readiness).
pub struct AppState {
    pub authenticate: Authenticate,
    pub generate: GenerateRecords,
    pub read: ReadDomains,
    pub validate: ValidateDomain,
    /// `None`: the validate endpoint is disabled and answers 404.
    pub jwt: Option<JwtSecret>,
    pub store: Arc<Store>,
    /// `None` when `DOMAIN_API_KEY_POOL_SIZE=0`.
    pub key_pool: Option<KeyPool>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Gauges as they stand now, for a scrape.
    #[must_use]
    pub fn gauges(&self) -> Gauges {
        Gauges {
            key_pool: self.key_pool.as_ref().map(KeyPool::stats),
            db_pool: Some(self.store.pool_status()),
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
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
    let store = Store::connect(&store_config)
        .context("Failed to set up the database pool (DOMAIN_API_DATABASE_URL)")?;
    Ok(Arc::new(store))
}

/// Builds the application state from configuration.
///
/// # Errors
/// When the master key, DNS resolver or record policy cannot be set up.
pub fn build_state(config: &Config, store: Arc<Store>) -> anyhow::Result<AppState> {
    let master_key = config
        .load_master_key()
        .context("Failed to load the master key")?;
    let sealer = Arc::new(Sealer::new(&master_key));
    let dns = HickoryDns::new(&DnsConfig {
        servers: config.dns_servers.clone(),
        timeout: config.dns_timeout,
    })
    .context("Failed to set up the DNS resolver (DOMAIN_API_DNS_SERVERS)")?;
    let metrics = Arc::new(Metrics::default());
    let dns: Arc<dyn domain_core::ports::dns::Dns> =
        Arc::new(MeteredDns::new(Arc::new(dns), Arc::clone(&metrics)));
    let key_pool =
        (config.key_pool_size > 0).then(|| KeyPool::new(Arc::clone(&sealer), config.key_pool_size));
    let keys: Arc<dyn KeyGenerator> = match &key_pool {
        Some(pool) => Arc::new(pool.clone()),
        None => Arc::new(RsaKeyGenerator::new(sealer)),
    };
    let policy = Arc::new(
        RecordPolicy::new(config.spf_ips.clone(), &config.inbound_mx_hosts)
            .context("DOMAIN_API_INBOUND_MX_HOSTS / DOMAIN_API_SPF_IPS")?,
    );
    Ok(AppState {
        authenticate: Authenticate::new(store.clone()),
        generate: GenerateRecords::new(store.clone(), keys, dns.clone(), policy.clone()),
        read: ReadDomains::new(store.clone(), policy.clone()),
        validate: ValidateDomain::new(store.clone(), dns, policy),
        jwt: config.jwt_secret.clone(),
        store,
        key_pool,
        metrics,
    })
}

/// Migrates, then serves HTTP until SIGINT/SIGTERM.
///
/// # Errors
/// When start-up fails: configuration, migrations, or binding the address.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = connect_store(&config)?;
    store
        .migrate()
        .await
        .context("Failed to apply database migrations")?;
    let state = web::Data::new(build_state(&config, store)?);
    if let Some(pool) = &state.key_pool {
        // Ends with the runtime; never holds up shutdown (see main).
        pool.start_refill();
    }
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::from_fn(telemetry::request_span))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .bind(config.bind)
    .with_context(|| format!("Failed to bind {} (DOMAIN_API_BIND)", config.bind))?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening");
    }
    server.run().await.context("HTTP server failed")
}
