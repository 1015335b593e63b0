//! The local host: one process that mounts every function's router on an embedded SQLite file and runs the
//! job consumers (the generic jobs, order events, privacy), the outbox relay, the checkout sweep and the daily
//! sales report in the background, with mail written as `.eml` files into a folder. Wiring only: no business
//! rules live here.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use shared::adapters::QueueSettings;
use shared::adapters::eml::EmlFolder;
use shared::jobs::Jobs;
use shared::mail::MailSettings;
use shared::adapters::argon2::{ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, Argon2Settings};
use shared::adapters::sqlite::{SqliteDb, SqliteItemStore, SqliteJobQueue};
use shared::adapters::system::{SystemClock, UuidIds};
use shared::auth::AuthSettings;
use shared::commerce::checkout::CommerceSettings;
use shared::payments::{BreakerSettings, RetryPolicy};
use shared::domain::Email;
use shared::http::{AppState, ClientAddress, Keys};
use shared::outbox::{Publisher, Topics};
use shared::ports::{Clock, IdGen};
use shared::rate_limit::BucketSettings;
use secrecy::SecretString;
use tokio::net::TcpListener;

pub mod consumer;
pub mod relay;
pub mod report_timer;
pub mod sweep;

/// The store this host runs on, named once.
pub type Store = SqliteItemStore;

/// The name of the job queue the host consumes.
pub const JOBS_QUEUE: &str = "jobs";
/// The name of the privacy queue (`privacy.export`, `privacy.erase`), consumed by the privacy job.
pub const PRIVACY_QUEUE: &str = "privacy";
/// The name of the orders queue (`order.created`, `order.cancelled`), consumed by the order-events job.
pub const ORDERS_QUEUE: &str = "orders";
/// How often the outbox relay looks for events that were committed but not yet published.
const RELAY_INTERVAL: Duration = Duration::from_secs(1);

