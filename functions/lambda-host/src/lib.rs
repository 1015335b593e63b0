//! The Lambda host crate, the AWS Lambda bootstrap every function's `main.rs` calls (feature `aws`): typed
//! configuration read once from the environment Lambda sets, the SDK clients built once per cold start, and the
//! entry shapes, [`run_http`] (`lambda_http` around a function's router, publishing committed outbox events
//! to the queues it is given), [`run_jobs`], [`run_order_events`] and [`run_privacy`] (`lambda_runtime` SQS
//! consumers that report partial batch failures; the last two mail through SES), [`run_sales_report`] (the daily
//! report on a schedule), [`run_outbox_relay`] (a scheduled `lambda_runtime` function that publishes what is left in the
//! outbox) and [`run_checkout_sweep`] (a scheduled `lambda_runtime` function that settles the orders a checkout
//! left reserved).
//! It holds wiring only: no rule lives here, and nothing below it reads the environment.
//!
//! Cold start is why the SDK is configured by hand instead of through `aws_config::load`: on Lambda the
//! region and the execution role's credentials are plain environment variables, so walking the provider
//! chain (profile files, SSO, web identity, the container and instance metadata services) buys nothing and
//! costs init time. The HTTPS client is built once here, with the trust roots compiled in (only the roots
//! AWS endpoints chain to), so no cold start reads the system trust store, and on ring rather than the SDK's
//! default aws-lc, which would add 1.5 MB to every function (at the cost of the post-quantum key exchange, which
//! rustls offers only with aws-lc).
//!
//! Without the feature `aws` the crate is empty, so that `cargo build --workspace` and `cargo test --workspace`
//! build neither the AWS SDK nor the Lambda runtime.
#![cfg(feature = "aws")]

pub mod auth;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn};
use tracing_subscriber::filter::LevelFilter;

use shared::adapters::QueueSettings;
use shared::adapters::argon2::Argon2Settings;
use shared::adapters::dynamodb::DynamoItemStore;
use shared::adapters::sqs::{SqsJobQueue, SqsJobSender};
use shared::adapters::system::{SystemClock, UuidIds};
use shared::auth::AuthSettings;
use shared::commerce::checkout::CommerceSettings;
use shared::commerce::{Commerce, CommerceParts, SweepReport};
use shared::http::{AppState, Keys};
use shared::outbox::{Outbox, Publish, PublishFuture, Publisher, RelayReport, Topic};
use shared::payments::SandboxPayments;
use shared::ports::{Clock, Delivery, IdGen, JobQueue as _, NewJob, Outcome, QueueError, Sleep, SleepFuture, StoreError};

/// The error a Lambda entry point returns.
pub type Error = lambda_runtime::Error;

/// Lambda's log format setting (advanced logging controls): `JSON` for one JSON object a line, else text.
pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// Lambda's application log level setting: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// The log level when Lambda sets none: a single level (`debug`, `warn`, ...); per-target directives are not read.
pub const RUST_LOG: &str = "RUST_LOG";

/// The region Lambda runs the function in.
pub const AWS_REGION: &str = "AWS_REGION";
/// The execution role's access key id (Lambda sets it).
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// The execution role's secret access key (Lambda sets it).
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// The execution role's session token (Lambda sets it; absent for long-term keys in local runs).
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// An endpoint for every AWS service (the SDKs' shared variable); for local emulators only.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// DynamoDB's endpoint, overriding [`AWS_ENDPOINT_URL`]; for local emulators only.
pub const AWS_ENDPOINT_URL_DYNAMODB: &str = "AWS_ENDPOINT_URL_DYNAMODB";
/// SQS's endpoint, overriding [`AWS_ENDPOINT_URL`]; for local emulators only.
pub const AWS_ENDPOINT_URL_SQS: &str = "AWS_ENDPOINT_URL_SQS";
/// The DynamoDB table's name (`template.yaml` sets it from the table resource).
pub const TABLE_NAME: &str = "TABLE_NAME";
/// The master secret every key is derived from, at least 32 bytes.
pub const STOREFRONT_SECRET: &str = "STOREFRONT_SECRET";
/// `"true"` to create the table and write the demo catalog at cold start, or a number for that many products
/// of the generated catalog (the search benchmark's 10000): for local runs on an empty DynamoDB Local only;
/// `template.yaml` never sets it.
pub const DEMO_SEED: &str = "DEMO_SEED";
/// The jobs queue's URL (a FIFO queue).
pub const JOBS_QUEUE_URL: &str = "JOBS_QUEUE_URL";
/// The jobs dead-letter queue's URL (a FIFO queue).
pub const JOBS_DEAD_LETTER_QUEUE_URL: &str = "JOBS_DEAD_LETTER_QUEUE_URL";
/// The privacy queue's URL (a FIFO queue), where outbox events of the `privacy` topic go. The outbox relay
/// needs it; an HTTP function publishes its committed privacy events right away when it is set, and otherwise
/// leaves them in the outbox for the relay. Only producers read it: nothing here receives from the privacy queue.
pub const PRIVACY_QUEUE_URL: &str = "PRIVACY_QUEUE_URL";
/// The orders queue's URL (a FIFO queue), where outbox events of the `orders` topic (`order.created`,
/// `order.cancelled`) go. The outbox relay needs it; an HTTP function or the checkout sweep publishes the order
/// events it commits right away when it is set, and otherwise leaves them in the outbox for the relay. Each
/// function is given the URL of exactly the topics it commits events to (the checkout, orders and sweep
/// functions this one, the me function [`PRIVACY_QUEUE_URL`]), so none may send to a queue it has no use for.
/// Only producers read it: nothing here receives from the orders queue.
pub const ORDERS_QUEUE_URL: &str = "ORDERS_QUEUE_URL";
/// Browser origins, comma-separated, that may call the MCP function besides loopback ones (the `mcp` function
/// only; an `Origin` naming any other answers 403, and clients that send none are always served).
pub const STOREFRONT_MCP_ALLOWED_ORIGINS: &str = "STOREFRONT_MCP_ALLOWED_ORIGINS";

/// The orders queue's dead-letter queue's URL (a FIFO queue), for the order-events function: events that can
/// never succeed are copied there at once.
pub const ORDERS_DEAD_LETTER_QUEUE_URL: &str = "ORDERS_DEAD_LETTER_QUEUE_URL";
/// The privacy queue's dead-letter queue's URL (a FIFO queue), for the privacy function.
pub const PRIVACY_DEAD_LETTER_QUEUE_URL: &str = "PRIVACY_DEAD_LETTER_QUEUE_URL";
/// The sender of the shop's mail, an SES verified identity (the address or its domain); unset or empty for
/// `shop@storefront.test`. `template.yaml` sets it from `MailFrom` and scopes the SES permission to it.
pub const STOREFRONT_MAIL_FROM: &str = "STOREFRONT_MAIL_FROM";
/// More addresses (comma-separated) that get the admins' mail besides [`auth::STOREFRONT_ADMIN_EMAIL`].
pub const STOREFRONT_ALERTS_TO: &str = "STOREFRONT_ALERTS_TO";
/// SES v2's endpoint, overriding [`AWS_ENDPOINT_URL`]; for local emulators only.
pub const AWS_ENDPOINT_URL_SESV2: &str = "AWS_ENDPOINT_URL_SESV2";
/// Test fault, read by debug builds only: when the order-events function has handled the first delivery of an
/// event of an order whose id starts with this, it fails the whole invocation before answering its batch, as a
/// crash in the middle of a batch would, so SQS delivers the batch again. Once per order on the machine (a marker
/// file in the temporary directory), so the redelivery, whichever instance takes it, goes through.
pub const STOREFRONT_FAULT_CRASH_ORDERS: &str = "STOREFRONT_FAULT_CRASH_ORDERS";
/// Test fault, read by debug builds only: events of orders whose id starts with this always fail.
pub const STOREFRONT_FAULT_POISON_ORDERS: &str = "STOREFRONT_FAULT_POISON_ORDERS";

/// The AWS SDK's own setting (every SDK crate reads it, once, when its first client is built): a file of endpoint
/// partitions to use instead of the SDK's compiled-in ones. Each SDK crate otherwise parses its copy of all eight
/// partitions (JSON, and a regular expression compiled per partition) at every cold start, about 0.36 million
/// instructions per SDK client, a quarter of a function's init. `template.yaml` points it, in the `aws`
/// partition only, at [`AWS_PARTITION_FILE`] as its layer installs it; nothing in this crate reads it.
pub const SMITHY_CLIENT_SDK_CUSTOM_PARTITION: &str = "SMITHY_CLIENT_SDK_CUSTOM_PARTITION";
/// Where the partition layer (`functions/lambda-host/layer`, `SdkPartitionLayer` in `template.yaml`) puts the `aws`
/// partition, alone and without its list of regions, which only named them: every region of the partition matches
/// its `regionRegex`, and a test checks that every SDK crate resolves the same endpoints from it as from its own data.
pub const AWS_PARTITION_FILE: &str = "/opt/aws-partition.json";

/// The most outbox events one run of the relay publishes: at a few milliseconds each, a run stays well inside
/// the function's timeout, and a backlog larger than this is worked off over the next scheduled runs.
pub const RELAY_MAX_PER_RUN: usize = 500;
/// How long an order may stay reserved (its payment unsettled) before the checkout sweep settles it, in whole
/// seconds from 1 to 86400; unset or empty for 120. It must exceed the longest a checkout runs (the function's
/// timeout, 29 s), or the sweep races live checkouts (safely, since every order change is versioned, but a charge
/// landing on an order the sweep released is then refunded). `template.yaml` sets it from `CheckoutSweepGraceSeconds`.
/// The same name as the local host's `--sweep-grace-secs`.
pub const STOREFRONT_SWEEP_GRACE_SECS: &str = "STOREFRONT_SWEEP_GRACE_SECS";
/// The payment provider: `sandbox` (unset or empty: the built-in test-mode processor, its ledger in the table) or
/// `stripe` (Stripe's API, for a function built with its feature `stripe`). `template.yaml` sets it from the
/// `PaymentsProvider` parameter for the functions that take payments: checkout, orders and checkout-sweep. The
/// same name as the local host's `--payments` (`shared::adapters::stripe::STOREFRONT_PAYMENTS`).
pub const STOREFRONT_PAYMENTS: &str = "STOREFRONT_PAYMENTS";
/// Stripe's secret key, required with `STOREFRONT_PAYMENTS=stripe`; a secret, never logged. `template.yaml` sets it
/// from the `NoEcho` parameter `StripeSecretKey`.
pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
/// Stripe's API base URL; unset or empty for Stripe's own (`https://api.stripe.com`). Only a loopback address may
/// be plain `http` (localstripe in tests). `template.yaml` sets it from the `StripeApiBase` parameter.
pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";
/// The most orders one run of the checkout sweep settles. Each takes a few store calls and one call to the
/// payment provider; a provider that stops answering opens the gateway's breaker after a few calls, so the rest
/// of the run fails fast and stays inside the function's timeout. Anything left waits for the next run.
pub const SWEEP_MAX_PER_RUN: usize = 100;

