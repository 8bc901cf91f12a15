//! Validate: `GET /api/v1/domains/validate?domain=D` — resolves, live, each record the
//! customer should have published (SPF, DKIM, DMARC, and MX for inbound) and says in
//! plain words exactly what is wrong with each.

use std::future::{Future, poll_fn};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use crate::ports::InfraError;
use crate::ports::dns::{Dns, DnsError, TxtRecord};
use crate::ports::store::{DomainStore, StoredDomain};
use crate::{DomainName, OrganizationId, RecordPolicy, RecordSet, Selector};

/// RFC 7208 §4.6.4: evaluating one SPF record may cause at most 10 DNS lookups.
const MAX_SPF_LOOKUPS: usize = 10;

/// The same sentence for every record type: control panels add the quotes themselves.
const QUOTES_REASON: &str = "The value contains quotation marks; remove the surrounding quotes — your DNS provider adds them itself.";

/// Checks a domain's published records against the ones it should publish.
#[derive(Clone)]
pub struct ValidateDomain {
    store: Arc<dyn DomainStore>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
}

/// Why no report was produced.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// The domain does not exist or belongs to another organization: the two are
    /// indistinguishable on purpose, so nobody can probe for other customers' domains.
    #[error("no such domain for this organization")]
    NotFound,
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

/// The live state of a domain's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    /// The domain's A-label form.
    pub domain: String,
    /// SPF, DKIM and DMARC are all ok, and so is inbound when it is enabled.
    pub verified: bool,
    /// SPF, DKIM and DMARC, in that order.
    pub records: Vec<RecordCheck>,
    pub inbound: InboundCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Spf,
    Dkim,
    Dmarc,
}

impl RecordKind {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Spf => "SPF",
            Self::Dkim => "DKIM",
            Self::Dmarc => "DMARC",
        }
    }
}

/// One TXT record: what should be published at `name` and what is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCheck {
    pub kind: RecordKind,
    /// The fully-qualified name queried, e.g. `s1._domainkey.example.com`.
    pub name: String,
    pub expected: String,
    /// Each TXT record found, its strings joined.
    pub found: Vec<String>,
    pub status: CheckStatus,
    /// A sentence the customer understands; `None` when the record is ok.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Missing,
    Mismatch,
    /// The lookup itself failed; the record may well be fine.
    Error,
}

impl CheckStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Mismatch => "mismatch",
            Self::Error => "error",
        }
    }
}

/// Whether the domain's MX records route inbound mail to our relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCheck {
    /// The stored flag: inbound was turned on for this domain.
    pub enabled: bool,
    /// Some MX exchange is one of our inbound hosts.
    pub mx_ready: bool,
    /// The exchanges found, by preference, without the trailing dot.
    pub mx_hosts: Vec<String>,
    pub status: CheckStatus,
    pub reason: Option<String>,
}

impl ValidateDomain {
    #[must_use]
    pub fn new(store: Arc<dyn DomainStore>, dns: Arc<dyn Dns>, policy: Arc<RecordPolicy>) -> Self {
        Self { store, dns, policy }
    }

