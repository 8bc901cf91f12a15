//! Inbound: whether the domain's MX records route mail to our relay. Judged only
//! when the customer turned inbound on, but always reported.

use super::verdict::{Verdict, outcome};
use super::{CheckStatus, InboundCheck, ValidateDomain};
use crate::ports::dns::DnsError;
use crate::ports::store::StoredDomain;

impl ValidateDomain {
    /// Looks up the domain's MX records and compares them with our inbound hosts.
    pub(super) async fn check_inbound(&self, stored: &StoredDomain) -> InboundCheck {
        let ours = self.policy.inbound_hosts().join(" or ");
        let (mx_hosts, verdict) = match self.dns.mx(&stored.name).await {
            Ok(records) if !records.is_empty() => {
                let ready = records
                    .iter()
                    .any(|mx| self.policy.is_inbound_host(&mx.exchange));
                let hosts: Vec<String> = records
                    .iter()
                    .map(|mx| mx.exchange.trim_end_matches('.').to_owned())
                    .collect();
                let verdict = if ready {
                    Verdict::ok()
                } else {
                    Verdict::mismatch(format!(
                        "The MX records point at {}, not at {ours}; add an MX record for {ours} to receive mail through us.",
                        hosts.join(", ")
                    ))
                };
                (hosts, verdict)
            }
            Ok(_) | Err(DnsError::NxDomain | DnsError::NoRecords) => (
                Vec::new(),
                Verdict::missing(format!("No MX record points at {ours}.")),
            ),
            Err(error) => (
                Vec::new(),
                Verdict::error(format!(
                    "The DNS lookup for the MX records of {} failed ({}); try again later.",
                    stored.name,
                    outcome(&error)
                )),
            ),
        };
        InboundCheck {
            enabled: stored.inbound_enabled,
            mx_ready: verdict.status == CheckStatus::Ok,
            mx_hosts,
            status: verdict.status,
            reason: verdict.reason,
        }
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
