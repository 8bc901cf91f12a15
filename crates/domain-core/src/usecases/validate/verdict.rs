//! What every record check shares: a status with the sentence that explains it, the
//! sentences for a failed lookup, and the one for quoted values.

use crate::ports::dns::DnsError;

use super::CheckStatus;

/// The same sentence for every record type: control panels add the quotes themselves.
pub(super) const QUOTES_REASON: &str = "The value contains quotation marks; remove the surrounding quotes — your DNS provider adds them itself.";

/// A check's status with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub(super) status: CheckStatus,
    pub(super) reason: Option<String>,
}

impl Verdict {
    pub(super) fn ok() -> Self {
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

    pub(super) fn missing(reason: String) -> Self {
        Self::with(CheckStatus::Missing, reason)
    }

    pub(super) fn mismatch(reason: String) -> Self {
        Self::with(CheckStatus::Mismatch, reason)
    }

    pub(super) fn error(reason: String) -> Self {
        Self::with(CheckStatus::Error, reason)
    }

    /// Ok without problems, otherwise a mismatch naming every one of them.
    pub(super) fn from_problems(problems: Vec<String>) -> Self {
        if problems.is_empty() {
            Self::ok()
        } else {
            Self::mismatch(problems.join(" "))
        }
    }
}

/// Why a TXT lookup produced nothing to judge.
pub(super) fn txt_failure(name: &str, error: &DnsError) -> Verdict {
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
pub(super) fn outcome(error: &DnsError) -> &'static str {
    match error {
        DnsError::NxDomain => "NXDOMAIN",
        DnsError::NoRecords => "no records",
        DnsError::ServFail => "SERVFAIL",
        DnsError::Timeout => "timed out",
        DnsError::Unexpected(_) => "resolver error",
    }
}

/// The value with every quotation mark removed, to recognise a quoted record.
pub(super) fn unquoted(value: &str) -> String {
    value.replace('"', "")
}
