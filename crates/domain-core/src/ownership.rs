//! Who may take a name: what is not a sender domain at all (public suffixes,
//! special-use names), what is reserved, the ancestors whose owner blocks a new
//! domain, the claim record that proves DNS control, and the creation quotas.
//!
//! The Public Suffix List is the one compiled into the `psl` crate (ICANN and private
//! sections); a release of the crate follows each list update, so keeping it current
//! is `cargo update -p psl` (see docs/security.md).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::DomainName;

/// Special-use names (RFC 6761, 6762, 7686, 9476 and ICANN's `.internal`): the name
/// itself and everything under it can never be a sender domain. `example` and `test`
/// stay allowed: they are what documentation and tests use.
const SPECIAL_USE: [&str; 7] = [
    "local",
    "localhost",
    "invalid",
    "onion",
    "internal",
    "arpa",
    "alt",
];

/// The mailbox providers reserved by default, beside the inbound MX hosts' own
/// registrable domains: nobody sends as them through us.
pub const DEFAULT_RESERVED: [&str; 24] = [
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "qq.com",
    "163.com",
    "zoho.com",
];

/// The TXT record a claimant publishes: `_domain-api-claim.<domain>`.
pub const CLAIM_LABEL: &str = "_domain-api-claim";
/// The value's prefix: `domain-api-claim=<random>`.
pub const CLAIM_VALUE_PREFIX: &str = "domain-api-claim=";
/// How long a claim stays open by default.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Whether `domain` may be a sender domain at all: not a public suffix itself (ICANN
/// or private section of the list) and not a special-use name or under one.
#[must_use]
pub fn is_sender_domain(domain: &DomainName) -> bool {
    let name = domain.as_ascii();
    !is_special_use(name) && !is_public_suffix(name)
}

/// Whether `name` (A-labels, lower case, no trailing dot) is a special-use name or
/// under one (`localhost`, `printer.local`, `db.internal`, …): never a public host.
#[must_use]
pub fn is_special_use(name: &str) -> bool {
    let top = name.rsplit('.').next().unwrap_or(name);
    SPECIAL_USE.contains(&top)
}

/// Whether `name` (A-labels, lower case) is listed as a public suffix. The list's
/// implicit `*` rule (an unlisted top-level domain is a suffix) is not a listing:
/// `foo.example` is a sender domain.
#[must_use]
pub fn is_public_suffix(name: &str) -> bool {
    match psl::suffix(name.as_bytes()) {
        // Single labels never get here: a DomainName has two or more.
        Some(suffix) => suffix.is_known() && suffix.as_bytes() == name.as_bytes(),
        None => false,
    }
}

/// The registrable domain of `domain` (one label below its public suffix), or `None`
/// when it is a public suffix itself.
#[must_use]
pub fn registrable(domain: &DomainName) -> Option<DomainName> {
    let found = psl::domain_str(domain.as_ascii())?;
    DomainName::parse(found).ok()
}

/// The ancestors of `domain` below its public suffix, nearest the suffix first:
/// `a.b.example.co.uk` → `example.co.uk`, `b.example.co.uk`. Empty for a registrable
/// domain (or a public suffix).
#[must_use]
pub fn ancestors(domain: &DomainName) -> Vec<DomainName> {
    let name = domain.as_ascii();
    let Some(top) = psl::domain_str(name) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut rest = name;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.len() < top.len() {
            break;
        }
        if let Ok(parent_name) = DomainName::parse(parent) {
            found.push(parent_name);
        }
        rest = parent;
    }
    found.reverse();
    found
}

/// The name creations of `name` take turns on (`CreationRules::ancestors` is
/// `ancestors`): the registrable domain (the first of the ancestors), or the domain
/// itself when it is registrable.
#[must_use]
pub fn registrable_of<'a>(name: &'a str, ancestors: &'a [DomainName]) -> &'a str {
    ancestors.first().map_or(name, DomainName::as_ascii)
}

