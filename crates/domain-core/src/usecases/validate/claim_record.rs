//! The claim record (`_domain-api-claim.<domain>`), checked the way validate checks a
//! domain's records: at every authoritative nameserver of the domain's zone, each
//! asked directly ([`authoritative`](super::authoritative)), the resolver only when
//! no nameserver can be found. A claim moves a domain between organizations, so one
//! resolver's word must not be enough where the zone's own servers can be asked.
//!
//! Where the zone is signed (it publishes DNSKEY records), the record must also be
//! in an answer validated from the DNSSEC trust anchor down ([`Dns::txt_validated`]);
//! a bogus answer proves nothing. A delegation proven unsigned (no DS record at the
//! parent) leaves nothing to validate.

use super::verdict::{Verdict, outcome};
use super::{CheckStatus, RecordCheck, RecordKind, ValidateDomain};
use crate::ports::dns::{Dns, Dnssec, TxtRecord};
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
    /// The DNSSEC standing of the record; `None` when the check above did not find
    /// it published (nothing was validated).
    pub dnssec: Option<ClaimDnssec>,
}

/// The claim record's DNSSEC standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDnssec {
    /// The zone publishes no DNSKEY records: nothing to validate.
    Unsigned,
    /// The zone publishes DNSKEY records but its delegation is proven unsigned (no
    /// DS record at the parent): no validator can check it.
    Insecure,
    /// A validated answer holds the claim's value.
    Secure,
    /// The zone is signed, and no validated answer holds the claim's value: the
    /// answer was bogus, lacked the value, or the lookup failed (said in the
    /// sentence, for the logs).
    NotValidated(String),
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
        let dnssec = if check.status == CheckStatus::Ok {
            Some(validated(self.dns.as_ref(), &zone, name, expected).await)
        } else {
            None
        };
        ClaimRecordCheck {
            check,
            zone,
            dnssec,
        }
    }
}

/// Where `zone` is signed, whether a validated answer at `name` holds `expected`.
async fn validated(dns: &dyn Dns, zone: &Zone, name: &str, expected: &str) -> ClaimDnssec {
    let zone = zone.name().as_ascii();
    match dns.signed(zone).await {
        Ok(false) => return ClaimDnssec::Unsigned,
        Ok(true) => {}
        Err(error) => {
            return ClaimDnssec::NotValidated(format!(
                "the DNSKEY lookup for {zone} failed ({})",
                outcome(&error)
            ));
        }
    }
    match dns.txt_validated(name).await {
        Ok(answer) => match answer.dnssec {
            Dnssec::Insecure => ClaimDnssec::Insecure,
            Dnssec::Bogus => {
                ClaimDnssec::NotValidated(format!("the answer for {name} is bogus (DNSSEC)"))
            }
            Dnssec::Secure
                if answer
                    .records
                    .iter()
                    .map(TxtRecord::joined)
                    .any(|value| value.trim() == expected) =>
            {
                ClaimDnssec::Secure
            }
            Dnssec::Secure => ClaimDnssec::NotValidated(format!(
                "the validated answer for {name} does not hold the claim's value"
            )),
        },
        Err(error) => ClaimDnssec::NotValidated(format!(
            "the validating lookup for {name} failed ({})",
            outcome(&error)
        )),
    }
}

fn judge_claim(found: &[String], name: &str, expected: &str) -> Verdict {
    if found.iter().any(|value| value.trim() == expected) {
        Verdict::ok()
    } else {
        Verdict::mismatch(format!("No TXT record at {name} holds {expected}."))
    }
}
