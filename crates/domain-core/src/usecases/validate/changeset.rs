//! The change-set: what is published at the SPF and DMARC names now, and the one
//! value to publish there. A domain that already has an SPF record (most do) is told
//! to replace it with one merged record, never to add a second (two SPF records make
//! SPF fail for all its mail, RFC 7208 §3.2); an existing DMARC record is kept.
//!
//! The merge is pure; counting the merged record's DNS lookups follows `include:` and
//! `redirect=` over live DNS, bounded.

use std::collections::HashSet;

use super::spf::{authorizes, causes_lookup, is_spf, without_qualifier};
use super::{CheckStatus, RecordKind, ValidateDomain, ValidationReport, join_all};
use crate::RecordPolicy;
use crate::ports::dns::DnsError;
use crate::records::spf_ip_mechanism;

/// RFC 7208 §4.6.4: evaluating an SPF record may cause at most 10 DNS lookups.
pub const MAX_SPF_LOOKUPS: usize = 10;
/// How deep `include:`/`redirect=` chains are followed.
const MAX_DEPTH: usize = 10;
/// How many records are fetched at most while counting (the count is then "more
/// than this", which is far past the limit anyway).
const MAX_FETCHES: usize = 30;

/// What to do at a record's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    /// Our record is there as it should be.
    None,
    /// Nothing of its kind is there: publish the suggested value.
    Add,
    /// Another record of its kind is there: replace it (them) with the suggested value.
    Replace,
    /// A record of its kind is there and stays (DMARC).
    Keep,
}

impl ChangeAction {
    /// The name on the wire: `none`, `add`, `replace`, `keep`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Keep => "keep",
        }
    }
}

/// The change-set of one record name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The values of this kind found at the name that are not exactly ours.
    pub existing: Vec<String>,
    /// What to do.
    pub action: ChangeAction,
    /// The one value to publish at the name.
    pub suggested_value: String,
    /// SPF: the RFC 7208 DNS-lookup count of the suggested record, through
    /// `include:` and `redirect=`.
    pub lookups: Option<usize>,
    /// A sentence when the suggested value needs attention (too many lookups, a
    /// record that lets any server send, several records to delete).
    pub warning: Option<String>,
}

/// The SPF change-set from the TXT values at the domain and our record.
#[must_use]
pub fn spf_change(found: &[String], ours: &str, policy: &RecordPolicy) -> ChangeSet {
    let spf: Vec<&str> = found
        .iter()
        .map(|v| v.trim())
        .filter(|v| is_spf(v))
        .collect();
    let existing: Vec<String> = spf
        .iter()
        .filter(|v| **v != ours)
        .map(|v| (*v).to_owned())
        .collect();
    match spf.as_slice() {
        [] => ChangeSet {
            existing,
            action: ChangeAction::Add,
            suggested_value: ours.to_owned(),
            lookups: None,
            warning: None,
        },
        [only] if *only == ours || authorizes_all(only, policy) && !lets_anyone(only) => {
            ChangeSet {
                existing,
                action: ChangeAction::None,
                suggested_value: (*only).to_owned(),
                lookups: None,
                warning: None,
            }
        }
        records => {
            let merged = merge_spf(records, policy);
            let mut warnings = Vec::new();
            if let [first, rest @ ..] = records
                && !rest.is_empty()
            {
                warnings.push(format!(
                    "Found {} SPF records; delete {} and replace {first} with the suggested value: exactly one SPF record may be published.",
                    records.len(),
                    rest.join(" and ")
                ));
            }
            if lets_anyone(&merged) {
                warnings.push(
                    "The record ends with +all, which lets any server send as your domain; consider ~all or -all.".to_owned(),
                );
            }
            ChangeSet {
                existing,
                action: ChangeAction::Replace,
                suggested_value: merged,
                lookups: None,
                warning: (!warnings.is_empty()).then(|| warnings.join(" ")),
            }
        }
    }
}

/// The DMARC change-set from the TXT values at `_dmarc.<domain>` and our record.
#[must_use]
pub fn dmarc_change(found: &[String], ours: &str) -> ChangeSet {
    let dmarc: Vec<&str> = found
        .iter()
        .map(|v| v.trim())
        .filter(|v| super::dmarc::is_dmarc(v))
        .collect();
    let existing = dmarc
        .iter()
        .filter(|v| **v != ours)
        .map(|v| (*v).to_owned())
        .collect();
    match dmarc.first() {
        None => ChangeSet {
            existing,
            action: ChangeAction::Add,
            suggested_value: ours.to_owned(),
            lookups: None,
            warning: None,
        },
        Some(first) => ChangeSet {
            existing,
            action: ChangeAction::Keep,
            suggested_value: (*first).to_owned(),
            lookups: None,
            warning: (dmarc.len() > 1).then(|| {
                format!(
                    "Found {} DMARC records; keep one: receivers ignore DMARC when there are several.",
                    dmarc.len()
                )
            }),
        },
    }
}