/// Names nobody may take through the API, with all their subdomains.
///
/// The default is the service's own default without inbound hosts: the mailbox
/// providers of [`DEFAULT_RESERVED`], so a consumer who trusts defaults never hands out
/// keys for `gmail.com`.
///
/// ```
/// use domain_core::DomainName;
/// use domain_core::ownership::{Ownership, ReservedDomains};
///
/// let reserved = Ownership::default().reserved;
/// assert!(reserved.contains(&DomainName::parse("gmail.com")?));
/// assert!(reserved.contains(&DomainName::parse("eu.outlook.com")?));
/// assert!(!reserved.contains(&DomainName::parse("example.com")?));
/// // Opting out is explicit.
/// assert!(ReservedDomains::none().names().is_empty());
/// # Ok::<(), domain_core::DomainNameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedDomains {
    names: Vec<String>,
}

impl Default for ReservedDomains {
    fn default() -> Self {
        Self::default_for(&[])
    }
}

impl ReservedDomains {
    /// No reserved name at all.
    #[must_use]
    pub fn none() -> Self {
        Self { names: Vec::new() }
    }

    /// Exactly these names (A-labels).
    #[must_use]
    pub fn new(names: Vec<DomainName>) -> Self {
        let mut names: Vec<String> = names.into_iter().map(|n| n.as_ascii().to_owned()).collect();
        names.sort();
        names.dedup();
        Self { names }
    }

    /// The default: the registrable domains of the inbound MX hosts (our own relay)
    /// and [`DEFAULT_RESERVED`].
    #[must_use]
    pub fn default_for(inbound_hosts: &[String]) -> Self {
        let hosts = inbound_hosts
            .iter()
            .filter_map(|host| DomainName::parse(host.trim_end_matches('.')).ok())
            .filter_map(|host| registrable(&host));
        let providers = DEFAULT_RESERVED
            .iter()
            .filter_map(|name| DomainName::parse(name).ok());
        Self::new(hosts.chain(providers).collect())
    }

