//! DKIM (RFC 6376 §3.6.1): the key record at `<selector>._domainkey.<domain>`. Parses
//! tag lists, judges whether a record publishes our key, and finds a record that a
//! control panel published under the domain appended twice.

use super::verdict::{QUOTES_REASON, Verdict, txt_failure, unquoted};
use super::{RecordCheck, RecordKind, ValidateDomain};
use crate::ports::dns::DnsError;
use crate::ports::store::StoredDomain;
use crate::{RecordSet, Selector};

impl ValidateDomain {
    /// Looks up the key record, and when there is none, the doubled name.
    pub(super) async fn check_dkim(
        &self,
        stored: &StoredDomain,
        expected: &RecordSet,
    ) -> RecordCheck {
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
}

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
pub(super) fn tag_list(value: &str) -> Vec<(&str, &str)> {
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

#[cfg(test)]
#[path = "dkim_tests.rs"]
mod tests;
