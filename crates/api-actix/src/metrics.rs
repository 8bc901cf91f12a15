//! Prometheus metrics in the text exposition format, kept by hand: a few counters
//! and fixed-bucket histograms need no metrics framework.
//!
//! Exposed at `GET /metrics`: HTTP requests and latency per route and status, the
//! DKIM key pool, DNS lookup outcomes and latency, and the database pool.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain_core::DomainName;
use domain_core::ports::dns::{Dns, DnsError, MxRecord, TxtRecord};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// method → status → count, for one route.
type ByMethod = BTreeMap<String, BTreeMap<u16, u64>>;

/// Label sets are few and fixed (route patterns, statuses, lookup kinds), so a map
/// behind a mutex is plenty; the hot path takes it once per request.
#[derive(Debug, Default)]
pub struct Metrics {
    /// route → method → status → count; looked up by `&str`, so a request whose
    /// labels were seen before allocates nothing.
    requests: Mutex<BTreeMap<String, ByMethod>>,
    latency: Mutex<BTreeMap<String, Arc<Histogram>>>,
    dns_lookups: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    dns_latency: Mutex<BTreeMap<&'static str, Arc<Histogram>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gauges read at scrape time, filled by the composition root from its adapters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub key_pool: Option<KeyPoolGauges>,
    pub db_pool: Option<DbPoolGauges>,
}

/// The DKIM key pool as it stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyPoolGauges {
    pub depth: usize,
    pub capacity: usize,
    pub served_from_pool: u64,
    pub generated_inline: u64,
    pub refills: u64,
    /// Total time spent generating refill keys.
    pub refill_seconds: f64,
}

/// The database pool as it stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbPoolGauges {
    pub max: usize,
    pub open: usize,
    pub in_use: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

impl Metrics {
    /// One handled request. `route` is the matched pattern (bounded cardinality).
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = lock(&self.requests);
            let by_method = match requests.get_mut(route) {
                Some(by_method) => by_method,
                None => requests.entry(route.to_owned()).or_default(),
            };
            let by_status = match by_method.get_mut(method) {
                Some(by_status) => by_status,
                None => by_method.entry(method.to_owned()).or_default(),
            };
            *by_status.entry(status).or_default() += 1;
        }
        let histogram = {
            let mut latency = lock(&self.latency);
            match latency.get(route) {
                Some(histogram) => Arc::clone(histogram),
                None => Arc::clone(latency.entry(route.to_owned()).or_default()),
            }
        };
        histogram.observe(elapsed);
    }

    fn record_dns(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        *lock(&self.dns_lookups).entry((kind, outcome)).or_default() += 1;
        let histogram = Arc::clone(lock(&self.dns_latency).entry(kind).or_default());
        histogram.observe(elapsed);
    }

    /// The whole exposition.
    #[must_use]
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP domain_api_http_requests_total HTTP requests handled, by route, method and status.\n");
        out.push_str("# TYPE domain_api_http_requests_total counter\n");
        for (route, by_method) in lock(&self.requests).iter() {
            for (method, by_status) in by_method {
                for (status, count) in by_status {
                    let _ = writeln!(
                        out,
                        "domain_api_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
                    );
                }
            }
        }
        out.push_str("# HELP domain_api_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE domain_api_http_request_duration_seconds histogram\n");
        for (route, histogram) in lock(&self.latency).iter() {
            histogram.render(
                &mut out,
                "domain_api_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str(
            "# HELP domain_api_dns_lookups_total DNS lookups by record type and outcome.\n",
        );
        out.push_str("# TYPE domain_api_dns_lookups_total counter\n");
        for ((kind, outcome), count) in lock(&self.dns_lookups).iter() {
            let _ = writeln!(
                out,
                "domain_api_dns_lookups_total{{type=\"{kind}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP domain_api_dns_lookup_duration_seconds DNS lookup latency by record type.\n",
        );
        out.push_str("# TYPE domain_api_dns_lookup_duration_seconds histogram\n");
        for (kind, histogram) in lock(&self.dns_latency).iter() {
            histogram.render(
                &mut out,
                "domain_api_dns_lookup_duration_seconds",
                &format!("type=\"{kind}\""),
            );
        }
        if let Some(pool) = gauges.key_pool {
            let rows: [(&str, &str, &str, f64); 6] = [
                (
                    "domain_api_key_pool_depth",
                    "gauge",
                    "DKIM keys ready in the pool.",
                    pool.depth as f64,
                ),
                (
                    "domain_api_key_pool_capacity",
                    "gauge",
                    "Configured pool size.",
                    pool.capacity as f64,
                ),
                (
                    "domain_api_key_pool_served_total",
                    "counter",
                    "New-domain keys served from the pool.",
                    pool.served_from_pool as f64,
                ),
                (
                    "domain_api_key_pool_inline_total",
                    "counter",
                    "New-domain keys generated inline (pool empty).",
                    pool.generated_inline as f64,
                ),
                (
                    "domain_api_key_pool_refills_total",
                    "counter",
                    "Keys generated by the background refill.",
                    pool.refills as f64,
                ),
                (
                    "domain_api_key_pool_refill_seconds_total",
                    "counter",
                    "Time spent generating refill keys.",
                    pool.refill_seconds,
                ),
            ];
            for (name, kind, help, value) in rows {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
                );
            }
        }
        if let Some(db) = gauges.db_pool {
            out.push_str("# HELP domain_api_db_pool_connections Database connections by state.\n");
            out.push_str("# TYPE domain_api_db_pool_connections gauge\n");
            let _ = writeln!(
                out,
                "domain_api_db_pool_connections{{state=\"in_use\"}} {}",
                db.in_use
            );
            let _ = writeln!(
                out,
                "domain_api_db_pool_connections{{state=\"idle\"}} {}",
                db.open.saturating_sub(db.in_use)
            );
            let _ = writeln!(
                out,
                "# HELP domain_api_db_pool_max Maximum database connections.\n# TYPE domain_api_db_pool_max gauge\ndomain_api_db_pool_max {}",
                db.max
            );
            let _ = writeln!(
                out,
                "# HELP domain_api_db_pool_waiting Requests waiting for a connection.\n# TYPE domain_api_db_pool_waiting gauge\ndomain_api_db_pool_waiting {}",
                db.waiting
            );
        }
        out
    }
}