    /// Checks the organization's `domain` (raw user input) against live DNS.
    ///
    /// # Errors
    /// [`ValidateError`]: an unparsable domain, a domain this organization does not
    /// own, or a store failure. DNS failures are not errors: they are reported per
    /// record with [`CheckStatus::Error`].
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        domain: &str,
    ) -> Result<ValidationReport, ValidateError> {
        let name = DomainName::parse(domain)
            .map_err(|_| ValidateError::InvalidDomain(domain.to_owned()))?;
        let stored = self
            .store
            .domain_detail(organization, &name)
            .await?
            .ok_or(ValidateError::NotFound)?
            .domain;
        let expected = RecordSet::render(
            &self.policy,
            &stored.name,
            &stored.selector,
            &stored.public_key,
        );

        // The lookups are independent: the slowest one, not their sum, bounds the call.
        let ((spf, dkim), (dmarc, inbound)) = join(
            join(
                self.check_spf(&stored.name, &expected.spf),
                self.check_dkim(&stored, &expected),
            ),
            join(
                self.check_dmarc(&stored.name, &expected.dmarc),
                self.check_inbound(&stored),
            ),
        )
        .await;

        let records = vec![spf, dkim, dmarc];
        let verified = records.iter().all(|c| c.status == CheckStatus::Ok)
            && (!inbound.enabled || inbound.status == CheckStatus::Ok);
        tracing::info!(domain = %stored.name, verified, "validated published records");
        Ok(ValidationReport {
            domain: stored.name.as_ascii().to_owned(),
            verified,
            records,
            inbound,
        })
    }

    /// The TXT records at `name`, joined; an empty answer counts as no records.
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = self.dns.txt(name).await?;
        if records.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(records.iter().map(TxtRecord::joined).collect())
    }

    /// Looks up the TXT records at `name` and lets `judge` rule on them.
    async fn check_txt(
        &self,
        kind: RecordKind,
        name: &str,
        expected: &str,
        judge: impl FnOnce(&[String]) -> Verdict,
    ) -> RecordCheck {
        let (found, verdict) = match self.txt(name).await {
            Ok(found) => {
                let verdict = judge(&found);
                (found, verdict)
            }
            Err(error) => (Vec::new(), txt_failure(name, &error)),
        };
        RecordCheck::new(kind, name, expected, found, verdict)
    }

    async fn check_spf(&self, domain: &DomainName, expected: &str) -> RecordCheck {
        let name = domain.as_ascii();
        let judge = |found: &[String]| judge_spf(found, name, expected, &self.policy);
        self.check_txt(RecordKind::Spf, name, expected, judge).await
    }

    async fn check_dkim(&self, stored: &StoredDomain, expected: &RecordSet) -> RecordCheck {
        let name = expected.dkim_name.as_str();
        let (found, verdict) = match self.txt(name).await {
            Ok(found) => {
                let verdict = judge_dkim(&found, &stored.public_key, &stored.selector);
                (found, verdict)
            }
            Err(error @ (DnsError::NxDomain | DnsError::NoRecords)) => self
                .find_doubled_dkim(stored, name)
                .await
                .unwrap_or_else(|| (Vec::new(), txt_failure(name, &error))),
            Err(error) => (Vec::new(), txt_failure(name, &error)),
        };
        RecordCheck::new(RecordKind::Dkim, name, &expected.dkim_value, found, verdict)
    }

    /// Control panels that append the zone to every host turn
    /// `s1._domainkey.example.com` into `s1._domainkey.example.com.example.com`. The
    /// zone may be the sender domain or any parent of it (`mail.example.com` lives in
    /// `example.com`), so each candidate zone is tried, closest first.
    async fn find_doubled_dkim(
        &self,
        stored: &StoredDomain,
        name: &str,
    ) -> Option<(Vec<String>, Verdict)> {
        let domain = stored.name.as_ascii();
        let labels: Vec<&str> = domain.split('.').collect();
        for start in 0..labels.len().saturating_sub(1) {
            let zone = labels[start..].join(".");
            let doubled = format!("{name}.{zone}");
            let Ok(found) = self.txt(&doubled).await else {
                continue;
            };
            if !found.iter().any(|value| looks_like_dkim(value)) {
                continue;
            }
            let host = name.strip_suffix(&format!(".{zone}")).unwrap_or(name);
            let reason = format!(
                "The record was published at {doubled}: your DNS provider appends {zone} to the host, so enter only {host} as the host.",
            );
            return Some((found, Verdict::mismatch(reason)));
        }
        None
    }

    async fn check_dmarc(&self, domain: &DomainName, expected: &str) -> RecordCheck {
        let name = format!("_dmarc.{domain}");
        let judge = |found: &[String]| judge_dmarc(found, &name, expected);
        self.check_txt(RecordKind::Dmarc, &name, expected, judge)
            .await
    }

    async fn check_inbound(&self, stored: &StoredDomain) -> InboundCheck {
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

impl std::fmt::Debug for ValidateDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateDomain")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RecordCheck {
    fn new(
        kind: RecordKind,
        name: &str,
        expected: &str,
        found: Vec<String>,
        verdict: Verdict,
    ) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            expected: expected.to_owned(),
            found,
            status: verdict.status,
            reason: verdict.reason,
        }
    }
}

