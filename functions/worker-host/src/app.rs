//! Builds the application from the bindings and mounts every function's router on it; runs the cron tick.
//!
//! The stack is named once here: `Store` is the D1 item store, `Queue` the Queues producer. The schema is
//! created once per isolate, before the first store call. The client's address (for login's per-client limit)
//! is the one Cloudflare's edge puts in `CF-Connecting-IP`, never a header the client chose such as
//! `X-Forwarded-For`. Committed outbox events are published right after their commit, privacy jobs on the
//! `PRIVACY` binding and order events on `ORDERS`, and whatever stays in the outbox is relayed by the cron tick,
//! which also sweeps the checkouts left reserved.
//!
//! The state (configuration, keys, the authentication service, the routers) is built once per isolate, on its
//! first request, queue batch or cron tick, and reused by every later one (`built`); it is built again only
//! when a variable or the secret it came from changes. The payment circuit breaker is one per isolate too (a
//! static), so that it sees every checkout the isolate runs, and the payment retries wait on the JavaScript
//! timer (`JsTimer`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use shared::adapters::QueueSettings;
use shared::adapters::d1::D1ItemStore;
use shared::adapters::kv::KvListingCache;
use shared::adapters::queues::CfJobQueue;
use shared::auth::AuthSettings;
use shared::http::extract::MAX_BUFFERED_BODY_BYTES;
use shared::http::{ApiError, AppState, ClientAddress};
use shared::outbox::{Publisher, Topic, Topics};
use shared::payments::{Breaker, BreakerSettings};
use shared::ports::{Clock, IdGen};
use tower::ServiceExt as _;
use worker::{Env, HttpRequest};

use crate::config::{self, Config};
use crate::platform::{CryptoIds, JsClock, JsTimer};

/// The item store this host runs on.
pub(crate) type Store = D1ItemStore;
/// The job queues this host sends to (deduplicating through the store).
pub(crate) type Queue = CfJobQueue<Store>;

/// The most outbox events one relay tick publishes. Each costs about three subrequests (the deduplication
/// claim in D1, the send, the removal from the outbox), so 100 stay far inside the Paid plan's per-invocation
/// limits (which the Worker needs anyway, see `wrangler.toml`); a longer backlog goes on at the next tick.
const RELAY_MAX_EVENTS: usize = 100;

/// The most orders one sweep tick settles. Each costs about eight subrequests (the order, the provider's
/// ledger, the settling transaction, then its event's claim, send and removal), so with a full relay a tick
/// stays under a thousand; a longer backlog goes on at the next tick.
const SWEEP_MAX_ORDERS: usize = 50;

static SCHEMA_READY: AtomicBool = AtomicBool::new(false);

/// The isolate's payment circuit breaker. A Worker isolate runs one thread, and a static lives as long as the
/// isolate (a panic resets both), which is exactly the breaker's scope: one per instance, as on the other hosts.
static BREAKER: OnceLock<Arc<Breaker>> = OnceLock::new();

fn breaker() -> Arc<Breaker> {
    Arc::clone(BREAKER.get_or_init(|| Arc::new(Breaker::new(BreakerSettings::default()))))
}

/// The store on the D1 binding, with its schema in place.
pub(crate) async fn store(env: &Env, clock: Arc<dyn Clock>) -> anyhow::Result<Store> {
    let db = env.d1(config::DB_BINDING).map_err(|_| anyhow::anyhow!("the D1 binding {} must be set", config::DB_BINDING))?;
    let store = D1ItemStore::new(db, clock);
    if !SCHEMA_READY.load(Ordering::Relaxed) {
        store.ensure_schema().await?;
        SCHEMA_READY.store(true, Ordering::Relaxed);
    }
    Ok(store)
}