/// How long the SDK waits for a TCP (and TLS) connection: the SDK's own default.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set"))
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Where and as whom the SDK clients talk to AWS, from the variables Lambda sets for every function.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    region: Region,
    /// Redacted by its own `Debug`.
    credentials: Credentials,
    dynamodb_endpoint: Option<String>,
    sqs_endpoint: Option<String>,
    ses_endpoint: Option<String>,
}

impl AwsConfig {
    /// Reads the region, the credentials and the endpoint overrides.
    ///
    /// # Errors
    /// Names the first required variable that is missing.
    pub fn from_env() -> anyhow::Result<Self> {
        let credentials = Credentials::new(
            required(AWS_ACCESS_KEY_ID)?,
            required(AWS_SECRET_ACCESS_KEY)?,
            optional(AWS_SESSION_TOKEN),
            None,
            "lambda-environment",
        );
        let shared_endpoint = optional(AWS_ENDPOINT_URL);
        Ok(Self {
            region: Region::new(required(AWS_REGION)?),
            credentials,
            dynamodb_endpoint: optional(AWS_ENDPOINT_URL_DYNAMODB).or_else(|| shared_endpoint.clone()),
            sqs_endpoint: optional(AWS_ENDPOINT_URL_SQS).or_else(|| shared_endpoint.clone()),
            ses_endpoint: optional(AWS_ENDPOINT_URL_SESV2).or(shared_endpoint),
        })
    }

    /// A DynamoDB client on `http`. Makes no request.
    pub fn dynamodb(&self, http: &SharedHttpClient) -> aws_sdk_dynamodb::Client {
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(self.region.clone())
            .credentials_provider(self.credentials.clone())
            .http_client(http.clone());
        if let Some(endpoint) = &self.dynamodb_endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }

    /// An SQS client on `http`. Makes no request.
    pub fn sqs(&self, http: &SharedHttpClient) -> aws_sdk_sqs::Client {
        let mut builder = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(self.region.clone())
            .credentials_provider(self.credentials.clone())
            .http_client(http.clone());
        if let Some(endpoint) = &self.sqs_endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_sqs::Client::from_conf(builder.build())
    }

    /// An SES v2 client on `http`. Makes no request.
    pub fn ses(&self, http: &SharedHttpClient) -> aws_sdk_sesv2::Client {
        let mut builder = aws_sdk_sesv2::Config::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(self.region.clone())
            .credentials_provider(self.credentials.clone())
            .http_client(http.clone());
        if let Some(endpoint) = &self.ses_endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_sesv2::Client::from_conf(builder.build())
    }
}

/// The SQS FIFO queue of each outbox topic one function publishes to. `shared::outbox::Topics` needs a privacy
/// queue, which the checkout, orders and sweep functions are deliberately not given (least privilege): here a
/// topic without a queue refuses its events instead, and they wait in the outbox for the relay, which is given
/// every topic's queue. No function commits events of a topic it has no queue for, so that stays a fallback.
#[derive(Debug, Clone)]
struct SqsTopics {
    privacy: Option<SqsJobSender>,
    orders: Option<SqsJobSender>,
}

impl Publish for SqsTopics {
    fn publish(&self, topic: Topic, job: NewJob) -> PublishFuture<'_> {
        let queue = match topic {
            Topic::Privacy => self.privacy.as_ref(),
            Topic::Orders => self.orders.as_ref(),
        };
        match queue {
            Some(queue) => Box::pin(queue.send(job)),
            None => Box::pin(std::future::ready(Err(QueueError::Internal(anyhow::anyhow!(
                "this function has no {} queue; the event waits in the outbox for the relay",
                topic.name()
            ))))),
        }
    }
}

/// The publisher of the outbox topics whose queue URLs are given: the privacy topic to the SQS FIFO queue at
/// `privacy_queue_url`, the orders topic to the one at `orders_queue_url`; `None` when neither is given (the
/// function's committed events then wait in the outbox for the relay). Makes no request.
///
/// # Errors
/// When a URL is not a FIFO queue's, naming its variable ([`PRIVACY_QUEUE_URL`] or [`ORDERS_QUEUE_URL`]).
pub fn publisher(
    aws: &AwsConfig,
    http: &SharedHttpClient,
    privacy_queue_url: Option<&str>,
    orders_queue_url: Option<&str>,
) -> anyhow::Result<Option<Publisher>> {
    if privacy_queue_url.is_none() && orders_queue_url.is_none() {
        return Ok(None);
    }
    // One client for both queues: each SDK client built costs its runtime plugins and configuration at init.
    let sqs = aws.sqs(http);
    let sender = |url: Option<&str>, name: &str| -> anyhow::Result<Option<SqsJobSender>> {
        url.map(|url| SqsJobSender::new(sqs.clone(), url).with_context(|| format!("{name} is invalid"))).transpose()
    };
    let topics = SqsTopics {
        privacy: sender(privacy_queue_url, PRIVACY_QUEUE_URL)?,
        orders: sender(orders_queue_url, ORDERS_QUEUE_URL)?,
    };
    Ok(Some(Arc::new(topics)))
}

/// The payment provider a function is configured with, read once per cold start.
#[derive(Debug, Clone, Default)]
pub enum PaymentsConfig {
    /// The built-in sandbox (the state's default).
    #[default]
    Sandbox,
    /// Stripe's API.
    Stripe {
        /// The secret key (redacted by its own `Debug`).
        secret_key: secrecy::SecretString,
        /// Another API base URL than Stripe's own, if any.
        api_base: Option<String>,
    },
}

impl PaymentsConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the variable that is missing or invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(optional(STOREFRONT_PAYMENTS).as_deref(), optional(STRIPE_SECRET_KEY), optional(STRIPE_API_BASE))
    }

    fn parse(provider: Option<&str>, secret_key: Option<String>, api_base: Option<String>) -> anyhow::Result<Self> {
        match provider.map(str::trim) {
            None | Some("sandbox") => Ok(Self::Sandbox),
            Some("stripe") => {
                let secret_key = secret_key
                    .filter(|key| !key.trim().is_empty())
                    .with_context(|| format!("{STOREFRONT_PAYMENTS}=stripe needs {STRIPE_SECRET_KEY}"))?;
                Ok(Self::Stripe { secret_key: secret_key.into(), api_base })
            }
            Some(_) => anyhow::bail!("{STOREFRONT_PAYMENTS} must be sandbox or stripe"),
        }
    }

    /// The provider to give the state, or `None` to keep the sandbox. Makes no request.
    ///
    /// # Errors
    /// When Stripe is asked for but this binary was built without the feature `stripe`, or Stripe's settings
    /// are refused (naming the variable; never quoting the key).
    pub fn provider(&self) -> anyhow::Result<Option<Arc<dyn shared::ports::Payments>>> {
        match self {
            Self::Sandbox => Ok(None),
            Self::Stripe { secret_key, api_base } => stripe_provider(secret_key, api_base.as_deref()).map(Some),
        }
    }
}

#[cfg(feature = "stripe")]
fn stripe_provider(secret_key: &secrecy::SecretString, api_base: Option<&str>) -> anyhow::Result<Arc<dyn shared::ports::Payments>> {
    use shared::adapters::stripe::{StripePayments, StripeSettings};
    let mut settings = StripeSettings::new(secret_key.clone());
    if let Some(api_base) = api_base {
        settings.api_base = api_base.parse().with_context(|| format!("{STRIPE_API_BASE} is not a URL"))?;
    }
    let stripe = StripePayments::new(settings).with_context(|| format!("{STRIPE_SECRET_KEY} or {STRIPE_API_BASE} is invalid"))?;
    tracing::info!("payments go to Stripe");
    Ok(Arc::new(stripe))
}

#[cfg(not(feature = "stripe"))]
fn stripe_provider(_secret_key: &secrecy::SecretString, _api_base: Option<&str>) -> anyhow::Result<Arc<dyn shared::ports::Payments>> {
    anyhow::bail!("{STOREFRONT_PAYMENTS}=stripe needs this function built with its cargo feature stripe (cargo lambda build --features aws,stripe)")
}

/// Tokio's timer: the [`Sleep`] the payment gateway waits on between retries of a provider call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The roots AWS service endpoints chain to (Amazon Root CA 1 to 4 and Starfield Services Root G2, which
/// cross-signs them), as PEM: the Mozilla roots with those subjects, copied out of `webpki-root-certs` (a test
/// checks the copy against the crate). Picking them out of the whole compiled-in list at cold start instead
/// touched all ~150 roots, about 200 KB of the binary, on every cold start.
const AWS_TRUST_ROOTS_PEM: &str = include_str!("aws-roots.pem");

/// The one HTTPS client every SDK client of the process shares: rustls with the AWS roots, its connector
/// (TLS configuration and connection pool) built now rather than on the first request.
///
/// # Errors
/// When the TLS configuration cannot be built.
pub fn https_client() -> anyhow::Result<SharedHttpClient> {
    let tls = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_TRUST_ROOTS_PEM))
        .build()
        .context("failed to build the TLS configuration")?;
    let settings = HttpConnectorSettings::builder().connect_timeout(CONNECT_TIMEOUT).build();
    let connector = SharedHttpConnector::new(
        aws_smithy_http_client::Connector::builder()
            .connector_settings(settings)
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls)
            .build(),
    );
    Ok(http_client_fn(move |_settings, _components| connector.clone()))
}

