//! Test builds only (feature `testkit`): what reaches the privacy queue, and a probe of the outbox relay.
//!
//! Before the privacy job handles a batch of the test environment's privacy queue, [`observe`] records each
//! message's body in D1 through the item store (keyed by message id, so a redelivery is recorded once; kept for
//! an hour), so that the test script can check that `DELETE /me` and `POST /me/export` started their jobs:
//! - `GET /__test/privacy-jobs` answers 200 `{"messages": ["<body exactly as sent>", ...]}`, oldest first;
//! - `POST /__test/relay-probe` writes a probe event (a `testkit.relay_probe` job for the privacy queue) straight
//!   into the outbox, as a use case's transaction would, without publishing it, and answers 201
//!   `{"event_id", "body"}`: only the cron relay can then bring `body` to the queue;
//! - `GET /__test/outbox` answers 200 `{"pending": ["<event id>", ...]}`, the events still in the outbox.
//!
//! The recording itself ([`record`], [`recorded`]) serves the test orders queue too (`contract::orders_queue`).
//!
//! This module is never compiled into a release build.


use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};
use shared::adapters::queues::ConsumedMessage;
use shared::http::AppState;
use shared::outbox::{Event, Topic};
use shared::ports::{Condition, IdGen as _, Item, ItemKey, ItemStore as _, Query, StoreError};
use worker::Env;
use worker::wasm_bindgen::JsValue;

use crate::app::Store;
use crate::contract::job_queue::recorder;
use crate::platform::CryptoIds;

/// The partition holding what reached the privacy queue.
const PARTITION: &str = "TESTKIT#PRIVACY_QUEUE";
/// How long a record is kept (the item store's TTL; the cron sweep deletes it later).
const RECORD_TTL_SECS: i64 = 3600;
/// The job kind of the relay probe, which only this build writes.
const PROBE_KIND: &str = "testkit.relay_probe";
/// The most outbox events `GET /__test/outbox` lists.
const OUTBOX_LISTED: usize = 1000;

/// Records every message of a batch from the test environment's privacy queue, before the privacy job handles
/// it.
///
/// # Errors
/// A JavaScript error when a record could not be written (the platform delivers the batch again).
pub(crate) async fn observe(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    record(messages, env, PARTITION, "privacy").await
}

/// Records every message of a batch in `partition` (once per message id), settling nothing: the queue's real
/// consumer settles it next.
///
/// # Errors
/// A JavaScript error when a record could not be written, so that the batch fails and comes back unrecorded
/// messages included.
pub(crate) async fn record(messages: &[ConsumedMessage], env: &Env, partition: &str, queue: &str) -> Result<(), JsValue> {
    let (store, clock) = recorder(env).await.map_err(|error| {
        tracing::error!(queue, error = ?error, "no store to record queue messages in");
        JsValue::from_str("no store to record queue messages in")
    })?;
    for message in messages {
        let Some(body) = message.text() else { continue };
        let now = clock.now();
        // A message without an id (never seen) is recorded under a fresh one.
        let message_id = message.id().unwrap_or_else(|| CryptoIds::default().new_id());
        let mut item = Item::new(ItemKey::new(partition, message_id.clone()), 1, json!({ "body": body, "message_id": message_id, "at_ms": now.as_millis() }));
        item.expires_at = Some(now.as_secs().saturating_add(RECORD_TTL_SECS));
        match store.put(item, Condition::NotExists).await {
            // A redelivery of a message already recorded.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(error) => {
                tracing::error!(queue, error = ?error, "failed to record a queue message; failing the batch");
                return Err(JsValue::from_str("failed to record a queue message"));
            }
        }
    }
    Ok(())
}

pub(crate) fn internal(what: &str, error: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("{what}: {error}") }))).into_response()
}

/// Every body recorded in `partition`, oldest first.
///
/// # Errors
/// The store's, when a page cannot be read.
pub(crate) async fn recorded(state: &AppState<Store>, partition: &str) -> Result<Vec<String>, StoreError> {
    let mut records: Vec<(i64, String)> = Vec::new();
    let mut after = None;
    loop {
        let page = state.store.query(&Query::new(partition, "", 1000).after(after)).await?;
        for item in page.items {
            let at_ms = item.data.get("at_ms").and_then(Value::as_i64).unwrap_or_default();
            if let Some(body) = item.data.get("body").and_then(Value::as_str) {
                records.push((at_ms, body.to_owned()));
            }
        }
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    records.sort();
    Ok(records.into_iter().map(|(_, body)| body).collect())
}

/// Every recorded body, oldest first.
async fn privacy_jobs(State(state): State<AppState<Store>>) -> Response {
    match recorded(&state, PARTITION).await {
        Ok(messages) => (StatusCode::OK, Json(json!({ "messages": messages }))).into_response(),
        Err(error) => internal("failed to read the privacy queue's records", error),
    }
}

/// Writes a probe event into the outbox, unpublished.
async fn relay_probe(State(state): State<AppState<Store>>) -> Response {
    let probe = state.ids.new_id();
    let job = json!({ "type": PROBE_KIND, "probe": probe });
    let event = match Event::new(Topic::Privacy, format!("{PROBE_KIND}.{probe}"), &job, state.clock.now()) {
        Ok(event) => event,
        Err(error) => return internal("failed to make the probe event", error),
    };
    let write = match event.write() {
        Ok(write) => write,
        Err(error) => return internal("failed to encode the probe event", error),
    };
    if let Err(error) = state.store.transact(vec![write]).await {
        return internal("failed to write the probe event", error);
    }
    (StatusCode::CREATED, Json(json!({ "event_id": event.id, "body": event.body }))).into_response()
}

/// The ids of the events still in the outbox.
async fn outbox(State(state): State<AppState<Store>>) -> Response {
    match state.outbox().pending(OUTBOX_LISTED).await {
        Ok((events, _)) => {
            let pending: Vec<String> = events.into_iter().map(|event| event.id).collect();
            (StatusCode::OK, Json(json!({ "pending": pending }))).into_response()
        }
        Err(error) => internal("failed to read the outbox", error),
    }
}

/// The routes of this module.
pub(crate) fn router(state: AppState<Store>) -> Router {
    Router::new()
        .route("/__test/privacy-jobs", get(privacy_jobs))
        .route("/__test/relay-probe", post(relay_probe))
        .route("/__test/outbox", get(outbox))
        .with_state(state)
}
