//! The catalog listing cache: `GET /products` answers kept in Workers KV, keyed by a catalog generation that
//! lives in D1.
//!
//! Why only there: the listing is the one read that costs many D1 reads (the index head and every product of
//! the page, up to 100, besides the index shards an isolate loads at its first search) and whose readers
//! tolerate a little staleness. `GET /products/{id}` (with its
//! `ETag`, used for `If-Match` updates), checkout and every write always read D1, which is strongly consistent.
//!
//! How it stays correct: every successful catalog write through the routers (`POST /products`,
//! `PUT`/`DELETE /products/{id}`) and every demo seeding sets a new generation in D1 *after* its commit, and a
//! cached listing is only found under the generation it was computed in. Reading the generation is one
//! strongly consistent point read, so a listing written before a catalog change is never served after that
//! change was acknowledged. What may lag: stock or prices changed by a path that does not bump the generation
//! (checkouts and cancellations, which change stock) show in listings for at most `LISTING_TTL_SECS`, KV's shortest expiry.

use axum::body::Body;
use axum::Router;
use http::{HeaderValue, Method, StatusCode, header};
use sha2::{Digest as _, Sha256};
use shared::adapters::kv::KvListingCache;
use shared::http::AppState;
use shared::ports::{Condition, Item, ItemKey, ItemStore as _};

use shared::http::context::Observer;
use tracing::Instrument as _;

use crate::app::{Store, route};

/// How long a cached listing lives (KV's minimum expiry).
pub(crate) const LISTING_TTL_SECS: u64 = 60;
/// The largest listing body kept in the cache.
const MAX_CACHED_BYTES: usize = 512 * 1024;
/// The most a listing body is buffered to (far above any page the products function makes).
const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;

fn generation_key() -> ItemKey {
    ItemKey::new("META", "CATALOG_GENERATION")
}

fn is_catalog_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => path == "/products",
        Method::PUT | Method::PATCH | Method::DELETE => path.starts_with("/products/"),
        _ => false,
    }
}

/// The current catalog generation, or `None` when it cannot be read (then the cache is bypassed).
async fn generation(state: &AppState<Store>) -> Option<String> {
    match state.store.get(&generation_key()).await {
        Ok(Some(item)) => item.data.get("generation").and_then(|value| value.as_str()).map(str::to_owned),
        Ok(None) => Some("initial".to_owned()),
        Err(error) => {
            tracing::error!(error = ?error, "listing cache: failed to read the catalog generation");
            None
        }
    }
}

/// Starts a new catalog generation, so no listing cached before it is served again.
pub(crate) async fn invalidate(state: &AppState<Store>, cache: Option<&KvListingCache>) {
    if cache.is_none() {
        return;
    }
    let item = Item::new(generation_key(), 1, serde_json::json!({ "generation": state.ids.new_id() }));
    if let Err(error) = state.store.put(item, Condition::None).await {
        tracing::error!(error = ?error, "listing cache: failed to start a new generation");
    }
}

fn cache_key(generation: &str, query: &str) -> String {
    let digest = Sha256::digest(query.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("listing:{generation}:{hex}")
}

/// Routes a request, serving and filling the listing cache for `GET /products` and invalidating it after
/// catalog writes. Never fails.
pub(crate) async fn serve(
    req: http::Request<Body>,
    router: Router,
    state: &AppState<Store>,
    cache: Option<&KvListingCache>,
) -> http::Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(cache) = cache else {
        return route(req, router).await;
    };
    if method == Method::GET && path == "/products" {
        // A hit is answered here, without the products router, so it is observed here as that router would: the
        // same function, route, request id, trace and one line. A miss drops this observation unwritten and lets
        // the router observe the request.
        let mut req = req;
        let observation = Observer::new(products::FUNCTION, state.clock.clone(), state.ids.clone()).begin(&mut req, "/products".to_owned());
        let lookup = async {
            let generation = generation(state).await?;
            let key = cache_key(&generation, req.uri().query().unwrap_or(""));
            let body = cache.get(&key).await;
            Some((key, body))
        };
        let Some((key, body)) = lookup.instrument(observation.span()).await else {
            return route(req, router).await;
        };
        if let Some(body) = body {
            let mut response = http::Response::new(Body::from(body));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert("x-cache", HeaderValue::from_static("hit"));
            observation.end(&mut response);
            return response;
        }
        let response = route(req, router).await;
        if response.status() != StatusCode::OK {
            return response;
        }
        let (parts, body) = response.into_parts();
        return match axum::body::to_bytes(body, MAX_BUFFERED_BYTES).await {
            Ok(bytes) => {
                if let (true, Ok(text)) = (bytes.len() <= MAX_CACHED_BYTES, std::str::from_utf8(&bytes)) {
                    cache.put(&key, text, LISTING_TTL_SECS).await;
                }
                http::Response::from_parts(parts, Body::from(bytes))
            }
            Err(error) => {
                // The body failed (or is absurdly large): answer a server error rather than half a listing.
                tracing::error!(error = %error, "listing cache: failed to buffer a listing");
                axum::response::IntoResponse::into_response(shared::http::ApiError::Internal(anyhow::anyhow!(
                    "listing too large to buffer"
                )))
            }
        };
    }
    let write = is_catalog_write(&method, &path);
    let response = route(req, router).await;
    if write && response.status().is_success() {
        invalidate(state, Some(cache)).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalog_writes_invalidate() {
        assert!(is_catalog_write(&Method::POST, "/products"));
        assert!(is_catalog_write(&Method::PUT, "/products/abc"));
        assert!(!is_catalog_write(&Method::GET, "/products"));
        assert!(!is_catalog_write(&Method::POST, "/cart/items/abc"));
    }
}