/// Command-line and environment configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "local-host", about = "Serves the Storefront API locally on an embedded SQLite file, with a demo catalog.")]
pub struct Config {
    /// The address to listen on (keep it on loopback unless you mean to share it).
    #[arg(long, env = "STOREFRONT_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The port to listen on (0 picks a free one).
    #[arg(long, env = "STOREFRONT_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The SQLite file; created on first start. Its secret key is kept beside it as `<file>.secret`.
    #[arg(long, env = "STOREFRONT_DATA", default_value = "data/storefront.db")]
    pub data: PathBuf,
    /// Do not write the demo catalog into an empty store.
    #[arg(long, env = "STOREFRONT_NO_SEED")]
    pub no_seed: bool,
    /// How many products the demo catalog written into an empty store holds: the demo's 210, or more from the
    /// generated catalog (the search benchmark uses 10000).
    #[arg(long, env = "STOREFRONT_DEMO_PRODUCTS", default_value_t = shared::demo::DEMO_PRODUCT_COUNT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=shared::demo::MAX_GENERATED_PRODUCTS as u64))]
    pub demo_products: usize,
    /// Log filter, as in `RUST_LOG` (for example `info` or `local_host=debug,info`).
    #[arg(long, env = "STOREFRONT_LOG", default_value = "info")]
    pub log: String,
    /// The e-mail address whose registration (`POST /auth/register`) gets the admin role: the first admin.
    /// Register it yourself before anyone else can; other addresses become customers.
    #[arg(long, env = "STOREFRONT_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Login attempts allowed per client address in a burst (then one more every 3 seconds).
    #[arg(long, env = "STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT", default_value_t = BucketSettings::LOGIN_PER_CLIENT.capacity)]
    pub login_attempts_per_client: u32,
    /// Argon2id memory per password hash, in KiB (default 19456, OWASP's minimum with 2 passes). The memory and
    /// passes together must be at least as costly as one of OWASP's recommended pairs.
    #[arg(long, env = ARGON2_MEMORY_KIB, value_name = "KIB")]
    pub argon2_memory_kib: Option<String>,
    /// Argon2id passes over the memory (default 2).
    #[arg(long, env = ARGON2_ITERATIONS, value_name = "PASSES")]
    pub argon2_iterations: Option<String>,
    /// Argon2id lanes (default 1).
    #[arg(long, env = ARGON2_PARALLELISM, value_name = "LANES")]
    pub argon2_parallelism: Option<String>,
    /// Hash passwords with Argon2's cheapest parameters instead of OWASP's. For test runs of a debug build
    /// only: it makes guessing a stored password almost free. Cannot be combined with the `--argon2-*` settings.
    #[arg(long, env = "STOREFRONT_INSECURE_FAST_PASSWORDS", conflicts_with_all = ["argon2_memory_kib", "argon2_iterations", "argon2_parallelism"])]
    pub insecure_fast_passwords: bool,
    /// How long a checkout holds its `Idempotency-Key` before a retry with the key may take it over, in seconds
    /// (a request whose process died leaves its key in use this long). Longer than any checkout runs.
    #[arg(long, env = "STOREFRONT_CHECKOUT_LEASE_SECS", default_value_t = shared::idempotency::DEFAULT_LEASE_SECS, value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub checkout_lease_secs: i64,
    /// How long an order may stay reserved (payment unsettled) before the checkout sweep settles it, in seconds.
    #[arg(long, env = "STOREFRONT_SWEEP_GRACE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub sweep_grace_secs: u64,
    /// The payment provider: `sandbox` (the built-in test-mode processor, its ledger in the data file) or `stripe`
    /// (Stripe's API; needs a build with `--features stripe` and `--stripe-secret-key`).
    #[arg(long, env = "STOREFRONT_PAYMENTS", default_value = "sandbox", value_parser = ["sandbox", "stripe"])]
    pub payments: String,
    /// Stripe's secret key (`sk_test_...`), for `--payments stripe`. A secret: prefer the environment variable.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true, value_parser = secret)]
    pub stripe_secret_key: Option<SecretString>,
    /// Stripe's API base URL (default `https://api.stripe.com`; `http://127.0.0.1:<port>` for localstripe).
    #[arg(long, env = "STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// How often the checkout sweep runs, in seconds.
    #[arg(long, env = "STOREFRONT_SWEEP_INTERVAL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sweep_interval_secs: u64,
    /// The folder the shop's e-mails are written to, one `.eml` file each (default: `<data file>.mail` beside
    /// the data file). Open them with any mail client.
    #[arg(long, env = "STOREFRONT_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// The sender of the shop's e-mails (default `shop@storefront.test`).
    #[arg(long, env = "STOREFRONT_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// More addresses, comma-separated, that get the admins' mail (low-stock alerts, sales reports) besides
    /// `--admin-email`.
    #[arg(long, env = "STOREFRONT_ALERTS_TO")]
    pub alerts_to: Option<String>,
    /// Browser origins, comma-separated, that may call `POST /mcp` besides loopback ones (an `Origin` header
    /// naming any other answers 403; clients that send none, such as the MCP SDKs, are always served).
    #[arg(long, env = "STOREFRONT_MCP_ALLOWED_ORIGINS", default_value = "")]
    pub mcp_allowed_origins: String,
    /// How often the sales-report job runs, in seconds: each run closes yesterday's report (UTC) once and mails
    /// it to the admins; later runs find it closed.
    #[arg(long, env = "STOREFRONT_REPORT_INTERVAL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub report_interval_secs: u64,
    /// How long a job taken by a consumer stays invisible before it is delivered again (a crashed consumer's
    /// jobs come back after this), in seconds.
    #[arg(long, env = "STOREFRONT_QUEUE_VISIBILITY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub queue_visibility_secs: u64,
    /// Test fault (debug builds only): the orders consumer exits the process after handling this many events,
    /// before settling its batch, as a crash would.
    #[cfg(debug_assertions)]
    #[arg(long, env = "STOREFRONT_FAULT_CRASH_AFTER_JOBS")]
    pub fault_crash_after_jobs: Option<u32>,
    /// Test fault (debug builds only): events of orders whose id starts with this always fail, so they reach
    /// the dead-letter queue after the queue's attempts.
    #[cfg(debug_assertions)]
    #[arg(long, env = "STOREFRONT_FAULT_POISON_ORDERS")]
    pub fault_poison_orders: Option<String>,
}

impl Config {
    /// The mail folder: `--mail-dir`, or `<data file>.mail` beside the data file.
    pub fn mail_folder(&self) -> PathBuf {
        self.mail_dir.clone().unwrap_or_else(|| {
            let mut folder = self.data.as_os_str().to_owned();
            folder.push(".mail");
            PathBuf::from(folder)
        })
    }

    fn faults(&self) -> (Option<u32>, Option<String>) {
        #[cfg(debug_assertions)]
        return (self.fault_crash_after_jobs, self.fault_poison_orders.clone());
        #[cfg(not(debug_assertions))]
        (None, None)
    }
}

/// A secret flag or variable, kept out of `Debug` output.
fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// Writes JSON log lines to standard error, filtered by `filter`.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Reads the master secret kept beside the data file, creating it (32 random bytes, owner-only) if absent.
/// The secret never appears in logs.
fn load_or_create_secret(data: &Path) -> anyhow::Result<Vec<u8>> {
    let mut path = data.as_os_str().to_owned();
    path.push(".secret");
    let path = PathBuf::from(path);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return hex::decode(text.trim()).with_context(|| format!("{} is not a hex secret", path.display()));
    }
    let mut secret = vec![0_u8; 32];
    getrandom::fill(&mut secret).map_err(|error| anyhow::anyhow!("no randomness for the secret: {error}"))?;
    let hex = hex::encode(&secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("failed to create {}", path.display()))?;
    std::io::Write::write_all(&mut file, hex.as_bytes()).context("failed to write the secret")?;
    Ok(secret)
}

