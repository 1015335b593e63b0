//! `POST /checkout`: the signed-in user's cart becomes a paid order, exactly once per `Idempotency-Key`.
//!
//! Request: header `Idempotency-Key` (1 to 255 visible ASCII characters, bare or as an RFC 8941 string) and
//! body `{"payment_token": "..."}` (the sandbox's `tok_success`, `tok_decline`, `tok_timeout_once`,
//! `tok_timeout`, or the configured provider's payment method). Responses:
//! - 201 `OrderView` with `Location: /orders/{id}`; the cart is then empty;
//! - 400 `idempotency_key_missing` / `idempotency_key_invalid`; 400, 413, 415 for a malformed body;
//!   422 `validation_failed` (`payment_token`); 401 `unauthorized`;
//! - 409 `insufficient_stock` (naming `product_id`), 422 `cart_empty`, 422 `discount_invalid` (with `reason`);
//! - 402 `payment_declined`: nothing stays reserved, the discount use is given back, the cart is kept;
//! - 503 `payment_unavailable` with `Retry-After`: the provider kept timing out or its breaker is open; the
//!   order stays reserved, and a retry with the same key resumes it (or the sweep settles it);
//! - 409 `idempotency_key_in_use` while the first request with the key runs; 422 `idempotency_key_reused`
//!   for the key with another body; the same key and body again replays the first final response;
//! - 409 `checkout_abandoned` when the key's checkout was released by the sweep; 409 `contention`.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use shared::http::context::observed;
use shared::http::idempotent::{Outcome, idempotency_key, idempotent};
use shared::http::views::commerce::OrderView;
use shared::http::{ApiError, AppState, Authenticated};
use shared::commerce::CheckoutError;
use shared::ports::ItemStore;
use shared::telemetry::{self, TraceParent};

/// The function's name in logs.
pub const FUNCTION: &str = "checkout";
/// The longest payment token accepted.
const MAX_TOKEN_CHARS: usize = 255;

/// What the client sends.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// The payment token.
    pub payment_token: String,
}

#[utoipa::path(
    post,
    path = "/checkout",
    operation_id = "checkout",
    tag = "checkout",
    summary = "Pay for the cart: an order",
    params(
        ("Idempotency-Key" = String, Header, description = "A key unique to this checkout (1 to 255 visible ASCII characters); a retry with the same key and body answers the same and never charges twice")
    ),
    request_body(content = CheckoutBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The paid order (a retry with the same key and body answers the same)", body = OrderView, headers(("Location" = String, description = "`/orders/{id}`"))),
        (status = 400, description = "`invalid_body`, `idempotency_key_missing` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 402, description = "`payment_declined`: the provider declined; nothing is kept", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_stock` (naming `product_id`), `idempotency_key_in_use` (with `Retry-After`), `checkout_abandoned` or `contention` (with `Retry-After`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`payment_token`), `cart_empty`, `discount_invalid` (with its `reason`) or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`payment_unavailable`: the provider is not answering; retry with the same key after `Retry-After`", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String, description = "Seconds")))
    ),
    security(("bearer" = []))
)]
async fn checkout<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    headers: HeaderMap,
    trace: Option<Extension<TraceParent>>,
    shared::http::Json(body): shared::http::Json<CheckoutBody>,
) -> Result<Response, ApiError> {
    let trace = trace.map(|Extension(trace)| trace);
    let key = idempotency_key(&headers)?;
    let token = body.payment_token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(ApiError::Validation { field: "payment_token".to_owned(), detail: "1 to 255 visible ASCII characters".to_owned() });
    }
    let fingerprint_body = serde_json::json!({ "payment_token": token });
    let user = &caller.user.id;
    let commerce = &state.commerce;
    idempotent(&state, user, &key, ("POST", "/checkout", &fingerprint_body), |order_id| async move {
        let placed = commerce.checkout(user, &order_id, token, trace.as_ref()).await;
        telemetry::checkout(placed.as_ref().map_or_else(CheckoutError::outcome, |_| "paid"));
        let order = placed?;
        let body = serde_json::to_value(OrderView::from(&order)).map_err(|error| ApiError::Internal(error.into()))?;
        Ok(Outcome { status: StatusCode::CREATED, body, location: Some(format!("/orders/{}", order.id)) })
    })
    .await
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/checkout", post(checkout::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(checkout))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
