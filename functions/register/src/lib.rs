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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The e-mail address.
    pub email: String,
    /// The new password (kept secret: redacted in `Debug`).
    pub password: SecretString,
}

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
