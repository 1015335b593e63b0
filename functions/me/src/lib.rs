//! `GET /me`, `DELETE /me`, `POST /me/export`: the signed-in user's own account, and nobody else's.
//!
//! Every route acts on the account of the bearer token, so there is no id a caller could change to reach
//! another account. `DELETE /me` and `POST /me/export` record the request on the account (shown by `GET /me`)
//! and write its privacy job into the outbox in the same transaction (`shared::accounts`); the handler then
//! publishes the job to the privacy queue at once, and the host's outbox relay publishes it later if that
//! fails. The 202 means the request is durably recorded and its job will reach the queue.
//!
//! Responses:
//! - `GET /me`: 200 `AccountView`;
//! - `DELETE /me`: 202 `AccountView` (erasure recorded and its job enqueued, account closed, every session
//!   revoked);
//! - `POST /me/export`: 202 `AccountView` (export request recorded and its job enqueued; while one is pending,
//!   asking again answers the same and enqueues nothing);
//! - `GET /me/export`: 202 `{"status": "pending", "requested_at"}` while the privacy job builds the export; 200
//!   the export document (`{"exported_at", "account", "orders", "cart", "requests"}`, kept seven days) once it
//!   is ready; 404 `not_found` when none was asked for (or it expired);
//! - 401 `unauthorized` without a valid bearer token (including a closed account's).

use shared::http::error::Problem;
use shared::http::openapi as doc;
use shared::http::views::privacy::{ExportPendingView, ExportView};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use shared::accounts::AccountsError;
use shared::http::context::observed;
use shared::exports::Exports;
use shared::http::views::{AccountView, rfc3339};
use shared::http::{ApiError, AppState, Authenticated};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "me";

#[utoipa::path(
    get,
    path = "/me",
    operation_id = "get_me",
    tag = "accounts",
    summary = "The signed-in account",
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn show(caller: Authenticated) -> Json<AccountView> {
    Json(AccountView::from(&caller.user))
}

#[utoipa::path(
    delete,
    path = "/me",
    operation_id = "close_account",
    tag = "privacy",
    summary = "Close the account and erase its personal data",
    responses(
        (status = 202, description = "Closed; every session revoked; erasure queued", body = AccountView),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn close<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    let (closed, event) = state.auth.close_account(&caller.user.id).await?;
    tracing::info!(user_id = %closed.id, "account closed; erasure requested");
    state.publish_committed(event).await;
    Ok((StatusCode::ACCEPTED, Json(AccountView::from(&closed))).into_response())
}

#[utoipa::path(
    post,
    path = "/me/export",
    operation_id = "request_export",
    tag = "privacy",
    summary = "Ask for an export of everything the shop holds about the user",
    responses(
        (status = 202, description = "Recorded and queued (asking again while one is pending changes nothing)", body = AccountView),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn export<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    let (updated, event) = match state.auth.accounts().request_export(&caller.user.id, state.clock.now()).await {
        Ok(changed) => changed,
        Err(AccountsError::NotFound) => return Err(ApiError::Unauthorized),
        Err(error) => return Err(ApiError::Internal(anyhow::Error::new(error).context("record an export request"))),
    };
    tracing::info!(user_id = %updated.id, "data export requested");
    state.publish_committed(event).await;
    Ok((StatusCode::ACCEPTED, Json(AccountView::from(&updated))).into_response())
}

#[utoipa::path(
    get,
    path = "/me/export",
    operation_id = "get_export",
    tag = "privacy",
    summary = "The data export, once ready",
    responses(
        (status = 200, description = "The export (kept seven days)", body = ExportView),
        (status = 202, description = "Still being built", body = ExportPendingView),
        (status = 401, response = doc::Unauthorized),
        (status = 404, description = "`not_found`: no export was asked for, or it expired", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn fetch_export<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    if let Some(requested_at) = caller.user.export_requested_at {
        let pending = ExportPendingView { status: "pending".to_owned(), requested_at: rfc3339(requested_at) };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    }
    let stored = Exports::new(state.store.clone())
        .get(&caller.user.id)
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("read an export")))?;
    let Some((_, document)) = stored else { return Err(ApiError::NotFound("an export (ask for one with POST /me/export)".to_owned())) };
    Ok(([(http::header::CONTENT_TYPE, "application/json")], document).into_response())
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new()
        .route("/me", get(show).delete(close::<S>))
        .route("/me/export", post(export::<S>).get(fetch_export::<S>))
        .with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, close, export, fetch_export))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