/// One record from `records`: the first one's terms in order, then the others' terms
/// it lacks; our `ip4:`/`ip6:` mechanisms (those not already there) inserted right
/// before their `all` (at the end of the mechanisms when there is none), with the
/// first `all` qualifier found kept; modifiers (`redirect=`, `exp=`) last.
///
/// ```
/// use domain_core::RecordPolicy;
/// use domain_core::usecases::validate::merge_spf;
///
/// let policy = RecordPolicy::new(vec!["192.0.2.10".parse()?], &["mx1.example.net".into()])?;
/// // The domain already sends through another provider: one merged record.
/// let merged = merge_spf(&["v=spf1 include:_spf.example.org ~all"], &policy);
/// assert!(merged.starts_with("v=spf1 "), "{merged}");
/// assert!(merged.contains("include:_spf.example.org"), "{merged}");
/// assert!(merged.contains("ip4:192.0.2.10"), "{merged}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn merge_spf(records: &[&str], policy: &RecordPolicy) -> String {
    let mut mechanisms: Vec<String> = Vec::new();
    let mut modifiers: Vec<String> = Vec::new();
    let mut all: Option<String> = None;
    for record in records {
        for term in record.split_ascii_whitespace().skip(1) {
            let bare = without_qualifier(term).to_ascii_lowercase();
            if bare == "all" {
                all.get_or_insert_with(|| term.to_owned());
            } else if term.contains('=') && !term.contains(':') || is_modifier(term) {
                if !modifiers.iter().any(|m| m.eq_ignore_ascii_case(term)) {
                    modifiers.push(term.to_owned());
                }
            } else if !mechanisms.iter().any(|m| m.eq_ignore_ascii_case(term)) {
                mechanisms.push(term.to_owned());
            }
        }
    }
    for ip in policy.spf_ips() {
        if !mechanisms.iter().any(|m| authorizes(m, *ip)) {
            mechanisms.push(spf_ip_mechanism(*ip));
        }
    }
    // `redirect=` is ignored when the record has `all` (RFC 7208 §6.1); keep what
    // they wrote, it is theirs to tidy.
    let mut value = String::from("v=spf1");
    for term in mechanisms.iter().chain(all.iter()).chain(modifiers.iter()) {
        value.push(' ');
        value.push_str(term);
    }
    value
}

/// `redirect=` or `exp=` (any case): a modifier, whatever its value holds.
fn is_modifier(term: &str) -> bool {
    let lower = term.to_ascii_lowercase();
    lower.starts_with("redirect=") || lower.starts_with("exp=")
}

/// Whether every one of our IPs passes by an `ip4:`/`ip6:` mechanism of `record`.
fn authorizes_all(record: &str, policy: &RecordPolicy) -> bool {
    let terms: Vec<&str> = record.split_ascii_whitespace().skip(1).collect();
    policy
        .spf_ips()
        .iter()
        .all(|ip| terms.iter().any(|t| authorizes(t, *ip)))
}

/// `all` or `+all` in the record.
fn lets_anyone(record: &str) -> bool {
    record
        .split_ascii_whitespace()
        .any(|t| t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case("+all"))
}

impl ValidateDomain {
    /// `report` with the change-set on its SPF and DMARC entries (not on one whose
    /// lookup failed). For the answers a customer reads (validate, verify): it costs
    /// a live lookup of every record SPF includes, which the background verifier,
    /// judging only the status, does not pay.
    pub(crate) async fn with_change_sets(&self, mut report: ValidationReport) -> ValidationReport {
        for check in &mut report.records {
            if check.status == CheckStatus::Error {
                continue;
            }
            check.change = match check.kind {
                RecordKind::Spf => Some(self.spf_change_set(&check.found, &check.expected).await),
                RecordKind::Dmarc => Some(dmarc_change(&check.found, &check.expected)),
                RecordKind::Dkim | RecordKind::Claim => None,
            };
        }
        report
    }

    async fn spf_change_set(&self, found: &[String], ours: &str) -> ChangeSet {
        let mut change = spf_change(found, ours, &self.policy);
        let (lookups, note) = self.spf_lookups(&change.suggested_value).await;
        let over = (lookups > MAX_SPF_LOOKUPS).then(|| {
            format!(
                "The record needs {lookups} DNS lookups, more than the {MAX_SPF_LOOKUPS} receivers allow (RFC 7208 §4.6.4): remove or flatten some include: mechanisms."
            )
        });
        let warnings: Vec<String> = change
            .warning
            .take()
            .into_iter()
            .chain(over)
            .chain(note)
            .collect();
        change.warning = (!warnings.is_empty()).then(|| warnings.join(" "));
        change.lookups = Some(lookups);
        change
    }