/// An HTTP function's configuration, read once per cold start.
#[derive(Debug)]
pub struct HttpConfig {
    /// Where the store lives and as whom the function reaches it.
    pub aws: AwsConfig,
    /// The table's name.
    pub table: String,
    /// The keys derived from the master secret.
    pub keys: Keys,
    /// How many demo products to seed at cold start, creating the table first (local runs only).
    pub demo_seed: Option<usize>,
    /// Where committed privacy events are published right away, if anywhere (else the relay publishes them).
    pub privacy_queue_url: Option<String>,
    /// Where committed order events are published right away, if anywhere (else the relay publishes them).
    pub orders_queue_url: Option<String>,
    /// The payment provider.
    pub payments: PaymentsConfig,
    /// Browser origins, comma-separated, the MCP function allows besides loopback ones (the `mcp` function only).
    pub mcp_allowed_origins: String,
}

impl HttpConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the first variable that is missing or invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        let secret = required(STOREFRONT_SECRET)?;
        Ok(Self {
            aws: AwsConfig::from_env()?,
            table: required(TABLE_NAME)?,
            keys: Keys::derive(secret.as_bytes()).with_context(|| format!("{STOREFRONT_SECRET} is too short"))?,
            demo_seed: shared::demo::seed_setting(optional(DEMO_SEED).as_deref())
                .map_err(|reason| anyhow::anyhow!("{DEMO_SEED} {reason}"))?,
            privacy_queue_url: optional(PRIVACY_QUEUE_URL),
            orders_queue_url: optional(ORDERS_QUEUE_URL),
            payments: PaymentsConfig::from_env()?,
            mcp_allowed_origins: optional(STOREFRONT_MCP_ALLOWED_ORIGINS).unwrap_or_default(),
        })
    }
}

/// The level to log at: Lambda's setting, else `RUST_LOG` read as a single level, else `INFO`. Lambda's
/// `FATAL` is tracing's `ERROR`; an unreadable value means `INFO`, as in `lambda_runtime`'s own subscriber.
fn log_level(lambda_level: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    match lambda_level.or(rust_log) {
        Some(level) if level.trim().eq_ignore_ascii_case("fatal") => LevelFilter::ERROR,
        Some(level) => level.trim().parse().unwrap_or(LevelFilter::INFO),
        None => LevelFilter::INFO,
    }
}

/// Installs the process's log subscriber: one line per event on stdout, JSON when Lambda asks for it, filtered
/// by a single level; and metric events (`shared::telemetry`) as CloudWatch EMF documents on lines of their
/// own ([`EmfLines`]), whatever the log level, since CloudWatch reads metrics only from a line that is one EMF
/// document. `lambda_http`'s default subscriber would do the logging through an `EnvFilter`, whose directive
/// parsing and per-callsite matching cost init time that a single level does not need.
fn init_logs() {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = log_level(optional(AWS_LAMBDA_LOG_LEVEL).as_deref(), optional(RUST_LOG).as_deref());
    let json = optional(AWS_LAMBDA_LOG_FORMAT).is_some_and(|format| format.eq_ignore_ascii_case("json"));
    if let Err(error) = log_subscriber(level, json).try_init() {
        eprintln!("logs not set up: {error}");
    }
}

/// The subscriber [`init_logs`] installs: log lines at `level` (JSON when `json`) and the EMF lines.
fn log_subscriber(level: LevelFilter, json: bool) -> impl tracing::Subscriber + Send + Sync {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let lines = tracing_subscriber::fmt::layer().with_target(false).without_time().with_ansi(false);
    let lines = if json { lines.json().boxed() } else { lines.boxed() };
    let not_metrics = tracing_subscriber::filter::filter_fn(|metadata| metadata.target() != shared::telemetry::METRICS_TARGET);
    tracing_subscriber::registry().with(lines.with_filter(not_metrics).with_filter(level)).with(emf_lines(std::io::stdout))
}

/// The layer that writes metric events as EMF lines to `writer` ([`EmfLines`]). It sees the metric events (INFO
/// events, `shared::telemetry`) and the spans they may happen in (a request's ids), nothing else: unfiltered, it
/// would enable every callsite of every level for the whole process (the SDK's and hyper's TRACE events included).
/// Its filter also says so up front (a level hint of INFO): without the hint, the process's maximum level was
/// TRACE, so every DEBUG and TRACE event and span of the SDK, hyper and `lambda_runtime` registered its callsite
/// when first reached and asked both filters at every pass, instead of being skipped by one comparison.
fn emf_lines<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'lookup> tracing_subscriber::registry::LookupSpan<'lookup>,
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + 'static,
{
    use tracing_subscriber::Layer as _;
    let input = tracing_subscriber::filter::filter_fn(|metadata| {
        *metadata.level() <= tracing::Level::INFO && (metadata.target() == shared::telemetry::METRICS_TARGET || metadata.is_span())
    })
    .with_max_level_hint(LevelFilter::INFO);
    EmfLines { writer }.with_filter(input)
}

/// Writes each metric event as one CloudWatch Embedded Metric Format document on a line of its own
/// (`shared::telemetry::emf_line`), with the fields of the spans it happened in (outermost first, then the event's
/// own), stamped with the time it was written. Every other event is left to the log lines.
struct EmfLines<W> {
    writer: W,
}

/// A span's fields as JSON, kept in the span's extensions for the EMF lines of the events inside it.
struct SpanFields(shared::telemetry::Fields);

impl<S, W> tracing_subscriber::Layer<S> for EmfLines<W>
where
    S: tracing::Subscriber + for<'lookup> tracing_subscriber::registry::LookupSpan<'lookup>,
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + 'static,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, context: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = shared::telemetry::Fields::default();
        attrs.record(&mut shared::telemetry::JsonFields(&mut fields));
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, context: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = context.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut shared::telemetry::JsonFields(fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, context: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != shared::telemetry::METRICS_TARGET {
            return;
        }
        let mut fields = shared::telemetry::Fields::default();
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend_from(span_fields);
                }
            }
        }
        event.record(&mut shared::telemetry::JsonFields(&mut fields));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
        if let Some(line) = shared::telemetry::emf_line(&fields, now) {
            use std::io::Write as _;
            // Serialised into one buffer and written at once: through `writeln!` and `Display` the document went
            // to stdout's line writer piece by piece, about 40,000 instructions for one line (callgrind).
            let _ = self.writer.make_writer().write_all(&line);
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Runs an HTTP function: reads its [`HttpConfig`], builds the DynamoDB store (and, when a queue is configured,
/// the outbox's publisher) once, with tokio's timer for the payment retries, seeds the demo catalog when asked,
/// and serves `router(state)`
/// through `lambda_http` (API Gateway HTTP API v2 and REST v1 payloads). Paths the router does not serve get
/// the same problem document and request line as on every host.
///
/// # Errors
/// When the configuration is incomplete, seeding fails, or the runtime stops with an error.
pub fn run_http<F>(router: F) -> Result<(), Error>
where
    F: FnOnce(AppState<DynamoItemStore>) -> axum::Router,
{
    run_http_with(AuthSettings::default(), Argon2Settings::default(), router)
}

/// [`run_http`] with these authentication settings and Argon2id costs (the account functions' entry,
/// `auth::run_account_http`, reads them from the environment).
///
/// # Errors
/// As [`run_http`], or when Argon2 refuses the costs.
pub fn run_http_with<F>(auth: AuthSettings, password: Argon2Settings, router: F) -> Result<(), Error>
where
    F: FnOnce(AppState<DynamoItemStore>) -> axum::Router,
{
    serve_http(auth, password, |state, _| router(state))
}

/// Runs the MCP function as [`run_http`] does, handing its router the browser origins it allows besides
/// loopback ones (`STOREFRONT_MCP_ALLOWED_ORIGINS`, comma-separated; empty for none).
///
/// # Errors
/// As [`run_http`].
pub fn run_mcp_http<F>(router: F) -> Result<(), Error>
where
    F: FnOnce(AppState<DynamoItemStore>, &str) -> axum::Router,
{
    serve_http(AuthSettings::default(), Argon2Settings::default(), router)
}

/// Runs an HTTP function that needs no store, no keys and no queue (the OpenAPI document and the docs page):
/// serves `router(clock, ids)` through `lambda_http` as [`run_http`] does, with the same unrouted fallback,
/// but reads no configuration and builds no SDK client, whose construction (the HTTPS client with its trust
/// roots, the DynamoDB client with its endpoint partition table) is most of what a function's cold start
/// adds to a hello-world's.
///
/// # Errors
/// When the runtime stops with an error.
pub fn run_static_http<F>(router: F) -> Result<(), Error>
where
    F: FnOnce(Arc<dyn Clock>, Arc<dyn IdGen>) -> axum::Router,
{
    init_logs();
    runtime()?.block_on(async move {
        let (clock, ids): (Arc<dyn Clock>, Arc<dyn IdGen>) = (Arc::new(SystemClock), Arc::new(UuidIds));
        lambda_http::run(shared::http::context::with_unrouted(router(clock.clone(), ids.clone()), clock, ids)).await
    })
}

/// The HTTP entries' one body; `router` also gets the allowed MCP origins (only the MCP function uses them).
fn serve_http<F>(auth: AuthSettings, password: Argon2Settings, router: F) -> Result<(), Error>
where
    F: FnOnce(AppState<DynamoItemStore>, &str) -> axum::Router,
{
    init_logs();
    runtime()?.block_on(async move {
        let cfg = HttpConfig::from_env()?;
        let http = https_client()?;
        let store = DynamoItemStore::new(cfg.aws.dynamodb(&http), cfg.table, Arc::new(SystemClock));
        let mut state = AppState::configured(store, Arc::new(SystemClock), Arc::new(UuidIds), cfg.keys, auth, password)?
            .with_sleep(Arc::new(TokioSleep));
        if let Some(payments) = cfg.payments.provider()? {
            state = state.with_payments(payments);
        }
        if let Some(publisher) = publisher(&cfg.aws, &http, cfg.privacy_queue_url.as_deref(), cfg.orders_queue_url.as_deref())? {
            state = state.with_publisher(publisher);
        }
        if let Some(count) = cfg.demo_seed {
            state.store.create_table_if_missing().await?;
            let created = state.catalog.seed_demo_if_empty(count, &UuidIds, &SystemClock).await.context("failed to seed")?;
            tracing::info!(created, "demo catalog seeded");
        }
        let (clock, ids) = (state.clock.clone(), state.ids.clone());
        lambda_http::run(shared::http::context::with_unrouted(router(state, &cfg.mcp_allowed_origins), clock, ids)).await
    })
}

/// The SQS job function's configuration, read once per cold start.
#[derive(Debug)]
pub struct JobsConfig {
    /// Where the queues live and as whom the function reaches them.
    pub aws: AwsConfig,
    /// The jobs queue's URL.
    pub queue_url: String,
    /// The dead-letter queue's URL.
    pub dead_letter_url: String,
}

impl JobsConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the first variable that is missing.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            aws: AwsConfig::from_env()?,
            queue_url: required(JOBS_QUEUE_URL)?,
            dead_letter_url: required(JOBS_DEAD_LETTER_QUEUE_URL)?,
        })
    }
}

