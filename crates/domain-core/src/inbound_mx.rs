//! The MX record inbound mail needs: at the sender domain itself, pointing at the
//! first configured inbound host. Shown before any check (what to publish), and
//! listed with the records and in the zone file once inbound is on.

use crate::{DomainName, RecordPolicy, Zone};

/// The preference the MX record is suggested with (any works: the relay is the
/// domain's only mail exchanger, or one of them).
pub const INBOUND_MX_PRIORITY: u16 = 10;

/// The MX record to publish for inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMx {
    /// Relative to the zone the records go into (`@` at its apex, `mail` for
    /// `mail.example.com` in the zone `example.com`).
    pub host: String,
    /// The sender domain, fully qualified.
    pub name: String,
    /// The MX preference.
    pub priority: u16,
    /// The exchange: the first of the policy's inbound hosts.
    pub value: String,
    /// Its TTL in the zone file, as the other records' (`DOMAIN_API_RECORD_TTL`).
    pub ttl: u32,
}

impl InboundMx {
    /// The record for `domain`, in `zone`, under `policy`, with the TTL `ttl`.
    #[must_use]
    pub fn new(policy: &RecordPolicy, domain: &DomainName, zone: &Zone, ttl: u32) -> Self {
        Self {
            host: zone.host(domain.as_ascii()),
            name: domain.as_ascii().to_owned(),
            priority: INBOUND_MX_PRIORITY,
            value: policy.inbound_hosts().first().cloned().unwrap_or_default(),
            ttl,
        }
    }

    /// The record as one BIND zone-file line (absolute names).
    #[must_use]
    pub fn zone_line(&self) -> String {
        format!(
            "{}. {} IN MX {} {}.\n",
            self.name, self.ttl, self.priority, self.value
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_the_sender_domain_at_the_first_inbound_host_relative_to_its_zone() {
        let policy = RecordPolicy::new(
            vec!["51.79.43.241".parse().unwrap()],
            &["inbound.sendtrim.com".into(), "smtp.sendtrim.com".into()],
        )
        .unwrap();
        let domain = DomainName::parse("mail.example.com").unwrap();
        let parent = DomainName::parse("example.com").unwrap();
        let mx = InboundMx::new(&policy, &domain, &Zone::of(&domain, Some(&parent)), 900);
        assert_eq!(
            (
                mx.host.as_str(),
                mx.name.as_str(),
                mx.priority,
                mx.value.as_str()
            ),
            ("mail", "mail.example.com", 10, "inbound.sendtrim.com")
        );
        assert_eq!(
            mx.zone_line(),
            "mail.example.com. 900 IN MX 10 inbound.sendtrim.com.\n"
        );
        let apex = InboundMx::new(&policy, &domain, &Zone::of(&domain, Some(&domain)), 3600);
        assert_eq!(apex.host, "@");
    }
}
