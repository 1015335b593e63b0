//! Workers KV as a cache of rendered catalog listings: text values under string keys, each with an expiry.
//!
//! KV is eventually consistent (a write may take up to a minute to show elsewhere), so it never holds the
//! source of truth; callers key their entries so that a stale entry is never looked up (see the Worker host's
//! `cache` module). A cache failure must never fail a request: reads that fail count as misses and writes
//! that fail are dropped, both logged.

use worker::KvStore;
use worker::send::SendFuture;

/// The largest key KV accepts, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// KV's shortest expiry, in seconds.
pub const MIN_KV_TTL_SECS: u64 = 60;

/// A text cache on a KV namespace.
#[derive(Clone)]
pub struct KvListingCache {
    kv: KvStore,
}

impl KvListingCache {
    /// A cache on the namespace.
    pub fn new(kv: KvStore) -> Self {
        Self { kv }
    }

    /// The cached text under `key`, or `None` on a miss, an over-long key or a failed read.
    pub async fn get(&self, key: &str) -> Option<String> {
        if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
            return None;
        }
        let kv = self.kv.clone();
        let key = key.to_owned();
        SendFuture::new(async move {
            match kv.get(&key).text().await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(error = %error, "kv cache read failed; treating it as a miss");
                    None
                }
            }
        })
        .await
    }

    /// Keeps `value` under `key` for `ttl_secs` (at least [`MIN_KV_TTL_SECS`]). Failures are logged and
    /// dropped: the next reader computes the value again.
    pub async fn put(&self, key: &str, value: &str, ttl_secs: u64) {
        if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
            return;
        }
        let kv = self.kv.clone();
        let key = key.to_owned();
        let value = value.to_owned();
        SendFuture::new(async move {
            let write = match kv.put(&key, value) {
                Ok(builder) => builder.expiration_ttl(ttl_secs.max(MIN_KV_TTL_SECS)).execute().await,
                Err(error) => Err(error),
            };
            if let Err(error) = write {
                tracing::warn!(error = %error, "kv cache write failed; dropped");
            }
        })
        .await;
    }
}
