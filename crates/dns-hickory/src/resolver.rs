//! [`HickoryDns`]: the [`Dns`] adapter, its [`DnsConfig`] and its setup errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain_core::DomainName;
use domain_core::ports::BoxError;
use domain_core::ports::dns::{
    Dns, DnsError, Dnssec, MxRecord, Nameserver, TxtRecord, ValidatedTxt,
};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as WireError, NetError};
use hickory_resolver::proto::dnssec::{Algorithm, Proof, PublicKeyBuf, TrustAnchors};
use hickory_resolver::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_resolver::{TokioResolver, system_conf};

use crate::errors::{classify, short};

/// Retries after a failed attempt (timeouts, SERVFAIL, I/O errors). UDP queries are
/// also retransmitted within an attempt; the overall bound is [`DnsConfig::timeout`].
const RETRY_ATTEMPTS: usize = 1;

/// Where queries go and how long one lookup may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// `None`: the nameservers of the system configuration (`/etc/resolv.conf`), on
    /// port 53. `Some`: exactly these nameservers. Either way queries go over UDP, and
    /// over TCP when an answer comes back truncated.
    pub servers: Option<Vec<SocketAddr>>,
    /// The bound on one lookup, retries and TCP fallback included.
    pub timeout: Duration,
    /// The port authoritative nameservers are asked on ([`Dns::txt_at`]): 53, but
    /// for tests whose nameservers listen on loopback addresses on another port (NS
    /// records carry no port).
    pub nameserver_port: u16,
    /// Keys validating lookups ([`Dns::txt_validated`]) trust besides the root's:
    /// none, but for tests whose signed zones are not delegated from the root.
    pub trust_anchors: Vec<TrustAnchor>,
}

/// A zone's public key trusted as is by validating lookups, e.g. an in-process
/// test zone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The zone, e.g. `claimed.example`.
    pub zone: String,
    /// The DNSSEC algorithm number, e.g. 15 (Ed25519).
    pub algorithm: u8,
    /// The public key as its DNSKEY carries it.
    pub public_key: Vec<u8>,
}

impl TrustAnchor {
    /// `<zone> <algorithm> <public key in hex>`; `None` when it is not that.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let (zone, algorithm, hex) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || hex.len() % 2 != 0 {
            return None;
        }
        let public_key = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            zone: zone.to_owned(),
            algorithm: algorithm.parse().ok()?,
            public_key,
        })
    }
}

impl DnsConfig {
    /// The system nameservers, each lookup bounded by `timeout`.
    #[must_use]
    pub fn system(timeout: Duration) -> Self {
        Self {
            servers: None,
            timeout,
            nameserver_port: 53,
            trust_anchors: Vec::new(),
        }
    }