/// Every function's router on one state, with problem-document fallbacks. The page `/docs` and its files are
/// served by the docs Worker ([`docs_file`]), so the docs function is mounted without them
/// (`docs::router_without_files`): it answers what the docs Worker has no file for.
fn routes(state: AppState<Store>, env: &Env, mcp_settings: mcp::McpSettings) -> Router {
    let (clock, ids) = (state.clock.clone(), state.ids.clone());
    let router = Router::new()
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
        .merge(docs::router_without_files(state.clock.clone(), state.ids.clone()))
        .merge(mcp::router_with(state.clone(), mcp_settings));
    #[cfg(feature = "testkit")]
    let router = router.merge(crate::contract::router(state, env));
    #[cfg(not(feature = "testkit"))]
    let _ = (state, env);
    shared::http::context::with_unrouted(router, clock, ids)
}

/// What a request, a queue batch and a cron tick work with: the routers, the state they share, the cache.
type Built = (Router, AppState<Store>, Option<KvListingCache>);

/// The isolate's built state, with what it was checked against: the `env` object of the last event that used it
/// and the fingerprint of the variables it was built from.
struct Slot {
    env: worker::wasm_bindgen::JsValue,
    fingerprint: [u8; 32],
    built: Built,
}

thread_local! {
    /// An isolate runs one thread, and bindings and variables are fixed for its life (a deploy or a change of
    /// settings starts new isolates), so this is built once per isolate; the fingerprint makes a change rebuild it
    /// anyway. The runtime hands an isolate the same `env` object for every event, so an event with that very
    /// object skips [`fingerprint`] (a JavaScript call per variable).
    static BUILT: std::cell::RefCell<Option<Slot>> = const { std::cell::RefCell::new(None) };
}

/// A digest of every variable and secret [`build`] reads, so that a change of any rebuilds the state. Only the
/// digest is kept, never the secret's text.
fn fingerprint(env: &Env) -> [u8; 32] {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    let secret = env.secret(config::SECRET_BINDING).map(|secret| secret.to_string()).unwrap_or_default();
    digest.update(secret.as_bytes());
    for name in config::STATE_VARIABLES {
        digest.update([0]);
        digest.update(config::optional_var(env, name).unwrap_or_default().as_bytes());
    }
    digest.finalize().into()
}

/// The isolate's state: built on its first request (or batch, or tick), reused by every later one while the
/// variables it came from are unchanged.
async fn built(env: &Env) -> anyhow::Result<Built> {
    let env_value: &worker::wasm_bindgen::JsValue = env.as_ref();
    let same_env = BUILT.with(|slot| slot.borrow().as_ref().filter(|slot| slot.env == *env_value).map(|slot| slot.built.clone()));
    if let Some(built) = same_env {
        return Ok(built);
    }
    let fingerprint = fingerprint(env);
    let same_variables = BUILT.with(|slot| {
        slot.borrow_mut().as_mut().filter(|slot| slot.fingerprint == fingerprint).map(|slot| {
            slot.env = env_value.clone();
            slot.built.clone()
        })
    });
    if let Some(built) = same_variables {
        return Ok(built);
    }
    let fresh = build(env).await?;
    tracing::info!("worker state built");
    BUILT.with(|slot| *slot.borrow_mut() = Some(Slot { env: env_value.clone(), fingerprint, built: fresh.clone() }));
    Ok(fresh)
}

async fn build(env: &Env) -> anyhow::Result<Built> {
    let config = Config::from_worker_env(env)?;
    let clock: Arc<dyn Clock> = Arc::new(JsClock::default());
    let ids: Arc<dyn IdGen> = Arc::new(CryptoIds::default());
    let store = store(env, Arc::clone(&clock)).await?;
    let auth_settings = AuthSettings::for_host(config.first_admin, config.login_attempts_per_client);
    let mcp_settings = config.mcp;
    let mut state =
        AppState::configured(store.clone(), Arc::clone(&clock), ids, config.keys, auth_settings, config.password_params)
            .context("invalid password parameters")?
            .with_sleep(Arc::new(JsTimer))
            .with_breaker(breaker());
    // Without the bindings, committed events simply wait in the outbox; the tick says so loudly.
    if let Some(publisher) = publisher(env, &store, &clock) {
        state = state.with_publisher(publisher);
    }
    // The cache is an optimisation: without its binding the catalog is served from D1 alone.
    let cache = env.kv(config::CATALOG_CACHE_BINDING).ok().map(KvListingCache::new);
    Ok((routes(state.clone(), env, mcp_settings), state, cache))
}

