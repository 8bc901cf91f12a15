//! Dns port: bounded MX and TXT lookups with distinct failure outcomes.

use async_trait::async_trait;

use crate::DomainName;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// The MX preference (RFC 5321 §5.1): lower values are tried first.
    pub preference: u16,
    /// The exchange host as published, possibly with a trailing dot.
    pub exchange: String,
}

/// One TXT record: its character-strings in order (each at most 255 octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord(pub Vec<Vec<u8>>);

impl TxtRecord {
    /// The strings joined with nothing between them, as RFC 7208 and RFC 6376
    /// read a multi-string record; invalid UTF-8 is replaced, not dropped.
    #[must_use]
    pub fn joined(&self) -> String {
        let bytes: Vec<u8> = self.0.concat();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// One authoritative nameserver of a zone: its host name (an NS record's target,
/// without the trailing dot) and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    /// The host name, e.g. `ns1.example.com`.
    pub host: String,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<std::net::IpAddr>,
}

/// Live DNS lookups, each bounded in time by the adapter.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Dns: Send + Sync {
    /// The MX records of `domain`, sorted by preference.
    ///
    /// # Errors
    /// [`DnsError`]; an existing name without MX records is [`DnsError::NoRecords`].
    async fn mx(&self, domain: &DomainName) -> Result<Vec<MxRecord>, DnsError>;

    /// The TXT records at `name` (a fully-qualified name such as
    /// `s1._domainkey.example.com`, which is not itself a sender domain).
    ///
    /// # Errors
    /// [`DnsError`]; an existing name without TXT records is [`DnsError::NoRecords`].
    async fn txt(&self, name: &str) -> Result<Vec<TxtRecord>, DnsError>;

    /// The IPv4 and IPv6 addresses of host `name` (A and AAAA records), for the
    /// webhook sender's address checks.
    ///
    /// # Errors
    /// [`DnsError`]; a name with neither is [`DnsError::NoRecords`].
    async fn addresses(&self, name: &str) -> Result<Vec<std::net::IpAddr>, DnsError>;

    /// Whether `name` is a zone apex: `Ok` when an SOA record is published at `name`
    /// itself (not merely in the authority section of a negative answer).
    ///
    /// # Errors
    /// [`DnsError`]; a name inside a zone but not its apex is
    /// [`DnsError::NoRecords`] (or [`DnsError::NxDomain`] when it does not exist).
    async fn soa(&self, name: &str) -> Result<(), DnsError>;

    /// The authoritative nameservers of `zone` (its NS records) with their
    /// addresses, found through the configured resolver. A host whose addresses
    /// cannot be found is listed with none.
    ///
    /// # Errors
    /// [`DnsError`]; a zone without NS records is [`DnsError::NoRecords`].
    async fn nameservers(&self, zone: &str) -> Result<Vec<Nameserver>, DnsError>;

    /// The TXT records at `name` as the nameserver at `server` serves them now:
    /// asked directly, without recursion (over TCP when the answer is truncated), so
    /// no cache of any resolver stands between. Only an authoritative answer counts.
    ///
    /// # Errors
    /// [`DnsError`]; NXDOMAIN and NODATA as for [`Dns::txt`], an answer that is not
    /// authoritative (the server does not serve the zone) is
    /// [`DnsError::Unexpected`].
    async fn txt_at(
        &self,
        server: std::net::IpAddr,
        name: &str,
    ) -> Result<Vec<TxtRecord>, DnsError>;

    /// Whether `zone` publishes DNSKEY records at its apex (as the configured
    /// resolver serves them): a signed zone, whose answers a validator can check.
    ///
    /// # Errors
    /// [`DnsError`] when the lookup fails; no DNSKEY (NODATA, NXDOMAIN) is
    /// `Ok(false)`.
    async fn signed(&self, zone: &str) -> Result<bool, DnsError>;

    /// The TXT records at `name` through a validating lookup (RFC 4035 §5): the
    /// configured resolver asked with the DO bit, every signature and the chain of
    /// keys checked by the adapter from the root's trust anchor down. A bogus answer
    /// is `Ok` with [`Dnssec::Bogus`] and no records.
    ///
    /// # Errors
    /// [`DnsError`] as for [`Dns::txt`].
    async fn txt_validated(&self, name: &str) -> Result<ValidatedTxt, DnsError>;
}

/// How a validating lookup judged an answer (RFC 4033 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dnssec {
    /// Signed, and every signature checked from a trust anchor down.
    Secure,
    /// Provably unsigned: a delegation on the way from the trust anchor has no DS
    /// record, so there is nothing to check.
    Insecure,
    /// Signed, but the signatures or the chain of keys do not check out (forged,
    /// stripped or expired), or that could not be decided: not to be trusted.
    Bogus,
}

/// TXT records, and how the validating lookup that found them judged them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedTxt {
    /// The answer's standing: the weakest of its records'.
    pub dnssec: Dnssec,
    /// The records (none when bogus).
    pub records: Vec<TxtRecord>,
}

/// Why a lookup returned no records: a name or type with nothing published is kept
/// distinct from a lookup that failed, whose records may well exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist at all (NXDOMAIN).
    #[error("the domain does not exist (NXDOMAIN)")]
    NxDomain,
    /// The name exists but has no records of the type asked for (NOERROR, empty
    /// answer).
    #[error("the name has no records of that type")]
    NoRecords,
    /// A nameserver answered SERVFAIL (a broken delegation, a DNSSEC failure, …);
    /// nothing is known about the records.
    #[error("the nameserver failed (SERVFAIL)")]
    ServFail,
    /// No answer arrived within the adapter's time bound.
    #[error("the lookup timed out")]
    Timeout,
    /// Any other failure (REFUSED, a malformed name, a network error); carries a short
    /// description for the logs, never shown to a customer.
    #[error("the lookup failed: {0}")]
    Unexpected(String),
}