/// A check's status with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    status: CheckStatus,
    reason: Option<String>,
}

impl Verdict {
    fn ok() -> Self {
        Self {
            status: CheckStatus::Ok,
            reason: None,
        }
    }

    fn with(status: CheckStatus, reason: String) -> Self {
        Self {
            status,
            reason: Some(reason),
        }
    }

    fn missing(reason: String) -> Self {
        Self::with(CheckStatus::Missing, reason)
    }

    fn mismatch(reason: String) -> Self {
        Self::with(CheckStatus::Mismatch, reason)
    }

    fn error(reason: String) -> Self {
        Self::with(CheckStatus::Error, reason)
    }

    /// Ok without problems, otherwise a mismatch naming every one of them.
    fn from_problems(problems: Vec<String>) -> Self {
        if problems.is_empty() {
            Self::ok()
        } else {
            Self::mismatch(problems.join(" "))
        }
    }
}

/// Why a TXT lookup produced nothing to judge.
fn txt_failure(name: &str, error: &DnsError) -> Verdict {
    match error {
        DnsError::NxDomain | DnsError::NoRecords => {
            Verdict::missing(format!("No TXT record found at {name}."))
        }
        _ => Verdict::error(format!(
            "The DNS lookup for {name} failed ({}); try again later.",
            outcome(error)
        )),
    }
}

/// A short, fixed name for a DNS outcome: the adapter's own message stays in the logs.
fn outcome(error: &DnsError) -> &'static str {
    match error {
        DnsError::NxDomain => "NXDOMAIN",
        DnsError::NoRecords => "no records",
        DnsError::ServFail => "SERVFAIL",
        DnsError::Timeout => "timed out",
        DnsError::Unexpected(_) => "resolver error",
    }
}

fn unquoted(value: &str) -> String {
    value.replace('"', "")
}

// --- SPF (RFC 7208) ---------------------------------------------------------------

fn judge_spf(found: &[String], name: &str, expected: &str, policy: &RecordPolicy) -> Verdict {
    let spf: Vec<&str> = found
        .iter()
        .map(|v| v.trim())
        .filter(|v| is_spf(v))
        .collect();
    match spf.as_slice() {
        [] if found.iter().any(|v| is_spf(unquoted(v).trim())) => {
            Verdict::mismatch(QUOTES_REASON.to_owned())
        }
        [] => Verdict::missing(format!("No SPF record found at {name}; publish {expected}")),
        [record] => Verdict::from_problems(spf_problems(record, policy)),
        many => Verdict::mismatch(format!(
            "Found {} SPF records at {name}; publish exactly one (RFC 7208 §3.2) — merge them.",
            many.len()
        )),
    }
}

/// `v=spf1` (any case) followed by a space or the end of the value.
fn is_spf(value: &str) -> bool {
    value
        .get(..6)
        .is_some_and(|version| version.eq_ignore_ascii_case("v=spf1"))
        && value[6..].chars().next().is_none_or(|c| c == ' ')
}

