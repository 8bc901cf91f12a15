//! Domain Connect, synchronous flow, the service as the Service Provider
//! (draft-ietf-dconn-domainconnect; the template is `domain-connect/*.json`):
//!
//! 1. the domain's zone's `_domainconnect` TXT names the DNS provider's API host;
//! 2. `https://{host}/v2/{zone}/settings` gives its name and URL prefixes;
//! 3. `{urlAPI}/v2/domainTemplates/providers/{providerId}/services/{serviceId}`
//!    answers 200 when it has the template;
//! 4. the apply URL at `{urlSyncUX}` carries the template's variables, signed.
//!
//! Every HTTPS request goes to an address checked as webhooks' are (no private or
//! special address unless allowed), bounded in time and size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::OrganizationId;
use crate::lifecycle::KeyState;
use crate::ports::InfraError;
use crate::ports::dns::{Dns, DnsError};
use crate::ports::domain_connect::{ApplyUrlSigner, FetchOutcome, HttpsFetcher, HttpsGet};
use crate::records::spf_ip_mechanism;
use crate::usecases::read::{DomainView, ReadDomains, ReadError};
use crate::usecases::webhooks::checked_address;
use crate::webhooks::{AddressPolicy, WebhookUrl};
use crate::{DomainName, RecordPolicy};

/// The most of a settings or template-support answer read.
pub const MAX_ANSWER: usize = 64 * 1024;

/// The template's groups: the sending records, and the inbound MX.
const SENDING_GROUP: &str = "sending";
const INBOUND_GROUP: &str = "inbound";

/// Who the service is to DNS providers, and how it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// The template's `providerId` (`DOMAIN_API_DOMAIN_CONNECT_PROVIDER_ID`).
    pub provider_id: String,
    /// The template's `serviceId` (`DOMAIN_API_DOMAIN_CONNECT_SERVICE_ID`).
    pub service_id: String,
    /// The `key` parameter: the host under the template's `syncPubKeyDomain` whose
    /// TXT records hold the public key (`DOMAIN_API_DOMAIN_CONNECT_KEY_HOST`).
    pub key_host: String,
}

/// A supported domain: where to send the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The DNS provider's name for display (`providerDisplayName`, else
    /// `providerName`).
    pub provider: String,
    /// The signed apply URL.
    pub apply_url: String,
}

/// Why no apply URL.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Not a domain name; carries the value as received.
    #[error("the domain name is invalid")]
    InvalidDomain(String),
    /// No such domain for this organization.
    #[error("no such domain for this organization")]
    NotFound,
    /// The zone's DNS provider does not support Domain Connect, or not the service's
    /// template (or the service is not configured for it); carries why, for the log.
    #[error("DNS provider does not support Domain Connect for this domain")]
    NotSupported(&'static str),
    /// A port failed.
    #[error(transparent)]
    Infra(#[from] InfraError),
}

impl From<ReadError> for ConnectError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::InvalidDomain(value) => Self::InvalidDomain(value),
            ReadError::NotFound => Self::NotFound,
            ReadError::Infra(infra) => Self::Infra(infra),
        }
    }
}

/// The DNS provider's settings (`/v2/{domain}/settings`), the fields used.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProviderSettings {
    name: String,
    url_sync_ux: String,
    url_api: String,
}

/// Builds the apply URL of a domain.
#[derive(Clone)]
pub struct DomainConnect {
    read: ReadDomains,
    dns: Arc<dyn Dns>,
    fetcher: Arc<dyn HttpsFetcher>,
    signer: Option<Arc<dyn ApplyUrlSigner>>,
    identity: Option<ServiceIdentity>,
    policy: Arc<RecordPolicy>,
    addresses: Arc<AddressPolicy>,
    timeout: Duration,
}

