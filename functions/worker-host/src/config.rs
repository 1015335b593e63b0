//! The Worker's typed configuration, read from the `Env` bindings once per request or batch.
//!
//! Binding names are the constants below; they match `wrangler.toml` character for character.
//! Nothing below the entry points reads the environment.

use anyhow::Context as _;
use shared::http::Keys;
use worker::Env;

/// The D1 database, the source of truth.
pub(crate) const DB_BINDING: &str = shared::adapters::d1::D1_BINDING;
/// The KV namespace holding the catalog listing cache.
pub(crate) const CATALOG_CACHE_BINDING: &str = "CATALOG_CACHE";
/// The jobs queue (producer side).
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
pub(crate) const JOBS_BINDING: &str = "JOBS";
/// The jobs queue's dead-letter queue (producer side, for permanent failures).
pub(crate) const JOBS_DLQ_BINDING: &str = "JOBS_DLQ";
/// A variable naming the dead-letter queue, so the queue handler knows a batch from it for what it is.
pub(crate) const JOBS_DLQ_QUEUE_BINDING: &str = "JOBS_DLQ_QUEUE";
/// The master secret (a Worker secret: `wrangler secret put`, or `.dev.vars` locally).
pub(crate) const SECRET_BINDING: &str = "STOREFRONT_SECRET";
/// `"true"` to write the demo catalog into an empty store on the cron trigger.
pub(crate) const DEMO_SEED_BINDING: &str = "DEMO_SEED";

/// What the Worker needs besides its storage bindings.
pub(crate) struct Config {
    /// Keys derived from the master secret.
    pub(crate) keys: Keys,
    /// Whether the cron trigger seeds the demo catalog.
    pub(crate) demo_seed: bool,
}

impl Config {
    /// Reads and checks the configuration.
    ///
    /// # Errors
    /// Names the missing or invalid binding.
    pub(crate) fn from_worker_env(env: &Env) -> anyhow::Result<Self> {
        let secret = env
            .secret(SECRET_BINDING)
            .map_err(|_| anyhow::anyhow!("the secret {SECRET_BINDING} must be set"))?
            .to_string();
        let keys = Keys::derive(secret.as_bytes()).with_context(|| format!("the secret {SECRET_BINDING} is too short"))?;
        let demo_seed = env.var(DEMO_SEED_BINDING).is_ok_and(|value| value.to_string() == "true");
        Ok(Self { keys, demo_seed })
    }
}
