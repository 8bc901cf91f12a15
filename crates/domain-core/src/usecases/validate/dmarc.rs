//! DMARC (RFC 7489 §6.4): the policy record at `_dmarc.<domain>`. Recognises it by
//! its first tag and judges that exactly one is published with a valid policy.

use super::dkim::tag_list;
use super::verdict::{QUOTES_REASON, Verdict, unquoted};
use super::{RecordCheck, RecordKind, ValidateDomain};
use crate::DomainName;

impl ValidateDomain {
    /// Looks up the TXT records at `_dmarc.<domain>` and judges them.
    pub(super) async fn check_dmarc(&self, domain: &DomainName, expected: &str) -> RecordCheck {
        let name = format!("_dmarc.{domain}");
        let judge = |found: &[String]| judge_dmarc(found, &name, expected);
        self.check_txt(RecordKind::Dmarc, &name, expected, judge)
            .await
    }
}

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
pub(super) fn is_dmarc(value: &str) -> bool {
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

#[cfg(test)]
#[path = "dmarc_tests.rs"]
mod tests;
