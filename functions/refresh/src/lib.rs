//! `POST /auth/refresh`: trades a refresh token for a new access token and a new refresh token (rotation).
//!
//! A refresh token works once. Presenting one that was already spent revokes its whole family (session), so
//! a stolen token is useless to both the thief and the owner after the first reuse. Tokens are never logged.
//!
//! Responses:
//! - 200 `TokensView` with `Cache-Control: no-store`;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed request;
//! - 401 `unauthorized` for an unknown, expired, spent or revoked token, or a closed account.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use secrecy::SecretString;
use serde::Deserialize;
use shared::http::context::observed;
use shared::http::views::TokensView;
use shared::http::{ApiError, AppState};
use shared::ports::ItemStore;
use shared::sessions::RefreshToken;

/// The function's name in logs.
pub const FUNCTION: &str = "refresh";

/// What a client sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The refresh token from the last login or refresh (kept secret: redacted in `Debug`).
    #[schema(value_type = String, format = Password)]
    pub refresh_token: SecretString,
}

#[utoipa::path(
    post,
    path = "/auth/refresh",
    operation_id = "refresh",
    tag = "accounts",
    summary = "Trade a refresh token for new tokens (each refresh token works once)",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses(
        (status = 200, description = "New tokens", body = TokensView, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized)
    )
)]
async fn refresh<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    shared::http::Json(body): shared::http::Json<RefreshBody>,
) -> Result<Response, ApiError> {
    let presented = RefreshToken::presented(body.refresh_token);
    let signed_in = state.auth.refresh(&presented).await?;
    tracing::info!(user_id = %signed_in.user.id, session = %signed_in.refresh.session, "refreshed");
    Ok(TokensView::response(&signed_in, state.clock.now()))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/auth/refresh", post(refresh::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(refresh))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