    /// Exactly `servers`, each lookup bounded by `timeout`.
    #[must_use]
    pub fn with_servers(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self {
            servers: Some(servers),
            timeout,
            nameserver_port: 53,
            trust_anchors: Vec::new(),
        }
    }
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error("the DNS timeout must be greater than zero")]
    ZeroTimeout,
    #[error("no nameservers are configured")]
    NoNameservers,
    #[error("the system resolver configuration could not be read")]
    SystemConfig(#[source] BoxError),
    #[error("the DNS resolver could not be built")]
    Build(#[source] BoxError),
    #[error("a trust anchor's zone is not a domain name")]
    TrustAnchor(#[source] BoxError),
}

/// The [`Dns`] adapter: a hickory resolver without cache or search list, each lookup
/// bounded by one timeout; a second one, over the same nameservers, validates DNSSEC.
#[derive(Debug, Clone)]
pub struct HickoryDns {
    resolver: TokioResolver,
    validating: TokioResolver,
    timeout: Duration,
    nameserver_port: u16,
}

impl HickoryDns {
    /// Builds the resolver. Nothing is sent until the first lookup, which must run
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// [`DnsSetupError`] when the timeout is zero, no nameserver is configured, or the
    /// system configuration cannot be read.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        if config.timeout.is_zero() {
            return Err(DnsSetupError::ZeroTimeout);
        }
        let name_servers = match &config.servers {
            Some(servers) => servers.iter().copied().map(name_server).collect(),
            None => system_name_servers()?,
        };
        if name_servers.is_empty() {
            return Err(DnsSetupError::NoNameservers);
        }
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers.clone()),
            TokioRuntimeProvider::default(),
        )
        .with_options(options(config.timeout))
        .build()
        .map_err(|e| DnsSetupError::Build(Box::new(e)))?;
        let mut validating_options = options(config.timeout);
        validating_options.validate = true;
        let validating = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(validating_options)
        .with_trust_anchor(Arc::new(trust_anchors(&config.trust_anchors)?))
        .build()
        .map_err(|e| DnsSetupError::Build(Box::new(e)))?;
        Ok(Self {
            resolver,
            validating,
            timeout: config.timeout,
            nameserver_port: config.nameserver_port,
        })
    }

    /// One query for `name` and `record_type`, bounded by the configured timeout
    /// whatever the resolver's own retries do.
    async fn lookup(&self, name: Name, record_type: RecordType) -> Result<Lookup, DnsError> {
        match tokio::time::timeout(self.timeout, self.resolver.lookup(name, record_type)).await {
            Ok(Ok(lookup)) => Ok(lookup),
            Ok(Err(error)) => {
                let outcome = classify(&error);
                tracing::debug!(%error, ?outcome, "DNS lookup failed");
                Err(outcome)
            }
            Err(_elapsed) => {
                tracing::debug!(timeout = ?self.timeout, "DNS lookup timed out");
                Err(DnsError::Timeout)
            }
        }
    }
}

