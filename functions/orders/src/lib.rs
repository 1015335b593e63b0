//! Orders: `GET /orders` (the caller's own, newest first; an admin sees everyone's), `GET /orders/{id}` and
//! `POST /orders/{id}/cancel`.
//!
//! Responses:
//! - `GET /orders?limit=1..=100&cursor=`: 200 `{"items": [OrderView], "next_cursor": string | null}`;
//!   400 `invalid_parameter` / `invalid_cursor`;
//! - `GET /orders/{id}`: 200 `OrderView`; 404 `not_found` for an unknown id and for someone else's order alike;
//! - `POST /orders/{id}/cancel`: 200 the cancelled `OrderView` (refunded, its lines restocked, `order.cancelled`
//!   committed); a cancelled order answers 200 unchanged and is never refunded or restocked twice; 404 as above;
//!   503 `payment_unavailable` with `Retry-After` when the refund cannot be made now (nothing changes);
//! - 401 `unauthorized` without a valid bearer token.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::domain::Role;
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::commerce::{OrderView, PageView};
use shared::http::{ApiError, AppState, Authenticated};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "orders";
/// The default page size.
const DEFAULT_LIMIT: usize = 20;

fn is_admin(caller: &Authenticated) -> bool {
    caller.user.role == Role::Admin
}

/// The scope a list's cursors are bound to: one caller's list, or the admin list.
fn list_scope(caller: &Authenticated) -> String {
    if is_admin(caller) { "orders:all".to_owned() } else { format!("orders:{}", caller.user.id) }
}

#[utoipa::path(
    get,
    path = "/orders",
    operation_id = "list_orders",
    tag = "orders",
    summary = "The caller's orders, newest first (an admin sees everyone's)",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`")
    ),
    responses(
        (status = 200, description = "One page", body = PageView<OrderView>),
        (status = 400, description = "`invalid_parameter` (naming `param`) or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn list<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    mut params: Params,
) -> Result<Json<PageView<OrderView>>, ApiError> {
    let limit = params.number::<usize>("limit")?.unwrap_or(DEFAULT_LIMIT);
    let cursor = params.text("cursor")?;
    params.finish()?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidParameter { param: "limit".to_owned(), detail: "1 to 100".to_owned() });
    }
    let scope = list_scope(&caller);
    let after = cursor.map(|text| state.keys.cursors.open(&scope, &text)).transpose()?;
    let page = state.commerce.orders(&caller.user.id, is_admin(&caller), limit, after).await?;
    Ok(Json(PageView {
        items: page.orders.iter().map(OrderView::from).collect(),
        next_cursor: page.next.map(|next| state.keys.cursors.seal(&scope, &next)),
    }))
}

#[utoipa::path(
    get,
    path = "/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    summary = "One order",
    params(
        ("id" = String, Path, description = "The order id")
    ),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, response = doc::Unauthorized),
        (status = 404, description = "`not_found`: no such order of the caller's", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn get_one<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = state.commerce.order(&caller.user.id, is_admin(&caller), &id).await?;
    Ok(Json(OrderView::from(&order)))
}

#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    operation_id = "cancel_order",
    tag = "orders",
    summary = "Cancel a paid order: refunded and restocked (a cancelled order answers unchanged)",
    params(
        ("id" = String, Path, description = "The order id")
    ),
    responses(
        (status = 200, description = "The cancelled order", body = OrderView),
        (status = 401, response = doc::Unauthorized),
        (status = 404, description = "`not_found`: no such order of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`contention`: concurrent changes kept winning; retry", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`payment_unavailable`: the refund cannot be made now; nothing changed", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = String, description = "Seconds")))
    ),
    security(("bearer" = []))
)]
async fn cancel<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let order = state.commerce.cancel(&caller.user.id, is_admin(&caller), &id).await?;
    Ok(Json(OrderView::from(&order)))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new()
        .route("/orders", get(list::<S>))
        .route("/orders/{id}", get(get_one::<S>))
        .route("/orders/{id}/cancel", post(cancel::<S>))
        .with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, get_one, cancel))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
