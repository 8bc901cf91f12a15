//! The DNS records a customer publishes, rendered from the record policy and a key.

use std::net::IpAddr;

use crate::{DomainName, Selector};

/// Platform-wide settings that shape every record set: which IPs SPF authorises and
/// which MX hosts count as "pointing at our relay" for inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPolicy {
    spf_ips: Vec<IpAddr>,
    inbound_hosts: Vec<String>,
    ttl: u32,
}

/// The policy cannot produce usable records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No sending IP is configured, so SPF would authorise no server.
    #[error("at least one SPF sending IP is required")]
    NoSpfIps,
    /// No inbound MX host is configured, so inbound mail could never be turned on.
    #[error("at least one inbound MX host is required")]
    NoInboundHosts,
    /// A configured inbound host is not a domain name; carries it as configured.
    #[error("inbound MX host {0:?} is not a valid host name")]
    BadInboundHost(String),
}

impl RecordPolicy {
    /// The policy from the configured sending IPs and inbound MX hosts; hosts may be
    /// Unicode or carry a trailing dot, and are kept as lower-case A-labels without it.
    ///
    /// # Errors
    /// [`PolicyError`] when either list is empty or a host is not a domain name.
    pub fn new(spf_ips: Vec<IpAddr>, inbound_hosts: &[String]) -> Result<Self, PolicyError> {
        if spf_ips.is_empty() {
            return Err(PolicyError::NoSpfIps);
        }
        if inbound_hosts.is_empty() {
            return Err(PolicyError::NoInboundHosts);
        }
        let inbound_hosts = inbound_hosts
            .iter()
            .map(|h| {
                DomainName::parse(h.strip_suffix('.').unwrap_or(h))
                    .map(|d| d.as_ascii().to_owned())
                    .map_err(|_| PolicyError::BadInboundHost(h.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            spf_ips,
            inbound_hosts,
            ttl: crate::ZONE_TTL,
        })
    }

    /// The policy with `ttl` (seconds) as the TTL of every record to publish, instead
    /// of [`ZONE_TTL`](crate::ZONE_TTL).
    #[must_use]
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// The TTL (seconds) every record to publish carries.
    #[must_use]
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// `v=spf1 ip4:… ip6:… -all`, one mechanism per configured IP.
    #[must_use]
    pub fn spf_value(&self) -> String {
        let mut value = String::from("v=spf1");
        for ip in &self.spf_ips {
            value.push(' ');
            value.push_str(&spf_ip_mechanism(*ip));
        }
        value.push_str(" -all");
        value
    }

    /// The IPs SPF authorises, in configured order: one `ip4:`/`ip6:` mechanism each.
    #[must_use]
    pub fn spf_ips(&self) -> &[IpAddr] {
        &self.spf_ips
    }

    /// Our inbound relay's MX hosts, as lower-case A-labels without a trailing dot.
    #[must_use]
    pub fn inbound_hosts(&self) -> &[String] {
        &self.inbound_hosts
    }

    /// Whether an MX exchange points at our relay: case-insensitive, trailing dot ignored.
    #[must_use]
    pub fn is_inbound_host(&self, exchange: &str) -> bool {
        let host = exchange.strip_suffix('.').unwrap_or(exchange);
        self.inbound_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The SPF mechanism that authorizes exactly `ip`: `ip4:192.0.2.1` or `ip6:2001:db8::1`.
pub(crate) fn spf_ip_mechanism(ip: IpAddr) -> String {
    let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
    format!("{family}:{ip}")
}

/// The three TXT records of the seed's 201 response, in its key order:
/// `SPF`, `<selector>._domainkey.<domain>`, `_dmarc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// The SPF value, published at the domain itself: `v=spf1 ip4:… -all`.
    pub spf: String,
    /// The DKIM record's fully-qualified name, `<selector>._domainkey.<domain>`
    /// (A-labels).
    pub dkim_name: String,
    /// The DKIM value: `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo DER, base64>`.
    pub dkim_value: String,
    /// The DMARC value, published at `_dmarc.<domain>`:
    /// `v=DMARC1; p=none; rua=mailto:dmarc@<domain>`.
    pub dmarc: String,
}

impl RecordSet {
    /// Renders the records for `domain` whose DKIM key is `public_key`
    /// (SubjectPublicKeyInfo DER, base64).
    #[must_use]
    pub fn render(
        policy: &RecordPolicy,
        domain: &DomainName,
        selector: &Selector,
        public_key: &str,
    ) -> Self {
        Self {
            spf: policy.spf_value(),
            dkim_name: format!("{selector}._domainkey.{domain}"),
            dkim_value: format!("v=DKIM1; k=rsa; p={public_key}"),
            dmarc: format!("v=DMARC1; p=none; rua=mailto:dmarc@{domain}"),
        }
    }

    /// The seed's response map as ordered `(key, value)` pairs.
    #[must_use]
    pub fn entries(&self) -> [(&str, &str); 3] {
        [
            ("SPF", self.spf.as_str()),
            (self.dkim_name.as_str(), self.dkim_value.as_str()),
            ("_dmarc", self.dmarc.as_str()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RecordPolicy {
        RecordPolicy::new(
            vec!["51.79.43.241".parse().unwrap()],
            &["inbound.sendtrim.com".into(), "smtp.sendtrim.com".into()],
        )
        .unwrap()
    }

    #[test]
    fn renders_the_seed_example_for_an_apex_domain() {
        let domain = DomainName::parse("example.com").unwrap();
        let records = RecordSet::render(
            &policy(),
            &domain,
            &Selector::new("abc123").unwrap(),
            "MIIB",
        );
        assert_eq!(
            records.entries(),
            [
                ("SPF", "v=spf1 ip4:51.79.43.241 -all"),
                ("abc123._domainkey.example.com", "v=DKIM1; k=rsa; p=MIIB"),
                ("_dmarc", "v=DMARC1; p=none; rua=mailto:dmarc@example.com"),
            ]
        );
    }

    #[test]
    fn names_subdomain_records_under_the_subdomain() {
        let domain = DomainName::parse("mail.example.com").unwrap();
        let records = RecordSet::render(&policy(), &domain, &Selector::new("s1").unwrap(), "K");
        assert_eq!(records.dkim_name, "s1._domainkey.mail.example.com");
        assert_eq!(
            records.dmarc,
            "v=DMARC1; p=none; rua=mailto:dmarc@mail.example.com"
        );
    }

    #[test]
    fn renders_idn_domains_as_a_labels() {
        let domain = DomainName::parse("bücher.example").unwrap();
        let records = RecordSet::render(&policy(), &domain, &Selector::new("s1").unwrap(), "K");
        assert_eq!(records.dkim_name, "s1._domainkey.xn--bcher-kva.example");
        assert_eq!(
            records.dmarc,
            "v=DMARC1; p=none; rua=mailto:dmarc@xn--bcher-kva.example"
        );
    }

    #[test]
    fn lists_every_sending_ip_in_spf() {
        let policy = RecordPolicy::new(
            vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            &["mx.example.net".into()],
        )
        .unwrap();
        assert_eq!(
            policy.spf_value(),
            "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all"
        );
    }

    #[test]
    fn matches_inbound_hosts_ignoring_case_and_trailing_dot() {
        let policy = policy();
        assert!(policy.is_inbound_host("INBOUND.sendtrim.com."));
        assert!(policy.is_inbound_host("smtp.sendtrim.com"));
        assert!(!policy.is_inbound_host("mx.sendtrim.com"));
        assert!(!policy.is_inbound_host("inbound.sendtrim.com.evil.net"));
    }

    #[test]
    fn rejects_an_empty_or_malformed_policy() {
        assert_eq!(
            RecordPolicy::new(vec![], &["a.b".into()]),
            Err(PolicyError::NoSpfIps)
        );
        let ip = vec!["192.0.2.1".parse().unwrap()];
        assert_eq!(
            RecordPolicy::new(ip.clone(), &[]),
            Err(PolicyError::NoInboundHosts)
        );
        assert_eq!(
            RecordPolicy::new(ip, &["not a host".into()]),
            Err(PolicyError::BadInboundHost("not a host".into()))
        );
    }

    /// An LDH label of 1–63 octets: letters, digits, inner hyphens.
    fn ascii_label() -> impl Strategy<Value = String> {
        "[a-z0-9A-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    }

    /// A label a customer types in Unicode; `DomainName` turns it into an A-label.
    fn unicode_label() -> impl Strategy<Value = String> {
        "[a-zà-ÿα-ω]{1,20}"
    }

    /// Any domain `DomainName::parse` accepts, built from two to four labels; those
    /// over 253 octets (or with an undecodable `xn--` label) are discarded.
    fn domain() -> impl Strategy<Value = DomainName> {
        let label = prop_oneof![4 => ascii_label(), 1 => unicode_label()];
        (
            prop::collection::vec(label, 1..=3),
            "[a-zA-Z][a-zA-Z0-9]{1,10}",
        )
            .prop_filter_map("not a valid domain", |(mut labels, tld)| {
                labels.push(tld);
                DomainName::parse(&labels.join(".")).ok()
            })
    }

    fn selector() -> impl Strategy<Value = Selector> {
        "[a-z0-9]{1,63}".prop_map(|s| Selector::new(s).expect("the pattern is a valid selector"))
    }

    /// Base64 of a SubjectPublicKeyInfo, near enough: what matters is its alphabet.
    fn public_key() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+/]{1,400}={0,2}"
    }

    fn spf_policy() -> impl Strategy<Value = RecordPolicy> {
        prop::collection::vec(any::<IpAddr>(), 1..=4).prop_map(|ips| {
            RecordPolicy::new(ips, &["inbound.sendtrim.com".into()])
                .expect("a non-empty policy is valid")
        })
    }

    proptest! {
        #[test]
        fn spf_authorises_exactly_the_policy_ips_and_fails_the_rest(
            policy in spf_policy(),
            domain in domain(),
            selector in selector(),
            key in public_key(),
        ) {
            let records = RecordSet::render(&policy, &domain, &selector, &key);
            prop_assert!(records.spf.starts_with("v=spf1 "), "{}", records.spf);
            prop_assert!(records.spf.ends_with(" -all"), "{}", records.spf);
            let mechanisms: Vec<String> = policy
                .spf_ips()
                .iter()
                .map(|ip| format!("{}:{ip}", if ip.is_ipv4() { "ip4" } else { "ip6" }))
                .collect();
            prop_assert_eq!(records.spf, format!("v=spf1 {} -all", mechanisms.join(" ")));
        }

        #[test]
        fn dkim_record_sits_under_the_selector_with_dns_safe_labels(
            domain in domain(),
            selector in selector(),
            key in public_key(),
        ) {
            let records = RecordSet::render(&policy(), &domain, &selector, &key);
            prop_assert_eq!(&records.dkim_name, &format!("{selector}._domainkey.{domain}"));
            prop_assert!(
                records.dkim_name.split('.').all(|l| (1..=63).contains(&l.len())),
                "{}", records.dkim_name
            );
            prop_assert!(records.dkim_name.is_ascii(), "{}", records.dkim_name);
            prop_assert_eq!(&records.dkim_name, &records.dkim_name.to_ascii_lowercase());
            prop_assert_eq!(records.dkim_value, format!("v=DKIM1; k=rsa; p={key}"));
        }

        #[test]
        fn dmarc_reports_to_the_domain_itself(domain in domain()) {
            let selector = Selector::new("s1").expect("valid selector");
            let records = RecordSet::render(&policy(), &domain, &selector, "K");
            prop_assert_eq!(
                records.dmarc,
                format!("v=DMARC1; p=none; rua=mailto:dmarc@{}", domain.as_ascii())
            );
        }

        #[test]
        fn records_have_no_control_characters_and_keep_the_seed_key_order(
            policy in spf_policy(),
            domain in domain(),
            selector in selector(),
            key in public_key(),
        ) {
            let records = RecordSet::render(&policy, &domain, &selector, &key);
            let entries = records.entries();
            let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(keys, vec!["SPF", records.dkim_name.as_str(), "_dmarc"]);
            let values: Vec<&str> = entries.iter().map(|(_, v)| *v).collect();
            prop_assert_eq!(
                values,
                vec![records.spf.as_str(), records.dkim_value.as_str(), records.dmarc.as_str()]
            );
            for (name, value) in entries {
                prop_assert!(
                    !name.chars().chain(value.chars()).any(char::is_control),
                    "{:?} = {:?}", name, value
                );
            }
        }
    }
}
