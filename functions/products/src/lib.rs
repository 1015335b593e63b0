//! `GET /products`: the catalog search; `POST /products`: an admin adds a product.
//!
//! Query parameters: `q` (the words to find; the last one is a prefix while it is being typed, and typos are
//! forgiven: the rules are `shared::domain::search`'s), `category` (a slug), `min_price` and `max_price`
//! (inclusive, integer minor units), `sort` (`relevance`, the default, `price_asc`, `price_desc` or `newest`),
//! `limit` (1 to 100, default 20) and `cursor` (from the previous page's `next_cursor`).
//!
//! Responses:
//! - 200 `ProductListView`: a page of products in the search's order, the number of matches, the category
//!   counts and the words dropped because no product matched them all; the search is complete when
//!   `next_cursor` is absent;
//! - 400 problem document `invalid_parameter` naming the parameter, or `invalid_cursor`.
//!
//! `POST /products` takes a `ProductBody` and answers:
//! - 201 `ProductView` with `ETag` and `Location: /products/{id}`;
//! - 401 `unauthorized` without a valid bearer token, 403 `forbidden` for a customer;
//! - 400 `invalid_body`, 413 `payload_too_large`, 415 `unsupported_media_type` for a malformed request;
//! - 422 `validation_failed` naming the field;
//! - 409 `conflict` when another product has the SKU, or `contention` when concurrent catalog writes kept winning
//!   the search index's head (retry shortly).
//!
//! The catalog repository writes the product, its SKU claim and its search index entries in one transaction.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use std::collections::BTreeMap;

use serde::Serialize;
use shared::domain::search::index::RankKey;
use shared::domain::{SearchParams, SearchRequest};
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::etag;
use shared::http::{Admin, ApiError, AppState, ProductBody, ProductView};
use shared::ports::{Cursor, ItemStore};

/// The function's name in logs.
pub const FUNCTION: &str = "products";

/// One page of search results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductListView {
    /// The matching products of this page, in the search's order.
    pub items: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; absent when the search is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// How many products match, over all pages.
    pub total: usize,
    /// Counts of the matching products.
    pub facets: FacetsView,
    /// Query words left out because no product matched them all with the others (the last typed first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_words: Vec<String>,
}

/// Counts of the matching products by facet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FacetsView {
    /// Matching products per category slug, under every condition but `category` itself; categories with
    /// none are left out.
    pub category: BTreeMap<String, usize>,
}

#[utoipa::path(
    get,
    path = "/products",
    operation_id = "search_products",
    tag = "catalog",
    summary = "Search the catalog",
    params(
        ("q" = Option<String>, Query, description = "Words to find in the name, category or description; the last is a prefix unless followed by a space; typos are forgiven from 5 letters"),
        ("category" = Option<String>, Query, description = "A category slug"),
        ("min_price" = Option<i64>, Query, description = "Lowest unit price, inclusive, in minor units"),
        ("max_price" = Option<i64>, Query, description = "Highest unit price, inclusive, in minor units"),
        ("sort" = Option<String>, Query, description = "`relevance` (the default), `price_asc`, `price_desc` or `newest`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`")
    ),
    responses(
        (status = 200, description = "One page of matching products in the search's order, with the total and the category counts; complete when `next_cursor` is absent", body = ProductListView,
            headers(("Server-Timing" = String, description = "What the search read: `search;desc=\"items=<store items read>,shards=<index shards loaded>,indexed=<products in the index>\"`"))),
        (status = 400, description = "`invalid_parameter` (naming `param`) or `invalid_cursor`", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_products<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    mut params: Params,
) -> Result<Response, ApiError> {
    let text = params.text("q")?;
    let category = params.text("category")?;
    let min_price = params.number::<i64>("min_price")?;
    let max_price = params.number::<i64>("max_price")?;
    let sort = params.text("sort")?;
    let limit = params.number::<usize>("limit")?;
    let cursor = params.text("cursor")?;
    params.finish()?;
    let request = SearchRequest::new(SearchParams {
        text: text.as_deref(),
        category: category.as_deref(),
        min_price,
        max_price,
        sort: sort.as_deref(),
        limit,
    })?;
    let scope = request.fingerprint();
    let after = cursor
        .map(|text| {
            let opened = state.keys.cursors.open(&scope, &text)?;
            RankKey::decode(opened.after_sort_key()).ok_or(ApiError::InvalidCursor)
        })
        .transpose()?;
    let page = state.catalog.search(&request, after).await?;
    // What the search read, for the benchmark and a browser's network panel (the standard Server-Timing header).
    let cost = format!(
        "search;desc=\"items={},shards={},indexed={}\"",
        page.cost.items_read, page.cost.shards_loaded, page.cost.indexed_products
    );
    let timing = HeaderValue::from_str(&cost).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = Json(ProductListView {
        items: page.products.iter().map(ProductView::from).collect(),
        next_cursor: page.next.map(|next| state.keys.cursors.seal(&scope, &Cursor::after_sort_key_of(next.encode()))),
        total: page.total,
        facets: FacetsView { category: page.facets },
        ignored_words: page.ignored_words,
    })
    .into_response();
    response.headers_mut().insert("server-timing", timing);
    Ok(response)
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
        (status = 409, description = "`conflict`: another product has the SKU; or `contention`: concurrent catalog writes kept winning the search index, retry shortly", body = Problem, content_type = "application/problem+json"),
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