fn spf_problems(record: &str, policy: &RecordPolicy) -> Vec<String> {
    let terms: Vec<&str> = record.split_ascii_whitespace().skip(1).collect();
    let mut problems = Vec::new();
    if record.contains('"') {
        problems.push(QUOTES_REASON.to_owned());
    }
    let lookups = count_dns_lookups(&terms);
    if lookups > MAX_SPF_LOOKUPS {
        problems.push(format!(
            "The record needs {lookups} DNS lookups, more than the {MAX_SPF_LOOKUPS} receivers allow (RFC 7208 §4.6.4), so SPF fails; remove or flatten some include: mechanisms."
        ));
    }
    if let Some(all) = terms.iter().find(|t| allows_any_sender(t)) {
        problems.push(format!(
            "The {all} mechanism allows any server to send as your domain; end the record with -all instead."
        ));
    }
    let missing: Vec<String> = policy
        .spf_ips()
        .iter()
        .filter(|ip| !terms.iter().any(|t| authorizes(t, **ip)))
        .map(|ip| spf_mechanism(*ip))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "The record does not authorize our sending servers: add {}.",
            missing.join(" ")
        ));
    }
    problems
}

/// Terms that make a receiver query DNS; a qualifier may precede a mechanism.
fn count_dns_lookups(terms: &[&str]) -> usize {
    const EXACT: [&str; 3] = ["a", "mx", "ptr"];
    const PREFIXES: [&str; 8] = [
        "a:",
        "a/",
        "mx:",
        "mx/",
        "ptr:",
        "include:",
        "exists:",
        "redirect=",
    ];
    terms
        .iter()
        .map(|term| term.to_ascii_lowercase())
        .filter(|term| {
            let mechanism = without_qualifier(term);
            EXACT.contains(&mechanism) || PREFIXES.iter().any(|p| mechanism.starts_with(p))
        })
        .count()
}

fn without_qualifier(term: &str) -> &str {
    term.strip_prefix(['+', '-', '~', '?']).unwrap_or(term)
}

/// `all` or `+all`: every sender passes.
fn allows_any_sender(term: &str) -> bool {
    term.eq_ignore_ascii_case("all") || term.eq_ignore_ascii_case("+all")
}

/// Whether `term` is a passing `ip4:`/`ip6:` mechanism covering `ip`.
fn authorizes(term: &str, ip: IpAddr) -> bool {
    let term = term.strip_prefix('+').unwrap_or(term);
    let Some((mechanism, network)) = term.split_once(':') else {
        return false;
    };
    let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
    mechanism.eq_ignore_ascii_case(family) && network_contains(network, ip)
}

fn spf_mechanism(ip: IpAddr) -> String {
    let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
    format!("{family}:{ip}")
}

/// Whether `network` (`addr` or `addr/prefix`) contains `ip`; false when malformed
/// or of the other address family.
fn network_contains(network: &str, ip: IpAddr) -> bool {
    let (address, prefix) = match network.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (network, None),
    };
    let (net, ip, width) = match (address.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(net)), IpAddr::V4(ip)) => {
            (u128::from(u32::from(net)), u128::from(u32::from(ip)), 32)
        }
        (Ok(IpAddr::V6(net)), IpAddr::V6(ip)) => (u128::from(net), u128::from(ip), 128),
        _ => return false,
    };
    let Some(length) = prefix_length(prefix, width) else {
        return false;
    };
    // Shifting out the host bits leaves the network part; a /0 shifts out everything.
    let shift = width - length;
    net.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
}

fn prefix_length(prefix: Option<&str>, width: u32) -> Option<u32> {
    let Some(prefix) = prefix else {
        return Some(width);
    };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    prefix.parse().ok().filter(|length| *length <= width)
}

// --- DKIM (RFC 6376 §3.6.1) ------------------------------------------------------

fn judge_dkim(found: &[String], key: &str, selector: &Selector) -> Verdict {
    let mut problems = Vec::new();
    for value in found {
        match dkim_problem(value, key, selector) {
            None => return Verdict::ok(),
            Some(problem) if !problems.contains(&problem) => problems.push(problem),
            Some(_) => {}
        }
    }
    Verdict::from_problems(problems)
}

