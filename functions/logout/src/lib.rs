//! `POST /auth/logout`: ends the session the bearer token belongs to. Its refresh tokens stop working, and so
//! do the access tokens issued from it, before they expire.
//!
//! Responses:
//! - 204 when the session is ended (also when it had already ended by another path);
//! - 401 `unauthorized` without a valid bearer token.

use shared::http::openapi as doc;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use shared::http::context::observed;
use shared::http::{ApiError, AppState, Authenticated};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "logout";

#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    tag = "accounts",
    summary = "Sign out: the session's refresh tokens stop working",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn logout<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
) -> Result<StatusCode, ApiError> {
    state.auth.logout(&caller.claims).await?;
    tracing::info!(user_id = %caller.user.id, session = %caller.claims.session, "signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/auth/logout", post(logout::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(logout))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
