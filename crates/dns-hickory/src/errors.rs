//! How hickory's lookup errors map onto the port's [`DnsError`].
//!
//! In hickory 0.26 a lookup fails with `hickory_net::NetError` (re-exported as
//! `hickory_resolver::net::NetError`); the old `ResolveError`/`ResolveErrorKind` are
//! gone. The outcomes this port distinguishes arrive as:
//!
//! - NXDOMAIN and NODATA: `NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. }))`
//!   with `response_code` `NXDomain` or `NoError` respectively;
//! - SERVFAIL (and REFUSED, FORMERR, …): `NetError::Dns(DnsError::ResponseCode(code))`;
//! - a request timeout: `NetError::Timeout` (an `io::Error` of kind `TimedOut` is
//!   converted to it, but is matched here too in case one slips through).

use std::io;

use domain_core::ports::dns::DnsError;
use hickory_resolver::net::{DnsError as WireError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;

/// `Unexpected` carries a short description, never a whole error chain.
const MAX_DETAIL_CHARS: usize = 160;

/// Classifies a failed lookup.
pub(crate) fn classify(error: &NetError) -> DnsError {
    match error {
        NetError::Dns(WireError::NoRecordsFound(NoRecords { response_code, .. })) => {
            match *response_code {
                ResponseCode::NXDomain => DnsError::NxDomain,
                ResponseCode::NoError => DnsError::NoRecords,
                ResponseCode::ServFail => DnsError::ServFail,
                other => DnsError::Unexpected(format!(
                    "no records, response code {} ({other})",
                    u16::from(other)
                )),
            }
        }
        NetError::Dns(WireError::ResponseCode(ResponseCode::ServFail)) => DnsError::ServFail,
        NetError::Dns(WireError::ResponseCode(code)) => {
            DnsError::Unexpected(format!("response code {} ({code})", u16::from(*code)))
        }
        NetError::Timeout => DnsError::Timeout,
        NetError::Io(e) if e.kind() == io::ErrorKind::TimedOut => DnsError::Timeout,
        other => DnsError::Unexpected(short(&other.to_string())),
    }
}

/// At most [`MAX_DETAIL_CHARS`] characters of `text`, marked when cut.
pub(crate) fn short(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hickory_resolver::proto::op::Query;

    use super::*;

    fn no_records(code: ResponseCode) -> NetError {
        NoRecords::new(Query::new(), code).into()
    }

    #[test]
    fn negative_answers_are_told_apart() {
        assert_eq!(
            classify(&no_records(ResponseCode::NXDomain)),
            DnsError::NxDomain
        );
        assert_eq!(
            classify(&no_records(ResponseCode::NoError)),
            DnsError::NoRecords
        );
        assert_eq!(
            classify(&no_records(ResponseCode::ServFail)),
            DnsError::ServFail
        );
    }

    #[test]
    fn response_codes() {
        let servfail = NetError::Dns(WireError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(classify(&servfail), DnsError::ServFail);
        let refused = NetError::Dns(WireError::ResponseCode(ResponseCode::Refused));
        assert_eq!(
            classify(&refused),
            DnsError::Unexpected("response code 5 (Query Refused)".into())
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(classify(&NetError::Timeout), DnsError::Timeout);
        let io_timeout = NetError::Io(Arc::new(io::Error::from(io::ErrorKind::TimedOut)));
        assert_eq!(classify(&io_timeout), DnsError::Timeout);
    }

    #[test]
    fn anything_else_is_unexpected_and_short() {
        let refused = NetError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(classify(&refused), DnsError::Unexpected(_)));
        let long = NetError::Msg("x".repeat(1000));
        let DnsError::Unexpected(text) = classify(&long) else {
            panic!("expected Unexpected");
        };
        assert_eq!(text.chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
