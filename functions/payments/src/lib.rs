//! `GET /payments/sandbox/charges`: the sandbox payment provider's ledger, for admins, where the sandbox is
//! the configured provider.
//!
//! Query: `order_id` (only that order's charges), `limit` (1 to 100, default 100), `cursor`. Responses:
//! - 200 `{"items": [{"charge_id", "order_id", "amount", "status": "captured" | "refunded"}], "next_cursor"}`;
//! - 401 `unauthorized`, 403 `forbidden` for a customer;
//! - 404 `not_found` when another provider is configured; 400 `invalid_parameter` / `invalid_cursor`.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::commerce::{ChargeView, PageView};
use shared::http::{Admin, ApiError, AppState};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "payments";

#[utoipa::path(
    get,
    path = "/payments/sandbox/charges",
    operation_id = "list_sandbox_charges",
    tag = "payments",
    summary = "The sandbox payment provider's ledger (admins; only where the sandbox is the provider)",
    params(
        ("order_id" = Option<String>, Query, description = "Only this order's charges"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`")
    ),
    responses(
        (status = 200, description = "One page of charges", body = PageView<ChargeView>),
        (status = 400, description = "`invalid_parameter` (naming `param`) or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, description = "`not_found`: the payment provider is not the sandbox", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn ledger<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(_): Admin,
    mut params: Params,
) -> Result<Json<PageView<ChargeView>>, ApiError> {
    let order_id = params.text("order_id")?;
    let limit = params.number::<usize>("limit")?.unwrap_or(100);
    let cursor = params.text("cursor")?;
    params.finish()?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidParameter { param: "limit".to_owned(), detail: "1 to 100".to_owned() });
    }
    if order_id.as_ref().is_some_and(|id| id.is_empty() || id.len() > 64 || id.contains('#')) {
        return Err(ApiError::InvalidParameter { param: "order_id".to_owned(), detail: "an order id".to_owned() });
    }
    let sandbox = state.sandbox.as_ref().ok_or_else(|| ApiError::NotFound("the sandbox ledger".to_owned()))?;
    let scope = format!("sandbox-charges:{}", order_id.as_deref().unwrap_or(""));
    let after = cursor.map(|text| state.keys.cursors.open(&scope, &text)).transpose()?;
    let (charges, next) = sandbox.ledger(order_id.as_deref(), limit, after).await?;
    Ok(Json(PageView {
        items: charges.iter().map(ChargeView::from).collect(),
        next_cursor: next.map(|next| state.keys.cursors.seal(&scope, &next)),
    }))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/payments/sandbox/charges", get(ledger::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ledger))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
