//! `GET /products/{id}`: one product, with an `ETag` so clients can revalidate cheaply; `PUT` and `DELETE`:
//! an admin replaces or removes it, conditionally on `If-Match`, so a write based on a stale read is refused.
//!
//! `GET` responses:
//! - 200 `ProductView` with `ETag: "<version>"` and `Cache-Control: no-cache`;
//! - 304 with the `ETag` and no body when `If-None-Match` names the current version (or is `*`);
//! - 400 problem document `invalid_parameter` (`id`) when the id cannot be a product id;
//! - 404 problem document `not_found` when no product has the id.
//!
//! `PUT` (body `ProductBody`) and `DELETE` responses:
//! - 200 `ProductView` with the new `ETag` (`PUT`), 204 (`DELETE`);
//! - 401 `unauthorized` without a valid bearer token, 403 `forbidden` for a customer;
//! - 428 `precondition_required` without `If-Match`; 412 `precondition_failed` when it names another version;
//! - 400, 413, 415 for a malformed request; 422 `validation_failed` naming the field (`PUT`);
//! - 404 `not_found`; 409 `conflict` when another product has the new SKU (`PUT`), or `contention` when concurrent
//!   catalog writes kept winning the search index's head (retry shortly).
//!
//! The catalog repository keeps the SKU claims and the search index in step with every write.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use shared::domain::ProductId;
use shared::http::context::observed;
use shared::http::views::{IfMatch, etag};
use shared::http::{Admin, ApiError, AppState, ProductBody, ProductView};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "product";

/// Whether an `If-None-Match` header matches the entity tag (weak comparison, RFC 9110 §13.1.2).
fn none_match_hits(headers: &HeaderMap, current: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
    })
}

fn product_id(id: &str) -> Result<ProductId, ApiError> {
    ProductId::parse(id).map_err(|_| ApiError::InvalidParameter {
        param: "id".to_owned(),
        detail: "a product id is 1 to 64 letters, digits, '-' or '_'".to_owned(),
    })
}

/// The version an `If-Match` header allows writing over: 428 without one, 412 when it does not name the
/// current version (the repository still checks the version atomically when it writes).
async fn expected_version<S: ItemStore + Clone>(
    state: &AppState<S>,
    id: &ProductId,
    headers: &HeaderMap,
) -> Result<u64, ApiError> {
    let condition = IfMatch::from_headers(headers).ok_or(ApiError::PreconditionRequired)?;
    let current = state.catalog.get(id).await?.version;
    if condition.matches(current) { Ok(current) } else { Err(ApiError::PreconditionFailed) }
}

#[utoipa::path(
    get,
    path = "/products/{id}",
    operation_id = "get_product",
    tag = "catalog",
    summary = "One product, with its ETag",
    params(
        ("id" = String, Path, description = "The product id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag the client holds; 304 when it is current")
    ),
    responses(
        (status = 200, description = "The product", body = ProductView, headers(("ETag" = String, description = "Its version, `\"<version>\"`"), ("Cache-Control" = String, description = "`no-cache`"))),
        (status = 304, description = "`If-None-Match` names the current version (or is `*`)", headers(("ETag" = String, description = "Its version"))),
        (status = 400, description = "`invalid_parameter`: `id` cannot be a product id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no product has the id", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_product<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = product_id(&id)?;
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

#[utoipa::path(
    put,
    path = "/products/{id}",
    operation_id = "replace_product",
    tag = "catalog",
    summary = "Replace a product (admins), if it is still the version the client read",
    params(
        ("id" = String, Path, description = "The product id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version being replaced, or `*`; required")
    ),
    request_body(content = ProductBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The product as replaced", body = ProductView, headers(("ETag" = String, description = "Its new version"))),
        (status = 400, description = "`invalid_parameter` (`id`) or `invalid_body`", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, description = "`not_found`: no product has the id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conflict`: another product has the new SKU; or `contention`: concurrent catalog writes kept winning the search index, retry shortly", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`precondition_failed`: `If-Match` names another version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, naming the field in `param`", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`precondition_required`: no `If-Match`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn replace_product<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    shared::http::Json(body): shared::http::Json<ProductBody>,
) -> Result<Response, ApiError> {
    let id = product_id(&id)?;
    let fields = body.into_new_product()?;
    let expected = expected_version(&state, &id, &headers).await?;
    let product = state.catalog.replace(&id, fields, expected, &state.clock).await?;
    tracing::info!(product_id = %product.id, version = product.version, admin = %admin.user.id, "product replaced");
    let tag = HeaderValue::from_str(&etag(product.version)).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = Json(ProductView::from(&product)).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

#[utoipa::path(
    delete,
    path = "/products/{id}",
    operation_id = "delete_product",
    tag = "catalog",
    summary = "Remove a product (admins), if it is still the version the client read",
    params(
        ("id" = String, Path, description = "The product id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version being removed, or `*`; required")
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`invalid_parameter`: `id` cannot be a product id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, description = "`not_found`: no product has the id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`contention`: concurrent catalog writes kept winning the search index, retry shortly", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`precondition_failed`: `If-Match` names another version", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`precondition_required`: no `If-Match`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn delete_product<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = product_id(&id)?;
    let expected = expected_version(&state, &id, &headers).await?;
    state.catalog.delete(&id, expected).await?;
    tracing::info!(product_id = %id, admin = %admin.user.id, "product deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new()
        .route("/products/{id}", get(get_product::<S>).put(replace_product::<S>).delete(delete_product::<S>))
        .with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_product, replace_product, delete_product))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
