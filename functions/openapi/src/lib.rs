//! `GET /openapi.json`: the API's OpenAPI 3.1 document.
//!
//! The document is not written by hand: each function describes its operations beside its handlers
//! (`#[utoipa::path]`) and its wire types describe themselves (`utoipa::ToSchema`); this function assembles the
//! parts ([`document`]). The route/operation coverage test (`tests/it/openapi.rs`) fails when a mounted route
//! has no operation here or an operation has no mounted route, on the local host's whole router.
//!
//! Responses:
//! - 200 the document (`application/json`), the same for every request of an instance (built on the first).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use shared::http::context::observed;
use shared::ports::{Clock, IdGen};

/// The function's name in logs.
pub const FUNCTION: &str = "openapi";

/// The path the document is served at.
pub const PATH: &str = "/openapi.json";

/// The whole document: every HTTP function's operations, the shared problem schema and the bearer scheme.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = shared::http::openapi::assemble(
        env!("CARGO_PKG_VERSION"),
        [
            health::openapi(),
            products::openapi(),
            product::openapi(),
            register::openapi(),
            login::openapi(),
            refresh::openapi(),
            logout::openapi(),
            me::openapi(),
            cart::openapi(),
            discounts::openapi(),
            checkout::openapi(),
            orders::openapi(),
            payments::openapi(),
            reports::openapi(),
            docs::openapi(),
            mcp::openapi(),
        ],
    );
    document.merge(own_part());
    document
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
async fn serve() -> Response {
    static BODY: OnceLock<Arc<[u8]>> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        // Serialising a document of plain maps and strings cannot fail; were it to, the answer says so.
        serde_json::to_vec(&document()).unwrap_or_else(|_| b"{}".to_vec()).into()
    });
    let mut response = axum::body::Bytes::copy_from_slice(body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(serve))]
struct Api;

fn own_part() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// The function's routes. They need no store and no keys, only the clock and ids their request lines use.
pub fn router(clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    let routes = Router::new().route(PATH, get(serve));
    observed(routes, FUNCTION, clock, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_operation_named_once() {
        let json = serde_json::to_value(document()).unwrap_or_default();
        assert_eq!(json["openapi"], "3.1.0");
        let mut ids = Vec::new();
        for (_, item) in json["paths"].as_object().into_iter().flatten() {
            for (_, operation) in item.as_object().into_iter().flatten() {
                ids.push(operation["operationId"].as_str().unwrap_or_default().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat: {ids:?}");
        assert!(ids.iter().all(|id| !id.is_empty()), "an operation has no id");
        assert!(json["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
        assert!(json["components"]["schemas"]["Problem"].is_object());
        // Every reference resolves inside the document.
        let text = json.to_string();
        for reference in text.split("\"$ref\":\"#/").skip(1).filter_map(|rest| rest.split('"').next()) {
            let pointer = format!("/{reference}");
            assert!(json.pointer(&pointer).is_some(), "unresolvable reference #/{reference}");
        }
    }
}
