//! The Rust floor of scripts/bench-workers.sh (`BENCH_RUST_FLOOR=1`, a diagnostic): the Hono baseline's product read
//! (scripts/bench/hono/index.js) written as the smallest workers-rs Worker, with the workspace's `worker` version
//! and wasm build (profile `release-wasm`, wasm-bindgen, `wasm-opt -Oz`, the Storefront's JavaScript entry), and no
//! Storefront code: no axum, no tracing, no request line, no state. What it measures is what workers-rs and
//! wasm-bindgen cost a request under `wrangler dev`, the floor under any Rust Worker built this way, as
//! `hello-dynamodb` is the floor of the Lambda functions that read the store.
//!
//! Same routes and answers as the Hono baseline: `GET /health` (one point read of a key that never exists),
//! `GET /products/{id}` (the Storefront's point read and product view, with its `ETag` and `Cache-Control`), and a
//! `not_found` problem document for anything else.
use serde::Deserialize;
use serde_json::{Map, Value, json};
use worker::wasm_bindgen::JsValue;
use worker::{Context, Env, Request, Response, Result, event, js_sys};

const POINT_READ: &str = "SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)";

#[derive(Deserialize)]
struct Row {
    version: u64,
    data: String,
    counter: Option<i64>,
}

fn now_secs() -> f64 {
    (js_sys::Date::now() / 1000.0).floor()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn problem(status: u16, code: &str, detail: &str) -> Result<Response> {
    let body = json!({ "type": "about:blank", "title": code, "status": status, "code": code, "detail": detail });
    let mut response = Response::from_json(&body)?.with_status(status);
    response.headers_mut().set("content-type", "application/problem+json")?;
    Ok(response)
}

/// RFC 3339 in UTC as the `time` crate writes it: the fraction of a second without trailing zeros, none if zero.
fn rfc3339(millis: &Value) -> Value {
    let iso: String = js_sys::Date::new(&JsValue::from_f64(millis.as_f64().unwrap_or_default())).to_iso_string().into();
    let Some((seconds, fraction)) = iso.trim_end_matches('Z').split_once('.') else { return Value::String(iso) };
    let fraction = fraction.trim_end_matches('0');
    Value::String(if fraction.is_empty() { format!("{seconds}Z") } else { format!("{seconds}.{fraction}Z") })
}

fn product_view(mut product: Map<String, Value>, version: u64, counter: Option<i64>) -> Value {
    let mut take = |name: &str| product.remove(name).unwrap_or(Value::Null);
    let stock = match counter {
        Some(counter) => json!(counter.max(0)),
        None => take("stock"),
    };
    let threshold = match take("low_stock_threshold") {
        Value::Null => json!(5),
        value => value,
    };
    let price = take("price");
    json!({
        "id": take("id"),
        "sku": take("sku"),
        "name": take("name"),
        "description": take("description"),
        "category": take("category"),
        "price": { "amount": price["amount"], "currency": price["currency"] },
        "stock": stock,
        "low_stock_threshold": threshold,
        "version": version,
        "created_at": rfc3339(&take("created_at")),
        "updated_at": rfc3339(&take("updated_at")),
    })
}

async fn read(env: &Env, pk: &str, sk: &str) -> Result<Option<Row>> {
    let db = env.d1("DB")?;
    let statement = db.prepare(POINT_READ).bind(&[JsValue::from_str(pk), JsValue::from_str(sk), JsValue::from_f64(now_secs())])?;
    statement.first::<Row>(None).await
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/health" {
        return match read(&env, "HEALTH", "PROBE").await {
            Ok(_) => Response::from_json(&json!({ "status": "ok", "store": "ok" })),
            Err(_) => problem(503, "unavailable", "the store"),
        };
    }
    let Some(id) = path.strip_prefix("/products/") else {
        return problem(404, "not_found", "no such route");
    };
    if !valid_id(id) {
        return problem(400, "invalid_parameter", "id");
    }
    let Some(row) = read(&env, &format!("PRODUCT#{id}"), "PRODUCT").await? else {
        return problem(404, "not_found", "no product has this id");
    };
    let Ok(Value::Object(product)) = serde_json::from_str::<Value>(&row.data) else {
        return problem(500, "internal", "a stored product is not a JSON object");
    };
    let mut response = Response::from_json(&product_view(product, row.version, row.counter))?;
    response.headers_mut().set("etag", &format!("\"{}\"", row.version))?;
    response.headers_mut().set("cache-control", "no-cache")?;
    Ok(response)
}