/// The topics' queues on their bindings; `None` when a binding is missing.
fn publisher(env: &Env, store: &Store, clock: &Arc<dyn Clock>) -> Option<Publisher> {
    let queue_of = |binding: &str, topic: Topic| {
        let queue = env.queue(binding).ok()?;
        Some(Queue::new(queue, topic.name(), store.clone(), Arc::clone(clock), QueueSettings::default()))
    };
    let privacy = queue_of(config::PRIVACY_BINDING, Topic::Privacy)?;
    let orders = queue_of(config::ORDERS_BINDING, Topic::Orders)?;
    Some(Arc::new(Topics { privacy, orders: Some(orders) }))
}

/// The header in which Cloudflare's edge names the address the connection came from; the edge sets it itself,
/// replacing whatever the client sent. Locally, `wrangler dev` (Miniflare's entry worker) sets it to the
/// socket's peer address only when the client sent none, so there a loopback client can choose its own bucket;
/// that is acceptable for a development server listening on 127.0.0.1.
pub(crate) const CONNECTING_IP_HEADER: &str = "cf-connecting-ip";

/// The client's address from [`CONNECTING_IP_HEADER`], normalised, if it holds exactly one IP address.
/// Without one, `ClientAddress` is absent and login answers 500 instead of putting every client in one bucket.
fn client_address(headers: &http::HeaderMap) -> Option<ClientAddress> {
    let mut values = headers.get_all(CONNECTING_IP_HEADER).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let address: std::net::IpAddr = value.to_str().ok()?.trim().parse().ok()?;
    Some(ClientAddress(address.to_string()))
}

/// Answers one request. Never fails: a host error becomes a 500 problem document (the cause is logged).
///
/// The body is read in full (up to [`MAX_BUFFERED_BODY_BYTES`], the limit the local host's `buffer_body` keeps
/// too) before routing, and before the listing cache: a router may answer without reading it (405, 415), and
/// `wrangler dev`'s proxy then resets the connection while the client is still sending.
pub(crate) async fn handle(req: HttpRequest, env: &Env) -> http::Response<Body> {
    let (mut parts, body) = req.into_parts();
    match client_address(&parts.headers) {
        Some(address) => {
            parts.extensions.insert(address);
        }
        None => tracing::warn!("the request has no single valid {CONNECTING_IP_HEADER} header"),
    }
    let req = match axum::body::to_bytes(Body::new(body), MAX_BUFFERED_BODY_BYTES).await {
        Ok(bytes) => http::Request::from_parts(parts, Body::from(bytes)),
        Err(_) => {
            return axum::response::IntoResponse::into_response(ApiError::PayloadTooLarge { limit: MAX_BUFFERED_BODY_BYTES });
        }
    };
    match built(env).await {
        Ok((router, state, cache)) => crate::cache::serve(req, router, &state, cache.as_ref()).await,
        Err(error) => {
            tracing::error!(error = ?error, "failed to build the worker's state");
            axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!("worker misconfigured")))
        }
    }
}