/// Runs the SQS job function: every batch goes through [`handle_batch`].
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_jobs() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async move {
        let cfg = JobsConfig::from_env()?;
        let http = https_client()?;
        // Only the dead-letter side is used here: the event source mapping receives and deletes.
        let queue = SqsJobQueue::new(cfg.aws.sqs(&http), cfg.queue_url, cfg.dead_letter_url, QueueSettings::default())?;
        let queue = &queue;
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            handle_batch(queue, event.payload, |delivery| async move { shared::jobs::handle(&delivery).await }, never_crash).await
        }))
        .await
    })
}

/// The crash fault of builds that have none.
fn never_crash(_delivery: &Delivery) -> bool {
    false
}

/// The test fault of [`STOREFRONT_FAULT_CRASH_ORDERS`]: whether to crash after handling `delivery`.
#[cfg(debug_assertions)]
fn crash_once(prefix: Option<&str>, delivery: &Delivery) -> bool {
    let Some(prefix) = prefix else { return false };
    let order_id = serde_json::from_str::<serde_json::Value>(&delivery.body)
        .ok()
        .and_then(|body| body.get("order_id").and_then(serde_json::Value::as_str).map(str::to_owned))
        .filter(|order_id| order_id.starts_with(prefix) && order_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-'));
    let Some(order_id) = order_id else { return false };
    let marker = std::env::temp_dir().join(format!("storefront-fault-crashed-{order_id}"));
    std::fs::OpenOptions::new().write(true).create_new(true).open(marker).is_ok()
}

/// Which queue a job function consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobQueueKind {
    /// The orders queue: the order-events job.
    Orders,
    /// The privacy queue: the privacy job.
    Privacy,
}

/// The settings every job function that mails reads: the sender and the admins.
///
/// # Errors
/// Names the variable that holds something that is not an e-mail address.
fn mail_settings() -> anyhow::Result<shared::mail::MailSettings> {
    shared::mail::MailSettings::configured(
        optional(STOREFRONT_MAIL_FROM).as_deref(),
        optional(auth::STOREFRONT_ADMIN_EMAIL).as_deref(),
        optional(STOREFRONT_ALERTS_TO).as_deref(),
    )
    .map_err(anyhow::Error::msg)
}

/// A job consumer's configuration (order-events, privacy), read once per cold start.
#[derive(Debug)]
pub struct ConsumerConfig {
    /// Where the table, the queues and SES are and as whom the function reaches them.
    pub aws: AwsConfig,
    /// The table.
    pub table: String,
    /// The consumed queue's URL.
    pub queue_url: String,
    /// Its dead-letter queue's URL.
    pub dead_letter_url: String,
    /// The sender and the admins.
    pub mail: shared::mail::MailSettings,
}

impl ConsumerConfig {
    /// Reads the configuration of the consumer of `kind`'s queue.
    ///
    /// # Errors
    /// Names the first variable that is missing or invalid.
    pub fn from_env(kind: JobQueueKind) -> anyhow::Result<Self> {
        let (queue_url, dead_letter_url) = match kind {
            JobQueueKind::Orders => (required(ORDERS_QUEUE_URL)?, required(ORDERS_DEAD_LETTER_QUEUE_URL)?),
            JobQueueKind::Privacy => (required(PRIVACY_QUEUE_URL)?, required(PRIVACY_DEAD_LETTER_QUEUE_URL)?),
        };
        Ok(Self { aws: AwsConfig::from_env()?, table: required(TABLE_NAME)?, queue_url, dead_letter_url, mail: mail_settings()? })
    }
}

/// The test faults of a debug build, the crash's and the poison's order id prefixes (`None`s in release builds,
/// which never read them).
fn faults() -> (Option<String>, Option<String>) {
    #[cfg(debug_assertions)]
    return (optional(STOREFRONT_FAULT_CRASH_ORDERS), optional(STOREFRONT_FAULT_POISON_ORDERS));
    #[cfg(not(debug_assertions))]
    (None, None)
}

/// The jobs on the table, mailing through SES.
fn jobs(aws: &AwsConfig, http: &SharedHttpClient, table: &str, mail: shared::mail::MailSettings) -> shared::jobs::Jobs<DynamoItemStore> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = DynamoItemStore::new(aws.dynamodb(http), table, clock.clone());
    let mailer = Arc::new(shared::adapters::ses::SesMailer::new(aws.ses(http)));
    shared::jobs::Jobs::new(store, mailer, clock, mail)
}

/// Runs the order-events function: the orders queue's consumer (partial batch failures).
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_order_events() -> Result<(), Error> {
    run_consumer(JobQueueKind::Orders)
}

/// Runs the privacy function: the privacy queue's consumer (partial batch failures).
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_privacy() -> Result<(), Error> {
    run_consumer(JobQueueKind::Privacy)
}

fn run_consumer(kind: JobQueueKind) -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async move {
        let cfg = ConsumerConfig::from_env(kind)?;
        let http = https_client()?;
        let queue = SqsJobQueue::new(cfg.aws.sqs(&http), cfg.queue_url.clone(), cfg.dead_letter_url.clone(), QueueSettings::default())?;
        let (crash_prefix, poison) = faults();
        let jobs = jobs(&cfg.aws, &http, &cfg.table, cfg.mail).with_poison_prefix(poison);
        let (queue, jobs, crash_prefix) = (&queue, &jobs, &crash_prefix);
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            let handle = |delivery: Delivery| async move {
                match kind {
                    JobQueueKind::Orders => jobs.orders(&delivery).await,
                    JobQueueKind::Privacy => jobs.privacy(&delivery).await,
                }
            };
            #[cfg(debug_assertions)]
            let crash = |delivery: &Delivery| kind == JobQueueKind::Orders && crash_once(crash_prefix.as_deref(), delivery);
            #[cfg(not(debug_assertions))]
            let crash = {
                let _ = crash_prefix;
                never_crash
            };
            handle_batch(queue, event.payload, handle, crash).await
        }))
        .await
    })
}

/// The sales-report function's configuration, read once per cold start.
#[derive(Debug)]
pub struct ReportConfig {
    /// Where the table and SES are and as whom the function reaches them.
    pub aws: AwsConfig,
    /// The table.
    pub table: String,
    /// The sender and the admins.
    pub mail: shared::mail::MailSettings,
}

impl ReportConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the first variable that is missing or invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { aws: AwsConfig::from_env()?, table: required(TABLE_NAME)?, mail: mail_settings()? })
    }
}

/// Runs the sales-report function: on every invocation (the daily EventBridge schedule's event; any JSON payload
/// is accepted and ignored) closes yesterday's report (UTC) once and mails it to the admins once, answering what
/// it did (`shared::jobs::reports::ReportRun`). A failed run answers an error, so EventBridge retries it.
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_sales_report() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async move {
        let cfg = ReportConfig::from_env()?;
        let http = https_client()?;
        let jobs = jobs(&cfg.aws, &http, &cfg.table, cfg.mail);
        let jobs = &jobs;
        lambda_runtime::run(lambda_runtime::service_fn(move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            jobs.sales_report().await.map_err(|error| {
                tracing::error!(error = %error, "the sales report job failed");
                Error::from(error.to_string())
            })
        }))
        .await
    })
}

/// The outbox relay function's configuration, read once per cold start.
#[derive(Debug)]
pub struct RelayConfig {
    /// Where the store and the queues live and as whom the function reaches them.
    pub aws: AwsConfig,
    /// The table holding the outbox.
    pub table: String,
    /// The privacy queue's URL.
    pub privacy_queue_url: String,
    /// The orders queue's URL.
    pub orders_queue_url: String,
}

impl RelayConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the first variable that is missing.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            aws: AwsConfig::from_env()?,
            table: required(TABLE_NAME)?,
            privacy_queue_url: required(PRIVACY_QUEUE_URL)?,
            orders_queue_url: required(ORDERS_QUEUE_URL)?,
        })
    }
}

/// The outbox relay as one Lambda process holds it: the outbox on the DynamoDB table and the publisher,
/// both built once per cold start.
#[derive(Clone)]
pub struct OutboxRelay {
    outbox: Outbox<DynamoItemStore>,
    publisher: Publisher,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay").field("outbox", &self.outbox).finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// The relay for `cfg`, on `http`. Makes no request.
    ///
    /// # Errors
    /// When a queue's URL is not a FIFO queue's.
    pub fn new(cfg: &RelayConfig, http: &SharedHttpClient) -> anyhow::Result<Self> {
        let store = DynamoItemStore::new(cfg.aws.dynamodb(http), cfg.table.clone(), Arc::new(SystemClock));
        let publisher = publisher(&cfg.aws, http, Some(&cfg.privacy_queue_url), Some(&cfg.orders_queue_url))?
            .context("the relay has no queue")?;
        Ok(Self { outbox: Outbox::new(store), publisher })
    }

