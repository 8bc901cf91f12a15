//! A bounded pool of pre-generated DKIM keys, refilled in the background, so a
//! new-domain call does not wait tens of milliseconds for RSA generation.
//!
//! Pooled keys are sealed under the master key with the pool's own associated data
//! (they belong to no domain yet) and re-sealed for the domain when taken. An empty
//! pool never fails a call: the key is generated inline instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain_core::ports::keys::{KeyError, KeyGenerator};
use domain_core::{DkimKey, DomainName, SealedKey};
use tokio::sync::{Notify, watch};

use crate::Sealer;
use crate::generator::{RsaKeyGenerator, generate_pair, random_selector, run_generation};

struct PooledKey {
    public_key: String,
    sealed: SealedKey,
}

struct Inner {
    sealer: Arc<Sealer>,
    capacity: usize,
    keys: Mutex<VecDeque<PooledKey>>,
    /// Outside `Inner`'s lifetime so the refill task can wait without keeping the
    /// pool alive.
    wake: Arc<Notify>,
    served_from_pool: AtomicU64,
    generated_inline: AtomicU64,
    refills: AtomicU64,
    refill_nanos: AtomicU64,
    /// Counts the refill task's steps (a key added, a failed attempt, or parking
    /// because the pool is full), so that an observer can wait for the task's next
    /// step instead of sleeping and hoping it has happened.
    steps: watch::Sender<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the refill task see that the pool is gone and end.
        self.wake.notify_one();
    }
}

/// The [`KeyGenerator`] adapter with a pool in front of [`RsaKeyGenerator`].
#[derive(Clone)]
pub struct KeyPool {
    inner: Arc<Inner>,
    inline: RsaKeyGenerator,
}

/// A snapshot of the pool for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolStats {
    pub depth: usize,
    pub capacity: usize,
    pub served_from_pool: u64,
    pub generated_inline: u64,
    pub refills: u64,
    /// Total time spent generating refill keys.
    pub refill_seconds: f64,
}

impl KeyPool {
    /// An empty pool of `capacity` keys. Call [`KeyPool::start_refill`] on a tokio
    /// runtime to fill it.
    #[must_use]
    pub fn new(sealer: Arc<Sealer>, capacity: usize) -> Self {
        Self {
            inline: RsaKeyGenerator::new(Arc::clone(&sealer)),
            inner: Arc::new(Inner {
                sealer,
                capacity,
                keys: Mutex::new(VecDeque::with_capacity(capacity)),
                wake: Arc::new(Notify::new()),
                served_from_pool: AtomicU64::new(0),
                generated_inline: AtomicU64::new(0),
                refills: AtomicU64::new(0),
                refill_nanos: AtomicU64::new(0),
                steps: watch::Sender::new(0),
            }),
        }
    }

    /// Spawns the refill task: it keeps the pool full, one key at a time on the
    /// blocking pool, and ends when the pool is dropped or the runtime shuts down.
    pub fn start_refill(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let wake = Arc::clone(&self.inner.wake);
        tokio::spawn(refill(weak, wake))
    }

    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        PoolStats {
            depth: inner.depth(),
            capacity: inner.capacity,
            served_from_pool: inner.served_from_pool.load(Ordering::Relaxed),
            generated_inline: inner.generated_inline.load(Ordering::Relaxed),
            refills: inner.refills.load(Ordering::Relaxed),
            refill_seconds: Duration::from_nanos(inner.refill_nanos.load(Ordering::Relaxed))
                .as_secs_f64(),
        }
    }
}

impl Inner {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<PooledKey>> {
        // A panic while holding this lock cannot leave the queue half-updated.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn depth(&self) -> usize {
        self.queue().len()
    }

    fn step(&self) {
        // `send_modify` updates the value even when nobody is watching.
        self.steps.send_modify(|steps| *steps += 1);
    }
}