/// A [`Dns`] decorator that counts outcomes and times lookups.
pub struct MeteredDns {
    inner: Arc<dyn Dns>,
    metrics: Arc<Metrics>,
}

impl MeteredDns {
    #[must_use]
    pub fn new(inner: Arc<dyn Dns>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

fn outcome<T>(result: &Result<T, DnsError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(DnsError::NxDomain) => "nxdomain",
        Err(DnsError::NoRecords) => "no_records",
        Err(DnsError::ServFail) => "servfail",
        Err(DnsError::Timeout) => "timeout",
        Err(DnsError::Unexpected(_)) => "error",
    }
}

#[async_trait]
impl Dns for MeteredDns {
    async fn mx(&self, domain: &DomainName) -> Result<Vec<MxRecord>, DnsError> {
        let started = Instant::now();
        let result = self.inner.mx(domain).await;
        self.metrics
            .record_dns("MX", outcome(&result), started.elapsed());
        result
    }

    async fn txt(&self, name: &str) -> Result<Vec<TxtRecord>, DnsError> {
        let started = Instant::now();
        let result = self.inner.txt(name).await;
        self.metrics
            .record_dns("TXT", outcome(&result), started.elapsed());
        result
    }
}

impl std::fmt::Debug for MeteredDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredDns").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use domain_core::ports::dns::MockDns;

    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(2));
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(30));

        let text = metrics.render(Gauges::default());

        assert!(text.contains(
            "domain_api_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "domain_api_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 0"
        ));
        assert!(text.contains(
            "domain_api_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "domain_api_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"
        ));
        assert!(text.contains(
            "domain_api_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 2"
        ));
        assert!(
            text.contains("domain_api_http_request_duration_seconds_count{route=\"/healthz\"} 2")
        );
    }

    #[tokio::test]
    async fn the_dns_decorator_counts_outcomes() {
        let mut dns = MockDns::new();
        dns.expect_mx().returning(|_| Err(DnsError::Timeout));
        dns.expect_txt().returning(|_| Ok(vec![]));
        let metrics = Arc::new(Metrics::default());
        let metered = MeteredDns::new(Arc::new(dns), Arc::clone(&metrics));

        let _ = metered.mx(&DomainName::parse("example.com").unwrap()).await;
        let _ = metered.txt("example.com").await;

        let text = metrics.render(Gauges::default());
        assert!(text.contains("domain_api_dns_lookups_total{type=\"MX\",outcome=\"timeout\"} 1"));
        assert!(text.contains("domain_api_dns_lookups_total{type=\"TXT\",outcome=\"ok\"} 1"));
    }

    #[test]
    fn renders_pool_gauges() {
        let text = Metrics::default().render(Gauges {
            key_pool: Some(KeyPoolGauges {
                depth: 3,
                capacity: 16,
                served_from_pool: 5,
                generated_inline: 1,
                refills: 8,
                refill_seconds: 0.4,
            }),
            db_pool: Some(DbPoolGauges {
                max: 16,
                open: 4,
                in_use: 1,
                waiting: 0,
            }),
        });
        assert!(text.contains("domain_api_key_pool_depth 3"));
        assert!(text.contains("domain_api_db_pool_connections{state=\"in_use\"} 1"));
        assert!(text.contains("domain_api_db_pool_connections{state=\"idle\"} 3"));
    }
}