    /// One run: publishes up to [`RELAY_MAX_PER_RUN`] events, oldest first, and says what it did. An event
    /// whose queue failed stays in the outbox and is logged, but does not fail the run: the next scheduled
    /// run retries it, and an error would only make Lambda repeat the whole run at once.
    ///
    /// # Errors
    /// When the outbox cannot be read (nothing was published).
    pub async fn run(&self) -> Result<RelayReport, StoreError> {
        let report = self.outbox.relay(self.publisher.as_ref(), RELAY_MAX_PER_RUN).await?;
        let RelayReport { published, failed, more } = report;
        if failed > 0 {
            tracing::error!(published, failed, more, "outbox events not published; the next scheduled run retries them");
        } else {
            tracing::info!(published, more, "outbox relayed");
        }
        Ok(report)
    }
}

/// Runs the outbox relay function: reads its [`RelayConfig`], builds the store and the publisher once, and on
/// every invocation (an EventBridge schedule's event; any JSON payload is accepted and ignored) runs
/// [`OutboxRelay::run`], answering its [`RelayReport`] as JSON.
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_outbox_relay() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async move {
        let cfg = RelayConfig::from_env()?;
        let http = https_client()?;
        let relay = OutboxRelay::new(&cfg, &http)?;
        let relay = &relay;
        lambda_runtime::run(lambda_runtime::service_fn(move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            relay.run().await.map_err(|error| {
                tracing::error!(error = ?error, "the outbox could not be read");
                Error::from(error)
            })
        }))
        .await
    })
}

/// The checkout sweep function's configuration, read once per cold start.
#[derive(Debug)]
pub struct SweepConfig {
    /// Where the store and the orders queue live and as whom the function reaches them.
    pub aws: AwsConfig,
    /// The table holding the orders.
    pub table: String,
    /// Where the `order.created` events of the orders it completes are published right away, if anywhere
    /// (else the relay publishes them).
    pub orders_queue_url: Option<String>,
    /// How long an order may stay reserved before the sweep settles it.
    pub grace: Duration,
    /// The payment provider the sweep asks about each order's charge.
    pub payments: PaymentsConfig,
}

impl SweepConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the first variable that is missing or invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        let grace = match optional(STOREFRONT_SWEEP_GRACE_SECS) {
            Some(text) => parse_grace(&text).with_context(|| format!("{STOREFRONT_SWEEP_GRACE_SECS} must be whole seconds from 1 to 86400"))?,
            None => CommerceSettings::default().sweep_grace,
        };
        Ok(Self {
            aws: AwsConfig::from_env()?,
            table: required(TABLE_NAME)?,
            orders_queue_url: optional(ORDERS_QUEUE_URL),
            grace,
            payments: PaymentsConfig::from_env()?,
        })
    }
}

/// The sweep's grace period from its setting's text.
fn parse_grace(text: &str) -> Option<Duration> {
    text.trim().parse::<u64>().ok().filter(|secs| (1..=86_400).contains(secs)).map(Duration::from_secs)
}

/// The checkout sweep as one Lambda process holds it: the commerce use cases on the DynamoDB table, with the
/// configured payment provider behind the gateway (its retries on tokio's timer, its breaker kept across the
/// invocations the instance serves) and the orders publisher, all built once per cold start.
#[derive(Clone)]
pub struct CheckoutSweep {
    commerce: Commerce<DynamoItemStore>,
}

impl std::fmt::Debug for CheckoutSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutSweep").field("commerce", &self.commerce).finish_non_exhaustive()
    }
}

impl CheckoutSweep {
    /// The sweep for `cfg`, on `http`. Makes no request.
    ///
    /// It builds the commerce use cases alone (`CommerceParts::build`), not a whole `AppState`: it signs and
    /// verifies nothing, so it neither needs the master secret nor builds the authentication service.
    ///
    /// # Errors
    /// When the orders queue's URL is not a FIFO queue's, or the payment provider cannot be built.
    pub fn new(cfg: &SweepConfig, http: &SharedHttpClient) -> anyhow::Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids: Arc<dyn IdGen> = Arc::new(UuidIds);
        let store = DynamoItemStore::new(cfg.aws.dynamodb(http), cfg.table.clone(), Arc::clone(&clock));
        let payments = match cfg.payments.provider()? {
            Some(payments) => payments,
            None => Arc::new(SandboxPayments::new(store.clone(), Arc::clone(&ids))),
        };
        let mut parts = CommerceParts::new(payments);
        parts.sleep = Arc::new(TokioSleep);
        parts.settings = CommerceSettings { sweep_grace: cfg.grace };
        parts.publisher = publisher(&cfg.aws, http, None, cfg.orders_queue_url.as_deref())?;
        Ok(Self { commerce: parts.build(&store, &clock, &ids) })
    }

    /// One run: settles up to [`SWEEP_MAX_PER_RUN`] orders left reserved past the grace period, oldest first,
    /// and says what it did. An order the provider could not tell about is counted as failed and stays for the
    /// next scheduled run, without failing this one (an error would only make Lambda repeat the whole run).
    ///
    /// # Errors
    /// When the unsettled orders cannot be read (nothing was settled).
    pub async fn run(&self) -> Result<SweepReport, StoreError> {
        let report = self.commerce.sweep(SWEEP_MAX_PER_RUN).await?;
        let SweepReport { paid, released, failed } = report;
        if failed > 0 {
            tracing::error!(paid, released, failed, "orders not settled; the next scheduled run retries them");
        } else {
            tracing::info!(paid, released, "checkout sweep done");
        }
        Ok(report)
    }
}

/// Runs the checkout sweep function: reads its [`SweepConfig`], builds the store, the commerce use cases and
/// the orders publisher once, and on every invocation (an EventBridge schedule's event; any JSON payload is
/// accepted and ignored) runs [`CheckoutSweep::run`], answering its [`SweepReport`] as JSON.
///
/// # Errors
/// When the configuration is incomplete or the runtime stops with an error.
pub fn run_checkout_sweep() -> Result<(), Error> {
    init_logs();
    runtime()?.block_on(async move {
        let cfg = SweepConfig::from_env()?;
        let http = https_client()?;
        let sweep = CheckoutSweep::new(&cfg, &http)?;
        let sweep = &sweep;
        lambda_runtime::run(lambda_runtime::service_fn(move |_event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            sweep.run().await.map_err(|error| {
                tracing::error!(error = ?error, "the unsettled orders could not be read");
                Error::from(error)
            })
        }))
        .await
    })
}

/// A record as a delivery; `None` when it has no message id (Lambda always sends one).
fn to_delivery(message: SqsMessage) -> Option<Delivery> {
    let attempt = message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok()).unwrap_or(1);
    Some(Delivery {
        message_id: message.message_id?,
        body: message.body.unwrap_or_default(),
        attempt,
        receipt: message.receipt_handle.unwrap_or_default(),
    })
}

