//! `GET /health`: tells a load balancer or a person that the function is up and can reach its store.
//!
//! Responses:
//! - 200 `{"status":"ok","store":"ok"}` when a store read succeeds;
//! - 503 problem document (`code` `unavailable`) when it fails.

use shared::http::error::Problem;
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthView {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the store answered.
    pub store: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    summary = "Whether the function and its store answer",
    responses(
        (status = 200, description = "The function and its store answer", body = HealthView),
        (status = 503, description = "`unavailable`: the store is not answering", body = Problem, content_type = "application/problem+json")
    )
)]
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

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