/// `GET` and `HEAD` of the docs page and its files ([`docs::is_docs_path`]) go to the docs Worker on the `DOCS`
/// service binding, which serves them as Workers Static Assets (`functions/docs/wrangler.toml`), and its response
/// (a file, a redirect, a 304) goes back to the client untouched, streamed. When it has no such file (404), or for
/// any other method or path, this is `None` and the request is routed here as any other, so the docs function's
/// own routes answer 404 or 405 with a problem document, as on the other hosts. The docs live in a Worker of their
/// own because Workers Static Assets on this Worker would put the platform's asset router in front of every API
/// request (about 0.3 ms of a product read under `wrangler dev`, PERFORMANCE.md).
///
/// # Errors
/// When the binding is missing or the docs Worker fails: the caller answers 500 and logs it.
pub(crate) async fn docs_file(
    raw: &worker::web_sys::Request,
    req: &HttpRequest,
    env: &Env,
) -> Option<worker::Result<worker::web_sys::Response>> {
    if !matches!(*req.method(), http::Method::GET | http::Method::HEAD) || !docs::is_docs_path(req.uri().path()) {
        return None;
    }
    let forwarded = async {
        use worker::wasm_bindgen::JsCast as _;
        let fetcher = env.service(config::DOCS_BINDING)?.into_rpc::<worker::worker_sys::Fetcher>();
        let response = worker::js_sys::futures::JsFuture::from(fetcher.fetch(raw)?).await?;
        Ok::<_, worker::Error>(response.dyn_into::<worker::web_sys::Response>()?)
    };
    match forwarded.await {
        Ok(response) if response.status() == http::StatusCode::NOT_FOUND.as_u16() => None,
        other => Some(other),
    }
}

