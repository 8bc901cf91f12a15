//! The DNS zone a sender domain's records are published in, and the hosts relative to
//! it.
//!
//! A customer types a record's *host* into their DNS provider's form for one zone:
//! for the sender `mail.gworkspace.example` in the zone `gworkspace.example` the hosts
//! are `mail`, `<selector>._domainkey.mail` and `_dmarc.mail`, not `@`. The zone is
//! the closest enclosing zone cut: the nearest of the domain and its ancestors (down
//! to its registrable domain) that has an SOA record ([`find_zone`]). Until a lookup
//! has found it, or when none can, the registrable domain stands in for it
//! ([`ZoneSource::Registrable`]) — the usual case, and said so on the wire.

use crate::DomainName;
use crate::ownership::{ancestors, registrable};
use crate::ports::dns::{Dns, DnsError};

/// How the zone was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// A lookup found an SOA record at the zone's name (at this check or an earlier
    /// one).
    Soa,
    /// No lookup has found the zone (none ran yet, or it failed): the registrable
    /// domain (one label below the public suffix) is assumed.
    Registrable,
}

impl ZoneSource {
    /// The name on the wire: `soa` or `registrable`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Soa => "soa",
            Self::Registrable => "registrable",
        }
    }
}

/// The zone a domain's records go into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: DomainName,
    source: ZoneSource,
}

impl Zone {
    /// The zone of `domain`: `found` (an SOA lookup's finding, kept or fresh) when it
    /// is `domain` or one of its ancestors, else the registrable domain of `domain`
    /// (the domain itself when it has none).
    #[must_use]
    pub fn of(domain: &DomainName, found: Option<&DomainName>) -> Self {
        match found {
            Some(zone) if encloses(zone, domain) => Self {
                name: zone.clone(),
                source: ZoneSource::Soa,
            },
            _ => Self {
                name: registrable(domain).unwrap_or_else(|| domain.clone()),
                source: ZoneSource::Registrable,
            },
        }
    }

    /// The zone's name (A-labels).
    #[must_use]
    pub fn name(&self) -> &DomainName {
        &self.name
    }

    /// How the zone was determined.
    #[must_use]
    pub fn source(&self) -> ZoneSource {
        self.source
    }

    /// `name` (fully qualified, A-labels, no trailing dot) relative to the zone: `@`
    /// for the zone's own name, the labels in front of it otherwise; a name outside
    /// the zone is returned whole.
    #[must_use]
    pub fn host(&self, name: &str) -> String {
        let zone = self.name.as_ascii();
        if name.eq_ignore_ascii_case(zone) {
            return "@".to_owned();
        }
        name.len()
            .checked_sub(zone.len() + 1)
            .filter(|&cut| {
                name.is_char_boundary(cut)
                    && name[cut..].starts_with('.')
                    && name[cut + 1..].eq_ignore_ascii_case(zone)
            })
            .map_or_else(|| name.to_owned(), |cut| name[..cut].to_owned())
    }
}

/// Whether `zone` is `domain` or one of its ancestors.
fn encloses(zone: &DomainName, domain: &DomainName) -> bool {
    let (zone, domain) = (zone.as_ascii(), domain.as_ascii());
    domain == zone || domain.strip_suffix(zone).is_some_and(|d| d.ends_with('.'))
}

/// The closest enclosing zone cut of `domain`: the nearest of `domain` and its
/// ancestors down to its registrable domain that has an SOA record. The names are
/// asked side by side, so the slowest lookup bounds the search, not their sum.
///
/// `None` when no such name has one, or when a lookup nearer `domain` than the one
/// found failed (a zone cut there cannot be ruled out): the caller falls back to
/// [`Zone::of`] with what it knew before.
pub async fn find_zone(dns: &dyn Dns, domain: &DomainName) -> Option<DomainName> {
    // Nearest the domain first: the domain itself, then its ancestors upwards.
    let mut candidates = vec![domain.clone()];
    candidates.extend(ancestors(domain).into_iter().rev());
    let answers =
        crate::usecases::validate::join_all(candidates.iter().map(|name| dns.soa(name.as_ascii())))
            .await;
    for (name, answer) in candidates.iter().zip(answers) {
        match answer {
            Ok(()) => return Some(name.clone()),
            Err(DnsError::NoRecords | DnsError::NxDomain) => {}
            Err(error) => {
                tracing::debug!(zone = %name, %error, "SOA lookup failed: zone not determined");
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mockall::predicate::eq;

    use super::*;
    use crate::ports::dns::MockDns;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn hosts_are_relative_to_the_zone() {
        let zone = Zone::of(
            &name("mail.gworkspace.example"),
            Some(&name("gworkspace.example")),
        );
        assert_eq!(zone.source(), ZoneSource::Soa);
        assert_eq!(zone.host("mail.gworkspace.example"), "mail");
        assert_eq!(
            zone.host("s1._domainkey.mail.gworkspace.example"),
            "s1._domainkey.mail"
        );
        assert_eq!(zone.host("gworkspace.example"), "@");
        assert_eq!(zone.host("other.example"), "other.example");
        assert_eq!(zone.host("xgworkspace.example"), "xgworkspace.example");
    }

    #[test]
    fn without_a_finding_the_registrable_domain_is_the_zone() {
        let zone = Zone::of(&name("a.mail.example.co.uk"), None);
        assert_eq!(zone.name().as_ascii(), "example.co.uk");
        assert_eq!(zone.source(), ZoneSource::Registrable);
        assert_eq!(zone.host("_dmarc.a.mail.example.co.uk"), "_dmarc.a.mail");
    }

    #[test]
    fn a_finding_outside_the_domain_is_ignored() {
        let zone = Zone::of(&name("mail.example.com"), Some(&name("other.com")));
        assert_eq!(zone.name().as_ascii(), "example.com");
        assert_eq!(zone.source(), ZoneSource::Registrable);
        let zone = Zone::of(&name("mail.example.com"), Some(&name("ail.example.com")));
        assert_eq!(zone.source(), ZoneSource::Registrable);
    }

    #[tokio::test]
    async fn the_nearest_name_with_an_soa_is_the_zone() {
        let mut dns = MockDns::new();
        dns.expect_soa()
            .with(eq("a.mail.example.com"))
            .returning(|_| Err(DnsError::NxDomain));
        dns.expect_soa()
            .with(eq("mail.example.com"))
            .returning(|_| Ok(()));
        dns.expect_soa()
            .with(eq("example.com"))
            .returning(|_| Ok(()));
        let found = find_zone(&dns, &name("a.mail.example.com")).await;
        assert_eq!(found, Some(name("mail.example.com")));
    }

    #[tokio::test]
    async fn a_failed_lookup_below_the_soa_found_leaves_the_zone_undetermined() {
        let mut dns = MockDns::new();
        dns.expect_soa()
            .with(eq("mail.example.com"))
            .returning(|_| Err(DnsError::Timeout));
        dns.expect_soa()
            .with(eq("example.com"))
            .returning(|_| Ok(()));
        let dns: Arc<dyn Dns> = Arc::new(dns);
        assert_eq!(
            find_zone(dns.as_ref(), &name("mail.example.com")).await,
            None
        );
    }

    #[tokio::test]
    async fn no_soa_down_to_the_registrable_domain_is_no_zone() {
        let mut dns = MockDns::new();
        dns.expect_soa()
            .times(2)
            .returning(|_| Err(DnsError::NoRecords));
        assert_eq!(find_zone(&dns, &name("mail.example.com")).await, None);
    }
}