/// Handles a batch with `handle` (a queue's consumer from `shared::jobs`) and says which messages failed, so
/// that one bad message never fails its batch-mates: `Ack` is left out of the failures (the event source mapping
/// deletes it); `Retry` is reported (SQS delivers it again after the queue's visibility timeout, which stands in
/// for the retry delay, and its redrive policy dead-letters it after `maxReceiveCount` deliveries); `DeadLetter`
/// is copied to the dead-letter queue and then left out, or reported when the copy fails, so nothing is dropped.
/// Each message is its own FIFO group (see `SqsJobQueue`), so a failure holds back no other message. `crash` is
/// the test fault of debug builds (always `false` otherwise): when it says so after a handled delivery, the
/// invocation fails as a whole, unanswered, as a crash would.
///
/// # Errors
/// When a record has no message id: it could not be reported on its own, so the whole batch is retried.
pub async fn handle_batch<H, F, C>(queue: &SqsJobQueue, event: SqsEvent, handle: H, crash: C) -> Result<SqsBatchResponse, Error>
where
    H: Fn(Delivery) -> F,
    F: std::future::Future<Output = Outcome>,
    C: Fn(&Delivery) -> bool,
{
    let mut response = SqsBatchResponse::default();
    let mut handled = Vec::new();
    for message in event.records {
        let delivery = to_delivery(message).ok_or("an SQS record without a message id")?;
        let outcome = handle(delivery.clone()).await;
        if crash(&delivery) {
            tracing::error!(message_id = %delivery.message_id, "test fault: the consumer crashes now, in the middle of its batch, before answering it");
            return Err("test fault: a crash in the middle of a batch".into());
        }
        handled.push((delivery, outcome));
    }
    for (delivery, outcome) in handled {
        let failed = match outcome {
            Outcome::Ack => false,
            Outcome::Retry { .. } => true,
            Outcome::DeadLetter { reason } => match queue.copy_to_dead_letters(&delivery, &reason).await {
                Ok(()) => {
                    tracing::warn!(message_id = %delivery.message_id, reason, "job dead-lettered");
                    false
                }
                Err(error) => {
                    tracing::error!(message_id = %delivery.message_id, error = ?error, "failed to dead-letter a job");
                    true
                }
            },
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = delivery.message_id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use shared::ports::{Clock as _, IdGen as _};

    use super::*;

    async fn generic_job(delivery: Delivery) -> Outcome {
        shared::jobs::handle(&delivery).await
    }

    /// The regions of the `aws` partition the partition test resolves, one per prefix of its `regionRegex` and the
    /// newest ones, and `aws-global`, which the SDK's data lists by name.
    const AWS_REGIONS: [&str; 14] = [
        "us-east-1", "us-west-2", "eu-west-1", "eu-central-2", "ap-southeast-5", "ap-east-2", "ap-northeast-3", "sa-east-1", "ca-west-1",
        "me-central-1", "af-south-1", "il-central-1", "mx-central-1", "aws-global",
    ];
    /// Regions of other partitions, where the trimmed file must not be used (the template sets it only in `aws`).
    const OTHER_REGIONS: [&str; 3] = ["cn-north-1", "us-gov-west-1", "eusc-de-east-1"];
    const PRINT_ENDPOINTS: &str = "tests::endpoints_of_every_sdk_client";

    /// Not a test of its own: the child process of the partition test below, which runs it with and without
    /// [`SMITHY_CLIENT_SDK_CUSTOM_PARTITION`] (each SDK crate reads that once per process). Prints one line per
    /// SDK crate, region and FIPS/dual-stack combination: the endpoint each resolves, or its error.
    #[tokio::test]
    #[ignore = "run by the_aws_partition_file_resolves_every_aws_region_as_the_sdks_own_data_does"]
    async fn endpoints_of_every_sdk_client() {
        use aws_sdk_dynamodb::config::endpoint::ResolveEndpoint as _;
        use aws_sdk_sesv2::config::endpoint::ResolveEndpoint as _;
        use aws_sdk_sqs::config::endpoint::ResolveEndpoint as _;
        fn line(service: &str, region: &str, fips: bool, dual: bool, resolved: Result<aws_sdk_dynamodb::config::endpoint::Endpoint, impl std::fmt::Display>) {
            match resolved {
                Ok(endpoint) => println!("endpoint {service} {region} fips={fips} dual={dual} {}", endpoint.url()),
                Err(error) => println!("endpoint {service} {region} fips={fips} dual={dual} error {error}"),
            }
        }
        for region in AWS_REGIONS.iter().chain(&OTHER_REGIONS) {
            for (fips, dual) in [(false, false), (true, false), (false, true), (true, true)] {
                let params = ok(aws_sdk_dynamodb::config::endpoint::Params::builder().region(*region).use_fips(fips).use_dual_stack(dual).build());
                line("dynamodb", region, fips, dual, aws_sdk_dynamodb::config::endpoint::DefaultResolver::new().resolve_endpoint(&params).await);
                let params = ok(aws_sdk_sqs::config::endpoint::Params::builder().region(*region).use_fips(fips).use_dual_stack(dual).build());
                line("sqs", region, fips, dual, aws_sdk_sqs::config::endpoint::DefaultResolver::new().resolve_endpoint(&params).await);
                let params = ok(aws_sdk_sesv2::config::endpoint::Params::builder().region(*region).use_fips(fips).use_dual_stack(dual).build());
                line("sesv2", region, fips, dual, aws_sdk_sesv2::config::endpoint::DefaultResolver::new().resolve_endpoint(&params).await);
            }
        }
    }

    /// The endpoints the child test prints, by region, resolved with `partitions` as the SDK's partition file (or
    /// with the SDK's own data).
    fn endpoints(partitions: Option<&str>) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut command = std::process::Command::new(ok(std::env::current_exe()));
        command.args(["--ignored", "--exact", PRINT_ENDPOINTS, "--nocapture", "--test-threads=1"]).env_remove(SMITHY_CLIENT_SDK_CUSTOM_PARTITION);
        if let Some(file) = partitions {
            command.env(SMITHY_CLIENT_SDK_CUSTOM_PARTITION, file);
        }
        let output = ok(command.output());
        assert!(output.status.success(), "the child test failed: {}", String::from_utf8_lossy(&output.stderr));
        let mut by_region = std::collections::BTreeMap::<String, Vec<String>>::new();
        for line in String::from_utf8_lossy(&output.stdout).lines().filter_map(|line| line.split_once("endpoint ").map(|(_, rest)| rest)) {
            let region = line.split(' ').nth(1).unwrap_or_default().to_owned();
            by_region.entry(region).or_default().push(line.to_owned());
        }
        by_region
    }

    #[test]
    fn the_aws_partition_file_resolves_every_aws_region_as_the_sdks_own_data_does() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/layer/aws-partition.json");
        assert_eq!(AWS_PARTITION_FILE.rsplit('/').next(), file.rsplit('/').next(), "the layer's file is not the one the template names");
        let sdk = endpoints(None);
        let trimmed = endpoints(Some(file));
        for region in AWS_REGIONS {
            // Three SDK crates, four FIPS/dual-stack combinations each (libtest may print its own words before the first).
            assert_eq!(sdk.get(region).map(Vec::len), Some(12), "{region}: {sdk:?}");
            assert_eq!(trimmed.get(region), sdk.get(region), "{region} resolves differently with the layer's file");
        }
        assert!(sdk["us-east-1"].iter().any(|line| line.ends_with(" https://dynamodb.us-east-1.amazonaws.com")), "{:?}", sdk["us-east-1"]);
        // Outside the `aws` partition the file would be wrong, which is why the template sets it only inside.
        for region in OTHER_REGIONS {
            assert_eq!(sdk.get(region).map(Vec::len), Some(12), "{region}: {sdk:?}");
            assert_ne!(trimmed.get(region), sdk.get(region), "{region} resolves alike with the layer's file");
        }
    }

    /// The Mozilla roots whose subject names an AWS root, as PEM, in the order `webpki-root-certs` lists them.
    fn mozilla_aws_roots_pem() -> String {
        const AWS_ROOT_SUBJECTS: [&[u8]; 2] = [b"Amazon Root CA", b"Starfield Services Root Certificate Authority"];
        let mut pem = String::new();
        for root in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let der = root.as_ref();
            if !AWS_ROOT_SUBJECTS.iter().any(|subject| der.windows(subject.len()).any(|window| window == *subject)) {
                continue;
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(der);
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in encoded.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        pem
    }

    #[test]
    fn a_request_line_is_one_emf_document_with_its_spans_ids_and_nothing_else_is() {
        use std::sync::Mutex;
        use tracing_subscriber::layer::SubscriberExt as _;
        static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());
        struct Written;
        impl std::io::Write for Written {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                WRITTEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::registry().with(emf_lines(|| Written));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "r-1", function = "product", trace_id = "0af7651916cd43dd8448eb211c80319c");
            span.in_scope(|| {
                tracing::info!("an ordinary line, not a metric");
                shared::telemetry::request(&shared::telemetry::Served {
                    function: "product",
                    method: "GET",
                    route: "/products/{id}",
                    status: 404,
                    code: "not_found",
                    latency_ms: 3,
                    cold_start: true,
                });
            });
            tracing::trace!(target: "metrics_elsewhere", "a TRACE event no layer wants");
        });
        let written = String::from_utf8(WRITTEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()).unwrap_or_default();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 1, "one EMF line for the one metric event: {written}");
        let document: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|error| panic!("{error}: {written}"));
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Storefront", "{written}");
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["function", "code"]]), "{written}");
        for (member, value) in [
            ("request_id", serde_json::json!("r-1")),
            ("trace_id", serde_json::json!("0af7651916cd43dd8448eb211c80319c")),
            ("function", serde_json::json!("product")),
            ("route", serde_json::json!("/products/{id}")),
            ("status", serde_json::json!(404)),
            ("code", serde_json::json!("not_found")),
            ("requests", serde_json::json!(1)),
            ("cold_starts", serde_json::json!(1)),
            ("message", serde_json::json!("handled")),
        ] {
            assert_eq!(document[member], value, "{member} in {written}");
        }
    }

    #[test]
    fn the_log_subscriber_skips_events_below_the_log_level_up_front() {
        use tracing::Subscriber as _;
        for (level, json) in [(LevelFilter::INFO, false), (LevelFilter::WARN, true), (LevelFilter::DEBUG, false), (LevelFilter::TRACE, true)] {
            // The EMF lines need INFO (metric events and spans), so that is the floor of the process's level.
            let expected = level.max(LevelFilter::INFO);
            assert_eq!(log_subscriber(level, json).max_level_hint(), Some(expected), "log level {level}, json {json}");
        }
    }

    #[test]
    fn the_compiled_in_roots_are_mozillas_aws_roots_and_build_a_client() {
        let count = AWS_TRUST_ROOTS_PEM.matches("BEGIN CERTIFICATE").count();
        assert!((4..=6).contains(&count), "{count} AWS roots are compiled in");
        assert_eq!(AWS_TRUST_ROOTS_PEM, mozilla_aws_roots_pem(), "the AWS roots in webpki-root-certs changed: update functions/lambda-host/src/aws-roots.pem");
        let runtime = runtime().unwrap_or_else(|error| panic!("{error}"));
        runtime.block_on(async { https_client().map(|_| ()) }).unwrap_or_else(|error| panic!("{error:#}"));
    }

    #[test]
    fn the_payment_provider_is_the_sandbox_unless_stripe_is_asked_for_with_a_key() {
        assert!(matches!(PaymentsConfig::parse(None, None, None), Ok(PaymentsConfig::Sandbox)));
        assert!(matches!(PaymentsConfig::parse(Some("sandbox"), Some("sk_test_unused".to_owned()), None), Ok(PaymentsConfig::Sandbox)));
        let stripe = PaymentsConfig::parse(Some("stripe"), Some("sk_test_abc123".to_owned()), Some("http://127.0.0.1:9".to_owned()));
        assert!(matches!(&stripe, Ok(PaymentsConfig::Stripe { api_base: Some(base), .. }) if base == "http://127.0.0.1:9"));
        assert!(!format!("{stripe:?}").contains("sk_test_abc123"), "the key must not show in Debug output");
        for key in [None, Some(" ".to_owned())] {
            let message = format!("{:#}", PaymentsConfig::parse(Some("stripe"), key, None).err().unwrap_or_else(|| anyhow::anyhow!("accepted")));
            assert!(message.contains(STRIPE_SECRET_KEY), "{message}");
        }
        let message = format!("{:#}", PaymentsConfig::parse(Some("paypal"), None, None).err().unwrap_or_else(|| anyhow::anyhow!("accepted")));
        assert!(message.contains(STOREFRONT_PAYMENTS), "{message}");
        assert!(matches!(PaymentsConfig::Sandbox.provider(), Ok(None)));
    }

    #[cfg(not(feature = "stripe"))]
    #[test]
    fn a_build_without_stripe_refuses_to_start_with_stripe_naming_the_feature() {
        let stripe = ok(PaymentsConfig::parse(Some("stripe"), Some("sk_test_abc123".to_owned()), None));
        let message = format!("{:#}", stripe.provider().err().unwrap_or_else(|| anyhow::anyhow!("accepted")));
        assert!(message.contains("feature stripe") && !message.contains("sk_test_abc123"), "{message}");
    }

    #[cfg(feature = "stripe")]
    #[test]
    fn a_build_with_stripe_pays_through_stripe_and_uses_the_sdks_names() {
        let stripe = ok(PaymentsConfig::parse(Some("stripe"), Some("sk_test_abc123".to_owned()), Some("http://127.0.0.1:9".to_owned())));
        let provider = ok(stripe.provider()).unwrap_or_else(|| panic!("Stripe was asked for"));
        assert_eq!(provider.name(), shared::adapters::stripe::STRIPE);
        // Plain http goes to a loopback address only; the refusal names the variables, never the key.
        let elsewhere = ok(PaymentsConfig::parse(Some("stripe"), Some("sk_test_abc123".to_owned()), Some("http://example.com".to_owned())));
        let message = format!("{:#}", elsewhere.provider().err().unwrap_or_else(|| anyhow::anyhow!("accepted")));
        assert!(message.contains(STRIPE_API_BASE) && !message.contains("sk_test_abc123"), "{message}");
        assert_eq!(
            [STOREFRONT_PAYMENTS, STRIPE_SECRET_KEY, STRIPE_API_BASE],
            [shared::adapters::stripe::STOREFRONT_PAYMENTS, shared::adapters::stripe::STRIPE_SECRET_KEY, shared::adapters::stripe::STRIPE_API_BASE]
        );
    }

    #[test]
    fn the_sweep_grace_is_whole_seconds_from_one_to_a_day() {
        assert_eq!(parse_grace(" 90 "), Some(Duration::from_secs(90)));
        assert_eq!(parse_grace("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grace("86400"), Some(Duration::from_secs(86_400)));
        for refused in ["0", "86401", "-5", "1.5", "2m", ""] {
            assert_eq!(parse_grace(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn the_log_level_is_lambdas_then_rust_logs_then_info() {
        assert_eq!(log_level(Some("DEBUG"), Some("trace")), LevelFilter::DEBUG);
        assert_eq!(log_level(Some("FATAL"), None), LevelFilter::ERROR);
        assert_eq!(log_level(None, Some("warn")), LevelFilter::WARN);
        assert_eq!(log_level(None, Some("info,hyper=debug")), LevelFilter::INFO);
        assert_eq!(log_level(Some("loud"), None), LevelFilter::INFO);
        assert_eq!(log_level(None, None), LevelFilter::INFO);
    }

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body.to_owned());
        message.attributes.insert("ApproximateReceiveCount".to_owned(), "1".to_owned());
        message
    }

    /// A queue whose SQS endpoint is a closed 127.0.0.1 port: every request fails fast, nothing leaves the machine.
    fn unreachable_queue() -> SqsJobQueue {
        let credentials = Credentials::new("storefrontlocal", "storefrontlocal", None, None, "static");
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url("http://127.0.0.1:9")
            .http_client(shared::adapters::emulator_http_client().unwrap_or_else(|error| panic!("{error}")))
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        SqsJobQueue::new(client, "http://127.0.0.1:9/q.fifo", "http://127.0.0.1:9/d.fifo", QueueSettings::default())
            .unwrap_or_else(|error| panic!("{error}"))
    }

    #[tokio::test]
    async fn a_dead_letter_that_cannot_be_copied_is_reported_not_dropped() {
        let mut event = SqsEvent::default();
        event.records = vec![record("m1", "not json")];
        let response = handle_batch(&unreachable_queue(), event, generic_job, never_crash).await.unwrap_or_else(|error| panic!("{error}"));
        let failed: Vec<_> = response.batch_item_failures.iter().map(|failure| failure.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m1"]);
    }

    #[tokio::test]
    async fn a_record_without_an_id_fails_the_whole_batch() {
        let mut event = SqsEvent::default();
        event.records = vec![SqsMessage::default()];
        assert!(handle_batch(&unreachable_queue(), event, generic_job, never_crash).await.is_err());
    }

    /// The emulators' endpoints (`scripts/aws-emulators.sh env` sets both), or `None` to skip.
    fn emulators(what: &str) -> Option<(String, String)> {
        match (std::env::var("DYNAMODB_ENDPOINT"), std::env::var("SQS_ENDPOINT")) {
            (Ok(dynamodb), Ok(sqs)) => {
                for endpoint in [&dynamodb, &sqs] {
                    assert!(endpoint.starts_with("http://127.0.0.1:"), "an emulator endpoint must be on 127.0.0.1, not {endpoint}");
                }
                Some((dynamodb, sqs))
            }
            _ => {
                eprintln!("\n!!!! SKIPPED: DYNAMODB_ENDPOINT or SQS_ENDPOINT is not set, so {what} was NOT tested.");
                eprintln!("!!!! Run scripts/test-aws.sh (it starts DynamoDB Local and moto) to test it.\n");
                None
            }
        }
    }

    /// The configuration Lambda would give, with static dummy keys and the emulators as endpoints, so that
    /// the SDK never looks for credentials anywhere else.
    fn emulator_config(dynamodb: &str, sqs: &str) -> AwsConfig {
        AwsConfig {
            region: Region::new("us-east-1"),
            credentials: Credentials::new("storefrontlocal", "storefrontlocal", None, None, "static"),
            dynamodb_endpoint: Some(dynamodb.to_owned()),
            sqs_endpoint: Some(sqs.to_owned()),
            // moto serves SES v2 beside SQS.
            ses_endpoint: Some(sqs.to_owned()),
        }
    }

    fn privacy_event(run: &str) -> shared::outbox::Event {
        let user_id = shared::domain::account::UserId::parse(&format!("u-{run}")).unwrap_or_else(|error| panic!("{error}"));
        let job = shared::jobs::privacy::PrivacyJob::Erase { user_id, requested_at: shared::ports::Timestamp::from_millis(1_800_000_000_000) };
        job.event().unwrap_or_else(|error| panic!("{error}"))
    }

    fn order_event(run: &str) -> shared::outbox::Event {
        let body = serde_json::json!({ "type": "order.created", "event_id": format!("order.created-o-{run}"), "order_id": format!("o-{run}") });
        shared::outbox::Event::new(Topic::Orders, format!("order.created-o-{run}"), &body, shared::ports::Timestamp::from_millis(1_800_000_000_001))
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn emulator_queue(aws: &AwsConfig, http: &SharedHttpClient, name: &str) -> SqsJobQueue {
        SqsJobQueue::create(aws.sqs(http), name, QueueSettings::default()).await.unwrap_or_else(|error| panic!("{error:#}"))
    }

    async fn bodies_on(queue: &SqsJobQueue) -> Vec<String> {
        use shared::ports::JobInbox as _;
        queue.receive(10).await.unwrap_or_else(|error| panic!("{error:?}")).into_iter().map(|delivery| delivery.body).collect()
    }

    /// The mailer contract (`shared::contract::mailer`) for the SES v2 adapter, on moto's SESv2: the sender is made
    /// a verified identity first, as on AWS, and the messages are read back from moto's record of what it was given.
    #[tokio::test]
    async fn the_ses_mailer_keeps_the_mailer_contract_on_moto() {
        use shared::contract::mailer::{MailerFixture, check, mails, send_all};
        let Some((dynamodb, sqs)) = emulators("the SES mailer on moto") else { return };
        let aws = emulator_config(&dynamodb, &sqs);
        let http = https_client().unwrap_or_else(|error| panic!("{error:#}"));
        let run = uuid::Uuid::now_v7().simple().to_string();
        let fixture = MailerFixture { from: format!("shop-{run}@contract.test"), namespace: run.clone(), keeps_message_id: true };
        let client = aws.ses(&http);
        let mailer = shared::adapters::ses::SesMailer::new(client.clone());
        let sent = mails(&fixture).unwrap_or_else(|error| panic!("{error}"));
        let refused = shared::ports::Mailer::send(&mailer, &sent[0]).await;
        assert!(matches!(refused, Err(shared::ports::MailError::Rejected(_))), "an unverified sender was not refused for good: {refused:?}");
        client.create_email_identity().email_identity(&fixture.from).send().await.unwrap_or_else(|error| panic!("{error:?}"));
        send_all(&mailer, &sent).await.unwrap_or_else(|error| panic!("{error}"));
        let state: serde_json::Value = reqwest::get(format!("{sqs}/moto-api/data.json"))
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|error| panic!("{error}"))
            .json()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let records = match state.pointer("/ses/RawMessage").cloned() {
            Some(serde_json::Value::Array(records)) => records,
            Some(serde_json::Value::Object(by_id)) => by_id.into_values().collect(),
            other => panic!("moto keeps no raw messages: {other:?}"),
        };
        let delivered: Vec<Vec<u8>> = records.iter().filter_map(|record| record.get("raw_data")?.as_str()).map(|raw| raw.as_bytes().to_vec()).collect();
        let reports = check(&fixture, &sent, &delivered);
        assert!(reports.iter().all(|report| report.outcome.is_ok()), "{}", shared::contract::failures(&reports));
    }

    #[tokio::test]
    async fn the_relay_publishes_committed_events_to_their_topics_queues_and_empties_the_outbox() {
        use shared::ports::ItemStore as _;
        let Some((dynamodb, sqs)) = emulators("the outbox relay on DynamoDB Local and moto") else { return };
        let aws = emulator_config(&dynamodb, &sqs);
        let http = https_client().unwrap_or_else(|error| panic!("{error:#}"));
        let run = uuid::Uuid::now_v7().simple().to_string();
        let store = DynamoItemStore::new(aws.dynamodb(&http), format!("relay-{run}"), Arc::new(SystemClock));
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        let privacy = emulator_queue(&aws, &http, &format!("privacy-{run}")).await;
        let orders = emulator_queue(&aws, &http, &format!("orders-{run}")).await;
        let cfg = RelayConfig {
            aws,
            table: store.table().to_owned(),
            privacy_queue_url: privacy.queue_url().to_owned(),
            orders_queue_url: orders.queue_url().to_owned(),
        };
        let relay = OutboxRelay::new(&cfg, &http).unwrap_or_else(|error| panic!("{error:#}"));

        let (privacy_job, order_created) = (privacy_event(&run), order_event(&run));
        let writes = [&privacy_job, &order_created].map(|event| event.write().unwrap_or_else(|error| panic!("{error}")));
        store.transact(writes.to_vec()).await.unwrap_or_else(|error| panic!("{error}"));
        let report = relay.run().await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(report, RelayReport { published: 2, failed: 0, more: false });
        assert_eq!(bodies_on(&privacy).await, [privacy_job.body], "the privacy queue must hold exactly the relayed privacy job");
        assert_eq!(bodies_on(&orders).await, [order_created.body], "the orders queue must hold exactly the relayed order event");
        let (left, _) = Outbox::new(store.clone()).pending(10).await.unwrap_or_else(|error| panic!("{error}"));
        assert!(left.is_empty(), "the outbox still holds {left:?}");
        assert_eq!(relay.run().await.unwrap_or_else(|error| panic!("{error}")), RelayReport::default());
    }

    #[tokio::test]
    async fn a_queue_failure_keeps_the_event_without_failing_the_run_but_an_unreadable_outbox_fails_it() {
        use shared::ports::ItemStore as _;
        let Some((dynamodb, _)) = emulators("the outbox relay's failure handling") else { return };
        // The SQS endpoint is a closed 127.0.0.1 port: every send fails, nothing leaves the machine.
        let aws = emulator_config(&dynamodb, "http://127.0.0.1:9");
        let http = https_client().unwrap_or_else(|error| panic!("{error:#}"));
        let run = uuid::Uuid::now_v7().simple().to_string();
        let store = DynamoItemStore::new(aws.dynamodb(&http), format!("relay-down-{run}"), Arc::new(SystemClock));
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        let privacy_queue_url = "http://127.0.0.1:9/000000000000/privacy.fifo".to_owned();
        let orders_queue_url = "http://127.0.0.1:9/000000000000/orders.fifo".to_owned();
        let cfg = RelayConfig {
            aws: aws.clone(),
            table: store.table().to_owned(),
            privacy_queue_url: privacy_queue_url.clone(),
            orders_queue_url: orders_queue_url.clone(),
        };
        let relay = OutboxRelay::new(&cfg, &http).unwrap_or_else(|error| panic!("{error:#}"));
        let event = privacy_event(&run);
        store.transact(vec![event.write().unwrap_or_else(|error| panic!("{error}"))]).await.unwrap_or_else(|error| panic!("{error}"));
        let report = relay.run().await.unwrap_or_else(|error| panic!("a queue failure failed the run: {error}"));
        assert_eq!(report, RelayReport { published: 0, failed: 1, more: false });
        let (left, _) = Outbox::new(store).pending(10).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(left, vec![event], "a refused event must stay in the outbox");

        let missing = RelayConfig { aws, table: format!("no-such-table-{run}"), privacy_queue_url, orders_queue_url };
        let relay = OutboxRelay::new(&missing, &http).unwrap_or_else(|error| panic!("{error:#}"));
        assert!(relay.run().await.is_err(), "a relay that cannot read the outbox must fail its run");
    }

    #[tokio::test]
    async fn a_queue_that_is_not_fifo_is_refused_naming_its_variable() {
        let aws = emulator_config("http://127.0.0.1:9", "http://127.0.0.1:9");
        let http = https_client().unwrap_or_else(|error| panic!("{error:#}"));
        let (fifo, plain) = ("http://127.0.0.1:9/000000000000/q.fifo", "http://127.0.0.1:9/000000000000/q");
        for (privacy, orders, variable) in [(Some(plain), Some(fifo), PRIVACY_QUEUE_URL), (Some(fifo), Some(plain), ORDERS_QUEUE_URL), (None, Some(plain), ORDERS_QUEUE_URL)] {
            let refused = publisher(&aws, &http, privacy, orders).map(|_| ());
            let message = format!("{:#}", refused.err().unwrap_or_else(|| anyhow::anyhow!("accepted")));
            assert!(message.contains(variable) && message.contains("FIFO"), "{message}");
        }
    }

    #[tokio::test]
    async fn a_function_publishes_only_to_the_queues_it_is_given() {
        let aws = emulator_config("http://127.0.0.1:9", "http://127.0.0.1:9");
        let http = https_client().unwrap_or_else(|error| panic!("{error:#}"));
        let none = publisher(&aws, &http, None, None).unwrap_or_else(|error| panic!("{error:#}"));
        assert!(none.is_none(), "no queue, no publisher: committed events wait for the relay");
        let orders_only = publisher(&aws, &http, None, Some("http://127.0.0.1:9/000000000000/orders.fifo"))
            .unwrap_or_else(|error| panic!("{error:#}"))
            .unwrap_or_else(|| panic!("a queue was given, so there must be a publisher"));
        // No request is made for a topic without a queue: it is refused at once, and its event stays in the outbox.
        let refused = orders_only.publish(Topic::Privacy, NewJob::deduplicated("{}".to_owned(), "e-1".to_owned())).await;
        let message = format!("{:#}", refused.err().unwrap_or_else(|| QueueError::Internal(anyhow::anyhow!("accepted"))));
        assert!(message.contains("no privacy queue"), "{message}");
    }

    fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
        result.unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// A checkout that reserved its stock but did not learn whether it was paid, as a killed process or a provider
    /// that stopped answering leaves one, made five minutes ago (on a clock of its own) on the emulators: with
    /// `tok_timeout_once` the provider made the charge but its answer was lost, with `tok_timeout` it made none.
    /// The gateway is given one attempt, so the checkout itself does not retry. Returns the product (4 in stock, 3
    /// reserved) and the order's id.
    async fn stale_reservation(store: &DynamoItemStore, user: &str, token: &str) -> (shared::domain::ProductId, String) {
        use shared::domain::{Currency, Money, NewProduct, commerce::Quantity};
        let past = Arc::new(shared::adapters::memory::ManualClock::new(SystemClock.now().plus_millis(-300_000)));
        let then = AppState::new(store.clone(), past.clone(), Arc::new(UuidIds), ok(Keys::derive(&[7; shared::http::state::MIN_SECRET_BYTES]))).with_payment_timing(
            shared::payments::RetryPolicy { max_attempts: 1, ..shared::payments::RetryPolicy::default() },
            shared::payments::BreakerSettings::default(),
            shared::commerce::checkout::CommerceSettings::default(),
        );
        let fields = ok(NewProduct::new(&format!("SWEEP-{user}"), "Sweep lamp", "", "lighting", Money::new(1500, Currency::EUR), 4));
        let product = ok(then.catalog.create(fields, &UuidIds, &*past).await).id;
        let user = ok(shared::domain::UserId::parse(user));
        ok(then.commerce.set_line(&user, product.clone(), ok(Quantity::new(3))).await);
        let order_id = UuidIds.new_id();
        let outcome = then.commerce.checkout(&user, &order_id, token, None).await;
        assert!(
            matches!(outcome, Err(shared::commerce::CheckoutError::PaymentUnavailable { .. })),
            "the checkout with {token} should have left its order reserved: {outcome:?}"
        );
        assert_eq!(ok(then.catalog.get(&product).await).stock, 1, "the reservation took 3 of 4");
        (product, order_id)
    }

    async fn order_status(store: &DynamoItemStore, order_id: &str) -> serde_json::Value {
        use shared::ports::ItemStore as _;
        let item = ok(store.get(&shared::ports::ItemKey::new(format!("ORDER#{order_id}"), "ORDER")).await);
        item.unwrap_or_else(|| panic!("order {order_id} is gone")).data["status"].clone()
    }

    #[tokio::test]
    async fn the_sweep_completes_a_charged_reservation_releases_an_uncharged_one_and_publishes_order_created() {
        let Some((dynamodb, sqs)) = emulators("the checkout sweep on DynamoDB Local and moto") else { return };
        let aws = emulator_config(&dynamodb, &sqs);
        let http = ok(https_client());
        let run = uuid::Uuid::now_v7().simple().to_string();
        let orders = emulator_queue(&aws, &http, &format!("orders-{run}")).await;
        let cfg = SweepConfig {
            aws,
            table: format!("sweep-{run}"),
            orders_queue_url: Some(orders.queue_url().to_owned()),
            grace: CommerceSettings::default().sweep_grace,
            payments: PaymentsConfig::Sandbox,
        };
        let sweep = ok(CheckoutSweep::new(&cfg, &http));
        let store = &DynamoItemStore::new(cfg.aws.dynamodb(&http), cfg.table.clone(), Arc::new(SystemClock));
        let catalog = shared::catalog::Catalog::new(store.clone());
        ok(store.create_table_if_missing().await);
        assert_eq!(ok(sweep.run().await), SweepReport::default(), "nothing to settle yet");

        let (charged_product, charged) = stale_reservation(store, &format!("u-paid-{run}"), "tok_timeout_once").await;
        let (uncharged_product, uncharged) = stale_reservation(store, &format!("u-unpaid-{run}"), "tok_timeout").await;
        assert_eq!(ok(sweep.run().await), SweepReport { paid: 1, released: 1, failed: 0 });
        assert_eq!(order_status(store, &charged).await, "paid");
        assert_eq!(order_status(store, &uncharged).await, "released");
        assert_eq!(ok(catalog.get(&charged_product).await).stock, 1, "the paid order's units stay sold");
        assert_eq!(ok(catalog.get(&uncharged_product).await).stock, 4, "the released order's units went back");
        let published: Vec<serde_json::Value> = bodies_on(&orders).await.iter().map(|body| ok(serde_json::from_str(body))).collect();
        assert_eq!(published.len(), 1, "exactly the completed order's event is on the orders queue: {published:?}");
        assert_eq!((published[0]["type"].as_str(), published[0]["order_id"].as_str()), (Some("order.created"), Some(charged.as_str())));
        let (left, _) = ok(Outbox::new(store.clone()).pending(10).await);
        assert!(left.is_empty(), "the sweep published its event, so the outbox must be empty: {left:?}");
        assert_eq!(ok(sweep.run().await), SweepReport::default(), "a settled order is not swept again");
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn only_the_retried_message_of_a_batch_is_reported() {
        let job = |outcome: &str| format!("{{\"type\":\"{}\",\"outcome\":\"{outcome}\"}}", shared::jobs::TESTKIT_KIND);
        let mut event = SqsEvent::default();
        event.records = vec![record("a", &job("ack")), record("b", &job("retry")), record("c", &job("ack"))];
        let response = handle_batch(&unreachable_queue(), event, generic_job, never_crash).await.unwrap_or_else(|error| panic!("{error}"));
        let failed: Vec<_> = response.batch_item_failures.iter().map(|failure| failure.item_identifier.as_str()).collect();
        assert_eq!(failed, ["b"]);
    }
}