#[async_trait]
impl Dns for HickoryDns {
    #[tracing::instrument(level = "debug", skip_all, fields(domain = domain.as_ascii()))]
    async fn mx(&self, domain: &DomainName) -> Result<Vec<MxRecord>, DnsError> {
        let lookup = self
            .lookup(fqdn(domain.as_ascii())?, RecordType::MX)
            .await?;
        let mut records: Vec<MxRecord> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: mx.exchange.to_ascii(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords);
        }
        // Equal preferences are ordered by name so that the result is deterministic.
        records.sort_by(|a, b| {
            a.preference
                .cmp(&b.preference)
                .then_with(|| a.exchange.cmp(&b.exchange))
        });
        Ok(records)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = name))]
    async fn txt(&self, name: &str) -> Result<Vec<TxtRecord>, DnsError> {
        let lookup = self.lookup(fqdn(name)?, RecordType::TXT).await?;
        let records: Vec<TxtRecord> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => {
                    Some(TxtRecord(txt.txt_data.iter().map(|s| s.to_vec()).collect()))
                }
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(records)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = name))]
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = fqdn(name)?;
        let (v4, v6) = tokio::join!(
            self.lookup(name.clone(), RecordType::A),
            self.lookup(name, RecordType::AAAA)
        );
        let mut addresses = Vec::new();
        let mut failure = None;
        for result in [v4, v6] {
            match result {
                Ok(lookup) => {
                    addresses.extend(lookup.answers().iter().filter_map(
                        |record| match &record.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                            _ => None,
                        },
                    ))
                }
                // NXDOMAIN outranks "no records of this type"; anything else outranks both.
                Err(error) => {
                    failure = Some(match (failure, error) {
                        (None | Some(DnsError::NoRecords), error) => error,
                        (Some(DnsError::NxDomain), DnsError::NoRecords) => DnsError::NxDomain,
                        (Some(_), error) => error,
                    });
                }
            }
        }
        // The caller only ever connects to addresses it was given and checked, so an
        // answer for one family is usable even when the other failed.
        match (addresses.is_empty(), failure) {
            (false, _) => Ok(addresses),
            (true, Some(error)) => Err(error),
            (true, None) => Err(DnsError::NoRecords),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = name))]
    async fn soa(&self, name: &str) -> Result<(), DnsError> {
        let name = fqdn(name)?;
        let lookup = self.lookup(name.clone(), RecordType::SOA).await?;
        // Only an SOA owned by the name itself makes it an apex; a negative answer's
        // authority SOA (the enclosing zone's) never reaches `answers`.
        let apex = lookup
            .answers()
            .iter()
            .any(|record| matches!(record.data, RData::SOA(_)) && record.name == name);
        if apex {
            Ok(())
        } else {
            Err(DnsError::NoRecords)
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone))]
    async fn nameservers(&self, zone: &str) -> Result<Vec<Nameserver>, DnsError> {
        let lookup = self.lookup(fqdn(zone)?, RecordType::NS).await?;
        let mut hosts: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::NS(ns) => Some(ns.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            return Err(DnsError::NoRecords);
        }
        // Side by side, on this task (so a caller's deadline covers them): the
        // slowest host bounds the call, not their sum.
        let found = join_all(hosts.iter().map(|host| self.addresses(host))).await;
        Ok(hosts
            .into_iter()
            .zip(found)
            .map(|(host, addresses)| Nameserver {
                host,
                addresses: addresses.unwrap_or_default(),
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%server, name = name))]
    async fn txt_at(&self, server: IpAddr, name: &str) -> Result<Vec<TxtRecord>, DnsError> {
        let answer = crate::direct::ask(
            SocketAddr::new(server, self.nameserver_port),
            fqdn(name)?,
            RecordType::TXT,
            self.timeout,
        )
        .await?;
        let records: Vec<TxtRecord> = answer
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => {
                    Some(TxtRecord(txt.txt_data.iter().map(|s| s.to_vec()).collect()))
                }
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(records)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(zone = zone))]
    async fn signed(&self, zone: &str) -> Result<bool, DnsError> {
        match self.lookup(fqdn(zone)?, RecordType::DNSKEY).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .any(|record| record.record_type() == RecordType::DNSKEY)),
            Err(DnsError::NoRecords | DnsError::NxDomain) => Ok(false),
            Err(error) => Err(error),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(name = name))]
    async fn txt_validated(&self, name: &str) -> Result<ValidatedTxt, DnsError> {
        let lookup = self.validating.lookup(fqdn(name)?, RecordType::TXT);
        let lookup = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(lookup)) => lookup,
            Ok(Err(NetError::Dns(WireError::DnssecBogus | WireError::Nsec { .. }))) => {
                tracing::debug!("validating TXT lookup: bogus");
                return Ok(ValidatedTxt {
                    dnssec: Dnssec::Bogus,
                    records: Vec::new(),
                });
            }
            Ok(Err(error)) => {
                let outcome = classify(&error);
                tracing::debug!(%error, ?outcome, "validating TXT lookup failed");
                return Err(outcome);
            }
            Err(_elapsed) => return Err(DnsError::Timeout),
        };
        let txt: Vec<&Record> = lookup
            .answers()
            .iter()
            .filter(|record| matches!(record.data, RData::TXT(_)))
            .collect();
        if txt.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(ValidatedTxt {
            dnssec: standing(&txt),
            records: txt
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(t) => {
                        Some(TxtRecord(t.txt_data.iter().map(|s| s.to_vec()).collect()))
                    }
                    _ => None,
                })
                .collect(),
        })
    }
}

/// The root's keys (compiled into hickory) and `extra`.
fn trust_anchors(extra: &[TrustAnchor]) -> Result<TrustAnchors, DnsSetupError> {
    let mut anchors = TrustAnchors::default();
    for anchor in extra {
        let zone = fqdn(&anchor.zone).map_err(|e| DnsSetupError::TrustAnchor(Box::new(e)))?;
        let key = PublicKeyBuf::new(
            anchor.public_key.clone(),
            Algorithm::from_u8(anchor.algorithm),
        );
        anchors.insert_with_name(&key, LowerName::new(&zone));
    }
    Ok(anchors)
}

