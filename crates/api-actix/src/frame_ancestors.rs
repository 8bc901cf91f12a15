//! Who may frame the Domain Setup page (`DOMAIN_API_SETUP_FRAME_ANCESTORS`): the
//! `frame-ancestors` directive of its Content-Security-Policy and the matching
//! `X-Frame-Options`. Parsed once at start, so a bad origin stops the server there
//! instead of producing a policy the browser silently ignores.

use std::fmt;

/// The origins allowed to embed the Setup page in a frame; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors {
    sources: Vec<String>,
}

/// Why a frame-ancestors list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin: expected 'self' or scheme://host[:port] (http or https, no path), e.g. https://dashboard.example.com"
)]
pub struct InvalidFrameAncestor(String);

impl FrameAncestors {
    /// No page may frame the Setup page.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a space- or comma-separated list of origins: `'self'`, or
    /// `http(s)://host[:port]` where host is a DNS name (optionally `*.` for its
    /// subdomains), `localhost`, an IPv4 address or a bracketed IPv6 address, and
    /// port is digits or `*`. An empty list is [`FrameAncestors::none`].
    ///
    /// # Errors
    /// [`InvalidFrameAncestor`] echoing the first entry that is not such an origin
    /// (a bare `*`, a path, a quote or a `;` that would end the directive).
    pub fn parse(list: &str) -> Result<Self, InvalidFrameAncestor> {
        let sources = list
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|s| !s.is_empty())
            .map(|source| normalise(source).ok_or_else(|| InvalidFrameAncestor(source.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { sources })
    }

    /// The directive's value: the origins, or `'none'`.
    #[must_use]
    pub fn directive(&self) -> String {
        if self.sources.is_empty() {
            "'none'".to_owned()
        } else {
            self.sources.join(" ")
        }
    }

    /// `X-Frame-Options` for browsers that predate `frame-ancestors`: `DENY` when
    /// nothing may frame the page, `SAMEORIGIN` for `'self'` alone, and nothing
    /// otherwise (the header cannot name another origin; CSP decides there).
    #[must_use]
    pub fn x_frame_options(&self) -> Option<&'static str> {
        match self.sources.as_slice() {
            [] => Some("DENY"),
            [only] if only == "'self'" => Some("SAMEORIGIN"),
            _ => None,
        }
    }
}

impl fmt::Display for FrameAncestors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.directive())
    }
}

/// The source expression for `source`, lower-cased, or `None` when it is not an
/// origin this setting accepts.
fn normalise(source: &str) -> Option<String> {
    let lower = source.to_ascii_lowercase();
    if lower == "'self'" {
        return Some(lower);
    }
    let (scheme, rest) = lower.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, port) = split_port(rest)?;
    if !(is_host(host) && port.is_none_or(is_port)) {
        return None;
    }
    Some(lower)
}

/// `host[:port]` → (host, port); a bracketed IPv6 host keeps its brackets.
fn split_port(rest: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = rest.strip_prefix('[') {
        let (address, after) = inner.split_once(']')?;
        address.parse::<std::net::Ipv6Addr>().ok()?;
        let host = &rest[..address.len() + 2];
        return match after {
            "" => Some((host, None)),
            _ => after.strip_prefix(':').map(|port| (host, Some(port))),
        };
    }
    Some(match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

fn is_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // checked by split_port
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_port(port: &str) -> bool {
    port == "*"
        || (!port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_may_frame_the_page_by_default() {
        let none = FrameAncestors::none();
        assert_eq!(none.directive(), "'none'");
        assert_eq!(none.x_frame_options(), Some("DENY"));
        assert_eq!(FrameAncestors::parse(" , ").unwrap(), none);
    }

    #[test]
    fn reads_origins_separated_by_spaces_or_commas() {
        let parsed = FrameAncestors::parse(
            "https://Dashboard.example.com, https://*.example.net:8443 'self'\thttp://127.0.0.1:3000,https://[::1]:9",
        )
        .unwrap();
        assert_eq!(
            parsed.directive(),
            "https://dashboard.example.com https://*.example.net:8443 'self' http://127.0.0.1:3000 https://[::1]:9"
        );
        assert_eq!(parsed.x_frame_options(), None);
    }

    #[test]
    fn self_alone_is_sameorigin_for_older_browsers() {
        let parsed = FrameAncestors::parse("'self'").unwrap();
        assert_eq!(parsed.directive(), "'self'");
        assert_eq!(parsed.x_frame_options(), Some("SAMEORIGIN"));
    }

    #[test]
    fn refuses_anything_that_is_not_an_origin() {
        for bad in [
            "*",
            "'none'",
            "https://*",
            "dashboard.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://example.com;script-src",
            "https://exa'mple.com",
            "https://example.com:99999",
            "https://example.com:",
            "https://-bad.example.com",
            "https://[not-ipv6]",
            "https://",
            "data:",
        ] {
            let error = FrameAncestors::parse(&format!("https://ok.example {bad}")).unwrap_err();
            assert_eq!(error, InvalidFrameAncestor(bad.to_owned()), "{bad}");
            assert!(error.to_string().contains("is not an origin"), "{error}");
        }
    }
}
