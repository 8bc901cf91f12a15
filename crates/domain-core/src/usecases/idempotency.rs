//! Safe retries: a request made with an `Idempotency-Key` is looked up first; a new
//! one runs in a unit of work that also keeps its answer until the key expires.

use std::sync::Arc;
use std::time::Duration;

use crate::OrganizationId;
use crate::ports::InfraError;
use crate::ports::clock::Clock;
use crate::ports::idempotency::{Begun, Guarded, IdempotencyKey, IdempotencyStore};

/// The default time a key's answer is kept (`DOMAIN_API_IDEMPOTENCY_TTL`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Looks keys up and opens the units of work of new ones.
#[derive(Clone)]
pub struct GuardRetries {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
}

impl GuardRetries {
    /// The use case; an answer is replayed for `ttl` after it was kept.
    #[must_use]
    pub fn new(store: Arc<dyn IdempotencyStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { store, clock, ttl }
    }

    /// What `key` found for this request of `organization` (`fingerprint`: SHA-256 of
    /// method, path and body).
    ///
    /// # Errors
    /// [`InfraError`] when the store fails.
    pub async fn begin(
        &self,
        organization: &OrganizationId,
        key: IdempotencyKey,
        fingerprint: Vec<u8>,
    ) -> Result<Begun, InfraError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.ttl).map_err(InfraError::unexpected)?;
        self.store
            .begin(&Guarded {
                organization: organization.clone(),
                key,
                fingerprint,
                now,
                expires_at: now + ttl,
            })
            .await
    }
}

impl std::fmt::Debug for GuardRetries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardRetries")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_1_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse(b"a").is_some());
        assert!(IdempotencyKey::parse(b"order-42 retry #1 ~!").is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_some());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_none());
        assert!(IdempotencyKey::parse(b"").is_none());
        assert!(IdempotencyKey::parse(b"tab\\there").is_some());
        assert!(IdempotencyKey::parse(b"tab\there").is_none());
        assert!(IdempotencyKey::parse("café".as_bytes()).is_none());
        assert!(IdempotencyKey::parse(b"del\x7f").is_none());
    }
}
