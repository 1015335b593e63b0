//! `GET /docs`: the API reference page for people, Swagger UI rendering this host's `/openapi.json`.
//!
//! Every file the page loads ships with the project (`assets/`: the page, its script, and Swagger UI's bundle
//! and stylesheet from the npm package `swagger-ui-dist`), so the page works offline and fetches nothing from
//! another origin. This crate compiles them in for the local host and the Lambda `docs` function; the Worker
//! serves the same folder as Workers Static Assets, so no other function's binary and not the Worker's wasm
//! carry them: a docs Worker of its own serves them (`functions/docs/wrangler.toml`) and the API Worker mounts
//! [`router_without_files`], which answers what the docs Worker has no file for.
//!
//! Responses:
//! - `GET /docs`: 200 the page (`text/html`);
//! - `GET /docs/{file}`: 200 `docs.js`, `swagger-ui-bundle.js` or `swagger-ui.css`; 404 `not_found` for any
//!   other name.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use shared::http::ApiError;
use shared::http::error::Problem;
use shared::http::context::observed;
use shared::ports::{Clock, IdGen};

/// The function's name in logs.
pub const FUNCTION: &str = "docs";

/// The page.
const PAGE: &[u8] = include_bytes!("../assets/docs.html");

/// The files under `/docs/`: name, media type, contents.
const FILES: [(&str, &str, &[u8]); 3] = [
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../assets/docs/docs.js")),
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", include_bytes!("../assets/docs/swagger-ui-bundle.js")),
    ("swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../assets/docs/swagger-ui.css")),
];

fn file(media_type: &'static str, body: &'static [u8], cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs_page",
    tag = "operations",
    summary = "The API reference page (Swagger UI)",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
async fn page() -> Response {
    file("text/html; charset=utf-8", PAGE, "no-cache")
}

#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "docs_file",
    tag = "operations",
    summary = "A file of the reference page",
    params(("file" = String, Path, description = "`docs.js`, `swagger-ui-bundle.js` or `swagger-ui.css`")),
    responses(
        (status = 200, description = "The file", content_type = "text/javascript", body = String),
        (status = 404, description = "`not_found`: no such file", body = Problem, content_type = "application/problem+json")
    )
)]
async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, media_type, body) = FILES
        .iter()
        .find(|(known, _, _)| *known == name)
        .ok_or_else(|| ApiError::NotFound("the file".to_owned()))?;
    Ok(file(media_type, body, "public, max-age=3600"))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(page, asset))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// Whether a request path is the page's or one of its files' (`/docs` and anything below `/docs/`): the paths
/// the Worker hands to the docs Worker, which serves these files as static assets.
pub fn is_docs_path(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// The function's routes. They need no store and no keys, only the clock and ids their request lines use.
pub fn router(clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    let routes = Router::new().route("/docs", get(page)).route("/docs/{file}", get(asset));
    observed(routes, FUNCTION, clock, ids)
}

/// The function's routes on a host that serves the page and its files as static assets (the Worker hands `GET`
/// and `HEAD` of [`is_docs_path`] paths to the docs Worker first, `functions/docs/wrangler.toml`). A request that
/// still reaches them names no file of the page, so a `GET` is 404 `not_found` and any other method 405, as on
/// the other hosts, in the function's own lines. Nothing here refers to the files, so they stay out of that
/// host's binary.
pub fn router_without_files(clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    let routes = Router::new().route("/docs", get(no_file)).route("/docs/{file}", get(no_file));
    observed(routes, FUNCTION, clock, ids)
}

async fn no_file() -> ApiError {
    ApiError::NotFound("the file".to_owned())
}