async fn refill(pool: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let Some(inner) = pool.upgrade() else {
            return;
        };
        if inner.depth() >= inner.capacity {
            // A `notify_one` between here and the wait below is kept as a permit,
            // so announcing the step before parking loses no wake-up.
            inner.step();
            drop(inner);
            wake.notified().await;
            continue;
        }
        let sealer = Arc::clone(&inner.sealer);
        drop(inner);
        let started = Instant::now();
        let made = run_generation(move || {
            let (public_key, pkcs8) = generate_pair()?;
            let sealed = sealer
                .seal_pooled(pkcs8.as_bytes())
                .map_err(|e| KeyError(Box::new(e)))?;
            Ok::<_, KeyError>(PooledKey { public_key, sealed })
        })
        .await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        match made {
            Ok(Ok(key)) => {
                inner.queue().push_back(key);
                inner.refills.fetch_add(1, Ordering::Relaxed);
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                inner.refill_nanos.fetch_add(nanos, Ordering::Relaxed);
                inner.step();
            }
            Ok(Err(error)) | Err(error) => {
                tracing::warn!(%error, "key pool refill failed; retrying in 1 s");
                inner.step();
                drop(inner);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl KeyGenerator for KeyPool {
    async fn generate(&self, domain: &DomainName) -> Result<DkimKey, KeyError> {
        let pooled = self.inner.queue().pop_front();
        self.inner.wake.notify_one();
        let Some(pooled) = pooled else {
            self.inner.generated_inline.fetch_add(1, Ordering::Relaxed);
            return self.inline.generate(domain).await;
        };
        self.inner.served_from_pool.fetch_add(1, Ordering::Relaxed);
        let sealed = self
            .inner
            .sealer
            .reseal_pooled(&pooled.sealed, domain)
            .map_err(|e| KeyError(Box::new(e)))?;
        Ok(DkimKey {
            selector: random_selector().map_err(|e| KeyError(Box::new(e)))?,
            public_key: pooled.public_key,
            sealed_private_key: sealed,
        })
    }
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPool")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use rsa::PrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};

    use super::*;
    use crate::MasterKey;

    fn pool(capacity: usize) -> KeyPool {
        KeyPool::new(
            Arc::new(Sealer::new(&MasterKey::generate().unwrap())),
            capacity,
        )
    }

    async fn wait_for_depth(pool: &KeyPool, depth: usize) {
        for _ in 0..2000 {
            if pool.stats().depth == depth {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("pool never reached depth {depth}: {:?}", pool.stats());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn serves_a_warm_pool_without_generating_inline_and_refills() {
        let pool = pool(3);
        let _refill = pool.start_refill();
        wait_for_depth(&pool, 3).await;
        let domain = DomainName::parse("example.com").unwrap();

        let key = pool.generate(&domain).await.unwrap();

        let stats = pool.stats();
        assert_eq!((stats.served_from_pool, stats.generated_inline), (1, 0));
        wait_for_depth(&pool, 3).await;
        assert_eq!(pool.stats().refills, 4);
        // The key is bound to its domain now, and its halves match.
        let der = pool
            .inner
            .sealer
            .open(&domain, &key.sealed_private_key)
            .unwrap();
        let public = PrivateKey::from_pkcs8_der(&der)
            .unwrap()
            .to_public_key()
            .to_public_key_der()
            .unwrap();
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(public.as_bytes()),
            key.public_key
        );
        assert!(
            pool.inner
                .sealer
                .open(
                    &DomainName::parse("other.com").unwrap(),
                    &key.sealed_private_key
                )
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn generates_inline_when_the_pool_is_empty() {
        let pool = pool(2);

        let key = pool
            .generate(&DomainName::parse("example.com").unwrap())
            .await
            .unwrap();

        assert!(key.public_key.starts_with("MIIBIjANBgkqhki"));
        assert_eq!(pool.stats().generated_inline, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pool_of_zero_never_refills() {
        let pool = pool(0);
        let mut steps = pool.inner.steps.subscribe();
        let _refill = pool.start_refill();

        // Every step of the task is announced, a refill as much as parking: had the
        // first step made a key, this would see it.
        steps.wait_for(|&n| n >= 1).await.unwrap();
        assert_eq!(pool.stats().refills, 0, "the first step made a key");

        // Taking a key wakes the task; it looks again and must park again.
        pool.generate(&DomainName::parse("example.com").unwrap())
            .await
            .unwrap();
        steps.wait_for(|&n| n >= 2).await.unwrap();
        let stats = pool.stats();
        assert_eq!(
            (stats.refills, stats.generated_inline, stats.depth),
            (0, 1, 0),
            "a key taken from a zero pool was replaced"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pooled_keys_are_distinct_and_get_fresh_selectors() {
        let pool = pool(4);
        let _refill = pool.start_refill();
        wait_for_depth(&pool, 4).await;
        let domain = DomainName::parse("example.com").unwrap();

        let a = pool.generate(&domain).await.unwrap();
        let b = pool.generate(&domain).await.unwrap();

        assert_ne!(a.public_key, b.public_key);
        assert_ne!(a.selector, b.selector);
    }

    #[test]
    fn dropping_the_pool_ends_the_refill_task() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = pool(1);
        let task = {
            let _context = runtime.enter();
            pool.start_refill()
        };
        runtime.block_on(wait_for_depth(&pool, 1));

        drop(pool);

        let ended =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await });
        assert!(
            matches!(ended, Ok(Ok(()))),
            "the refill task kept running after the pool was dropped"
        );
    }
}
