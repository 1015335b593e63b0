//! `GET /health`: tells a load balancer or a person that the function is up and can reach its store.
//!
//! Responses:
//! - 200 `{"status":"ok","store":"ok"}` when a store read succeeds;
//! - 503 problem document (`code` `unavailable`) when it fails.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::http::{ApiError, AppState};
use shared::http::context::observed;
use shared::ports::{ItemKey, ItemStore};

/// The function's name in logs.
pub const FUNCTION: &str = "health";

/// The answer.
#[derive(Debug, Serialize)]
pub struct HealthView {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the store answered.
    pub store: &'static str,
}

async fn health<S: ItemStore + Clone>(State(state): State<AppState<S>>) -> Result<Json<HealthView>, ApiError> {
    // A point read of a key that never exists: cheap on every backend, and it proves the store answers.
    match state.store.get(&ItemKey::new("HEALTH", "PROBE")).await {
        Ok(_) => Ok(Json(HealthView { status: "ok", store: "ok" })),
        Err(error) => {
            tracing::error!(error = ?error, "health check could not reach the store");
            Err(ApiError::Unavailable("the store".to_owned()))
        }
    }
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/health", get(health::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}