/// What is wrong with one key record, or `None` when it publishes `key`.
fn dkim_problem(value: &str, key: &str, selector: &Selector) -> Option<String> {
    if value.contains('"') {
        return Some(QUOTES_REASON.to_owned());
    }
    let tags = tag_list(value);
    let tag = |name: &str| tags.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    if let Some(version) = tag("v").filter(|v| *v != "DKIM1") {
        return Some(format!(
            "The record says v={version}; a DKIM key record must say v=DKIM1."
        ));
    }
    if let Some(kind) = tag("k").filter(|k| !k.eq_ignore_ascii_case("rsa")) {
        return Some(format!(
            "The record says k={kind}, but the key is RSA: use k=rsa."
        ));
    }
    let Some(published) = tag("p") else {
        return Some("The record has no p= tag, so it carries no public key.".to_owned());
    };
    let published: String = published.chars().filter(|c| !c.is_whitespace()).collect();
    if published == key {
        None
    } else if published.is_empty() {
        Some("The record has an empty p= tag, which revokes the key.".to_owned())
    } else if key.starts_with(&published) {
        Some(format!(
            "The key is truncated ({} of {} characters): your provider cut the value at 255 characters; enter it as several strings of at most 255 characters each, or use your provider's option for long TXT values.",
            published.len(),
            key.len()
        ))
    } else {
        Some(format!(
            "The published key does not match the key for selector {selector}."
        ))
    }
}

/// A tag list (RFC 6376 §3.2, also DMARC's): `tag=value` pairs separated by `;`,
/// white space around each trimmed.
fn tag_list(value: &str) -> Vec<(&str, &str)> {
    value
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(tag, value)| (tag.trim(), value.trim()))
        .collect()
}

fn looks_like_dkim(value: &str) -> bool {
    tag_list(&unquoted(value))
        .iter()
        .any(|(tag, _)| *tag == "p" || *tag == "v")
}

// --- DMARC (RFC 7489 §6.4) -------------------------------------------------------

fn judge_dmarc(found: &[String], name: &str, expected: &str) -> Verdict {
    let dmarc: Vec<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|v| is_dmarc(v))
        .collect();
    match dmarc.as_slice() {
        [] if found.iter().any(|v| is_dmarc(&unquoted(v))) => {
            Verdict::mismatch(QUOTES_REASON.to_owned())
        }
        [] => Verdict::missing(format!(
            "No DMARC record found at {name}; publish {expected}"
        )),
        [record] => Verdict::from_problems(dmarc_problems(record)),
        many => Verdict::mismatch(format!(
            "Found {} DMARC records at {name}; publish exactly one — receivers ignore DMARC when there are several (RFC 7489 §6.6.3).",
            many.len()
        )),
    }
}

/// The first tag is `v=DMARC1`: the tag name in any case, white space around `=` allowed.
fn is_dmarc(value: &str) -> bool {
    value
        .split(';')
        .next()
        .and_then(|first| first.split_once('='))
        .is_some_and(|(tag, version)| {
            tag.trim().eq_ignore_ascii_case("v") && version.trim() == "DMARC1"
        })
}

fn dmarc_problems(record: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if record.contains('"') {
        problems.push(QUOTES_REASON.to_owned());
    }
    let policy = tag_list(record)
        .into_iter()
        .find(|(tag, _)| tag.eq_ignore_ascii_case("p"))
        .map(|(_, value)| value);
    match policy {
        None => problems.push(
            "The record has no p= tag; add p=none (or quarantine or reject) after v=DMARC1."
                .to_owned(),
        ),
        Some(p)
            if !["none", "quarantine", "reject"]
                .iter()
                .any(|v| p.eq_ignore_ascii_case(v)) =>
        {
            problems.push(format!(
                "p={p} is not a DMARC policy; use none, quarantine or reject."
            ));
        }
        Some(_) => {}
    }
    problems
}

/// Polls both futures until both finish. `std::future::join!` is unstable and this
/// crate takes no futures dependency for one combinator.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_out, mut b_out) = (None, None);
    poll_fn(move |cx| {
        if a_out.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            a_out = Some(out);
        }
        if b_out.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            b_out = Some(out);
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (a_out, b_out) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
