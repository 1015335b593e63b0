//! Test builds only (feature `testkit`): `GET /__test/contract` runs the item store contract suite against the
//! real D1 binding inside workerd and answers the per-case report as JSON; `job_queue` holds the push-side queue
//! contract (`/__test/queue-contract`) on the real Queues bindings; `GET /__test/internal-error` fails on purpose
//! with `ApiError::Internal`, so the test script can check that the cause reaches the log and not the response;
//! `privacy_queue` records what reaches the test privacy queue (`GET /__test/privacy-jobs`) and probes the
//! outbox relay (`POST /__test/relay-probe`, `GET /__test/outbox`); `orders_queue` records what reaches the
//! test orders queue (`GET /__test/orders-events`).
//! The routes are observed like every function's (function name `testkit`), so they log a line per request too.
//!
//! The suite is the very one every other adapter passes (`shared::contract::item_store::run`); each run uses
//! a fresh namespace, so runs never see each other's items. The report is
//! `{"suite": "item_store", "passed": N, "failed": N, "cases": [{"name", "ok", "error"}]}` with status 200
//! when every case passed and 500 otherwise. This route is never compiled into a release build.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use shared::contract::{CaseReport, Harness};
use shared::http::AppState;
use shared::ports::Timestamp;
use worker::send::SendFuture;

use crate::app::Store;

pub(crate) mod job_queue;
pub(crate) mod orders_queue;
pub(crate) mod privacy_queue;

/// Real time: the D1 store judges expiry by the Worker's clock, so the suite waits for real.
struct WorkerHarness(AppState<Store>);

impl Harness for WorkerHarness {
    fn now(&self) -> Timestamp {
        self.0.clock.now()
    }

    fn advance(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        SendFuture::new(worker::Delay::from(duration))
    }
}

#[derive(Serialize)]
struct CaseView {
    name: &'static str,
    ok: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct ReportView {
    suite: &'static str,
    passed: usize,
    failed: usize,
    cases: Vec<CaseView>,
}

fn report(suite: &'static str, cases: Vec<CaseReport>) -> Response {
    let cases: Vec<CaseView> = cases
        .into_iter()
        .map(|case| CaseView { name: case.name, ok: case.outcome.is_ok(), error: case.outcome.err() })
        .collect();
    let failed = cases.iter().filter(|case| !case.ok).count();
    let status = if failed == 0 { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    (status, Json(ReportView { suite, passed: cases.len() - failed, failed, cases })).into_response()
}

async fn item_store_contract(State(state): State<AppState<Store>>) -> Response {
    let namespace = format!("contract-{}", state.ids.new_id());
    let harness = WorkerHarness(state.clone());
    let cases = shared::contract::item_store::run(&state.store, &harness, &namespace).await;
    report("item_store", cases)
}

/// Always fails with an internal error whose cause names itself, so the test script can find it in the log.
async fn internal_error() -> shared::http::ApiError {
    shared::http::ApiError::Internal(anyhow::anyhow!("deliberate test failure (GET /__test/internal-error)"))
}

/// Every live item of the store as `{"items": [{"pk", "sk", "data"}]}`: the scenarios scan it for what an
/// erasure must have removed (`tests::store_scan`).
async fn items(State(state): State<AppState<Store>>) -> Response {
    match state.store.scan().await {
        Ok(items) => {
            let items: Vec<serde_json::Value> = items
                .into_iter()
                .map(|item| serde_json::json!({ "pk": item.key.pk, "sk": item.key.sk, "data": item.data.to_string() }))
                .collect();
            (StatusCode::OK, Json(serde_json::json!({ "items": items }))).into_response()
        }
        Err(error) => privacy_queue::internal("failed to scan the store", error),
    }
}

/// The test-only routes.
pub(crate) fn router(state: AppState<Store>, env: &worker::Env) -> Router {
    let queue_contract = job_queue::QueueContract::new(state.clone(), env);
    let (clock, ids) = (Arc::clone(&state.clock), Arc::clone(&state.ids));
    let routes = Router::new()
        .route("/__test/contract", get(item_store_contract))
        .route("/__test/internal-error", get(internal_error))
        .route("/__test/items", get(items))
        .with_state(state.clone())
        .merge(job_queue::router(queue_contract))
        .merge(privacy_queue::router(state.clone()))
        .merge(orders_queue::router(state, env));
    shared::http::context::observed(routes, "testkit", clock, ids)
}
