//! Generate: the seed's `POST /api/v1/emails/domains/generate`, steps 2–8 of DESIGN.md
//! (step 1, authentication, is [`super::authenticate::Authenticate`]: this use case
//! takes an [`OrganizationId`], which only authentication produces).

use std::sync::Arc;

use crate::ports::BoxError;
use crate::ports::dns::Dns;
use crate::ports::keys::KeyGenerator;
use crate::ports::store::{DomainStore, RegisterError, SenderRegistration, StoreError};
use crate::{DkimKey, DomainName, EmailAddress, OrganizationId, RecordPolicy, RecordSet};

/// Creates or reuses a sender domain, registers and activates a sender on it, and
/// returns the records to publish.
#[derive(Clone)]
pub struct GenerateRecords {
    store: Arc<dyn DomainStore>,
    keys: Arc<dyn KeyGenerator>,
    dns: Arc<dyn Dns>,
    policy: Arc<RecordPolicy>,
}

/// The request body, as received: nothing here has been validated yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateInput {
    pub email: Option<String>,
    pub reply_to: Option<String>,
    pub inbound: bool,
}

/// Why no records were generated. `Display` is the seed's wire text.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Carries the offending value, made safe to echo (see [`echo`]).
    #[error("Invalid sender address: {0}")]
    InvalidSender(String),
    #[error("Invalid reply-to address: {0}")]
    InvalidReplyTo(String),
    #[error("Domain is already taken")]
    DomainTaken,
    #[error("Email is already taken")]
    EmailTaken,
    #[error("Service temporarily unavailable")]
    Unavailable(#[source] BoxError),
    #[error("Failed to generate DNS records.")]
    Unexpected(#[source] BoxError),
}

impl From<StoreError> for GenerateError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(e) => Self::Unavailable(e),
            StoreError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl GenerateRecords {
    #[must_use]
    pub fn new(
        store: Arc<dyn DomainStore>,
        keys: Arc<dyn KeyGenerator>,
        dns: Arc<dyn Dns>,
        policy: Arc<RecordPolicy>,
    ) -> Self {
        Self {
            store,
            keys,
            dns,
            policy,
        }
    }

    /// Runs the use case for an authenticated organization.
    ///
    /// # Errors
    /// [`GenerateError`], checked in the seed's order: invalid sender, invalid
    /// reply-to, domain taken, email taken; then infrastructure failures.
    pub async fn execute(
        &self,
        organization: &OrganizationId,
        input: GenerateInput,
    ) -> Result<RecordSet, GenerateError> {
        // 2. Validate.
        let raw_email = input.email.unwrap_or_default();
        let email = EmailAddress::parse(&raw_email)
            .map_err(|_| GenerateError::InvalidSender(echo(&raw_email)))?;
        let reply_to = input
            .reply_to
            .map(|raw| {
                EmailAddress::parse(&raw).map_err(|_| GenerateError::InvalidReplyTo(echo(&raw)))
            })
            .transpose()?;
        let domain = email.domain().clone();
        if domain.as_ascii().len() > MAX_SENDER_DOMAIN_OCTETS {
            return Err(GenerateError::InvalidSender(echo(&raw_email)));
        }

        // 3. Domain owned by another organization.
        let existing = self.store.find_domain(&domain).await?;
        if existing
            .as_ref()
            .is_some_and(|d| &d.organization != organization)
        {
            return Err(GenerateError::DomainTaken);
        }

        // 5. A new domain needs a key; a domain we own keeps the one it has.
        let new_key = match existing {
            Some(_) => None,
            None => Some(self.generate_key(&domain).await?),
        };

        // 6. Inbound: only a live MX pointing at our relay turns it on.
        let already_inbound = existing.as_ref().is_some_and(|d| d.inbound_enabled);
        let enable_inbound =
            input.inbound && !already_inbound && self.mx_points_at_relay(&domain).await;

        // 4 and 7. Store atomically; the store reports email and ownership conflicts.
        let mut registration = SenderRegistration {
            organization: organization.clone(),
            email,
            reply_to,
            new_key,
            enable_inbound,
        };
        let registered = match self.store.register_sender(registration.clone()).await {
            // The domain vanished between our read and the write: create it after all.
            Err(RegisterError::KeyRequired) => {
                registration.new_key = Some(self.generate_key(&domain).await?);
                self.store.register_sender(registration).await
            }
            other => other,
        }
        .map_err(|error| match error {
            RegisterError::DomainTaken => GenerateError::DomainTaken,
            RegisterError::EmailTaken => GenerateError::EmailTaken,
            RegisterError::Unavailable(e) => GenerateError::Unavailable(e),
            RegisterError::KeyRequired => {
                GenerateError::Unexpected("store demanded a key it was given".into())
            }
            RegisterError::Unexpected(e) => GenerateError::Unexpected(e),
        })?;

        // 8. Records from the stored domain, so racing callers all see the winning key.
        let stored = registered.domain;
        Ok(RecordSet::render(
            &self.policy,
            &stored.name,
            &stored.selector,
            &stored.public_key,
        ))
    }

    async fn generate_key(&self, domain: &DomainName) -> Result<DkimKey, GenerateError> {
        self.keys
            .generate(domain)
            .await
            .map_err(|e| GenerateError::Unexpected(Box::new(e)))
    }

    async fn mx_points_at_relay(&self, domain: &DomainName) -> bool {
        match self.dns.mx(domain).await {
            Ok(records) => {
                let matched = records
                    .iter()
                    .any(|mx| self.policy.is_inbound_host(&mx.exchange));
                tracing::info!(%domain, matched, mx = records.len(), "inbound MX check");
                matched
            }
            Err(outcome) => {
                tracing::info!(%domain, %outcome, "inbound MX check found no usable MX; inbound stays off");
                false
            }
        }
    }
}

impl std::fmt::Debug for GenerateRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateRecords")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Unicode format characters that can disguise text: bidi overrides and isolates,
/// zero-width characters, line/paragraph separators, the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The longest sender domain whose records still fit DNS's 253-octet names:
/// `<selector>._domainkey.<domain>` with selectors of up to 12 characters (what
/// keys-rsa draws) leaves 253 − 12 − 12 = 229 octets for the domain.
pub const MAX_SENDER_DOMAIN_OCTETS: usize = 253 - 12 - "._domainkey.".len();

/// Longest part of a rejected value echoed back in a 400 body.
const MAX_ECHO_CHARS: usize = 256;

/// The rejected value as it may be echoed: control characters escaped (no header or
/// log injection through a 400 body) and bounded in length.
#[must_use]
pub fn echo(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == MAX_ECHO_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
