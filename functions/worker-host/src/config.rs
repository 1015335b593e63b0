//! The Worker's typed configuration, read from the `Env` bindings once per request or batch.
//!
//! Binding names are the constants below; they match `wrangler.toml` character for character.
//! Nothing below the entry points reads the environment.

use anyhow::Context as _;
use shared::adapters::argon2::{self, Argon2Settings};
use shared::domain::Email;
use shared::http::Keys;
use shared::rate_limit::BucketSettings;
use worker::Env;

/// The D1 database, the source of truth.
pub(crate) const DB_BINDING: &str = shared::adapters::d1::D1_BINDING;
/// The docs Worker (`functions/docs/wrangler.toml`, a service binding): the page `/docs` and its files as Workers
/// Static Assets.
pub(crate) const DOCS_BINDING: &str = "DOCS";
/// The KV namespace holding the catalog listing cache.
pub(crate) const CATALOG_CACHE_BINDING: &str = "CATALOG_CACHE";
/// The jobs queue (producer side).
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
pub(crate) const JOBS_BINDING: &str = "JOBS";
/// The jobs queue's dead-letter queue (producer side, for permanent failures).
pub(crate) const JOBS_DLQ_BINDING: &str = "JOBS_DLQ";
/// A variable naming the dead-letter queue, so the queue handler knows a batch from it for what it is.
pub(crate) const JOBS_DLQ_QUEUE_BINDING: &str = "JOBS_DLQ_QUEUE";
/// A variable naming the jobs queue: the queue handler runs jobs only from the queue it names.
pub(crate) const JOBS_QUEUE_BINDING: &str = "JOBS_QUEUE";
/// The privacy queue (producer side): the outbox publishes `shared::jobs::privacy` jobs to it.
pub(crate) const PRIVACY_BINDING: &str = "PRIVACY";
/// A variable naming the privacy queue, so the queue handler knows a batch from it for what it is.
pub(crate) const PRIVACY_QUEUE_BINDING: &str = "PRIVACY_QUEUE";
/// The orders queue (producer side): the outbox publishes `order.created` and `order.cancelled` to it.
pub(crate) const ORDERS_BINDING: &str = "ORDERS";
/// A variable naming the orders queue, so the queue handler knows a batch from it for what it is.
pub(crate) const ORDERS_QUEUE_BINDING: &str = "ORDERS_QUEUE";
/// The master secret (a Worker secret: `wrangler secret put`, or `.dev.vars` locally).
pub(crate) const SECRET_BINDING: &str = "STOREFRONT_SECRET";
/// `"true"` to write the demo catalog into an empty store on the cron trigger.
pub(crate) const DEMO_SEED_BINDING: &str = "DEMO_SEED";
/// A variable: the e-mail address whose registration gets the admin role (the first admin). Optional.
pub(crate) const ADMIN_EMAIL_BINDING: &str = "STOREFRONT_ADMIN_EMAIL";
/// A variable: login attempts allowed per client address in a burst (a whole number). Optional; the default
/// is `BucketSettings::LOGIN_PER_CLIENT`.
pub(crate) const LOGIN_ATTEMPTS_PER_CLIENT_BINDING: &str = "STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT";
/// A variable: Argon2id's memory per password hash in KiB. Optional (OWASP's 19456); with the next two, never
/// cheaper than an OWASP minimum.
pub(crate) const ARGON2_MEMORY_KIB_BINDING: &str = argon2::ARGON2_MEMORY_KIB;
/// A variable: Argon2id's passes over the memory. Optional (2).
pub(crate) const ARGON2_ITERATIONS_BINDING: &str = argon2::ARGON2_ITERATIONS;
/// A variable: Argon2id's lanes. Optional (1).
pub(crate) const ARGON2_PARALLELISM_BINDING: &str = argon2::ARGON2_PARALLELISM;

/// The cron trigger that relays the outbox and sweeps the checkouts (`wrangler.toml`'s `[triggers]`, character
/// for character).
///
/// Every minute, Cron Triggers' finest schedule: the outbox is the fallback for a job whose publication right
/// after its commit failed, so the relay bounds how late such a job reaches its queue, and a privacy request
/// should not wait a quarter of an hour because a send failed once. The checkout sweep settles orders left
/// reserved past their two minutes' grace, so a shopper whose checkout died learns its fate within about three
/// minutes. A run that finds nothing to do costs two D1 queries.
pub(crate) const RELAY_CRON: &str = "* * * * *";
/// Test builds only: the orders dead-letter queue's name, so the queue handler records what reaches it.
#[cfg(feature = "testkit")]
pub(crate) const ORDERS_DLQ_QUEUE_BINDING: &str = "ORDERS_DLQ_QUEUE";
/// The cron trigger of the daily sales report: 00:15 UTC, once the day's last order events are in.
pub(crate) const REPORT_CRON: &str = "15 0 * * *";
/// The `send_email` binding the shop's mail goes out on.
pub(crate) const EMAIL_BINDING: &str = "EMAIL";
/// The producer bindings of the privacy and orders queues' dead-letter queues (a message that can never succeed
/// is sent there at once).
pub(crate) const PRIVACY_DLQ_BINDING: &str = "PRIVACY_DLQ";
/// See [`PRIVACY_DLQ_BINDING`].
pub(crate) const ORDERS_DLQ_BINDING: &str = "ORDERS_DLQ";
/// The sender of the shop's mail (a verified sender address on Cloudflare Email Routing).
pub(crate) const MAIL_FROM_BINDING: &str = "STOREFRONT_MAIL_FROM";
/// More admin addresses, comma-separated.
pub(crate) const ALERTS_TO_BINDING: &str = "STOREFRONT_ALERTS_TO";
/// Browser origins, comma-separated, that may call `POST /mcp` besides loopback ones.
pub(crate) const MCP_ALLOWED_ORIGINS_BINDING: &str = "STOREFRONT_MCP_ALLOWED_ORIGINS";

