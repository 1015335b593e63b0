//! Route/operation coverage: the OpenAPI document (`openapi::document`) and the local host's whole router
//! (`local_host::app`, which mounts every HTTP function the other hosts mount) describe the same operations.
//!
//! The mounted paths are read from the router itself (axum lists its paths in its `Debug` form), and each
//! path's methods are found by asking it: a method the path does not serve answers 405 `method_not_allowed`
//! from the router, before any handler or extractor runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use shared::adapters::memory::{ManualClock, SequentialIds};
use shared::adapters::sqlite::SqliteDb;
use shared::http::{AppState, Keys};
use shared::ports::Timestamp;
use tower::ServiceExt as _;

/// The methods an operation may have.
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

fn local_app() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("a temporary folder: {error}"));
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let db = SqliteDb::open(&dir.path().join("store.db"), clock.clone()).unwrap_or_else(|error| panic!("{error}"));
    let store = db.item_store();
    let keys = Keys::derive(&[7; 32]).unwrap_or_else(|error| panic!("{error}"));
    let state = AppState::new(store, clock, Arc::new(SequentialIds::new("p")), keys);
    (dir, local_host::app(state))
}

/// Every path template the router mounts, from its `Debug` form (`"/orders/{id}"`, ...).
fn mounted_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let mut paths = BTreeSet::new();
    // Route paths appear quoted after their route ids: `RouteId(3): "/products/{id}"`.
    for piece in debug.split("RouteId(").skip(1) {
        if let Some((path, _)) = piece.split_once(": \"").and_then(|(_, rest)| rest.split_once('"')) {
            paths.insert(path.to_owned());
        }
    }
    paths
}

/// The path with every `{parameter}` filled in.
fn concrete(template: &str) -> String {
    template.split('/').map(|segment| if segment.starts_with('{') { "probe" } else { segment }).collect::<Vec<_>>().join("/")
}

async fn serves(router: &Router, method: &Method, template: &str) -> bool {
    let request = Request::builder().method(method.clone()).uri(concrete(template)).body(Body::empty()).unwrap_or_default();
    let response = router.clone().oneshot(request).await.unwrap_or_else(|error| match error {});
    response.status() != StatusCode::METHOD_NOT_ALLOWED
}

#[tokio::test]
async fn every_mounted_route_has_an_operation_and_every_operation_a_mounted_route() {
    let (_dir, router) = local_app();
    let mut paths = mounted_paths(&router);
    // axum mounts the fallback at `/` and at a private catch-all; nothing of ours is mounted at `/`, which the
    // fallback answers with 404 for every method.
    paths.retain(|path| !path.contains("__private__axum_fallback"));
    if paths.remove("/") {
        for method in &METHODS {
            let request = Request::builder().method(method.clone()).uri("/").body(Body::empty()).unwrap_or_default();
            let status = router.clone().oneshot(request).await.unwrap_or_else(|error| match error {}).status();
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} / is mounted, but / is only the fallback's");
        }
    }
    assert!(paths.len() >= 20, "the router's Debug form no longer lists its paths as expected: {paths:?}");
    let mut mounted = BTreeSet::new();
    for path in &paths {
        for method in &METHODS {
            if serves(&router, method, path).await {
                mounted.insert(format!("{method} {path}"));
            }
        }
    }
    let document = serde_json::to_value(openapi::document()).unwrap_or_default();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, _) in item.as_object().into_iter().flatten() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(undocumented.is_empty(), "mounted routes with no operation in /openapi.json: {undocumented:?}");
    assert!(unmounted.is_empty(), "operations in /openapi.json with no mounted route: {unmounted:?}");
}
