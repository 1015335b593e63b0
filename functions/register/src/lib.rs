//! `POST /auth/register`: opens a customer account (or the configured first admin's) for an e-mail address.
//!
//! Body: `{"email": "...", "password": "..."}`; the e-mail is normalised (trimmed, lower-cased) and the
//! password must be 12 to 128 characters. The password is never logged or echoed.
//!
//! Responses:
//! - 201 `AccountView` with `Location: /me`;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed request;
//! - 409 `conflict` when the address already has an account (decided by the store, so concurrent
//!   registrations of one address give exactly one account);
//! - 422 `validation_failed` naming `email` or `password`.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use secrecy::SecretString;
use serde::Deserialize;
use shared::domain::{Email, Password};
use shared::http::context::observed;
use shared::http::views::AccountView;
use shared::http::{ApiError, AppState};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "register";

/// What a client sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The e-mail address.
    pub email: String,
    /// The new password (kept secret: redacted in `Debug`).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register",
    tag = "accounts",
    summary = "Open an account",
    request_body(content = RegisterBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The account", body = AccountView, headers(("Location" = String, description = "`/me`"))),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 409, description = "`conflict`: an account with this e-mail address exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: `email` or `password` breaks a rule (passwords: 12 to 128 characters)", body = Problem, content_type = "application/problem+json")
    )
)]
async fn register<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    shared::http::Json(body): shared::http::Json<RegisterBody>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)?;
    let password = Password::parse(body.password)?;
    let user = state.auth.register(email, &password).await?;
    tracing::info!(user_id = %user.id, role = %user.role, "account registered");
    let mut response = (StatusCode::CREATED, Json(AccountView::from(&user))).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/me"));
    Ok(response)
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/auth/register", post(register::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
