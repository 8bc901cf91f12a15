//! Webhooks: the endpoint URL and the addresses it may reach, the retry schedule, and
//! the Standard Webhooks message (body and signed content). No I/O here: resolving,
//! signing and sending are ports (`ports::webhooks`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ipnet::IpNet;
use zeroize::Zeroizing;

use crate::lifecycle::{Event, EventType};

/// The longest URL accepted (octets).
pub const MAX_URL_LEN: usize = 2048;

/// The prefix of a signing secret as shown to the customer.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's id: `wh_` and 32 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookId(String);

impl WebhookId {
    /// The id made of `random` (16 bytes, from the caller's random source).
    #[must_use]
    pub fn from_random(random: [u8; 16]) -> Self {
        use fmt::Write as _;
        let mut id = String::with_capacity(35);
        id.push_str("wh_");
        for byte in random {
            let _ = write!(id, "{byte:02x}");
        }
        Self(id)
    }

    /// A stored or requested id; `None` when it does not have the shape.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let hex = value.strip_prefix("wh_")?;
        (hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(value.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An endpoint's signing secret in the clear, zeroed when dropped. `Debug` prints
/// nothing of it.
pub struct WebhookSecret(pub Zeroizing<Vec<u8>>);

impl WebhookSecret {
    /// As shown once to the customer: `whsec_` + base64 (standard, padded).
    #[must_use]
    pub fn to_whsec(&self) -> Zeroizing<String> {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&*self.0);
        Zeroizing::new(format!("{SECRET_PREFIX}{encoded}"))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Which addresses and schemes an endpoint may use. The default refuses `http` and
/// every loopback, private, link-local, multicast, unspecified or otherwise special
/// address (see [`is_special`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `http` URLs are allowed (`DOMAIN_API_WEBHOOK_ALLOW_HTTP=1`).
    pub allow_http: bool,
    /// Networks allowed although special (`DOMAIN_API_WEBHOOK_ALLOW_NETS`).
    pub allow_nets: Vec<IpNet>,
    /// Every address is allowed (`DOMAIN_API_WEBHOOK_ALLOW_PRIVATE=1`, tests).
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Whether a delivery may connect to `ip`.
    #[must_use]
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_special(ip) || self.allow_nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether every one of `addresses` is permitted, and there is at least one: a
    /// name with one forbidden address is refused as a whole, since a client may
    /// connect to any of them.
    #[must_use]
    pub fn permits_all(&self, addresses: &[IpAddr]) -> bool {
        !addresses.is_empty() && addresses.iter().all(|ip| self.permits(*ip))
    }
}

/// Whether `ip` is an address a webhook must not reach by default: loopback,
/// private (RFC 1918, unique local), link-local, multicast, unspecified, broadcast,
/// shared (RFC 6598), "this network", benchmarking, reserved, documentation, and the
/// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4), judged by
/// the address they embed.
#[must_use]
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

/// IPv4: every block of the IANA IPv4 Special-Purpose Address Registry whose
/// "Globally Reachable" is not true, plus multicast. The registry's globally
/// reachable entries stay permitted: 192.0.0.9 and 192.0.0.10 (PCP and TURN anycast),
/// 192.31.196.0/24 and 192.175.48.0/24 (AS112), 192.52.193.0/24 (AMT).
fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    a == 0 // "this network"
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        // IETF protocol assignments (DS-Lite, the dummy address, NAT64 discovery, …)
        || (a == 192 && b == 0 && c == 0 && d != 9 && d != 10)
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || (224..240).contains(&a) // multicast
        || a >= 240 // reserved, limited broadcast
}

/// IPv6: only global unicast (`2000::/3`) less the registry's blocks that are not
/// globally reachable, and NAT64's well-known prefix (`64:ff9b::/96`) judged by the
/// IPv4 address it embeds. Forms that carry an IPv4 address to another IPv4 host are
/// judged as that address: 6to4 (`2002::/16`) and Teredo (`2001::/32`: its server and
/// its client, both). Everything else is refused: loopback, unspecified, IPv4-mapped
/// and -translated (SIIT), IPv4-compatible, local-use NAT64 (`64:ff9b:1::/48`),
/// discard, unique local, link-local, site-local, multicast, SRv6 SIDs (`5f00::/16`),
/// and unallocated space.
fn is_special_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_special_v4(embedded(s[6], s[7]));
    }
    if s[0] & 0xe000 != 0x2000 {
        return true;
    }
    match (s[0], s[1]) {
        // Teredo: the server's address, and the client's (obfuscated: inverted).
        (0x2001, 0x0000) => {
            is_special_v4(embedded(s[2], s[3])) || is_special_v4(embedded(!s[6], !s[7]))
        }
        // IETF protocol assignments (2001::/23), but for the globally reachable
        // entries: PCP, TURN and DNS-SD SRP anycast, AMT, AS112.
        (0x2001, second) if second < 0x0200 => !matches!(
            (second, s[2], &s[3..]),
            (0x0001, 0, [0, 0, 0, 0, 1..=3]) | (0x0003, _, _) | (0x0004, 0x0112, _)
        ),
        (0x2001, 0x0db8) => true,                           // documentation
        (0x2002, _) => is_special_v4(embedded(s[1], s[2])), // 6to4
        (0x3fff, second) => second < 0x1000,                // documentation (3fff::/20)
        _ => false,
    }
}

/// Where an endpoint's host points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookHost {
    /// A literal address.
    Ip(IpAddr),
    /// A host name (A-label, lower case), resolved at creation and at every delivery.
    Name(String),
}

