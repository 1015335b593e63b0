//! A token-bucket rate limiter kept in the [`ItemStore`], so every instance of every host shares one count.
//!
//! Layout in the store:
//!
//! | item | partition key | sort key | document | expires |
//! | --- | --- | --- | --- | --- |
//! | bucket | `RATE#<scope>#<SHA-256 of the key, hex>` | `RATE` | milli-tokens left, time of the last take | when full again |
//!
//! The key (a client address or an e-mail address) is stored only as a hash, so the limiter's items hold no
//! personal data. A check reads the bucket, refills it for the time passed, and takes one token with a write
//! conditioned on the version read (or on absence for a new bucket); when another instance got in between it
//! reads again. A bucket that is not written expires once it would be full, and an absent bucket is full, so
//! the time-to-live loses nothing. Being limited writes nothing. This module owns no clock: time comes in as
//! an argument.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ports::Timestamp;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, StoreError};

const MILLI: u64 = 1000;
const BUCKET_SK: &str = "RATE";
/// How often a check re-reads when other instances keep changing the bucket; after that it answers Limited.
const CHECK_ATTEMPTS: usize = 8;

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSettings {
    /// Tokens a full bucket holds: the burst allowed after a quiet spell.
    pub capacity: u32,
    /// One token comes back every this long: the sustained rate.
    pub refill_every: Duration,
}

impl BucketSettings {
    /// Login attempts per client address: a burst of 20, then one every 3 seconds (20 a minute), enough for a
    /// shared office address and far too few for password spraying.
    pub const LOGIN_PER_CLIENT: Self = Self { capacity: 20, refill_every: Duration::from_secs(3) };
    /// Login attempts per account: a burst of 5, then one a minute, so guessing one account's password runs at
    /// most about 1,440 tries a day from any number of addresses while its owner, who types it once, is
    /// rarely held up.
    pub const LOGIN_PER_ACCOUNT: Self = Self { capacity: 5, refill_every: Duration::from_secs(60) };

