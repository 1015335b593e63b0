//! The Cloudflare Workers host: one wasm32 Worker that mounts every function's `router()` (the same code the
//! Lambda and local hosts run), consumes the jobs queue and runs the cron trigger.
//!
//! Wiring only: it builds adapters from the `Env` bindings named in `wrangler.toml` and hands requests,
//! batches and ticks to `shared`. No business rule lives here, and no code path reachable from a request,
//! a message or a tick may panic (with `panic = "abort"` a panic resets the isolate).
//! On targets other than wasm32 the crate is empty.
#![cfg(target_arch = "wasm32")]

mod app;
mod cache;
mod config;
#[cfg(feature = "testkit")]
mod contract;
mod jobs;
mod platform;

use worker::{Context, Env, HttpRequest, MessageBatch, ScheduleContext, ScheduledEvent, event};

/// Every request: build the state from the bindings, then route it through the functions' routers.
#[event(fetch)]
async fn fetch(req: HttpRequest, env: Env, _ctx: Context) -> worker::Result<http::Response<axum::body::Body>> {
    Ok(app::handle(req, &env).await)
}

/// Every batch of the jobs queue. Always `Ok`: each message is settled on its own, and an error returned here
/// would make the runtime glue panic.
#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> worker::Result<()> {
    jobs::consume(&batch, &env).await;
    Ok(())
}

/// Every cron tick: housekeeping (expired items, demo catalog when enabled).
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    app::tick(&event.cron(), &env).await;
}