    /// The RFC 7208 DNS-lookup count of `record` (an SPF value): one for each `a`,
    /// `mx`, `ptr`, `exists:`, `include:` and `redirect=` (the latter only without
    /// `all`), plus, through `include:` and `redirect=`, the count of the record
    /// they name, looked up live. The records are fetched a level at a time, the
    /// names of one level side by side ([`INCLUDES_AT_ONCE`] at most), so the
    /// slowest lookup of each level bounds it, not their sum. Bounded: chains deeper
    /// than ten, loops and more than thirty fetched records stop the count (and say
    /// so); a record that cannot be read counts as its one lookup (and says why).
    pub(super) async fn spf_lookups(&self, record: &str) -> (usize, Option<String>) {
        let mut counter = LookupCounter {
            visited: HashSet::new(),
            fetches: 0,
            note: None,
        };
        let (mut count, mut level) = terms_of(record);
        let mut depth = 1;
        while !level.is_empty() {
            if depth > MAX_DEPTH {
                counter.note("the include: chain is deeper than 10; counting stopped there");
                break;
            }
            let names = counter.take_unseen(level);
            let mut fetched = Vec::with_capacity(names.len());
            for batch in names.chunks(INCLUDES_AT_ONCE) {
                fetched.extend(join_all(batch.iter().map(|name| self.txt(name))).await);
            }
            level = Vec::new();
            for (name, found) in names.iter().zip(fetched) {
                let found = match found {
                    Ok(found) => found,
                    Err(error) => {
                        counter.note(&format!(
                            "the SPF record of {name} could not be read ({}); it counts as one lookup",
                            unread(&error)
                        ));
                        continue;
                    }
                };
                match found.iter().map(|v| v.trim()).find(|v| is_spf(v)) {
                    Some(record) => {
                        let (lookups, targets) = terms_of(record);
                        count += lookups;
                        level.extend(targets);
                    }
                    None => counter.note(&format!(
                        "{name} has no SPF record (receivers treat that as a permanent error)"
                    )),
                }
            }
            depth += 1;
        }
        (count, counter.note)
    }
}

/// How many included records are looked up side by side.
const INCLUDES_AT_ONCE: usize = 8;

/// The lookups `record`'s own terms cost, and the names its `include:` and
/// `redirect=` (the latter only without `all`) send the count on to.
fn terms_of(record: &str) -> (usize, Vec<String>) {
    let terms: Vec<&str> = record.split_ascii_whitespace().skip(1).collect();
    let has_all = terms
        .iter()
        .any(|t| without_qualifier(t).eq_ignore_ascii_case("all"));
    let mut count = 0;
    let mut targets = Vec::new();
    for term in terms {
        let lower = term.to_ascii_lowercase();
        let bare = without_qualifier(&lower);
        if let Some(name) = bare.strip_prefix("include:") {
            targets.push(name.to_owned());
        } else if let Some(name) = lower.strip_prefix("redirect=") {
            if has_all {
                continue;
            }
            targets.push(name.to_owned());
        }
        count += usize::from(causes_lookup(bare));
    }
    (count, targets)
}

/// Why an included record could not be read, as the note says it.
fn unread(error: &DnsError) -> &'static str {
    match error {
        DnsError::Timeout => "lookup timed out",
        DnsError::NxDomain => "the name does not exist",
        DnsError::NoRecords => "no TXT records",
        DnsError::ServFail => "SERVFAIL",
        DnsError::Unexpected(_) => "resolver error",
    }
}

struct LookupCounter {
    visited: HashSet<String>,
    fetches: usize,
    note: Option<String>,
}

impl LookupCounter {
    fn note(&mut self, text: &str) {
        if self.note.is_none() {
            self.note = Some(format!("Note: {text}."));
        }
    }

    /// The names of one level to fetch: each name once in the whole count, and at
    /// most [`MAX_FETCHES`] fetched in all.
    fn take_unseen(&mut self, level: Vec<String>) -> Vec<String> {
        let mut names = Vec::new();
        for name in level {
            if !self.visited.insert(name.clone()) {
                self.note(&format!(
                    "{name} is included more than once (a loop, or a repeat); counted once"
                ));
            } else if self.fetches >= MAX_FETCHES {
                self.note("more than 30 records are included; counting stopped there");
            } else {
                self.fetches += 1;
                names.push(name);
            }
        }
        names
    }
}

#[cfg(test)]
#[path = "changeset_tests.rs"]
mod tests;
