//! Token pairs looked up recently, so that a busy client's requests skip the lookup
//! that precedes each of them: the access token's digest → its organization and its
//! secret's digest, as the database held them, for `ttl` from the lookup. Only
//! digests are kept, never a token; the secret a request presents is still compared
//! (its digest, in constant time) with the stored one on every request.
//!
//! The bound this puts on revocation: a token revoked by another process (the CLI,
//! another instance) keeps working on an instance that looked it up less than `ttl`
//! ago, never longer. A revocation through this store forgets the token at once.
//! Lookups that found nothing are not kept, so a token issued meanwhile works at
//! once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most this many token pairs are kept; a full cache is emptied (the next
/// requests look their tokens up again).
const MAX_TOKENS: usize = 10_000;

/// What the database held for one access token.
#[derive(Clone)]
pub(crate) struct StoredToken {
    pub(crate) organization: String,
    pub(crate) secret_hash: Vec<u8>,
}

struct Kept {
    token: StoredToken,
    until: Instant,
}

/// Recently looked-up tokens, by the digest of their access token.
pub(crate) struct TokenCache {
    ttl: Duration,
    kept: Mutex<HashMap<Vec<u8>, Kept>>,
}

impl TokenCache {
    /// A cache keeping each lookup for `ttl`; zero keeps nothing.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            kept: Mutex::new(HashMap::new()),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Kept>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token kept for `access_hash`, if it was looked up less than `ttl` ago.
    pub(crate) fn get(&self, access_hash: &[u8], now: Instant) -> Option<StoredToken> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut kept = self.kept();
        match kept.get(access_hash) {
            Some(entry) if entry.until > now => Some(entry.token.clone()),
            Some(_) => {
                kept.remove(access_hash);
                None
            }
            None => None,
        }
    }

    /// Keeps what a lookup at `now` found for `access_hash`.
    pub(crate) fn put(&self, access_hash: Vec<u8>, token: StoredToken, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut kept = self.kept();
        if kept.len() >= MAX_TOKENS {
            kept.clear();
        }
        kept.insert(
            access_hash,
            Kept {
                token,
                until: now + self.ttl,
            },
        );
    }

    /// Forgets `access_hash` (its token was revoked here).
    pub(crate) fn forget(&self, access_hash: &[u8]) {
        self.kept().remove(access_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(org: &str) -> StoredToken {
        StoredToken {
            organization: org.to_owned(),
            secret_hash: vec![7; 32],
        }
    }

    #[test]
    fn a_lookup_is_kept_for_its_ttl_and_no_longer() {
        let cache = TokenCache::new(Duration::from_secs(5));
        let now = Instant::now();
        cache.put(vec![1], token("acme"), now);
        let at = |s| now + Duration::from_secs(s);
        assert_eq!(
            cache.get(&[1], at(4)).map(|t| t.organization),
            Some("acme".to_owned())
        );
        assert!(cache.get(&[1], at(5)).is_none(), "gone at its ttl");
        assert!(cache.get(&[1], at(1)).is_none(), "and forgotten");
        assert!(cache.get(&[2], now).is_none());
    }

    #[test]
    fn a_revocation_here_forgets_at_once_and_a_zero_ttl_keeps_nothing() {
        let cache = TokenCache::new(Duration::from_secs(5));
        let now = Instant::now();
        cache.put(vec![1], token("acme"), now);
        cache.forget(&[1]);
        assert!(cache.get(&[1], now).is_none());
        let off = TokenCache::new(Duration::ZERO);
        off.put(vec![1], token("acme"), now);
        assert!(off.get(&[1], now).is_none());
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = TokenCache::new(Duration::from_secs(5));
        let now = Instant::now();
        for i in 0..MAX_TOKENS {
            cache.put(i.to_be_bytes().to_vec(), token("acme"), now);
        }
        cache.put(vec![0xff; 9], token("late"), now);
        assert_eq!(cache.kept().len(), 1);
    }
}
