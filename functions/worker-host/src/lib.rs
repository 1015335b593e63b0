//! The Cloudflare Workers host: one wasm32 Worker that mounts every function's `router()` (the same code the
//! Lambda and local hosts run), publishes privacy jobs and order events, consumes the jobs queue and runs the
//! cron triggers.
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
mod glue;
mod jobs;
mod logging;
mod platform;

use axum::response::IntoResponse as _;
use shared::http::ApiError;
use worker::{Context, Env, ScheduleContext, ScheduledEvent, event};

/// Every request: the docs page and its files from the docs Worker; anything else (and what the docs Worker has
/// no file for) through the functions' routers, on the state built from the bindings. The request's log lines are
/// written after its response has gone (`waitUntil`).
#[event(fetch)]
async fn fetch(raw: worker::web_sys::Request, env: Env, ctx: Context) -> worker::Result<worker::web_sys::Response> {
    logging::init();
    let response = match glue::request(&raw) {
        Ok(req) => match app::docs_file(&raw, &req, &env).await {
            Some(Ok(file)) => Ok(file),
            Some(Err(error)) => {
                tracing::error!(error = %error, path = req.uri().path(), "the docs Worker (binding DOCS) failed");
                glue::response(ApiError::Internal(anyhow::anyhow!("the docs Worker failed")).into_response()).await
            }
            None => glue::response(app::handle(req, &env).await).await,
        },
        Err(error) => {
            tracing::warn!(error = %error, "a request the http crate cannot represent");
            glue::response(
                ApiError::InvalidParameter { param: "request".to_owned(), detail: "the method, URL or a header is malformed".to_owned() }
                    .into_response(),
            )
            .await
        }
    };
    // A timer turn first, so the runtime has sent the response before the isolate is busy writing lines.
    ctx.wait_until(async {
        worker::Delay::from(std::time::Duration::ZERO).await;
        logging::flush();
    });
    response
}

/// Every cron tick: the outbox relay and the checkout sweep every minute, housekeeping (expired items, demo
/// catalog when enabled) every 15 minutes.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    logging::init();
    app::tick(&event.cron(), &env).await;
    logging::flush();
}

/// The queue export, written out instead of `#[event(queue)]`: that macro wraps the batch in workers-rs'
/// `MessageBatch`, which hides the message objects' `attempts` and unwraps every runtime call, and it panics
/// when the handler fails. This one hands the raw batch to `jobs::consume` and turns a failure into a rejected
/// promise, which makes the platform deliver the batch's unsettled messages again.
mod queue_export {
    use worker::wasm_bindgen::JsValue;
    use worker::wasm_bindgen::prelude::wasm_bindgen;
    use worker::worker_sys::{Context, MessageBatch};

    /// Every batch of a queue this Worker consumes.
    #[allow(unreachable_pub, reason = "wasm-bindgen exports it to the JavaScript entry module")]
    #[wasm_bindgen(
        wasm_bindgen = ::worker::wasm_bindgen,
        wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
        js_sys = ::worker::js_sys
    )]
    pub async fn queue(batch: MessageBatch, env: worker::Env, _ctx: Context) -> Result<JsValue, JsValue> {
        crate::logging::init();
        let consumed = crate::jobs::consume(&batch, &env).await.map(|()| JsValue::UNDEFINED);
        crate::logging::flush();
        consumed
    }
}
