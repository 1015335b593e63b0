//! `POST /auth/login`: signs a user in with e-mail and password and hands out an access and a refresh token.
//!
//! Attempts are limited per client address (as the host saw the connection) and per account, before any
//! password is checked. An unknown e-mail, a wrong password and a closed account get one and the same answer.
//! Neither the password nor the tokens are logged.
//!
//! Responses:
//! - 200 `TokensView` with `Cache-Control: no-store`;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed request;
//! - 401 `invalid_credentials` for an unknown e-mail, a wrong password or a closed account;
//! - 429 `rate_limited` with `Retry-After` (seconds) after too many attempts.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use secrecy::SecretString;
use serde::Deserialize;
use shared::auth::Login;
use shared::http::context::observed;
use shared::http::views::TokensView;
use shared::http::{ApiError, AppState, ClientAddress};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "login";

/// What a client sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The e-mail address as typed.
    pub email: String,
    /// The password (kept secret: redacted in `Debug`).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "accounts",
    summary = "Sign in: an access token and a refresh token",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = TokensView, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, description = "`invalid_credentials`: the e-mail and password do not match an open account", body = Problem, content_type = "application/problem+json"),
        (status = 429, response = doc::RateLimited)
    )
)]
async fn login<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    ClientAddress(client): ClientAddress,
    shared::http::Json(body): shared::http::Json<LoginBody>,
) -> Result<Response, ApiError> {
    let attempt = Login { email: body.email, password: body.password, client };
    let signed_in = match state.auth.login(&attempt).await {
        Ok(signed_in) => signed_in,
        Err(error) => {
            let api_error = ApiError::from(error);
            tracing::info!(code = api_error.status_and_code().1, "login refused");
            return Err(api_error);
        }
    };
    tracing::info!(user_id = %signed_in.user.id, session = %signed_in.refresh.session, "signed in");
    Ok(TokensView::response(&signed_in, state.clock.now()))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/auth/login", post(login::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(login))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