/// Puts the connection's peer address into the request as the [`ClientAddress`]. Only the socket counts:
/// this host has no proxy in front of it, so a header such as `X-Forwarded-For` is the client's own claim.
async fn client_address(req: Request, next: Next) -> Response {
    let mut req = req;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
    if let Some(peer) = peer {
        req.extensions_mut().insert(ClientAddress(peer));
    }
    next.run(req).await
}

/// Every function's router, mounted on one router with problem-document fallbacks, with the MCP endpoint
/// allowing loopback browser origins only. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so that login can be limited per client.
pub fn app(state: AppState<Store>) -> Router {
    app_with(state, mcp::McpSettings::default())
}

/// [`app`] with the MCP endpoint's settings.
pub fn app_with(state: AppState<Store>, mcp_settings: mcp::McpSettings) -> Router {
    let (clock, ids) = (state.clock.clone(), state.ids.clone());
    let routes = Router::new()
        .merge(health::router(state.clone()))
        .merge(products::router(state.clone()))
        .merge(product::router(state.clone()))
        .merge(register::router(state.clone()))
        .merge(login::router(state.clone()))
        .merge(refresh::router(state.clone()))
        .merge(logout::router(state.clone()))
        .merge(me::router(state.clone()))
        .merge(cart::router(state.clone()))
        .merge(discounts::router(state.clone()))
        .merge(checkout::router(state.clone()))
        .merge(orders::router(state.clone()))
        .merge(payments::router(state.clone()))
        .merge(reports::router(state.clone()))
        .merge(openapi::router(state.clock.clone(), state.ids.clone()))
        .merge(docs::router(state.clock.clone(), state.ids.clone()))
        .merge(mcp::router_with(state, mcp_settings));
    shared::http::context::with_unrouted(routes, clock, ids)
        .layer(axum::middleware::from_fn(shared::http::extract::buffer_body))
        .layer(axum::middleware::from_fn(client_address))
}

/// The authentication settings and Argon2id costs of `config`.
fn account_settings(config: &Config) -> anyhow::Result<(AuthSettings, Argon2Settings)> {
    let first_admin = match &config.admin_email {
        // The address is configuration, not personal data of a request; still, say only what is wrong.
        Some(text) => Some(Email::parse(text).map_err(|error| anyhow::anyhow!("--admin-email / STOREFRONT_ADMIN_EMAIL: {error}"))?),
        None => None,
    };
    let settings = AuthSettings::for_host(first_admin, config.login_attempts_per_client);
    let password_params = if config.insecure_fast_passwords {
        tracing::warn!("passwords are hashed with insecure test parameters (--insecure-fast-passwords)");
        Argon2Settings::insecure_for_tests()
    } else {
        Argon2Settings::configured(
            config.argon2_memory_kib.as_deref(),
            config.argon2_iterations.as_deref(),
            config.argon2_parallelism.as_deref(),
        )
        .context("--argon2-memory-kib / --argon2-iterations / --argon2-parallelism")?
    };
    Ok((settings, password_params))
}

/// The payment provider `config` asks for, or `None` for the sandbox (the state's default).
fn payments(config: &Config) -> anyhow::Result<Option<Arc<dyn shared::ports::Payments>>> {
    if config.payments != "stripe" {
        return Ok(None);
    }
    #[cfg(feature = "stripe")]
    {
        use shared::adapters::stripe::{StripePayments, StripeSettings};
        let key = config.stripe_secret_key.clone().filter(|key| !secrecy::ExposeSecret::expose_secret(key).trim().is_empty());
        let key = key.context("--payments stripe needs --stripe-secret-key / STRIPE_SECRET_KEY")?;
        let mut settings = StripeSettings::new(key);
        if let Some(base) = &config.stripe_api_base {
            settings.api_base = base.parse().context("--stripe-api-base / STRIPE_API_BASE is not a URL")?;
        }
        let stripe = StripePayments::new(settings).context("--payments stripe")?;
        tracing::info!("payments go to Stripe");
        Ok(Some(Arc::new(stripe)))
    }
    #[cfg(not(feature = "stripe"))]
    anyhow::bail!("--payments stripe needs a build with Stripe support: cargo run -p local-host --features stripe")
}

