//! Runs a handler under an `Idempotency-Key` (see `idempotency` for the records and their rules), so any
//! endpoint that must not act twice gets the wire contract's behaviour by wrapping its work in
//! [`idempotent`]:
//! - 400 `idempotency_key_missing` / `idempotency_key_invalid` before anything runs or is stored;
//! - the first request runs; its response is saved, unless it is not final (a 5xx, `payment_unavailable`,
//!   `contention`), in which case the next request with the key runs again with the same reference;
//! - the same key with the same body later: the saved response, replayed (status, body, `Location`), marked
//!   `Idempotent-Replayed: true`;
//! - with another body: 422 `idempotency_key_reused`; while the first still runs: 409 `idempotency_key_in_use`.

use std::future::Future;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::domain::account::UserId;
use crate::http::error::{ApiError, PROBLEM_JSON};
use crate::http::state::AppState;
use crate::idempotency::{Begun, Finish, Idempotency, IdempotencyKey, SavedResponse};
use crate::ports::ItemStore;

/// The header naming the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header marking a replayed response.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The largest saved response body read back for saving, in bytes.
const MAX_SAVED_BODY: usize = 256 * 1024;

/// The request's idempotency key.
///
/// # Errors
/// [`ApiError::IdempotencyKeyMissing`] without the header, [`ApiError::IdempotencyKeyInvalid`] for a malformed
/// one or more than one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let value = values.next().ok_or(ApiError::IdempotencyKeyMissing)?;
    if values.next().is_some() {
        return Err(ApiError::IdempotencyKeyInvalid);
    }
    let text = value.to_str().map_err(|_| ApiError::IdempotencyKeyInvalid)?;
    IdempotencyKey::parse(text.trim()).map_err(|_| ApiError::IdempotencyKeyInvalid)
}

/// What a wrapped handler answers when it succeeds: a status, a JSON body and perhaps a `Location`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: serde_json::Value,
    /// The `Location` header.
    pub location: Option<String>,
}

fn response_of(saved: &SavedResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, saved.body.clone()).into_response();
    let content_type = if status.is_client_error() || status.is_server_error() { PROBLEM_JSON } else { "application/json" };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(location) = saved.location.as_deref().and_then(|location| HeaderValue::from_str(location).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Whether a failed request's answer is final (saved and replayed) or may change on a retry.
fn is_final(error: &ApiError) -> bool {
    let (status, _) = error.status_and_code();
    !(status.is_server_error() || matches!(error, ApiError::Contention | ApiError::PaymentUnavailable { .. }))
}

/// Runs `work` once per `(user, key, request)`: `work` gets the key's reference (the same for every run of
/// one key) and must key whatever it creates by it, so that a run after a crash resumes instead of repeating.
/// `method`, `route` and `body` make the request's fingerprint.
///
/// # Errors
/// The problem documents listed in the module's documentation; whatever `work` fails with (which is then
/// saved or not as described there).
pub async fn idempotent<S, F, Fut>(
    state: &AppState<S>,
    user: &UserId,
    key: &IdempotencyKey,
    (method, route, body): (&str, &str, &serde_json::Value),
    work: F,
) -> Result<Response, ApiError>
where
    S: ItemStore + Clone,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Outcome, ApiError>>,
{
    let fingerprint = Idempotency::<S>::fingerprint(method, route, body);
    let ids = state.ids.clone();
    let begun = state.idempotency.begin(user, key, &fingerprint, state.clock.now(), || ids.new_id()).await?;
    let lease = match begun {
        Begun::Fresh(lease) | Begun::Resumed(lease) => lease,
        Begun::Replay(saved) => return Ok(response_of(&saved, true)),
        Begun::InUse => return Err(ApiError::IdempotencyKeyInUse),
        Begun::Mismatch => return Err(ApiError::IdempotencyKeyReused),
    };
    match work(lease.reference.clone()).await {
        Ok(outcome) => {
            let saved = SavedResponse { status: outcome.status.as_u16(), body: outcome.body.to_string(), location: outcome.location };
            if let Err(error) = state.idempotency.finish(lease, Finish::Done(saved.clone())).await {
                // The work is done and its effects are keyed by the reference: a retry resumes and answers the
                // same, so the answer still goes out.
                tracing::error!(error = ?error, "failed to save an idempotent response");
            }
            Ok(response_of(&saved, false))
        }
        Err(error) if is_final(&error) => {
            let response = error.into_response();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), MAX_SAVED_BODY).await.map_err(|error| ApiError::Internal(anyhow::anyhow!("read a problem document: {error}")))?;
            let saved = SavedResponse { status, body: String::from_utf8_lossy(&bytes).into_owned(), location: None };
            if let Err(error) = state.idempotency.finish(lease, Finish::Done(saved.clone())).await {
                tracing::error!(error = ?error, "failed to save an idempotent response");
            }
            Ok(response_of(&saved, false))
        }
        Err(error) => {
            if let Err(store_error) = state.idempotency.finish(lease, Finish::Retryable).await {
                tracing::error!(error = ?store_error, "failed to release an idempotency key");
            }
            Err(error)
        }
    }
}
