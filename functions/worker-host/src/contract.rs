//! Test builds only (feature `testkit`): `GET /__test/contract` runs the item store contract suite against the
//! real D1 binding inside workerd and answers the per-case report as JSON.
//!
//! The suite is the very one every other adapter passes (`shared::contract::item_store::run`); each run uses
//! a fresh namespace, so runs never see each other's items. The report is
//! `{"suite": "item_store", "passed": N, "failed": N, "cases": [{"name", "ok", "error"}]}` with status 200
//! when every case passed and 500 otherwise. This route is never compiled into a release build.

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

/// The test-only routes.
pub(crate) fn router(state: AppState<Store>) -> Router {
    Router::new().route("/__test/contract", get(item_store_contract)).with_state(state)
}
