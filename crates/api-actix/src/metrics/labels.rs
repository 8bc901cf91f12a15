//! Label values from closed sets. A label value is a new time series kept for the
//! life of the process, so nothing a client sends may become one verbatim: an
//! arbitrary method token or path would let anyone grow memory and `/metrics`
//! without limit.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// The `method` label: the methods an HTTP API meets, everything else `_OTHER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    /// Any other token, however long: `TRACE`, `PROPFIND`, `get`, `MXXXX…`.
    Other,
}

impl MethodLabel {
    /// The label for a request's method token. Methods are case-sensitive
    /// (RFC 9110, 9.1), so `get` is not `GET`.
    #[must_use]
    pub fn of(method: &str) -> Self {
        match method {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "_OTHER",
        }
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `route` label: the matched pattern (`/api/v1/emails/domains/{domain}`, one of
/// the patterns `routes::configure` mounts, never the path), or `unmatched`.
#[must_use]
pub fn route_label(matched_pattern: Option<String>) -> String {
    matched_pattern.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub route: String,
    pub method: MethodLabel,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DnsLabels {
    pub r#type: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct DnsTypeLabels {
    pub r#type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct StateLabels {
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub kind: &'static str,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn standard_methods_keep_their_name() {
        for name in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert_eq!(MethodLabel::of(name).as_str(), name);
        }
    }

    #[test]
    fn any_other_method_token_is_other() {
        let long = format!("M{}", "X".repeat(60_000));
        for token in [
            "TRACE",
            "CONNECT",
            "PROPFIND",
            "get",
            "Get",
            "",
            long.as_str(),
        ] {
            assert_eq!(MethodLabel::of(token), MethodLabel::Other, "{token:.20}");
        }
        assert_eq!(MethodLabel::Other.as_str(), "_OTHER");
    }

    #[test]
    fn a_request_that_matched_no_route_is_unmatched() {
        assert_eq!(route_label(None), "unmatched");
        assert_eq!(
            route_label(Some("/api/v1/emails/domains/{domain}".into())),
            "/api/v1/emails/domains/{domain}"
        );
    }

    proptest! {
        #[test]
        fn the_method_label_is_one_of_eight_short_values(token in "[!-~]{0,300}") {
            let label = MethodLabel::of(&token).as_str();
            prop_assert!(
                ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "_OTHER"]
                    .contains(&label)
            );
            prop_assert!(label == token || label == "_OTHER");
        }
    }
}
