//! Prometheus metrics through `prometheus-client`, exposed at `GET /metrics` in the
//! text format (0.0.4): HTTP requests and latency per route, method and status, DNS
//! lookup outcomes and latency, background checks and webhook deliveries by outcome, and the
//! gauges the binary reads from its adapters at scrape time (DKIM key pool, database
//! pool, webhook outbox), the process's own (`process_*`, from `/proc/self`) and
//! `domain_api_build_info`.
//!
//! Every label value comes from a closed set (see [`labels`]): a series lives as long
//! as the process, so a client must not be able to mint new ones.

mod dns;
mod gauges;
pub mod labels;
pub mod process;

use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use dns::MeteredDns;
pub use gauges::{DbErrorCounters, DbPoolGauges, Gauges, KeyPoolGauges, OutboxGauges};
use labels::{DnsLabels, DnsTypeLabels, MethodLabel, OutcomeLabels, RequestLabels, RouteLabels};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The process's metrics. The families share their storage with the registry, so
/// recording needs no lock of ours: one read lock per family and an atomic add.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    dns_lookups: Family<DnsLabels, Counter>,
    dns_latency: HistogramFamily<DnsTypeLabels>,
    checks: Family<OutcomeLabels, Counter>,
    check_latency: Histogram,
    deliveries: Family<OutcomeLabels, Counter>,
    delivery_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        let dns_lookups = Family::<DnsLabels, Counter>::default();
        let dns_latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        let checks = Family::<OutcomeLabels, Counter>::default();
        let check_latency = latency_histogram();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        let delivery_latency = latency_histogram();
        let mut registry = Registry::default();
        // Help texts go without a full stop and counter names without `_total`: the
        // encoder adds both.
        registry.register(
            "domain_api_http_requests",
            "HTTP requests handled, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "domain_api_http_request_duration_seconds",
            "Request latency by route",
            latency.clone(),
        );
        registry.register(
            "domain_api_dns_lookups",
            "DNS lookups by record type and outcome",
            dns_lookups.clone(),
        );
        registry.register(
            "domain_api_dns_lookup_duration_seconds",
            "DNS lookup latency by record type",
            dns_latency.clone(),
        );
        registry.register(
            "domain_api_verify_checks",
            "Background verifier checks by outcome (verified, pending, failing, gone, error)",
            checks.clone(),
        );
        registry.register(
            "domain_api_verify_check_duration_seconds",
            "Background verifier check latency",
            check_latency.clone(),
        );
        registry.register(
            "domain_api_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retry, failed, error)",
            deliveries.clone(),
        );
        registry.register(
            "domain_api_webhook_delivery_duration_seconds",
            "Webhook delivery attempt latency (lookup, connection, response)",
            delivery_latency.clone(),
        );
        Self {
            registry,
            deliveries,
            delivery_latency,
            requests,
            latency,
            dns_lookups,
            dns_latency,
            checks,
            check_latency,
        }
    }
}

