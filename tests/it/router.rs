//! In-process router tests: `TestApp` wires the functions' routers to memory adapters, a manual clock and
//! sequential ids, and the tests drive it with `tower::ServiceExt::oneshot`. No sockets.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use shared::adapters::memory::{ManualClock, MemoryItemStore, SequentialIds};
use shared::domain::{Currency, Money, NewProduct, ProductId};
use shared::http::{AppState, Json, Keys, MAX_BODY_BYTES};
use shared::ports::Timestamp;
use tower::ServiceExt as _;

struct TestApp {
    state: AppState<MemoryItemStore>,
    clock: Arc<ManualClock>,
    ids: Arc<SequentialIds>,
    router: Router,
}

impl TestApp {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let ids = Arc::new(SequentialIds::new("p"));
        let keys = Keys::derive(&[7; 32]).unwrap_or_else(|error| panic!("{error}"));
        let state = AppState::new(MemoryItemStore::new(clock.clone()), clock.clone(), ids.clone(), keys);
        let router = Router::new()
            .merge(health::router(state.clone()))
            .merge(products::router(state.clone()))
            .merge(product::router(state.clone()))
            .fallback(shared::http::error::not_found);
        Self { state, clock, ids, router }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|error| match error {});
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, uri: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.call(Request::get(uri).body(Body::empty()).unwrap_or_default()).await
    }

    async fn add(&self, sku: &str, name: &str, category: &str, cents: i64) -> String {
        let fields = NewProduct::new(sku, name, "", category, Money::new(cents, Currency::EUR), 5)
            .unwrap_or_else(|error| panic!("{error}"));
        let product = self.state.catalog.create(fields, &self.ids, &self.clock).await.unwrap_or_else(|error| panic!("{error}"));
        product.id.to_string()
    }

    async fn search_ids(&self, query: &str) -> Vec<String> {
        let (status, _, body) = self.get(&format!("/products?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().map(|items| items.iter().map(|item| item["id"].as_str().unwrap_or_default().to_owned()).collect()).unwrap_or_default()
    }
}

#[tokio::test]
async fn the_search_index_follows_every_product_write() {
    let app = TestApp::new();
    let lamp = app.add("L-1", "Walnut Lamp", "lighting", 1000).await;
    let chair = app.add("C-1", "Walnut Chair", "furniture", 5000).await;
    assert_eq!(app.search_ids("q=walnut").await, [lamp.as_str(), chair.as_str()]);
    let lamp_id = ProductId::parse(&lamp).unwrap_or_else(|error| panic!("{error}"));
    let renamed = NewProduct::new("L-1", "Brass Lamp", "", "garden", Money::new(1000, Currency::EUR), 5)
        .unwrap_or_else(|error| panic!("{error}"));
    app.clock.advance(std::time::Duration::from_secs(60));
    let replaced = app.state.catalog.replace(&lamp_id, renamed, 1, &app.clock).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(replaced.version, 2);
    assert_eq!(app.search_ids("q=walnut").await, [chair.as_str()]);
    assert_eq!(app.search_ids("q=brass").await, [lamp.as_str()]);
    assert_eq!(app.search_ids("category=lighting").await, Vec::<String>::new());
    assert_eq!(app.search_ids("category=garden").await, [lamp.as_str()]);
    let (_, headers, body) = app.get(&format!("/products/{lamp}")).await;
    assert_eq!(headers.get("etag").and_then(|value| value.to_str().ok()), Some("\"2\""));
    assert_eq!(body["name"], "Brass Lamp");
    assert_eq!(body["created_at"], "2027-01-15T08:00:00Z");
    assert_eq!(body["updated_at"], "2027-01-15T08:01:00Z");
    let stale = app.state.catalog.delete(&lamp_id, 1).await;
    assert!(matches!(stale, Err(shared::catalog::CatalogError::VersionMismatch { current: 2 })), "{stale:?}");
    app.state.catalog.delete(&lamp_id, 2).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(app.search_ids("q=brass").await, Vec::<String>::new());
    assert_eq!(app.search_ids("limit=100").await, [chair.as_str()]);
    assert_eq!(app.get(&format!("/products/{lamp}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sku_belongs_to_one_product() {
    let app = TestApp::new();
    app.add("DUP-1", "First", "misc", 100).await;
    let fields = NewProduct::new("dup-1", "Second", "", "misc", Money::new(100, Currency::EUR), 1)
        .unwrap_or_else(|error| panic!("{error}"));
    let second = app.state.catalog.create(fields, &app.ids, &app.clock).await;
    assert!(matches!(second, Err(shared::catalog::CatalogError::SkuTaken)), "{second:?}");
    assert_eq!(app.search_ids("limit=100").await.len(), 1);
}

#[tokio::test]
async fn a_sparse_search_finds_its_few_matches_on_the_first_page() {
    let app = TestApp::new();
    for number in 0..120 {
        app.add(&format!("S-{number}"), &format!("Plain Item {number}"), "misc", 100).await;
    }
    let rare = app.add("R-1", "Rare Item", "misc", 99_999).await;
    let (status, _, first) = app.get("/products?min_price=50000&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["items"][0]["id"], rare.as_str());
    assert_eq!(first["total"], 1);
    assert_eq!(first["facets"]["category"], json!({ "misc": 1 }));
    assert!(first.get("next_cursor").is_none());
    // Searching again reads the index head and the page's one product, nothing else.
    let (_, headers, _) = app.get("/products?min_price=50000&limit=10").await;
    let timing = headers.get("server-timing").and_then(|value| value.to_str().ok()).unwrap_or_default();
    assert_eq!(timing, "search;desc=\"items=2,shards=0,indexed=121\"");
}

#[tokio::test]
async fn health_reports_the_store() {
    let app = TestApp::new();
    let (status, headers, body) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok", "store": "ok" }));
    assert!(headers.get("x-request-id").is_some());
}

fn echo_router() -> Router {
    #[derive(serde::Deserialize)]
    struct Login {
        #[allow(dead_code)]
        email: String,
        #[allow(dead_code)]
        password: String,
    }
    Router::new().route("/echo", post(|Json(_): Json<Login>| async { StatusCode::NO_CONTENT }))
}

async fn post_echo(content_type: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = Request::post("/echo");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = echo_router().oneshot(request.body(Body::from(body)).unwrap_or_default()).await.unwrap_or_else(|error| match error {});
    let status = response.status();
    assert_eq!(
        response.headers().get("content-type").and_then(|value| value.to_str().ok()),
        if status == StatusCode::NO_CONTENT { None } else { Some("application/problem+json") }
    );
    let bytes = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let (status, problem) = post_echo(Some("application/json"), b"{not json".to_vec()).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    let (status, problem) = post_echo(Some("text/plain"), b"{}".to_vec()).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    let (status, problem) = post_echo(None, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
    let (status, problem) = post_echo(Some("application/json"), br#"{"email":"a@b.c"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap_or_default().contains("missing field `password`"), "{problem}");
    let ok = post_echo(Some("application/json; charset=utf-8"), br#"{"email":"a@b.c","password":"pw"}"#.to_vec()).await;
    assert_eq!(ok.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_wrongly_typed_secret_is_not_echoed_back() {
    let (status, problem) = post_echo(Some("application/json"), br#"{"email":"a@b.c","password":31415926535}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!problem.to_string().contains("31415926535"), "{problem}");
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused() {
    let padding = "x".repeat(MAX_BODY_BYTES);
    let body = format!(r#"{{"email":"a@b.c","password":"{padding}"}}"#).into_bytes();
    let (status, problem) = post_echo(Some("application/json"), body.clone()).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    // Without a Content-Length (a streamed body) the limit still holds.
    let stream = futures_body(body);
    let request = Request::post("/echo").header("content-type", "application/json").body(stream).unwrap_or_default();
    let response = echo_router().oneshot(request).await.unwrap_or_else(|error| match error {});
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

fn futures_body(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
        bytes.chunks(4096).map(|chunk| Ok(axum::body::Bytes::copy_from_slice(chunk))).collect();
    Body::from_stream(futures::stream::iter(chunks))
}

/// A privacy queue that refuses every job until it is switched on, to stand for a queue that is down.
struct SwitchableQueue {
    topics: shared::outbox::Topics<shared::adapters::memory::MemoryJobQueue>,
    up: std::sync::atomic::AtomicBool,
}

impl shared::outbox::Publish for SwitchableQueue {
    fn publish(&self, topic: shared::outbox::Topic, job: shared::ports::NewJob) -> shared::outbox::PublishFuture<'_> {
        if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            self.topics.publish(topic, job)
        } else {
            Box::pin(std::future::ready(Err(shared::ports::QueueError::Internal(anyhow::anyhow!("the queue is down")))))
        }
    }
}

#[tokio::test]
async fn an_erasure_asked_for_while_the_queue_is_down_is_kept_and_relayed_later() {
    use shared::adapters::QueueSettings;
    use shared::adapters::argon2::Argon2Settings;
    use shared::adapters::memory::MemoryJobQueue;
    use shared::http::ClientAddress;
    use shared::ports::JobInbox as _;

    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let privacy = MemoryJobQueue::new(clock.clone(), QueueSettings::default());
    let queue = Arc::new(SwitchableQueue {
        topics: shared::outbox::Topics { privacy: privacy.clone(), orders: None },
        up: std::sync::atomic::AtomicBool::new(false),
    });
    let keys = Keys::derive(&[7; 32]).unwrap_or_else(|error| panic!("{error}"));
    let state = AppState::new(MemoryItemStore::new(clock.clone()), clock.clone(), Arc::new(SequentialIds::new("u")), keys)
        .with_password_params(Argon2Settings::insecure_for_tests())
        .unwrap_or_else(|error| panic!("{error}"))
        .with_publisher(queue.clone());
    let router = Router::new()
        .merge(register::router(state.clone()))
        .merge(login::router(state.clone()))
        .merge(me::router(state.clone()));
    let call = |method: &str, uri: &str, token: Option<&str>, body: Value| {
        let router = router.clone();
        let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut request = request.body(Body::from(body.to_string())).unwrap_or_default();
        request.extensions_mut().insert(ClientAddress("10.0.0.1".to_owned()));
        async move {
            let response = router.oneshot(request).await.unwrap_or_else(|error| match error {});
            let status = response.status();
            let bytes = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let credentials = json!({"email": "carol@example.com", "password": "correct horse battery"});
    let (status, body) = call("POST", "/auth/register", None, credentials.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call("POST", "/auth/login", None, credentials).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned();

    let (status, body) = call("DELETE", "/me", Some(&token), Value::Null).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the request is recorded even while the queue is down: {body}");
    assert!(privacy.receive(10).await.unwrap_or_default().is_empty());
    let kept = state.outbox().pending(10).await.unwrap_or_else(|error| panic!("{error}")).0;
    assert_eq!(kept.len(), 1, "the erasure job was not kept in the outbox");

    queue.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = state.outbox().relay(queue.as_ref(), 10).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((report.published, report.failed), (1, 0));
    let delivered = privacy.receive(10).await.unwrap_or_default();
    let job: Value = serde_json::from_str(delivered.first().map(|job| job.body.as_str()).unwrap_or("null")).unwrap_or(Value::Null);
    assert_eq!(job["type"], "privacy.erase", "{job}");
    assert_eq!(job["user_id"], body["id"], "{job}");
    assert!(state.outbox().pending(10).await.unwrap_or_else(|error| panic!("{error}")).0.is_empty());
}
