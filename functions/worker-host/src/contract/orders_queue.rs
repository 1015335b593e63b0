//! Test builds only (feature `testkit`): what reaches the orders queue.
//!
//! Before the order-events job handles a batch of the test environment's orders queue, [`observe`] records each
//! message's body in D1 like the privacy queue's recorder (`contract::privacy_queue::record`). `GET /__test/orders-events` answers 200
//! `{"messages": ["<body exactly as sent>", ...], "types": {"order.created": n, ...}}`, oldest first, so the
//! test script can check that the commerce scenarios' orders put their events on the queue.
//!
//! For invariant 4, `POST /__test/orders-queue` puts its body on the orders queue as the relay would (so a test can
//! send a poison or a malformed event), and the test build consumes the orders dead-letter queue with
//! [`consume_dead_letters`], which records what arrives there: `GET /__test/orders-dead-letters` answers
//! `{"messages": ["<body>", ...]}`.
//!
//! This module is never compiled into a release build.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{Value, json};
use shared::adapters::queues::ConsumedMessage;
use shared::http::AppState;
use worker::Env;
use worker::wasm_bindgen::JsValue;

use crate::app::Store;
use crate::contract::privacy_queue::{internal, record, recorded};

/// The partition holding what reached the orders queue.
const PARTITION: &str = "TESTKIT#ORDERS_QUEUE";
/// The partition holding what reached the orders dead-letter queue.
const DEAD_LETTERS: &str = "TESTKIT#ORDERS_DLQ";

/// Records every message of a batch from the test environment's orders dead-letter queue and acks it.
///
/// # Errors
/// A JavaScript error when a record could not be written or a message acked (the batch comes back).
pub(crate) async fn consume_dead_letters(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    record(messages, env, DEAD_LETTERS, "orders-dlq").await?;
    for message in messages {
        message.ack().map_err(|_| JsValue::from_str("failed to ack an orders dead letter"))?;
    }
    Ok(())
}

async fn dead_letters(State(state): State<AppState<Store>>) -> Response {
    match recorded(&state, DEAD_LETTERS).await {
        Ok(messages) => (StatusCode::OK, Json(json!({ "messages": messages }))).into_response(),
        Err(error) => internal("failed to read the orders dead letters", error),
    }
}

/// Puts the request's body on the orders queue, as the outbox relay would.
async fn enqueue(State(queue): State<Option<crate::app::Queue>>, body: String) -> Response {
    let Some(queue) = queue else { return internal("no orders queue", "the ORDERS binding is missing") };
    match shared::ports::JobQueue::send(&queue, shared::ports::NewJob { body, dedup_id: None }).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => internal("failed to send to the orders queue", error),
    }
}

/// Records every message of a batch from the test environment's orders queue, before the order-events job
/// handles it.
///
/// # Errors
/// A JavaScript error when a record could not be written (the platform delivers the batch again).
pub(crate) async fn observe(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    record(messages, env, PARTITION, "orders").await
}

/// Every recorded body, oldest first, and how many there are of each event `type` (a body that is not a JSON
/// object with a text `type` counts as `"unreadable"`).
async fn orders_events(State(state): State<AppState<Store>>) -> Response {
    let messages = match recorded(&state, PARTITION).await {
        Ok(messages) => messages,
        Err(error) => return internal("failed to read the orders queue's records", error),
    };
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for body in &messages {
        let kind = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|event| event.get("type").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "unreadable".to_owned());
        *types.entry(kind).or_default() += 1;
    }
    (StatusCode::OK, Json(json!({ "messages": messages, "types": types }))).into_response()
}

/// The routes of this module.
pub(crate) fn router(state: AppState<Store>, env: &Env) -> Router {
    let queue = env.queue(crate::config::ORDERS_BINDING).ok().map(|queue| {
        crate::app::Queue::new(queue, "orders", state.store.clone(), std::sync::Arc::clone(&state.clock), shared::adapters::QueueSettings::default())
    });
    Router::new()
        .route("/__test/orders-events", get(orders_events))
        .route("/__test/orders-dead-letters", get(dead_letters))
        .with_state(state)
        .merge(Router::new().route("/__test/orders-queue", axum::routing::post(enqueue)).with_state(queue))
}
