//! `GET /me`, `DELETE /me`, `POST /me/export`: the signed-in user's own account, and nobody else's.
//!
//! Every route acts on the account of the bearer token, so there is no id a caller could change to reach
//! another account. The privacy jobs (export, erasure) come later; for now the request is recorded on the
//! account and shown by `GET /me`. Recording it has no rule beyond "the caller's own account", so the
//! handlers call the account repository directly.
//!
//! Responses:
//! - `GET /me`: 200 `AccountView`;
//! - `DELETE /me`: 202 `AccountView` (erasure recorded, account closed, every session revoked);
//! - `POST /me/export`: 202 `AccountView` (export request recorded);
//! - 401 `unauthorized` without a valid bearer token (including a closed account's).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use shared::accounts::AccountsError;
use shared::http::context::observed;
use shared::http::views::AccountView;
use shared::http::{ApiError, AppState, Authenticated};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "me";

async fn show(caller: Authenticated) -> Json<AccountView> {
    Json(AccountView::from(&caller.user))
}

async fn close<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    let closed = state.auth.close_account(&caller.user.id).await?;
    tracing::info!(user_id = %closed.id, "account closed; erasure requested");
    Ok((StatusCode::ACCEPTED, Json(AccountView::from(&closed))).into_response())
}

async fn export<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    let updated = match state.auth.accounts().record_export_request(&caller.user.id, state.clock.now()).await {
        Ok(updated) => updated,
        Err(AccountsError::NotFound) => return Err(ApiError::Unauthorized),
        Err(error) => return Err(ApiError::Internal(anyhow::Error::new(error).context("record an export request"))),
    };
    tracing::info!(user_id = %updated.id, "data export requested");
    Ok((StatusCode::ACCEPTED, Json(AccountView::from(&updated))).into_response())
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new()
        .route("/me", get(show).delete(close::<S>))
        .route("/me/export", post(export::<S>))
        .with_state(state);
    observed(routes, FUNCTION, clock, ids)
}