/// The weakest standing among the TXT records of a validated answer: secure only
/// when every one is.
fn standing(records: &[&Record]) -> Dnssec {
    if records.iter().all(|r| r.proof == Proof::Secure) {
        Dnssec::Secure
    } else if records
        .iter()
        .all(|r| matches!(r.proof, Proof::Secure | Proof::Insecure))
    {
        Dnssec::Insecure
    } else {
        Dnssec::Bogus
    }
}

/// Polls every future until all finish; the outputs in the futures' order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let std::task::Poll::Ready(out) = future.as_mut().poll(cx)
            {
                *output = Some(out);
            }
        }
        if outputs.iter().all(Option::is_some) {
            std::task::Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The resolver options: no cache, no hosts file, few retries, case preserved.
fn options(timeout: Duration) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = RETRY_ATTEMPTS;
    // No cache: every lookup asks the nameservers. The zero TTL bounds make anything
    // that is still inserted expire at once.
    opts.cache_size = 0;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    // Names are always queried fully qualified, so `ndots` never triggers the search
    // list (which is not configured anyway); keep it explicit.
    opts.ndots = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts
}

/// `addr` over UDP, and TCP for truncated answers, on its own port.
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// The nameservers of `/etc/resolv.conf` (its search list and options are ignored).
fn system_name_servers() -> Result<Vec<NameServerConfig>, DnsSetupError> {
    let (config, _options) =
        system_conf::read_system_conf().map_err(|e| DnsSetupError::SystemConfig(Box::new(e)))?;
    let (_domain, _search, name_servers) = config.into_parts();
    Ok(name_servers)
}

/// `name` as a fully-qualified DNS name, so that it is queried as is.
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let relative = name.strip_suffix('.').unwrap_or(name);
    if relative.is_empty() {
        return Err(DnsError::Unexpected("empty domain name".into()));
    }
    let parsed = if relative.is_ascii() {
        Name::from_ascii(relative)
    } else {
        Name::from_utf8(relative)
    };
    let mut name =
        parsed.map_err(|e| DnsError::Unexpected(short(&format!("invalid domain name: {e}"))))?;
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_fully_qualified() {
        assert_eq!(
            fqdn("s1._domainkey.example.com").unwrap().to_ascii(),
            "s1._domainkey.example.com."
        );
        assert_eq!(fqdn("Example.COM.").unwrap().to_ascii(), "Example.COM.");
        assert_eq!(
            fqdn("bücher.example").unwrap().to_ascii(),
            "xn--bcher-kva.example."
        );
    }

    #[test]
    fn bad_names_are_unexpected() {
        assert!(matches!(fqdn(""), Err(DnsError::Unexpected(_))));
        assert!(matches!(fqdn("."), Err(DnsError::Unexpected(_))));
        assert!(matches!(fqdn("a..b"), Err(DnsError::Unexpected(_))));
        assert!(matches!(
            fqdn(&format!("{}.example", "a".repeat(64))),
            Err(DnsError::Unexpected(_))
        ));
    }

    #[test]
    fn the_system_configuration_is_read() {
        let has_nameserver = std::fs::read_to_string("/etc/resolv.conf").is_ok_and(|conf| {
            conf.lines()
                .any(|line| line.trim_start().starts_with("nameserver"))
        });
        let built = HickoryDns::new(&DnsConfig::system(Duration::from_secs(1)));
        if has_nameserver {
            assert!(built.is_ok(), "{built:?}");
        } else {
            assert!(
                matches!(built, Err(DnsSetupError::SystemConfig(_))),
                "{built:?}"
            );
        }
    }

    #[test]
    fn setup_is_checked_and_needs_no_runtime() {
        let addr: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let timeout = Duration::from_secs(1);
        assert!(HickoryDns::new(&DnsConfig::with_servers(vec![addr], timeout)).is_ok());
        assert!(matches!(
            HickoryDns::new(&DnsConfig::with_servers(vec![], timeout)),
            Err(DnsSetupError::NoNameservers)
        ));
        assert!(matches!(
            HickoryDns::new(&DnsConfig::with_servers(vec![addr], Duration::ZERO)),
            Err(DnsSetupError::ZeroTimeout)
        ));
    }
}
