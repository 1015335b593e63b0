//! Test builds only (feature `testkit`): what reaches the orders queue.
//!
//! The deployed Worker has no consumer on the orders queue yet (its events wait there for the order-events
//! function), and Miniflare drops what is sent to a queue that has no consumer, so the test environment consumes
//! its own orders queue with [`consume`], which records each message's body in D1 like the privacy queue's
//! recorder (`contract::privacy_queue::record`) and acks it. `GET /__test/orders-events` answers 200
//! `{"messages": ["<body exactly as sent>", ...], "types": {"order.created": n, ...}}`, oldest first, so the
//! test script can check that the commerce scenarios' orders put their events on the queue.
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

/// Records every message of a batch from the test environment's orders queue and acks it.
///
/// # Errors
/// A JavaScript error when a message could not be settled (the platform delivers the batch again).
pub(crate) async fn consume(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
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
pub(crate) fn router(state: AppState<Store>) -> Router {
    Router::new().route("/__test/orders-events", get(orders_events)).with_state(state)
}