impl std::fmt::Debug for DomainConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainConnect")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl DomainConnect {
    /// The use case; without `identity` and `signer` (not configured) every domain is
    /// [`ConnectError::NotSupported`]. `timeout` bounds each HTTPS request.
    #[must_use]
    #[expect(
        clippy::too_many_arguments,
        reason = "the use case's ports and settings"
    )]
    pub fn new(
        read: ReadDomains,
        dns: Arc<dyn Dns>,
        fetcher: Arc<dyn HttpsFetcher>,
        signer: Option<Arc<dyn ApplyUrlSigner>>,
        identity: Option<ServiceIdentity>,
        policy: Arc<RecordPolicy>,
        addresses: Arc<AddressPolicy>,
        timeout: Duration,
    ) -> Self {
        Self {
            read,
            dns,
            fetcher,
            signer,
            identity,
            policy,
            addresses,
            timeout,
        }
    }

    /// Whether the service is configured for Domain Connect.
    #[must_use]
    pub fn configured(&self) -> bool {
        self.identity.is_some() && self.signer.is_some()
    }

    /// The signed apply URL of the organization's `domain` (as typed), the customer's
    /// browser coming back to `redirect_uri`.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn apply_url(
        &self,
        organization: &OrganizationId,
        domain: &str,
        redirect_uri: &str,
    ) -> Result<Connect, ConnectError> {
        let view = self.read.detail(organization, domain).await?;
        let (Some(identity), Some(signer)) = (&self.identity, &self.signer) else {
            return Err(ConnectError::NotSupported("not configured"));
        };
        let zone = view.zone.name().clone();
        let api_host = self.discover(&zone).await?;
        let settings = self.settings(&api_host, &zone).await?;
        let support = format!(
            "{}/v2/domainTemplates/providers/{}/services/{}",
            settings.url_api.trim_end_matches('/'),
            encode(&identity.provider_id),
            encode(&identity.service_id),
        );
        match self.get(&support).await? {
            (200, _) => {}
            _ => return Err(ConnectError::NotSupported("template not supported")),
        }
        let query = apply_query(&view, &self.policy, redirect_uri);
        let sig = signer
            .sign(&query)
            .map_err(|e| ConnectError::Infra(InfraError::Unexpected(e)))?;
        let apply_url = format!(
            "{}/v2/domainTemplates/providers/{}/services/{}/apply?{query}&key={}&sig={}",
            settings.url_sync_ux.trim_end_matches('/'),
            encode(&identity.provider_id),
            encode(&identity.service_id),
            encode(&identity.key_host),
            encode(&sig),
        );
        Ok(Connect {
            provider: settings.name,
            apply_url,
        })
    }

    /// The API host (`host` or `host:port`) the zone's `_domainconnect` TXT names.
    async fn discover(&self, zone: &DomainName) -> Result<String, ConnectError> {
        let name = format!("_domainconnect.{}", zone.as_ascii());
        let records = match self.dns.txt(&name).await {
            Ok(records) => records,
            Err(DnsError::NxDomain | DnsError::NoRecords) => {
                return Err(ConnectError::NotSupported("no _domainconnect record"));
            }
            Err(DnsError::Timeout) => return Err(ConnectError::NotSupported("dns timeout")),
            Err(_) => return Err(ConnectError::NotSupported("dns failure")),
        };
        // A host name, perhaps with a port (the spec's "URL prefix"); the settings
        // URL built on it is then checked as any other.
        records
            .iter()
            .map(|r| r.joined().trim().trim_end_matches('.').to_owned())
            .find(|host| {
                let name = host.split_once(':').map_or(host.as_str(), |(name, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        name
                    } else {
                        ""
                    }
                });
                DomainName::parse(name.trim_end_matches('.')).is_ok()
            })
            .ok_or(ConnectError::NotSupported("no host in _domainconnect"))
    }

    async fn settings(
        &self,
        api_host: &str,
        zone: &DomainName,
    ) -> Result<ProviderSettings, ConnectError> {
        let url = format!("https://{api_host}/v2/{}/settings", zone.as_ascii());
        let body = match self.get(&url).await? {
            (200..=299, body) => body,
            _ => return Err(ConnectError::NotSupported("no settings for the zone")),
        };
        parse_settings(&body).ok_or(ConnectError::NotSupported("settings unusable"))
    }

    /// `GET url` at a checked address: the status and body.
    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), ConnectError> {
        let url = WebhookUrl::parse(url, &self.addresses)
            .map_err(|_| ConnectError::NotSupported("URL not allowed"))?;
        let ip = checked_address(&url, self.dns.as_ref(), &self.addresses)
            .await
            .map_err(|refusal| ConnectError::NotSupported(refusal.reason()))?;
        let request = HttpsGet {
            address: SocketAddr::new(ip, url.port()),
            url,
            timeout: self.timeout,
            max_body: MAX_ANSWER,
        };
        match self.fetcher.get(&request).await {
            FetchOutcome::Answered { status, body } => Ok((status, body)),
            FetchOutcome::Failed(reason) => Err(ConnectError::NotSupported(reason)),
        }
    }
}

/// The settings' name and URL prefixes; `None` without `urlSyncUX` (no synchronous
/// flow) or `urlAPI`, or when they are not `https` URLs.
fn parse_settings(body: &[u8]) -> Option<ProviderSettings> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let name = text("providerDisplayName")
        .filter(|n| !n.trim().is_empty())
        .or_else(|| text("providerName"))?;
    let url_sync_ux = text("urlSyncUX").filter(|u| u.starts_with("https://"))?;
    let url_api = text("urlAPI").filter(|u| u.starts_with("https://"))?;
    Some(ProviderSettings {
        name,
        url_sync_ux,
        url_api,
    })
}

/// The apply URL's query before `key` and `sig` (what is signed): `domain` (the
/// zone), `host` (the sender domain relative to it, when below the apex), the
/// template's variables by name, `groupId`, `redirect_uri`; every value
/// percent-encoded (RFC 3986 unreserved characters kept).
#[must_use]
pub fn apply_query(view: &DomainView, policy: &RecordPolicy, redirect_uri: &str) -> String {
    let zone = view.zone.name().as_ascii();
    let host = view.zone.host(view.domain.as_ascii());
    let active = view.dkim.iter().find(|k| k.key.state == KeyState::Active);
    let (selector, key) = active.map_or((String::new(), String::new()), |k| {
        (k.key.selector.to_string(), k.key.public_key.clone())
    });
    let spf_rules = policy
        .spf_ips()
        .iter()
        .map(|ip| spf_ip_mechanism(*ip))
        .collect::<Vec<_>>()
        .join(" ");
    let groups = if view.inbound_enabled {
        format!("{SENDING_GROUP},{INBOUND_GROUP}")
    } else {
        SENDING_GROUP.to_owned()
    };
    let mut pairs: Vec<(&str, String)> = vec![("domain", zone.to_owned())];
    if host != "@" {
        pairs.push(("host", host));
    }
    pairs.extend([
        ("dkimkey", key),
        ("dkimselector", selector),
        ("mxhost", view.inbound_mx.value.clone()),
        ("spfrules", spf_rules),
        ("groupId", groups),
        ("redirect_uri", redirect_uri.to_owned()),
    ]);
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
#[must_use]
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
