//! `GET /products`: the catalog search.
//!
//! Query parameters: `q` (words that must all match name, description or category), `category` (a slug),
//! `min_price` and `max_price` (inclusive, integer minor units), `limit` (1 to 100, default 20) and `cursor`
//! (from the previous page's `next_cursor`). Results come in ascending product-id order, which is stable.
//!
//! Responses:
//! - 200 `ProductListView`; a page may hold fewer than `limit` items and still have a `next_cursor` (each call
//!   examines a bounded slice of the index); the search is complete when `next_cursor` is absent;
//! - 400 problem document `invalid_parameter` naming the parameter, or `invalid_cursor`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::domain::SearchRequest;
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::{ApiError, AppState, ProductView};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "products";

/// One page of search results.
#[derive(Debug, Serialize)]
pub struct ProductListView {
    /// The matching products of this page.
    pub items: Vec<ProductView>,
    /// Pass as `cursor` to get the next page; absent when the search is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

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

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/products", get(list_products::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}
