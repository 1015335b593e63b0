//! `GET /products`: the catalog search; `POST /products`: an admin adds a product.
//!
//! Query parameters: `q` (words that must all match name, description or category), `category` (a slug),
//! `min_price` and `max_price` (inclusive, integer minor units), `limit` (1 to 100, default 20) and `cursor`
//! (from the previous page's `next_cursor`). Results come in ascending product-id order, which is stable.
//!
//! Responses:
//! - 200 `ProductListView`; a page may hold fewer than `limit` items and still have a `next_cursor` (each call
//!   examines a bounded slice of the index); the search is complete when `next_cursor` is absent;
//! - 400 problem document `invalid_parameter` naming the parameter, or `invalid_cursor`.
//!
//! `POST /products` takes a `ProductBody` and answers:
//! - 201 `ProductView` with `ETag` and `Location: /products/{id}`;
//! - 401 `unauthorized` without a valid bearer token, 403 `forbidden` for a customer;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed request;
//! - 422 `validation_failed` naming the field;
//! - 409 `conflict` when another product has the SKU.
//!
//! The catalog repository writes the product, its SKU claim and its search index entries in one transaction.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use shared::domain::SearchRequest;
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::etag;
use shared::http::{Admin, ApiError, AppState, ProductBody, ProductView};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "products";

/// One page of search results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductListView {
    /// The matching products of this page.
    pub items: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; absent when the search is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/products",
    operation_id = "search_products",
    tag = "catalog",
    summary = "Search the catalog",
    params(
        ("q" = Option<String>, Query, description = "Words that must all match the name, description or category"),
        ("category" = Option<String>, Query, description = "A category slug"),
        ("min_price" = Option<i64>, Query, description = "Lowest unit price, inclusive, in minor units"),
        ("max_price" = Option<i64>, Query, description = "Highest unit price, inclusive, in minor units"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`")
    ),
    responses(
        (status = 200, description = "One page of matching products, in ascending id order; complete when `next_cursor` is absent", body = ProductListView),
        (status = 400, description = "`invalid_parameter` (naming `param`) or `invalid_cursor`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_products<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    mut params: Params,
) -> Result<Json<ProductListView>, ApiError> {
    let text = params.text("q")?;
    let category = params.text("category")?;
    let min_price = params.number::<i64>("min_price")?;
    let max_price = params.number::<i64>("max_price")?;
    let limit = params.number::<usize>("limit")?;
    let cursor = params.text("cursor")?;
    params.finish()?;
    let request = SearchRequest::new(text.as_deref(), category.as_deref(), min_price, max_price, limit)?;
    let scope = request.fingerprint();
    let after = cursor.map(|text| state.keys.cursors.open(&scope, &text)).transpose()?;
    let page = state.catalog.search(&request, after).await?;
    Ok(Json(ProductListView {
        items: page.products.iter().map(ProductView::from).collect(),
        next_cursor: page.next.map(|next| state.keys.cursors.seal(&scope, &next)),
    }))
}

#[utoipa::path(
    post,
    path = "/products",
    operation_id = "create_product",
    tag = "catalog",
    summary = "Add a product (admins)",
    request_body(content = ProductBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The product", body = ProductView, headers(("ETag" = String, description = "Its version"), ("Location" = String, description = "`/products/{id}`"))),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, description = "`conflict`: another product has the SKU", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, naming the field in `param`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn create_product<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(admin): Admin,
    shared::http::Json(body): shared::http::Json<ProductBody>,
) -> Result<Response, ApiError> {
    let fields = body.into_new_product()?;
    let product = state.catalog.create(fields, &state.ids, &state.clock).await?;
    tracing::info!(product_id = %product.id, admin = %admin.user.id, "product created");
    let tag = HeaderValue::from_str(&etag(product.version)).map_err(|error| ApiError::Internal(error.into()))?;
    let location =
        HeaderValue::from_str(&format!("/products/{}", product.id)).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = (StatusCode::CREATED, Json(ProductView::from(&product))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes =
        Router::new().route("/products", get(list_products::<S>).post(create_product::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_products, create_product))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
