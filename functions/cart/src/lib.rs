//! The signed-in user's cart: `GET /cart`, `PUT` and `DELETE /cart/items/{product_id}`, `PUT` and
//! `DELETE /cart/discount`. Every route acts on the caller's own cart only (there is no way to name another's).
//!
//! Responses (every route):
//! - 200 `CartView`: the cart at the catalog's current prices (a discount code shows only while it applies);
//! - 401 `unauthorized` without a valid bearer token;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed body.
//!
//! `PUT /cart/items/{product_id}` (body `{"quantity": 1..=99}`) also answers 400 `invalid_parameter`
//! (`product_id`), 422 `validation_failed` (`quantity`), 404 `not_found` for an unknown product, 409
//! `insufficient_stock` (naming `product_id`) for more than the stock, 422 `cart_full` past 50 lines.
//! `DELETE /cart/items/{product_id}` answers 200 whether or not the line was there.
//! `PUT /cart/discount` (body `{"code": "..."}`) also answers 422 `discount_invalid` with its `reason`
//! (`unknown`, `not_started`, `expired`, `used_up`, `min_subtotal_not_met`).

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use shared::domain::{ProductId, Quantity};
use shared::http::context::observed;
use shared::http::views::commerce::{CartView, CodeBody, QuantityBody};
use shared::http::{ApiError, AppState, Authenticated};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "cart";

fn product_id(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).map_err(|_| ApiError::InvalidParameter {
        param: "product_id".to_owned(),
        detail: "a product id is 1 to 64 letters, digits, '-' or '_'".to_owned(),
    })
}

fn quantity(body: &QuantityBody) -> Result<Quantity, ApiError> {
    u32::try_from(body.quantity).ok().and_then(|units| Quantity::new(units).ok()).ok_or_else(|| ApiError::Validation {
        field: "quantity".to_owned(),
        detail: "1 to 99".to_owned(),
    })
}

#[utoipa::path(
    get,
    path = "/cart",
    operation_id = "view_cart",
    tag = "cart",
    summary = "The cart",
    responses(
        (status = 200, description = "The cart at the catalog's current prices", body = CartView),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn view<S: ItemStore + Clone>(State(state): State<AppState<S>>, caller: Authenticated) -> Result<Json<CartView>, ApiError> {
    let cart = state.commerce.cart(&caller.user.id).await?;
    Ok(Json(CartView::from(&cart.totals)))
}

#[utoipa::path(
    put,
    path = "/cart/items/{product_id}",
    operation_id = "set_cart_line",
    tag = "cart",
    summary = "Put a product in the cart with a quantity (replacing the line's quantity)",
    params(
        ("product_id" = String, Path, description = "The product id")
    ),
    request_body(content = QuantityBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The cart at the catalog's current prices", body = CartView),
        (status = 400, description = "`invalid_parameter` (`product_id`) or `invalid_body`", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 404, description = "`not_found`: no product has the id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_stock`: more than the stock (naming `product_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`quantity`: 1 to 99) or `cart_full` (50 lines)", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn set_line<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    Path(id): Path<String>,
    shared::http::Json(body): shared::http::Json<QuantityBody>,
) -> Result<Json<CartView>, ApiError> {
    let id = product_id(&id)?;
    let quantity = quantity(&body)?;
    let cart = state.commerce.set_line(&caller.user.id, id, quantity).await?;
    Ok(Json(CartView::from(&cart.totals)))
}

#[utoipa::path(
    delete,
    path = "/cart/items/{product_id}",
    operation_id = "remove_cart_line",
    tag = "cart",
    summary = "Take a product out of the cart (200 whether or not it was there)",
    params(
        ("product_id" = String, Path, description = "The product id")
    ),
    responses(
        (status = 200, description = "The cart at the catalog's current prices", body = CartView),
        (status = 400, description = "`invalid_parameter`: `product_id` cannot be a product id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn remove_line<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let id = product_id(&id)?;
    let cart = state.commerce.remove_line(&caller.user.id, &id).await?;
    Ok(Json(CartView::from(&cart.totals)))
}

#[utoipa::path(
    put,
    path = "/cart/discount",
    operation_id = "apply_discount",
    tag = "cart",
    summary = "Enter a discount code",
    request_body(content = CodeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The cart at the catalog's current prices", body = CartView),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 422, description = "`discount_invalid` with its `reason`: `unknown`, `not_started`, `expired`, `used_up` or `min_subtotal_not_met`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn apply_discount<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    caller: Authenticated,
    shared::http::Json(body): shared::http::Json<CodeBody>,
) -> Result<Json<CartView>, ApiError> {
    let cart = state.commerce.apply_discount(&caller.user.id, &body.code).await?;
    Ok(Json(CartView::from(&cart.totals)))
}

#[utoipa::path(
    delete,
    path = "/cart/discount",
    operation_id = "remove_discount",
    tag = "cart",
    summary = "Take the discount code off",
    responses(
        (status = 200, description = "The cart at the catalog's current prices", body = CartView),
        (status = 401, response = doc::Unauthorized)
    ),
    security(("bearer" = []))
)]
async fn remove_discount<S: ItemStore + Clone>(State(state): State<AppState<S>>, caller: Authenticated) -> Result<Json<CartView>, ApiError> {
    let cart = state.commerce.remove_discount(&caller.user.id).await?;
    Ok(Json(CartView::from(&cart.totals)))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new()
        .route("/cart", get(view::<S>))
        .route("/cart/items/{product_id}", put(set_line::<S>).delete(remove_line::<S>))
        .route("/cart/discount", put(apply_discount::<S>).delete(remove_discount::<S>))
        .with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(view, set_line, remove_line, apply_discount, remove_discount))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
