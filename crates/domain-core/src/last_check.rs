//! What the last check of a domain found, record by record: kept with the domain, so
//! that whoever reads it later (the Setup page opened after a background check) sees
//! the rows of that check next to its verdict, not only the verdict.

use serde_json::{Value, json};

use crate::usecases::validate::ValidationReport;

/// The findings of one check, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    /// SPF, the active key's DKIM record, DMARC, in that order.
    pub records: Vec<CheckedRecord>,
    /// The MX check.
    pub inbound: CheckedInbound,
}

/// One record's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRecord {
    /// `SPF`, `DKIM` or `DMARC`.
    pub record_type: String,
    /// The fully qualified name checked.
    pub name: String,
    /// `ok`, `missing`, `mismatch` or `error`.
    pub status: String,
    /// Why it is not ok; `None` when it is.
    pub reason: Option<String>,
}

/// The MX check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInbound {
    /// Some MX exchange is one of the inbound hosts.
    pub mx_ready: bool,
    /// `ok`, `missing`, `mismatch` or `error`.
    pub status: String,
    /// Why it is not ok; `None` when it is.
    pub reason: Option<String>,
}

impl LastCheck {
    /// The findings of `report` (judged on the key active after the check).
    #[must_use]
    pub fn of(report: &ValidationReport) -> Self {
        Self {
            records: report
                .records
                .iter()
                .map(|r| CheckedRecord {
                    record_type: r.kind.as_str().to_owned(),
                    name: r.name.clone(),
                    status: r.status.as_str().to_owned(),
                    reason: r.reason.clone(),
                })
                .collect(),
            inbound: CheckedInbound {
                mx_ready: report.inbound.mx_ready,
                status: report.inbound.status.as_str().to_owned(),
                reason: report.inbound.reason.clone(),
            },
        }
    }

    /// As stored: a JSON text.
    #[must_use]
    pub fn encode(&self) -> String {
        json!({
            "records": self.records.iter().map(|r| json!({
                "type": r.record_type,
                "name": r.name,
                "status": r.status,
                "reason": r.reason,
            })).collect::<Vec<_>>(),
            "inbound": {
                "mxReady": self.inbound.mx_ready,
                "status": self.inbound.status,
                "reason": self.inbound.reason,
            },
        })
        .to_string()
    }

    /// What [`LastCheck::encode`] wrote; `None` for anything else.
    #[must_use]
    pub fn decode(text: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(text).ok()?;
        let text_of = |v: &Value| v.as_str().map(str::to_owned);
        let records = value["records"]
            .as_array()?
            .iter()
            .map(|r| {
                Some(CheckedRecord {
                    record_type: text_of(&r["type"])?,
                    name: text_of(&r["name"])?,
                    status: text_of(&r["status"])?,
                    reason: text_of(&r["reason"]),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let inbound = &value["inbound"];
        Some(Self {
            records,
            inbound: CheckedInbound {
                mx_ready: inbound["mxReady"].as_bool()?,
                status: text_of(&inbound["status"])?,
                reason: text_of(&inbound["reason"]),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_it_encodes() {
        let check = LastCheck {
            records: vec![
                CheckedRecord {
                    record_type: "SPF".into(),
                    name: "example.com".into(),
                    status: "ok".into(),
                    reason: None,
                },
                CheckedRecord {
                    record_type: "DMARC".into(),
                    name: "_dmarc.example.com".into(),
                    status: "missing".into(),
                    reason: Some("No \"DMARC\" record.".into()),
                },
            ],
            inbound: CheckedInbound {
                mx_ready: false,
                status: "missing".into(),
                reason: Some("No MX.".into()),
            },
        };
        assert_eq!(LastCheck::decode(&check.encode()), Some(check));
        assert_eq!(LastCheck::decode("not json"), None);
        assert_eq!(LastCheck::decode(r#"{"records":[{}]}"#), None);
    }
}
