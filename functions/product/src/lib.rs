//! `GET /products/{id}`: one product, with an `ETag` so clients can revalidate cheaply.
//!
//! Responses:
//! - 200 `ProductView` with `ETag: "<version>"` and `Cache-Control: no-cache`;
//! - 304 with the `ETag` and no body when `If-None-Match` names the current version (or is `*`);
//! - 400 problem document `invalid_parameter` (`id`) when the id cannot be a product id;
//! - 404 problem document `not_found` when no product has the id.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use shared::domain::ProductId;
use shared::http::context::observed;
use shared::http::views::etag;
use shared::http::{ApiError, AppState, ProductView};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "product";

/// Whether an `If-None-Match` header matches the entity tag (weak comparison, RFC 9110 §13.1.2).
fn none_match_hits(headers: &HeaderMap, current: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
    })
}

async fn get_product<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = ProductId::parse(&id).map_err(|_| ApiError::InvalidParameter {
        param: "id".to_owned(),
        detail: "a product id is 1 to 64 letters, digits, '-' or '_'".to_owned(),
    })?;
    let product = state.catalog.get(&id).await?;
    let tag = etag(product.version);
    let tag_value = HeaderValue::from_str(&tag).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = if none_match_hits(&headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(ProductView::from(&product)).into_response()
    };
    response.headers_mut().insert(header::ETAG, tag_value);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/products/{id}", get(get_product::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}