    fn refill_millis(self) -> u64 {
        u64::try_from(self.refill_every.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Go ahead; a token was taken.
    Allowed,
    /// Not now: the bucket is empty.
    Limited {
        /// Whole seconds until a token is back (at least 1), for `Retry-After`.
        retry_after_secs: u64,
    },
}

/// What can go wrong with the limiter.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The store failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for RateLimitError {
    fn from(error: StoreError) -> Self {
        RateLimitError::Internal(anyhow::Error::new(error).context("rate-limit store call failed"))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bucket {
    milli_tokens: u64,
    updated_at: Timestamp,
}

/// One family of buckets (a scope such as `login-client`), all with the same settings.
#[derive(Debug, Clone)]
pub struct RateLimiter<S> {
    store: S,
    scope: String,
    settings: BucketSettings,
}

impl<S: ItemStore> RateLimiter<S> {
    /// A limiter for `scope` (a short name such as `login-client`; it keeps scopes' buckets apart).
    pub fn new(store: S, scope: impl Into<String>, settings: BucketSettings) -> Self {
        Self { store, scope: scope.into(), settings }
    }

    fn key(&self, key: &str) -> ItemKey {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        ItemKey::new(format!("RATE#{}#{hex}", self.scope), BUCKET_SK)
    }

    /// Takes a token from the bucket of `key` if it has one.
    ///
    /// # Errors
    /// [`RateLimitError::Internal`] when the store fails.
    pub async fn check(&self, key: &str, now: Timestamp) -> Result<RateDecision, RateLimitError> {
        let item_key = self.key(key);
        let capacity = u64::from(self.settings.capacity) * MILLI;
        let refill_millis = self.settings.refill_millis();
        for _ in 0..CHECK_ATTEMPTS {
            let current = self.store.get(&item_key).await?;
            let (tokens, condition, version) = match current {
                None => (capacity, Condition::NotExists, 0),
                Some(item) => {
                    let version = item.version;
                    let bucket: Bucket = serde_json::from_value(item.data)
                        .map_err(|error| anyhow::Error::new(error).context("decode a stored rate-limit bucket"))?;
                    let elapsed =
                        u64::try_from(now.as_millis().saturating_sub(bucket.updated_at.as_millis())).unwrap_or(0);
                    let refilled = elapsed.saturating_mul(MILLI) / refill_millis;
                    (
                        bucket.milli_tokens.saturating_add(refilled).min(capacity),
                        Condition::VersionEquals(version),
                        version,
                    )
                }
            };
            if tokens < MILLI {
                let wait_millis = (MILLI - tokens).saturating_mul(refill_millis).div_ceil(MILLI);
                return Ok(RateDecision::Limited { retry_after_secs: wait_millis.div_ceil(1000).max(1) });
            }
            let left = tokens - MILLI;
            let bucket = Bucket { milli_tokens: left, updated_at: now };
            let data =
                serde_json::to_value(bucket).map_err(|error| anyhow::Error::new(error).context("encode a bucket"))?;
            let mut item = Item::new(item_key.clone(), version + 1, data);
            let full_in_millis = (capacity - left).saturating_mul(refill_millis).div_ceil(MILLI);
            let full_at = now.plus_millis(i64::try_from(full_in_millis).unwrap_or(i64::MAX));
            item.expires_at = Some(full_at.plus_millis(999).as_secs().saturating_add(1));
            match self.store.put(item, condition).await {
                Ok(()) => return Ok(RateDecision::Allowed),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        // Many instances are taking from this bucket at once: failing closed is the safe answer for a limiter.
        Ok(RateDecision::Limited { retry_after_secs: 1 })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::ManualClock;
    use crate::ports::Clock;

    const SETTINGS: BucketSettings = BucketSettings { capacity: 3, refill_every: Duration::from_secs(10) };

    async fn an_empty_bucket_limits_with_a_retry_after_and_refills(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let limiter = RateLimiter::new(store, "test", SETTINGS);
        for _ in 0..3 {
            assert_eq!(limiter.check("10.0.0.1", clock.now()).await.ok(), Some(RateDecision::Allowed));
        }
        assert_eq!(
            limiter.check("10.0.0.1", clock.now()).await.ok(),
            Some(RateDecision::Limited { retry_after_secs: 10 })
        );
        assert_eq!(limiter.check("10.0.0.2", clock.now()).await.ok(), Some(RateDecision::Allowed), "keys are apart");
        clock.advance(Duration::from_secs(4));
        assert_eq!(
            limiter.check("10.0.0.1", clock.now()).await.ok(),
            Some(RateDecision::Limited { retry_after_secs: 6 })
        );
        clock.advance(Duration::from_secs(6));
        assert_eq!(limiter.check("10.0.0.1", clock.now()).await.ok(), Some(RateDecision::Allowed), "one token back");
        assert!(matches!(limiter.check("10.0.0.1", clock.now()).await, Ok(RateDecision::Limited { .. })));
        clock.advance(Duration::from_secs(3600));
        for _ in 0..3 {
            assert_eq!(limiter.check("10.0.0.1", clock.now()).await.ok(), Some(RateDecision::Allowed));
        }
        assert!(matches!(limiter.check("10.0.0.1", clock.now()).await, Ok(RateDecision::Limited { .. })), "capped");
    }

    async fn scopes_do_not_share_buckets_and_keys_are_hashed(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let clients = RateLimiter::new(store.clone(), "client", BucketSettings { capacity: 1, ..SETTINGS });
        let accounts = RateLimiter::new(store.clone(), "account", BucketSettings { capacity: 1, ..SETTINGS });
        assert_eq!(clients.check("alice@example.com", clock.now()).await.ok(), Some(RateDecision::Allowed));
        assert_eq!(accounts.check("alice@example.com", clock.now()).await.ok(), Some(RateDecision::Allowed));
        let item = store.get(&clients.key("alice@example.com")).await.unwrap_or_else(|e| panic!("{e}"));
        let item = item.unwrap_or_else(|| panic!("no bucket item"));
        assert!(!item.key.pk.contains("alice") && !item.data.to_string().contains("alice"));
        assert!(item.expires_at.is_some_and(|expiry| expiry > clock.now().as_secs()));
    }

    async fn a_bucket_item_expires_once_full_again(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let limiter = RateLimiter::new(store.clone(), "ttl", SETTINGS);
        assert_eq!(limiter.check("k", clock.now()).await.ok(), Some(RateDecision::Allowed));
        clock.advance(Duration::from_secs(12));
        assert!(store.get(&limiter.key("k")).await.unwrap_or_else(|e| panic!("{e}")).is_none());
        for _ in 0..3 {
            assert_eq!(limiter.check("k", clock.now()).await.ok(), Some(RateDecision::Allowed));
        }
    }

    async fn concurrent_checks_never_hand_out_more_than_the_capacity(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let limiter = Arc::new(RateLimiter::new(store, "race", BucketSettings { capacity: 5, ..SETTINGS }));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limiter, now) = (limiter.clone(), clock.now());
                tokio::spawn(async move { limiter.check("203.0.113.9", now).await })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if let Ok(Ok(RateDecision::Allowed)) = task.await {
                allowed += 1;
            }
        }
        assert!(allowed <= 5, "{allowed} allowed");
        assert!(allowed >= 1);
    }

    crate::test_stores::each_store!(
        an_empty_bucket_limits_with_a_retry_after_and_refills,
        scopes_do_not_share_buckets_and_keys_are_hashed,
        a_bucket_item_expires_once_full_again,
        concurrent_checks_never_hand_out_more_than_the_capacity,
    );
}
