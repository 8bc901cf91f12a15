//! Dns port on hickory-resolver 0.26: MX and TXT lookups, each bounded by one overall
//! timeout, with NXDOMAIN, NODATA, SERVFAIL and timeouts told apart.
//!
//! The resolver keeps no cache and expands no search domains: every call sends the
//! fully-qualified name (`name.`) to the configured nameservers and reports what they
//! answer now. With the `test-support` feature, [`test_support::TestDnsServer`] is an
//! authoritative DNS server on 127.0.0.1 (UDP and TCP) whose records tests change while
//! it runs.

mod direct;
mod errors;
mod resolver;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use resolver::{DnsConfig, DnsSetupError, HickoryDns, TrustAnchor};