/// A webhook URL that passed the scheme, shape and literal-address rules. A host
/// name's addresses are checked by the use case, at creation and at delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: url::Url,
    host: WebhookHost,
}

/// The URL is not one a webhook may use; carries nothing (the edge echoes the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook URL")]
pub struct InvalidWebhookUrl;

impl WebhookUrl {
    /// Parses `text` (WHATWG URL rules, so `http://2130706433/` is `127.0.0.1`): `https`
    /// (or `http` when allowed), a host, no user name or password, no fragment, at
    /// most [`MAX_URL_LEN`] octets, and a literal address only if `policy` permits it.
    ///
    /// # Errors
    /// [`InvalidWebhookUrl`].
    pub fn parse(text: &str, policy: &AddressPolicy) -> Result<Self, InvalidWebhookUrl> {
        if text.is_empty() || text.len() > MAX_URL_LEN || text.trim() != text {
            return Err(InvalidWebhookUrl);
        }
        let url = url::Url::parse(text).map_err(|_| InvalidWebhookUrl)?;
        let scheme_ok = url.scheme() == "https" || (policy.allow_http && url.scheme() == "http");
        if !scheme_ok
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
        {
            return Err(InvalidWebhookUrl);
        }
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => WebhookHost::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => WebhookHost::Ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                // A bare label (`intranet`) is resolved through search domains and
                // hosts files, not the DNS; special-use names (`*.local`,
                // `*.internal`, `*.localhost`) are never public: no public endpoint.
                if !name.contains('.') || crate::ownership::is_special_use(&name) {
                    return Err(InvalidWebhookUrl);
                }
                // WHATWG hosts allow characters no DNS name has (`a*.example`).
                let name = crate::DomainName::parse(&name).map_err(|_| InvalidWebhookUrl)?;
                WebhookHost::Name(name.as_ascii().to_owned())
            }
            None => return Err(InvalidWebhookUrl),
        };
        if let WebhookHost::Ip(ip) = host
            && !policy.permits(ip)
        {
            return Err(InvalidWebhookUrl);
        }
        // Below 1024 only the web's own ports: no SSH, SMTP, DNS or database
        // listener is a webhook receiver.
        let port = url.port_or_known_default().unwrap_or(0);
        if port < 1024 && port != 80 && port != 443 {
            return Err(InvalidWebhookUrl);
        }
        Ok(Self { url, host })
    }

    /// The URL as it is stored and shown.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Its host.
    #[must_use]
    pub fn host(&self) -> &WebhookHost {
        &self.host
    }

    /// The host as written in the `Host` header and TLS server name (no brackets).
    #[must_use]
    pub fn host_str(&self) -> &str {
        match self.url.host_str() {
            Some(host) => host.trim_start_matches('[').trim_end_matches(']'),
            None => "",
        }
    }

    /// The `Host` header's value: the host as written in the URL (an IPv6 address in
    /// brackets) and the port when it is not the scheme's default.
    #[must_use]
    pub fn host_header(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The port, explicit or the scheme's default.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// Whether TLS is used (`https`).
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The request target: path and query.
    #[must_use]
    pub fn request_target(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// The event types an endpoint receives: `None` is every type.
pub type EventFilter = Option<Vec<EventType>>;

/// Whether `filter` lets `kind` through.
#[must_use]
pub fn filter_accepts(filter: &EventFilter, kind: EventType) -> bool {
    filter.as_ref().is_none_or(|kinds| kinds.contains(&kind))
}

/// The delays between a delivery's attempts (`DOMAIN_API_WEBHOOK_RETRY_SCHEDULE`): after
/// the first failed attempt the first delay, and so on; when they run out the
/// delivery has failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// The contract's default: `5s,5m,30m,2h,5h,10h,10h` (eight attempts in all).
    #[must_use]
    pub fn standard() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        Self(
            [
                5,
                5 * MINUTE,
                30 * MINUTE,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        )
    }

    /// A schedule of `delays`, in order (may be empty: one attempt only).
    #[must_use]
    pub fn new(delays: Vec<Duration>) -> Self {
        Self(delays)
    }

    /// The wait before the next attempt once `attempts_made` attempts have failed;
    /// `None` when none is left.
    #[must_use]
    pub fn after(&self, attempts_made: u32) -> Option<Duration> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.0.get(index).copied()
    }

    /// The delays.
    #[must_use]
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

/// The JSON body of an event's delivery: `{"id","type","createdAt","data"}`, `data`
/// carrying `domain`, `selector` and `email` when the event has them (the same
/// members as the events list).
#[must_use]
pub fn payload(event: &Event) -> String {
    let mut body = format!(
        r#"{{"id":{},"type":"{}","createdAt":"{}","data":{{"#,
        event.id,
        event.kind.as_str(),
        rfc3339(&event.created_at),
    );
    let fields = [
        ("domain", &event.domain),
        ("selector", &event.selector),
        ("email", &event.email),
    ];
    let mut first = true;
    for (name, value) in fields {
        if let Some(value) = value {
            if !first {
                body.push(',');
            }
            first = false;
            body.push('"');
            body.push_str(name);
            body.push_str("\":");
            push_json_string(&mut body, value);
        }
    }
    body.push_str("}}");
    body
}

/// The content a Standard Webhooks signature covers: `<id>.<timestamp>.<body>`.
#[must_use]
pub fn signed_content(message_id: &str, timestamp: i64, body: &str) -> String {
    format!("{message_id}.{timestamp}.{body}")
}

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn push_json_string(out: &mut String, value: &str) {
    use fmt::Write as _;
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;