/// Answers a request with the routers alone (no cache). Never fails.
pub(crate) async fn route(req: http::Request<Body>, router: Router) -> http::Response<Body> {
    match router.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// One cron tick. The relay schedule ([`config::RELAY_CRON`]) publishes what is left in the outbox and settles
/// the checkouts left reserved past their grace (`Commerce::sweep`); the housekeeping schedule
/// ([`config::HOUSEKEEPING_CRON`]) deletes expired items and, where enabled, seeds the demo catalog. A schedule this build does not know (`wrangler.toml` changed without this file) runs both:
/// each is safe to repeat. Errors are logged; the next tick retries.
pub(crate) async fn tick(cron: &str, env: &Env) {
    let (_, state, cache) = match built(env).await {
        Ok(built) => built,
        Err(error) => {
            tracing::error!(cron, error = ?error, "failed to build the worker's state");
            return;
        }
    };
    let (relay, housekeeping, report) = match cron {
        config::RELAY_CRON => (true, false, false),
        config::HOUSEKEEPING_CRON => (false, true, false),
        config::REPORT_CRON => (false, false, true),
        _ => {
            tracing::warn!(cron, "a cron schedule this build does not know; running every scheduled task");
            (true, true, true)
        }
    };
    if report {
        match jobs(env, &state) {
            Ok(jobs) => match jobs.sales_report().await {
                // The job logs what it did ("sales report", with closed_now and mailed_now).
                Ok(_) => {}
                Err(error) => tracing::error!(cron, error = %error, "the sales report job failed; the next day's run closes the day before only"),
            },
            Err(error) => tracing::error!(cron, error = ?error, "the sales report job cannot be built"),
        }
    }
    if relay {
        relay_outbox(cron, &state).await;
        sweep_checkouts(cron, &state).await;
    }
    if housekeeping {
        housekeep(cron, env, &state, cache.as_ref()).await;
    }
}

/// The jobs on the state's store, mailing through the `send_email` binding, with the sender and admins of the
/// Worker's variables.
///
/// # Errors
/// When the `send_email` binding is missing or a mail setting is not an address.
pub(crate) fn jobs(env: &Env, state: &AppState<Store>) -> anyhow::Result<shared::jobs::Jobs<Store>> {
    let binding = env.send_email(config::EMAIL_BINDING).map_err(|_| anyhow::anyhow!("the send_email binding {} must be set", config::EMAIL_BINDING))?;
    let settings = shared::mail::MailSettings::configured(
        config::optional_var(env, config::MAIL_FROM_BINDING).as_deref(),
        config::optional_var(env, config::ADMIN_EMAIL_BINDING).as_deref(),
        config::optional_var(env, config::ALERTS_TO_BINDING).as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let mailer = Arc::new(crate::platform::BindingMailer::new(binding));
    let jobs = shared::jobs::Jobs::new(state.store.clone(), mailer, Arc::clone(&state.clock), settings);
    #[cfg(feature = "testkit")]
    let jobs = jobs.with_poison_prefix(config::optional_var(env, config::FAULT_POISON_ORDERS_BINDING));
    Ok(jobs)
}

/// The state a queue consumer works with (the routers are not needed).
pub(crate) async fn state_for_jobs(env: &Env) -> anyhow::Result<AppState<Store>> {
    built(env).await.map(|(_, state, _)| state)
}

/// Publishes up to [`RELAY_MAX_EVENTS`] outbox events; the ones whose queue fails stay for the next tick.
async fn relay_outbox(cron: &str, state: &AppState<Store>) {
    let Some(publisher) = state.publisher.as_ref() else {
        match state.outbox().pending(1).await {
            Ok((events, _)) if events.is_empty() => {}
            Ok(_) => tracing::error!(
                cron,
                bindings = %format_args!("{} and {}", config::PRIVACY_BINDING, config::ORDERS_BINDING),
                "a queue binding is missing; events wait in the outbox"
            ),
            Err(error) => tracing::error!(cron, error = ?error, "failed to read the outbox"),
        }
        return;
    };
    match state.outbox().relay(publisher.as_ref(), RELAY_MAX_EVENTS).await {
        Ok(report) if report.failed > 0 || report.more => {
            tracing::warn!(cron, published = report.published, failed = report.failed, more = report.more, "relayed the outbox; some events wait for the next tick");
        }
        // A minute with nothing to relay is the usual case, and not worth a log line.
        Ok(report) if report.published == 0 => tracing::debug!(cron, "relayed the outbox; it was empty"),
        Ok(report) => tracing::info!(cron, published = report.published, failed = report.failed, more = report.more, "relayed the outbox"),
        Err(error) => tracing::error!(cron, error = ?error, "failed to read the outbox"),
    }
}

/// Settles up to [`SWEEP_MAX_ORDERS`] orders left reserved past the grace period (a checkout whose request
/// died, or whose client never retried after a 503): paid when the provider holds the charge, released when not.
/// Orders the provider could not tell about are left for the next tick.
async fn sweep_checkouts(cron: &str, state: &AppState<Store>) {
    match state.commerce.sweep(SWEEP_MAX_ORDERS).await {
        Ok(report) if report.failed > 0 => {
            tracing::warn!(cron, paid = report.paid, released = report.released, failed = report.failed, "swept the checkouts; some orders wait for the next tick");
        }
        // Unlike the relay's, an empty report is logged too: it is the only sign that the sweep runs at all.
        Ok(report) => tracing::info!(cron, paid = report.paid, released = report.released, failed = report.failed, "swept the checkouts"),
        Err(error) => tracing::error!(cron, error = ?error, "failed to read the unsettled orders"),
    }
}

/// Deletes expired items and, where enabled, seeds the demo catalog (then invalidates the listing cache, since
/// the catalog changed behind the routers' back).
async fn housekeep(cron: &str, env: &Env, state: &AppState<Store>, cache: Option<&KvListingCache>) {
    match state.store.sweep_expired().await {
        Ok(deleted) => tracing::info!(cron, deleted, "swept expired items"),
        Err(error) => tracing::error!(cron, error = ?error, "failed to sweep expired items"),
    }
    let seed = match Config::from_worker_env(env) {
        Ok(config) => config.demo_seed,
        Err(_) => None,
    };
    if let Some(count) = seed {
        match state.catalog.seed_demo_if_empty(count, &state.ids, &state.clock).await {
            Ok(created) => {
                tracing::info!(cron, created, "seeded the demo catalog");
                if created > 0 {
                    crate::cache::invalidate(state, cache).await;
                }
            }
            Err(error) => tracing::error!(cron, error = ?error, "failed to seed the demo catalog"),
        }
    }
}
