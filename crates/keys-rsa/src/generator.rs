//! RSA-2048 DKIM keys: generated on a blocking thread, sealed before they leave it.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain_core::ports::keys::{KeyError, KeyGenerator};
use domain_core::{DkimKey, DomainName, Selector};
use ring::rand::{SecureRandom, SystemRandom};
use rsa::PrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::rng::RingRng;
use crate::{SealError, Sealer};

/// RFC 8301: DKIM signers must use at least 1024 bits and should use 2048.
const KEY_BITS: usize = 2048;
const SELECTOR_LEN: usize = 12;
const SELECTOR_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The [`KeyGenerator`] adapter.
#[derive(Debug, Clone)]
pub struct RsaKeyGenerator {
    sealer: Arc<Sealer>,
}

impl RsaKeyGenerator {
    #[must_use]
    pub fn new(sealer: Arc<Sealer>) -> Self {
        Self { sealer }
    }
}

#[async_trait]
impl KeyGenerator for RsaKeyGenerator {
    async fn generate(&self, domain: &DomainName) -> Result<DkimKey, KeyError> {
        let sealer = Arc::clone(&self.sealer);
        let domain = domain.clone();
        // Tens of milliseconds of bignum work: off the async executor, one of a
        // bounded number at a time, at a lower priority.
        run_generation(move || generate_key_blocking(&sealer, &domain)).await?
    }
}

/// How much lower than the server's other threads a generation thread runs (nice).
const GENERATION_NICENESS: i32 = 19;

/// Runs one key generation `job`: after taking a permit ([`generation_permit`]), on
/// a thread of its own whose scheduling priority is lowered (Linux: nice 19 for
/// that thread alone), so that while keys are made, requests that need the CPU for
/// a millisecond get it first. The thread ends with the job; a dedicated thread
/// rather than the blocking pool, whose threads also run database calls and must
/// keep their priority.
///
/// # Errors
/// [`KeyError`] when no thread could be started or the job's thread panicked.
pub(crate) async fn run_generation<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KeyError> {
    let _permit = generation_permit().await?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("dkim-keygen".into())
        .spawn(move || {
            lower_this_threads_priority();
            // The receiver is gone only if the caller was cancelled.
            let _ = done.send(job());
        })
        .map_err(|e| KeyError(Box::new(e)))?;
    result.await.map_err(|e| KeyError(Box::new(e)))
}

#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // On Linux a thread id given to setpriority(PRIO_PROCESS) names that thread only.
    let this_thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(this_thread), GENERATION_NICENESS)
    {
        tracing::debug!(%error, "could not lower the key generation thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

/// RSA generation is the most expensive thing the service does (tens of
/// milliseconds of CPU a key). At most one fewer than the machine's cores run at once
/// (at least one), inline or refilling the pool: a burst of new domains, or one
/// organization's flood of them, cannot take every core from the other
/// organizations' calls. A generation waits for a permit without holding a thread.
async fn generation_permit() -> Result<SemaphorePermit<'static>, KeyError> {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            Semaphore::new(cores.saturating_sub(1).max(1))
        })
        .acquire()
        .await
        .map_err(|e| KeyError(Box::new(e)))
}

/// Generates and seals one key on the calling thread (which must be allowed to block).
///
/// # Errors
/// [`KeyError`] when randomness, generation, encoding or sealing fails.
pub fn generate_key_blocking(sealer: &Sealer, domain: &DomainName) -> Result<DkimKey, KeyError> {
    let (public_key, pkcs8) = generate_pair()?;
    let sealed = sealer
        .seal(domain, pkcs8.as_bytes())
        .map_err(|e| KeyError(Box::new(e)))?;
    Ok(DkimKey {
        selector: random_selector().map_err(|e| KeyError(Box::new(e)))?,
        public_key,
        sealed_private_key: sealed,
    })
}

/// A new RSA-2048 pair: the SubjectPublicKeyInfo as base64, and the PKCS#8 private
/// key in a buffer that is zeroed when dropped.
pub(crate) fn generate_pair() -> Result<(String, rsa::pkcs8::SecretDocument), KeyError> {
    let mut rng = RingRng::new();
    let private = PrivateKey::new(&mut rng, KEY_BITS).map_err(|e| KeyError(Box::new(e)))?;
    let public_der = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| KeyError(Box::new(e)))?;
    let pkcs8 = private.to_pkcs8_der().map_err(|e| KeyError(Box::new(e)))?;
    Ok((STANDARD.encode(public_der.as_bytes()), pkcs8))
}

/// A selector of [`SELECTOR_LEN`] characters drawn uniformly from `[a-z0-9]`.
pub(crate) fn random_selector() -> Result<Selector, SealError> {
    let rng = SystemRandom::new();
    let mut selector = String::with_capacity(SELECTOR_LEN);
    let mut byte = [0u8; 1];
    while selector.len() < SELECTOR_LEN {
        rng.fill(&mut byte).map_err(|_| SealError::Seal)?;
        // 252 = 7 × 36: rejecting the top four values keeps every character equally likely.
        if byte[0] < 252 {
            selector.push(char::from(SELECTOR_ALPHABET[usize::from(byte[0] % 36)]));
        }
    }
    Selector::new(selector).map_err(|_| SealError::Seal)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rsa::traits::PublicKeyParts;

    use super::*;
    use crate::MasterKey;

    fn domain() -> DomainName {
        DomainName::parse("example.com").unwrap()
    }

    fn sealer() -> Arc<Sealer> {
        Arc::new(Sealer::new(&MasterKey::generate().unwrap()))
    }

    #[tokio::test]
    async fn generates_an_rsa_2048_key_whose_halves_match() {
        let sealer = sealer();
        let key = RsaKeyGenerator::new(Arc::clone(&sealer))
            .generate(&domain())
            .await
            .unwrap();

        assert!(
            key.public_key.starts_with("MIIBIjANBgkqhki"),
            "{}",
            key.public_key
        );
        let public =
            rsa::PublicKey::from_public_key_der(&STANDARD.decode(&key.public_key).unwrap())
                .unwrap();
        assert_eq!(public.size() * 8, 2048);
        let private =
            PrivateKey::from_pkcs8_der(&sealer.open(&domain(), &key.sealed_private_key).unwrap())
                .unwrap();
        assert_eq!(private.to_public_key(), public);
    }

    #[tokio::test]
    async fn draws_a_fresh_lower_case_alphanumeric_selector_each_time() {
        let generator = RsaKeyGenerator::new(sealer());
        let a = generator.generate(&domain()).await.unwrap();
        let b = generator.generate(&domain()).await.unwrap();

        for key in [&a, &b] {
            assert_eq!(key.selector.as_str().len(), SELECTOR_LEN);
            assert!(
                key.selector
                    .as_str()
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            );
        }
        assert_ne!(a.selector, b.selector);
        assert_ne!(a.public_key, b.public_key);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn generates_off_the_async_executor() {
        // On a single-threaded runtime a ticker can only advance while `generate`
        // awaits if the work happens on another thread.
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };

        RsaKeyGenerator::new(sealer())
            .generate(&domain())
            .await
            .unwrap();

        ticker.abort();
        assert!(
            ticks.load(Ordering::Relaxed) > 0,
            "the executor was blocked during generation"
        );
    }
}
