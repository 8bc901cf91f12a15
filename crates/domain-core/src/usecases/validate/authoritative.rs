//! Checks at the zone's authoritative nameservers: each TXT record is judged as every
//! nameserver of the zone serves it, asked directly without recursion
//! ([`Dns::txt_at`](crate::ports::dns::Dns::txt_at)), so neither a resolver's negative
//! cache nor a lagging secondary hides what is published. The configured resolver
//! only finds the nameservers (NS, then their addresses).
//!
//! A record is published when every nameserver that answers serves it (and one at
//! least answers); the check says on how many (`published on k of n nameservers`)
//! and names those that lag. Without nameservers (the NS lookup failed, or none has
//! an address) the check asks the resolver, as before.

use std::net::IpAddr;

use super::{CheckStatus, RecordCheck, ValidateDomain, join_all};
use crate::Zone;

/// At most this many nameserver addresses are asked: a zone cannot make one check
/// send unbounded queries.
pub const MAX_NAMESERVERS: usize = 8;

/// One address of one authoritative nameserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The nameserver's host name, e.g. `ns1.example.com`.
    pub host: String,
    /// One of its addresses.
    pub address: IpAddr,
}

impl Server {
    /// `ns1.example.com (192.0.2.53)`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} ({})", self.host, self.address)
    }
}

/// How one record stands across the zone's nameservers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Nameservers that serve the record as it should be.
    pub published: usize,
    /// Nameservers asked.
    pub total: usize,
    /// Nameservers that answered without the record as it should be (a lagging
    /// secondary, or the record is not published), labelled `host (address)`.
    pub lagging: Vec<String>,
    /// Nameservers that did not answer (timeout, SERVFAIL, REFUSED, not
    /// authoritative), labelled `host (address)`.
    pub unanswered: Vec<String>,
}

impl Tally {
    /// `published on k of n nameservers`.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "published on {} of {} nameservers",
            self.published, self.total
        )
    }
}

impl ValidateDomain {
    /// The addresses of `zone`'s nameservers, at most [`MAX_NAMESERVERS`], in a
    /// stable order; empty when they cannot be found.
    pub(super) async fn servers(&self, zone: &Zone) -> Vec<Server> {
        match self.dns.nameservers(zone.name().as_ascii()).await {
            Ok(nameservers) => nameservers
                .into_iter()
                .flat_map(|ns| {
                    ns.addresses.into_iter().map(move |address| Server {
                        host: ns.host.clone(),
                        address,
                    })
                })
                .take(MAX_NAMESERVERS)
                .collect(),
            Err(error) => {
                tracing::debug!(zone = %zone.name(), %error, "no nameservers: asking the resolver");
                Vec::new()
            }
        }
    }

    /// This use case asking `address` directly for every TXT record.
    pub(super) fn at(&self, address: IpAddr) -> Self {
        Self {
            at: Some(address),
            ..self.clone()
        }
    }

    /// `check` run once per server (side by side), merged; with no server, run once
    /// through the resolver.
    pub(super) async fn at_each<'a, F, Fut>(
        &'a self,
        servers: &'a [Server],
        check: F,
    ) -> RecordCheck
    where
        F: Fn(Self) -> Fut,
        Fut: Future<Output = RecordCheck> + 'a,
    {
        if servers.is_empty() {
            return check(self.clone()).await;
        }
        let checks = join_all(servers.iter().map(|s| check(self.at(s.address)))).await;
        merge(servers, checks)
    }
}

/// One check from the checks of each server: ok when every server that answered
/// serves the record (and one did); otherwise the first lagging server's check,
/// its reason naming who lags.
fn merge(servers: &[Server], checks: Vec<RecordCheck>) -> RecordCheck {
    let mut tally = Tally {
        published: 0,
        total: servers.len(),
        lagging: Vec::new(),
        unanswered: Vec::new(),
    };
    let (mut first_ok, mut first_lagging, mut first_error) = (None, None, None);
    for (server, check) in servers.iter().zip(checks) {
        match check.status {
            CheckStatus::Ok => {
                tally.published += 1;
                first_ok.get_or_insert(check);
            }
            CheckStatus::Error => {
                tally.unanswered.push(server.label());
                first_error.get_or_insert(check);
            }
            CheckStatus::Missing | CheckStatus::Mismatch => {
                tally.lagging.push(server.label());
                first_lagging.get_or_insert(check);
            }
        }
    }
    let mut merged = match (first_lagging, first_ok, first_error) {
        (Some(mut lagging), ok, _) => {
            if ok.is_some() {
                let who = tally.lagging.join(", ");
                let verb = if tally.lagging.len() == 1 {
                    "does"
                } else {
                    "do"
                };
                lagging.reason = Some(format!(
                    "Only {}: {who} {verb} not serve it yet. {}",
                    tally.summary(),
                    lagging.reason.unwrap_or_default()
                ));
            }
            lagging
        }
        (None, Some(ok), _) => ok,
        (None, None, Some(error)) => error,
        (None, None, None) => unreachable_check(),
    };
    merged.nameservers = Some(tally);
    merged
}

/// `merge` is only called with one check per server and at least one server.
fn unreachable_check() -> RecordCheck {
    RecordCheck::new(
        super::RecordKind::Spf,
        "",
        "",
        Vec::new(),
        super::verdict::Verdict::error("No nameserver was asked.".to_owned()),
    )
}
