//! SPF (RFC 7208): the record at the domain itself. Parses `v=spf1` records into their
//! terms, counts the terms that cost a DNS lookup, and judges whether the one record
//! authorizes our sending servers without letting everyone else in.

use std::net::IpAddr;

use super::cidr::network_contains;
use super::verdict::{QUOTES_REASON, Verdict, unquoted};
use super::{RecordCheck, RecordKind, ValidateDomain};
use crate::records::spf_ip_mechanism;
use crate::{DomainName, RecordPolicy};

/// RFC 7208 §4.6.4: evaluating one SPF record may cause at most 10 DNS lookups.
const MAX_SPF_LOOKUPS: usize = 10;

impl ValidateDomain {
    /// Looks up the TXT records at the domain and judges its SPF record.
    pub(super) async fn check_spf(&self, domain: &DomainName, expected: &str) -> RecordCheck {
        let name = domain.as_ascii();
        let judge = |found: &[String]| judge_spf(found, name, expected, &self.policy);
        self.check_txt(RecordKind::Spf, name, expected, judge).await
    }
}

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
pub(super) fn is_spf(value: &str) -> bool {
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
        .map(|ip| spf_ip_mechanism(*ip))
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
    terms
        .iter()
        .filter(|term| causes_lookup(without_qualifier(&term.to_ascii_lowercase())))
        .count()
}

/// Whether a term (lower case, qualifier removed) makes the receiver look up DNS:
/// `a`, `mx`, `ptr` with or without a domain or prefix, `include:`, `exists:`,
/// `redirect=` (RFC 7208 §4.6.4).
pub(super) fn causes_lookup(mechanism: &str) -> bool {
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
    EXACT.contains(&mechanism) || PREFIXES.iter().any(|p| mechanism.starts_with(p))
}

pub(super) fn without_qualifier(term: &str) -> &str {
    term.strip_prefix(['+', '-', '~', '?']).unwrap_or(term)
}

/// `all` or `+all`: every sender passes.
fn allows_any_sender(term: &str) -> bool {
    term.eq_ignore_ascii_case("all") || term.eq_ignore_ascii_case("+all")
}

/// Whether `term` is a passing `ip4:`/`ip6:` mechanism covering `ip`.
pub(super) fn authorizes(term: &str, ip: IpAddr) -> bool {
    let term = term.strip_prefix('+').unwrap_or(term);
    let Some((mechanism, network)) = term.split_once(':') else {
        return false;
    };
    let family = if ip.is_ipv4() { "ip4" } else { "ip6" };
    mechanism.eq_ignore_ascii_case(family) && network_contains(network, ip)
}

#[cfg(test)]
#[path = "spf_tests.rs"]
mod tests;