/// A running server.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many demo products this start wrote (0 when the store already had them).
    pub seeded: usize,
    /// Resolves when the server and consumers have stopped.
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Opens the store, seeds it if empty, binds the listener and starts serving and consuming until `shutdown`.
///
/// # Errors
/// When the data file, its secret or the port cannot be used.
pub async fn start(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<Running> {
    if let Some(parent) = config.data.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids: Arc<dyn IdGen> = Arc::new(UuidIds);
    let db = SqliteDb::open(&config.data, clock.clone())?;
    let keys = Keys::derive(&load_or_create_secret(&config.data)?).context("the data file's secret is too short")?;
    let queue_settings = QueueSettings { visibility_timeout: Duration::from_secs(config.queue_visibility_secs), ..QueueSettings::default() };
    let privacy_queue = db.job_queue(PRIVACY_QUEUE, queue_settings);
    let orders_queue = db.job_queue(ORDERS_QUEUE, queue_settings);
    let publisher: Publisher = Arc::new(Topics { privacy: privacy_queue.clone(), orders: Some(orders_queue.clone()) });
    let mail_settings = MailSettings::configured(config.mail_from.as_deref(), config.admin_email.as_deref(), config.alerts_to.as_deref())
        .map_err(|message| anyhow::anyhow!("--mail-from / --admin-email / --alerts-to: {message}"))?;
    let mail_folder = config.mail_folder();
    let mailer = EmlFolder::open(&mail_folder, clock.clone())?;
    let (crash_after, poison) = config.faults();
    let jobs = Jobs::new(db.item_store(), Arc::new(mailer), clock.clone(), mail_settings).with_poison_prefix(poison);
    let (settings, password_params) = account_settings(&config)?;
    let state = AppState::configured(db.item_store(), clock.clone(), ids.clone(), keys, settings, password_params)
        .context("invalid password parameters")?
        .with_publisher(publisher.clone())
        .with_sleep(Arc::new(sweep::TokioSleep))
        .with_idempotency_lease(config.checkout_lease_secs)
        .with_payment_timing(
            RetryPolicy::default(),
            BreakerSettings::default(),
            CommerceSettings { sweep_grace: Duration::from_secs(config.sweep_grace_secs) },
        );
    let state = match payments(&config)? {
        Some(provider) => state.with_payments(provider),
        None => state,
    };
    let seeded = if config.no_seed { 0 } else { state.catalog.seed_demo_if_empty(config.demo_products, &ids, &clock).await? };
    let listener = TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("failed to listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr().context("no local address")?;
    let jobs_queue: SqliteJobQueue = db.job_queue(JOBS_QUEUE, QueueSettings::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let idle = Duration::from_millis(200);
    let no_crash = Arc::new(shared::jobs::CrashAfter::default());
    let generic = |delivery: shared::ports::Delivery| async move { shared::jobs::handle(&delivery).await };
    let consumer = tokio::spawn(consumer::run(jobs_queue, generic, no_crash.clone(), idle, stop_rx.clone()));
    let order_jobs = jobs.clone();
    let orders_handler = move |delivery: shared::ports::Delivery| {
        let jobs = order_jobs.clone();
        async move { jobs.orders(&delivery).await }
    };
    let orders_consumer = tokio::spawn(consumer::run(orders_queue, orders_handler, Arc::new(shared::jobs::CrashAfter::new(crash_after)), idle, stop_rx.clone()));
    let privacy_jobs = jobs.clone();
    let privacy_handler = move |delivery: shared::ports::Delivery| {
        let jobs = privacy_jobs.clone();
        async move { jobs.privacy(&delivery).await }
    };
    let privacy_consumer = tokio::spawn(consumer::run(privacy_queue, privacy_handler, no_crash, idle, stop_rx.clone()));
    let reporter = tokio::spawn(report_timer::run(jobs, Duration::from_secs(config.report_interval_secs), stop_rx.clone()));
    tracing::info!(folder = %mail_folder.display(), "mail is written to .eml files");
    let relay = tokio::spawn(relay::run(state.outbox(), publisher, RELAY_INTERVAL, stop_rx.clone()));
    let sweeper = tokio::spawn(sweep::run(state.commerce.clone(), Duration::from_secs(config.sweep_interval_secs), stop_rx));
    let router = app_with(state, mcp::McpSettings::from_list(&config.mcp_allowed_origins));
    let done = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        let _ = stop_tx.send(true);
        let _ = consumer.await;
        let _ = orders_consumer.await;
        let _ = privacy_consumer.await;
        let _ = reporter.await;
        let _ = relay.await;
        let _ = sweeper.await;
        served.context("the server failed")
    });
    Ok(Running { addr, seeded, done })
}

/// Starts the host, says where it listens, and serves until `shutdown`.
///
/// # Errors
/// As [`start`], or when the server fails.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let data = config.data.clone();
    let running = start(config, shutdown).await?;
    println!(
        "storefront local host listening on http://{} (data: {}, demo products written now: {})",
        running.addr,
        data.display(),
        running.seeded
    );
    running.done.await.context("the server task failed")?
}