/// Every variable [`Config::from_worker_env`] reads (the secret aside): the isolate's state is built again when
/// one of them changes (`app::built`).
pub(crate) const STATE_VARIABLES: [&str; 7] = [
    DEMO_SEED_BINDING,
    ADMIN_EMAIL_BINDING,
    LOGIN_ATTEMPTS_PER_CLIENT_BINDING,
    ARGON2_MEMORY_KIB_BINDING,
    ARGON2_ITERATIONS_BINDING,
    ARGON2_PARALLELISM_BINDING,
    MCP_ALLOWED_ORIGINS_BINDING,
];
/// Test builds only: the orders consumer fails its batch, unsettled, after first handling an event of an order
/// whose id starts with this (a crash in the middle of a batch).
#[cfg(feature = "testkit")]
pub(crate) const FAULT_CRASH_ORDERS_BINDING: &str = "STOREFRONT_FAULT_CRASH_ORDERS";
/// Test builds only: events of orders whose id starts with this always fail.
#[cfg(feature = "testkit")]
pub(crate) const FAULT_POISON_ORDERS_BINDING: &str = "STOREFRONT_FAULT_POISON_ORDERS";

/// The cron trigger for housekeeping (expired items, the demo catalog): every 15 minutes, as before the relay.
/// Reads ignore expired items already, so sweeping them more often would only add D1 writes.
pub(crate) const HOUSEKEEPING_CRON: &str = "*/15 * * * *";

/// What the Worker needs besides its storage bindings.
pub(crate) struct Config {
    /// Keys derived from the master secret.
    pub(crate) keys: Keys,
    /// How many demo products the cron trigger seeds (`DEMO_SEED`: `true` for the demo, or a number).
    pub(crate) demo_seed: Option<usize>,
    /// The address whose registration becomes an admin, if configured.
    pub(crate) first_admin: Option<Email>,
    /// Login attempts per client address in a burst.
    pub(crate) login_attempts_per_client: u32,
    /// Argon2id's costs for new password hashes.
    pub(crate) password_params: Argon2Settings,
    /// The MCP endpoint's settings (the browser origins it allows).
    pub(crate) mcp: mcp::McpSettings,
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
        let demo_seed = shared::demo::seed_setting(optional_var(env, DEMO_SEED_BINDING).as_deref())
            .map_err(|reason| anyhow::anyhow!("the variable {DEMO_SEED_BINDING} {reason}"))?;
        let first_admin = match optional_var(env, ADMIN_EMAIL_BINDING) {
            // The address is configuration, not a request's personal data; still, say only what is wrong.
            Some(text) => Some(Email::parse(&text).map_err(|error| anyhow::anyhow!("the variable {ADMIN_EMAIL_BINDING}: {error}"))?),
            None => None,
        };
        let login_attempts_per_client = match optional_var(env, LOGIN_ATTEMPTS_PER_CLIENT_BINDING) {
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|attempts| *attempts > 0)
                .with_context(|| format!("the variable {LOGIN_ATTEMPTS_PER_CLIENT_BINDING} must be a whole number above 0"))?,
            None => BucketSettings::LOGIN_PER_CLIENT.capacity,
        };
        let password_params = Argon2Settings::configured(
            optional_var(env, ARGON2_MEMORY_KIB_BINDING).as_deref(),
            optional_var(env, ARGON2_ITERATIONS_BINDING).as_deref(),
            optional_var(env, ARGON2_PARALLELISM_BINDING).as_deref(),
        )
        .map_err(|error| {
            anyhow::anyhow!(
                "the variables {ARGON2_MEMORY_KIB_BINDING}, {ARGON2_ITERATIONS_BINDING}, {ARGON2_PARALLELISM_BINDING}: {error}"
            )
        })?;
        let mcp = mcp::McpSettings::from_list(&optional_var(env, MCP_ALLOWED_ORIGINS_BINDING).unwrap_or_default());
        Ok(Self { keys, demo_seed, first_admin, login_attempts_per_client, password_params, mcp })
    }
}

/// A variable's text, trimmed; `None` when it is unset or empty.
pub(crate) fn optional_var(env: &Env, name: &str) -> Option<String> {
    let text = env.var(name).ok()?.to_string();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
