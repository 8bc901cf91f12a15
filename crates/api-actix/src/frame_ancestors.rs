//! Who may frame the Domain Setup page (`DOMAIN_API_SETUP_FRAME_ANCESTORS`): the
//! `frame-ancestors` directive of its Content-Security-Policy and the matching
//! `X-Frame-Options`. Parsed once at start, so a bad origin stops the server there
//! instead of producing a policy the browser silently ignores — or one that lets
//! far more sites frame the page than the operator meant: a wildcard directly under
//! a public suffix (`https://*.com`, `https://*.co.uk`, `https://*.github.io`) or a
//! plain-http origin other than loopback (which anyone on the path can impersonate).

use std::fmt;

/// The origins allowed to embed the Setup page in a frame; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors {
    sources: Vec<String>,
}

/// Why a frame-ancestors list was refused; each echoes the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFrameAncestor {
    /// Not a source expression this setting accepts.
    #[error(
        "{0:?} is not an origin: expected 'self' or scheme://host[:port] (http or https, no path), e.g. https://dashboard.example.com"
    )]
    NotAnOrigin(String),
    /// A wildcard over every site under a public suffix.
    #[error(
        "{0:?} lets every site under a public suffix frame the page: name the origins (https://dashboard.example.com) or a wildcard under your own domain (https://*.example.com)"
    )]
    PublicSuffixWildcard(String),
    /// Plain http to a host that is not loopback.
    #[error(
        "{0:?} is plain http, which anyone on the network path can impersonate: use https (http only for localhost, 127.0.0.0/8 or [::1])"
    )]
    PlainHttp(String),
}

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
    /// (a bare `*`, a path, a quote or a `;` that would end the directive), that is a
    /// wildcard directly under a public suffix or a single label, or that is plain
    /// `http` to anything but loopback.
    pub fn parse(list: &str) -> Result<Self, InvalidFrameAncestor> {
        let sources = list
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|s| !s.is_empty())
            .map(normalise)
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

/// The source expression for `source`, lower-cased, or why this setting refuses it.
fn normalise(source: &str) -> Result<String, InvalidFrameAncestor> {
    let lower = source.to_ascii_lowercase();
    if lower == "'self'" {
        return Ok(lower);
    }
    let not_an_origin = || InvalidFrameAncestor::NotAnOrigin(source.to_owned());
    let (scheme, rest) = lower.split_once("://").ok_or_else(not_an_origin)?;
    if scheme != "https" && scheme != "http" {
        return Err(not_an_origin());
    }
    let (host, port) = split_port(rest).ok_or_else(not_an_origin)?;
    if !(is_host(host) && port.is_none_or(is_port)) {
        return Err(not_an_origin());
    }
    if let Some(parent) = host.strip_prefix("*.")
        && (!parent.contains('.') || domain_core::ownership::is_public_suffix(parent))
    {
        return Err(InvalidFrameAncestor::PublicSuffixWildcard(
            source.to_owned(),
        ));
    }
    if scheme == "http" && !is_loopback(host) {
        return Err(InvalidFrameAncestor::PlainHttp(source.to_owned()));
    }
    Ok(lower)
}

/// `localhost` (or a name under it), 127.0.0.0/8 or `[::1]`.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
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
            assert_eq!(
                error,
                InvalidFrameAncestor::NotAnOrigin(bad.to_owned()),
                "{bad}"
            );
            assert!(error.to_string().contains("is not an origin"), "{error}");
        }
    }

    /// `DOMAIN_API_SETUP_FRAME_ANCESTORS=http://*.com` was accepted: every site
    /// under `.com`, over plain http, could frame the Setup page.
    #[test]
    fn refuses_a_wildcard_under_a_public_suffix() {
        for bad in [
            "https://*.com",
            "https://*.co.uk",
            "https://*.github.io",
            "https://*.example",
            "http://*.com",
        ] {
            let error = FrameAncestors::parse(bad).unwrap_err();
            assert_eq!(
                error,
                InvalidFrameAncestor::PublicSuffixWildcard(bad.to_owned()),
                "{bad}"
            );
            assert!(error.to_string().contains("public suffix"), "{error}");
        }
        for fine in ["https://*.example.com", "https://*.dashboard.example.co.uk"] {
            assert!(FrameAncestors::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn refuses_plain_http_but_to_loopback() {
        for bad in [
            "http://dashboard.example.com",
            "http://*.example.com",
            "http://10.0.0.1:3000",
            "http://[fe80::1]",
        ] {
            let error = FrameAncestors::parse(bad).unwrap_err();
            assert_eq!(
                error,
                InvalidFrameAncestor::PlainHttp(bad.to_owned()),
                "{bad}"
            );
        }
        for fine in [
            "http://localhost:3000",
            "http://app.localhost",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9",
        ] {
            assert!(FrameAncestors::parse(fine).is_ok(), "{fine}");
        }
    }
}
