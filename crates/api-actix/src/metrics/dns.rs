//! `MeteredDns`: the DNS port wrapped to count lookup outcomes and time them.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use domain_core::DomainName;
use domain_core::ports::dns::{Dns, DnsError, MxRecord, Nameserver, TxtRecord, ValidatedTxt};

use super::Metrics;

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

    async fn addresses(&self, name: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
        let started = Instant::now();
        let result = self.inner.addresses(name).await;
        self.metrics
            .record_dns("A/AAAA", outcome(&result), started.elapsed());
        result
    }

    async fn soa(&self, name: &str) -> Result<(), DnsError> {
        let started = Instant::now();
        let result = self.inner.soa(name).await;
        self.metrics
            .record_dns("SOA", outcome(&result), started.elapsed());
        result
    }

    async fn nameservers(&self, zone: &str) -> Result<Vec<Nameserver>, DnsError> {
        let started = Instant::now();
        let result = self.inner.nameservers(zone).await;
        self.metrics
            .record_dns("NS", outcome(&result), started.elapsed());
        result
    }

    async fn txt_at(
        &self,
        server: std::net::IpAddr,
        name: &str,
    ) -> Result<Vec<TxtRecord>, DnsError> {
        let started = Instant::now();
        let result = self.inner.txt_at(server, name).await;
        self.metrics
            .record_dns("TXT@authoritative", outcome(&result), started.elapsed());
        result
    }

    async fn signed(&self, zone: &str) -> Result<bool, DnsError> {
        let started = Instant::now();
        let result = self.inner.signed(zone).await;
        self.metrics
            .record_dns("DNSKEY", outcome(&result), started.elapsed());
        result
    }

    async fn txt_validated(&self, name: &str) -> Result<ValidatedTxt, DnsError> {
        let started = Instant::now();
        let result = self.inner.txt_validated(name).await;
        self.metrics
            .record_dns("TXT@validated", outcome(&result), started.elapsed());
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
    use crate::metrics::Gauges;

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
        assert!(text.contains("domain_api_dns_lookup_duration_seconds_count{type=\"MX\"} 1"));
    }
}
