//! The claim record (`_domain-api-claim.<domain>`), checked the way validate checks a
//! domain's records: at every authoritative nameserver of the domain's zone, each
//! asked directly ([`authoritative`](super::authoritative)), the resolver only when
//! no nameserver can be found. A claim moves a domain between organizations, so one
//! resolver's word must not be enough where the zone's own servers can be asked.

use super::verdict::Verdict;
use super::{RecordCheck, RecordKind, ValidateDomain};
use crate::{DomainName, Zone, find_zone};

/// How the claim record stands, and in which zone it was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecordCheck {
    /// The record's check; `nameservers` says on how many of the zone's nameservers
    /// it is published (`None`: none could be found, the resolver was asked).
    pub check: RecordCheck,
    /// The zone whose nameservers were asked (found by SOA, else the registrable
    /// domain).
    pub zone: Zone,
}

impl ValidateDomain {
    /// The TXT record at `name` (the claim record of `domain`) checked at each
    /// authoritative nameserver of `domain`'s zone: ok when every nameserver that
    /// answers serves a value equal to `expected` (and one answers); through the
    /// resolver when no nameserver can be found.
    pub async fn check_claim_record(
        &self,
        domain: &DomainName,
        name: &str,
        expected: &str,
    ) -> ClaimRecordCheck {
        let found = find_zone(self.dns.as_ref(), domain).await;
        let zone = Zone::of(domain, found.as_ref());
        let servers = self.servers(&zone).await;
        let check = self
            .at_each(&servers, |v| async move {
                v.check_txt(RecordKind::Claim, name, expected, |found| {
                    judge_claim(found, name, expected)
                })
                .await
            })
            .await;
        ClaimRecordCheck { check, zone }
    }
}

fn judge_claim(found: &[String], name: &str, expected: &str) -> Verdict {
    if found.iter().any(|value| value.trim() == expected) {
        Verdict::ok()
    } else {
        Verdict::mismatch(format!("No TXT record at {name} holds {expected}."))
    }
}