    /// Whether `domain` is one of the names or under one.
    #[must_use]
    pub fn contains(&self, domain: &DomainName) -> bool {
        let name = domain.as_ascii();
        self.names.iter().any(|reserved| {
            name == reserved
                || name
                    .strip_suffix(reserved.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
    }

    /// The names, sorted.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Limits on what an organization's registrations store, held by the store across
/// instances: the first two on creating new domains (calls that reuse a domain are
/// never limited by them), the last on every registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreationLimits {
    /// Domains an organization may own at once.
    pub max_domains: u32,
    /// New domains per organization within any 60-second window.
    pub per_minute: u32,
    /// Senders one domain may have (`DOMAIN_API_MAX_SENDERS_PER_DOMAIN`): a
    /// registration past it is refused, whether it creates the domain or not.
    pub max_senders_per_domain: u32,
}

/// The default of [`CreationLimits::max_senders_per_domain`].
pub const DEFAULT_MAX_SENDERS_PER_DOMAIN: u32 = 1000;

impl Default for CreationLimits {
    fn default() -> Self {
        Self {
            max_domains: 1000,
            per_minute: 60,
            max_senders_per_domain: DEFAULT_MAX_SENDERS_PER_DOMAIN,
        }
    }
}

/// What generate holds every new domain to: the reserved names and the quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Names nobody may take.
    pub reserved: ReservedDomains,
    /// Creation quotas per organization.
    pub limits: CreationLimits,
}

/// Why an organization may not create a domain now, in the order the rules are
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationRefusal {
    /// The name or one of its ancestors belongs to another organization.
    Taken,
    /// The organization owns [`CreationLimits::max_domains`] domains already.
    DomainLimit,
    /// The creation window is full; a slot frees after this wait.
    RateLimited(Duration),
}

/// Whether an organization may create a domain, from what the store holds: whether
/// the name or an ancestor belongs to another organization (`foreign`), how many
/// domains the organization owns, and how long until its creation window has a free
/// slot (`window_wait`: [`creation_wait`], or [`wait_for_window`] of the one
/// generation that decides; `None` when one is free). The one statement of the
/// admission rules: the store checks a creation alone, and each of a set's, with it.
///
/// # Errors
/// The first rule the creation breaks.
pub fn admit_creation(
    foreign: bool,
    owned: i64,
    limits: CreationLimits,
    window_wait: Option<Duration>,
) -> Result<(), CreationRefusal> {
    if foreign {
        return Err(CreationRefusal::Taken);
    }
    if owned >= i64::from(limits.max_domains) {
        return Err(CreationRefusal::DomainLimit);
    }
    match window_wait {
        Some(wait) => Err(CreationRefusal::RateLimited(wait)),
        None => Ok(()),
    }
}

/// The sliding window [`CreationLimits::per_minute`] counts over.
pub const CREATION_WINDOW: Duration = Duration::from_secs(60);

/// How long until the organization may create another domain, given the times of
/// its latest creations (newest first, at most `limits.per_minute` of them): `None`
/// when a slot is free now. The wait is rounded up to whole seconds (at least one),
/// as `Retry-After` carries it.
#[must_use]
pub fn creation_wait(
    latest: &[DateTime<Utc>],
    limits: CreationLimits,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let quota = usize::try_from(limits.per_minute).unwrap_or(usize::MAX);
    let window = chrono::Duration::from_std(CREATION_WINDOW).unwrap_or(chrono::Duration::MAX);
    let in_window: Vec<&DateTime<Utc>> = latest
        .iter()
        .filter(|at| now.signed_duration_since(**at) < window)
        .collect();
    if in_window.len() < quota {
        return None;
    }
    // The oldest of the `quota` newest creations frees the next slot.
    let oldest = in_window.get(quota.saturating_sub(1)).copied().copied()?;
    Some(wait_for_window(oldest, now))
}

/// How long until a key generation at `oldest` leaves the window (so the slot it
/// takes frees), as `Retry-After` carries it: the wait [`creation_wait`] gives when
/// `oldest` is the `per_minute`-th newest generation in the window. A store that
/// reads only that one generation answers with this.
#[must_use]
pub fn wait_for_window(oldest: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    let window = chrono::Duration::from_std(CREATION_WINDOW).unwrap_or(chrono::Duration::MAX);
    let frees_in = (oldest + window).signed_duration_since(now);
    retry_after(frees_in.to_std().unwrap_or_default())
}

/// The start of the window [`creation_wait`] counts over, at `now`: generations
/// after it count.
#[must_use]
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::from_std(CREATION_WINDOW).unwrap_or(chrono::Duration::MAX)
}

/// `wait` in whole seconds, rounded up and at least one, as `Retry-After` carries it.
#[must_use]
pub fn retry_after(wait: Duration) -> Duration {
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    Duration::from_secs(millis.div_ceil(1000).max(1))
}

/// The name of the claim record for `domain`.
#[must_use]
pub fn claim_record_name(domain: &DomainName) -> String {
    format!("{CLAIM_LABEL}.{}", domain.as_ascii())
}

/// The value of the claim record for a claim's random `token`.
#[must_use]
pub fn claim_record_value(token: &str) -> String {
    format!("{CLAIM_VALUE_PREFIX}{token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).expect("a domain name")
    }

    #[test]
    fn public_suffixes_of_both_sections_are_not_sender_domains() {
        for suffix in [
            "co.uk",
            "gov.uk",
            "github.io",
            "s3.amazonaws.com",
            "xn--55qx5d.cn",
            "blogspot.com",
            "pages.dev",
        ] {
            assert!(!is_sender_domain(&name(suffix)), "{suffix}");
        }
    }

    #[test]
    fn special_use_names_and_everything_under_them_are_not_sender_domains() {
        for special in [
            "foo.localhost",
            "foo.local",
            "x.invalid",
            "abc.onion",
            "corp.internal",
            "in-addr.arpa",
            "1.0.0.127.in-addr.arpa",
            "home.arpa",
            "x.alt",
        ] {
            assert!(!is_sender_domain(&name(special)), "{special}");
        }
    }

    #[test]
    fn registrable_domains_and_their_subdomains_are_sender_domains() {
        for ok in [
            "example.com",
            "mail.example.com",
            "foo.co.uk",
            "someone.github.io",
            "foo.example",
            "bar.test",
            "xn--bcher-kva.example",
            "shop.xn--55qx5d.cn",
            "unlisted-tld.zzzz",
        ] {
            assert!(is_sender_domain(&name(ok)), "{ok}");
        }
    }

    #[test]
    fn ancestors_stop_at_the_registrable_domain() {
        let found: Vec<String> = ancestors(&name("a.b.example.co.uk"))
            .iter()
            .map(|d| d.as_ascii().to_owned())
            .collect();
        assert_eq!(found, ["example.co.uk", "b.example.co.uk"]);
        assert!(ancestors(&name("example.com")).is_empty());
        assert_eq!(
            ancestors(&name("mail.example.com"))
                .iter()
                .map(DomainName::as_ascii)
                .collect::<Vec<_>>(),
            ["example.com"]
        );
        assert!(ancestors(&name("co.uk")).is_empty());
    }

    #[test]
    fn registrable_domain_is_one_label_below_the_suffix() {
        assert_eq!(
            registrable(&name("mx1.relay.sendtrim.com")).map(|d| d.as_ascii().to_owned()),
            Some("sendtrim.com".to_owned())
        );
        assert_eq!(registrable(&name("co.uk")), None);
    }

    #[test]
    fn reserved_names_cover_their_subdomains_only() {
        let reserved = ReservedDomains::default_for(&["mx.relay.sendtrim.com".to_owned()]);
        for taken in [
            "gmail.com",
            "GMAIL.com",
            "sendtrim.com",
            "mail.sendtrim.com",
            "a.b.yahoo.com",
        ] {
            assert!(reserved.contains(&name(taken)), "{taken}");
        }
        for free in [
            "notgmail.com",
            "gmail.com.example",
            "example.com",
            "xgmail.com",
        ] {
            assert!(!reserved.contains(&name(free)), "{free}");
        }
        assert!(!ReservedDomains::new(vec![]).contains(&name("gmail.com")));
    }

    #[test]
    fn the_creation_window_frees_a_slot_when_its_oldest_creation_is_a_minute_old() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let limits = CreationLimits {
            max_domains: 1000,
            per_minute: 3,
            max_senders_per_domain: 1000,
        };
        let ago = |ms: i64| now - chrono::Duration::milliseconds(ms);
        // Two in the window: a slot is free.
        assert_eq!(creation_wait(&[ago(1_000), ago(2_000)], limits, now), None);
        // Three, the oldest 20.5 s ago: it leaves the window in 39.5 s → 40.
        assert_eq!(
            creation_wait(&[ago(1_000), ago(2_000), ago(20_500)], limits, now),
            Some(Duration::from_secs(40))
        );
        // Three, but one is older than a minute: a slot is free.
        assert_eq!(
            creation_wait(&[ago(1_000), ago(2_000), ago(60_000)], limits, now),
            None
        );
        // About to leave: still at least one second.
        assert_eq!(
            creation_wait(&[ago(1), ago(2), ago(59_999)], limits, now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn a_creation_is_refused_for_the_first_rule_it_breaks() {
        let limits = CreationLimits {
            max_domains: 2,
            ..CreationLimits::default()
        };
        let full = Some(Duration::from_secs(7));
        assert_eq!(admit_creation(false, 1, limits, None), Ok(()));
        // Another organization's ancestor before the limit, the limit before the window.
        assert_eq!(
            admit_creation(true, 2, limits, full),
            Err(CreationRefusal::Taken)
        );
        assert_eq!(
            admit_creation(false, 2, limits, full),
            Err(CreationRefusal::DomainLimit)
        );
        assert_eq!(
            admit_creation(false, 1, limits, full),
            Err(CreationRefusal::RateLimited(Duration::from_secs(7)))
        );
    }

    #[test]
    fn the_claim_record_is_named_under_the_domain() {
        assert_eq!(
            claim_record_name(&name("example.com")),
            "_domain-api-claim.example.com"
        );
        assert_eq!(claim_record_value("abc"), "domain-api-claim=abc");
    }
}