impl Metrics {
    /// One handled request. `route` is the matched pattern or
    /// [`labels::UNMATCHED_ROUTE`] (see [`labels::route_label`]); `method` is the
    /// request's token as sent, kept only if it is a standard method, else `_OTHER`.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let route = route.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: MethodLabel::of(method),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    fn record_dns(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        self.dns_lookups
            .get_or_create(&DnsLabels {
                r#type: kind,
                outcome,
            })
            .inc();
        self.dns_latency
            .get_or_create(&DnsTypeLabels { r#type: kind })
            .observe(elapsed.as_secs_f64());
    }

    /// One background check; `outcome` is one of the closed set of
    /// `CheckOutcome::label`.
    pub fn record_check(&self, outcome: &'static str, elapsed: Duration) {
        self.checks.get_or_create(&OutcomeLabels { outcome }).inc();
        self.check_latency.observe(elapsed.as_secs_f64());
    }

    /// Counts one webhook delivery attempt by outcome and records how long it took.
    pub fn record_delivery(&self, outcome: &'static str, elapsed: Duration) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.delivery_latency.observe(elapsed.as_secs_f64());
    }

    /// The whole exposition: the process's metrics, then `gauges` as they stand.
    #[must_use]
    pub fn render(&self, gauges: Gauges) -> String {
        let mut scrape = Registry::default();
        gauges::register(&mut scrape, gauges);
        process::register(&mut scrape);
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail, and our label values always encode.
        let encoded = prometheus_text::encode(&mut out, &self.registry)
            .and_then(|()| prometheus_text::encode(&mut out, &scrape));
        if encoded.is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_process_and_build_metrics() {
        let text = Metrics::default().render(Gauges::default());
        for needle in [
            "# TYPE process_cpu_seconds_total counter",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            &format!(
                "domain_api_build_info{{version=\"{}\",commit=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION"),
                process::COMMIT
            ),
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

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

    #[test]
    fn an_unknown_method_token_is_counted_as_other_and_never_exported() {
        let metrics = Metrics::default();
        let filler = "X".repeat(60_000);
        for i in 0..100 {
            let token = format!("M{i}{filler}");
            metrics.record_request("/healthz", &token, 405, Duration::from_millis(1));
        }

        let text = metrics.render(Gauges::default());

        assert!(text.contains(
            "domain_api_http_requests_total{route=\"/healthz\",method=\"_OTHER\",status=\"405\"} 100"
        ));
        assert!(!text.contains("XXXX"), "a method token became a label");
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());
    }

    #[test]
    fn keeps_every_series_name_and_type() {
        let metrics = Metrics::default();
        // A family without a series is not exported at all.
        metrics.record_request("/healthz", "GET", 200, Duration::from_millis(1));
        metrics.record_dns("MX", "ok", Duration::from_millis(1));
        metrics.record_delivery("delivered", Duration::from_millis(1));
        let text = metrics.render(Gauges {
            key_pool: Some(KeyPoolGauges::default()),
            db_pool: Some(DbPoolGauges::default()),
            outbox: Some(OutboxGauges::default()),
            db_errors: Some(DbErrorCounters::default()),
        });
        for (name, kind) in [
            ("domain_api_http_requests_total", "counter"),
            ("domain_api_http_request_duration_seconds", "histogram"),
            ("domain_api_dns_lookups_total", "counter"),
            ("domain_api_dns_lookup_duration_seconds", "histogram"),
            ("domain_api_key_pool_depth", "gauge"),
            ("domain_api_key_pool_capacity", "gauge"),
            ("domain_api_key_pool_served_total", "counter"),
            ("domain_api_key_pool_inline_total", "counter"),
            ("domain_api_key_pool_refills_total", "counter"),
            ("domain_api_key_pool_refill_seconds_total", "counter"),
            ("domain_api_db_pool_connections", "gauge"),
            ("domain_api_db_pool_max", "gauge"),
            ("domain_api_db_pool_waiting", "gauge"),
            ("domain_api_register_batches_total", "counter"),
            ("domain_api_register_batched_total", "counter"),
            ("domain_api_register_set_based_total", "counter"),
            ("domain_api_register_one_by_one_total", "counter"),
            ("domain_api_db_errors_total", "counter"),
            ("domain_api_webhook_outbox_depth", "gauge"),
            ("domain_api_webhook_outbox_oldest_age_seconds", "gauge"),
            ("domain_api_webhook_deliveries_total", "counter"),
            ("domain_api_webhook_delivery_duration_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind} in:\n{text}"
            );
        }
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
                register_batches: 2,
                registrations_batched: 9,
                registrations_set_based: 6,
                registrations_one_by_one: 3,
            }),
            outbox: Some(OutboxGauges {
                pending: 12,
                oldest_age_seconds: 7.5,
            }),
            db_errors: None,
        });
        assert!(text.contains("domain_api_key_pool_depth 3"));
        assert!(text.contains("domain_api_webhook_outbox_depth 12"));
        assert!(text.contains("domain_api_webhook_outbox_oldest_age_seconds 7.5"));
        assert!(text.contains("domain_api_db_pool_connections{state=\"in_use\"} 1"));
        assert!(text.contains("domain_api_db_pool_connections{state=\"idle\"} 3"));
        assert!(text.contains("domain_api_register_batched_total 9"));
    }

    #[test]
    fn renders_every_kind_of_database_error_zeros_included() {
        let text = Metrics::default().render(Gauges {
            db_errors: Some(DbErrorCounters {
                disk_full: 3,
                connection: 1,
                ..DbErrorCounters::default()
            }),
            ..Gauges::default()
        });

        assert!(
            text.contains("# HELP domain_api_db_errors_total "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE domain_api_db_errors_total counter\n"),
            "{text}"
        );
        for (kind, count) in [
            ("connection", 1),
            ("timeout", 0),
            ("shutdown", 0),
            ("disk_full", 3),
            ("io", 0),
            ("resources", 0),
        ] {
            assert!(
                text.contains(&format!(
                    "domain_api_db_errors_total{{kind=\"{kind}\"}} {count}\n"
                )),
                "{kind} in:\n{text}"
            );
        }
        assert_eq!(text.matches("domain_api_db_errors_total{").count(), 6);
    }
}
