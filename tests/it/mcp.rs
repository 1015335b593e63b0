//! MCP with the official Python SDK: on the host under test, `tests/clients/mcp_client.py` (the `mcp` package,
//! version 2) connects over Streamable HTTP with the latest revision (2026-07-28, `server/discover`) and pinned to
//! 2025-11-25 (`initialize`), lists the tools, and as a signed-in user searches, adds to the cart, checks out and
//! cancels; without a token the same calls are tool errors. The REST API then shows the same order.
//!
//! The Python interpreter with the SDK is `STOREFRONT_MCP_PYTHON` (`scripts/api-clients.sh install` makes it);
//! without it these scenarios fail, saying so.

use serde_json::Value;
use tests::{Api, base_url, unique};

use crate::admin::admin;

const TOOLS: [&str; 10] = [
    "add_to_cart", "apply_discount", "cancel_order", "checkout", "get_order", "get_product", "list_orders", "remove_from_cart", "search_products", "view_cart",
];

fn python() -> String {
    match std::env::var("STOREFRONT_MCP_PYTHON") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!("STOREFRONT_MCP_PYTHON must name a Python with the MCP SDK (run scripts/api-clients.sh install)"),
    }
}

/// Runs the Python client and returns its report.
async fn run_client(mode: &str, token: Option<&str>, product_id: &str, key: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/mcp_client.py");
    let output = tokio::process::Command::new(python())
        .args([script, base_url(), mode, token.unwrap_or("-"), product_id, key])
        .output()
        .await
        .unwrap_or_else(|error| panic!("run {script}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the MCP client failed ({mode}): {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("the MCP client's report is not JSON ({error}): {stdout}"))
}

fn succeeded<'a>(report: &'a Value, step: &str) -> &'a Value {
    assert_eq!(report[step]["is_error"], false, "{step} failed ({}): {}", report["mode"], report[step]);
    &report[step]["structured"]
}

fn failed_with(report: &Value, step: &str, code: &str) {
    assert_eq!(report[step]["is_error"], true, "{step} should be a tool error ({}): {}", report["mode"], report[step]);
    assert_eq!(report[step]["structured"]["code"], code, "{step} ({}): {}", report["mode"], report[step]);
}

async fn signed_in_scenario(mode: &str, version: &str) {
    let api = Api::new();
    let admin = admin(&api).await;
    let product = api.create_product(&admin, "mcp", 1250, 10).await;
    let product_id = product["id"].as_str().unwrap_or_default();
    let customer = api.new_user("mcp").await;
    let key = unique("mcp-key-");
    let report = run_client(mode, Some(&customer.access), product_id, &key).await;

    assert_eq!(report["protocol_version"], version, "{report}");
    assert_eq!(report["server_name"], "storefront");
    let tools: Vec<&str> = report["tools"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(tools, TOOLS);
    assert!(succeeded(&report, "search")["items"].is_array());
    assert_eq!(succeeded(&report, "get_product")["id"], product_id);
    let cart = succeeded(&report, "add_to_cart");
    assert_eq!(cart["items"][0]["product_id"], product_id);
    assert_eq!(cart["total"]["amount"], 2500);
    assert_eq!(report["bad_arguments"]["is_error"], true, "a string quantity is a tool error: {}", report["bad_arguments"]);
    assert_eq!(report["unknown_tool"]["protocol_error"], -32602, "an unknown tool is -32602: {}", report["unknown_tool"]);
    let order = succeeded(&report, "checkout");
    let order_id = order["id"].as_str().unwrap_or_default();
    assert_eq!(order["status"], "paid");
    assert_eq!(order["total"]["amount"], 2500);
    let listed = succeeded(&report, "list_orders");
    assert_eq!(listed["items"][0]["id"], order_id, "the new order is the newest: {listed}");
    assert_eq!(succeeded(&report, "get_order")["id"], order_id);
    assert_eq!(succeeded(&report, "cancel_order")["status"], "cancelled");

    // The REST API shows the same order, cancelled, and the stock given back.
    let shown = api.call(reqwest::Method::GET, &format!("/orders/{order_id}"), Some(&customer.access), None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.json["status"], "cancelled");
    assert_eq!(shown.json["lines"][0]["product_id"], product_id);
    assert_eq!(shown.json["lines"][0]["quantity"], 2);
    assert_eq!(api.stock_of(product_id).await, 10);
    let cart = api.call(reqwest::Method::GET, "/cart", Some(&customer.access), None).await;
    assert_eq!(cart.json["items"], serde_json::json!([]), "the checkout emptied the cart: {}", cart.text);
}

#[tokio::test]
async fn the_python_sdk_shops_through_mcp_with_the_latest_revision() {
    signed_in_scenario("latest", "2026-07-28").await;
}

#[tokio::test]
async fn the_python_sdk_shops_through_mcp_pinned_to_2025_11_25() {
    signed_in_scenario("legacy", "2025-11-25").await;
}

#[tokio::test]
async fn without_a_token_the_cart_and_order_tools_are_tool_errors() {
    let api = Api::new();
    let admin = admin(&api).await;
    let product = api.create_product(&admin, "mcpanon", 900, 3).await;
    let product_id = product["id"].as_str().unwrap_or_default();
    for (mode, version) in [("latest", "2026-07-28"), ("legacy", "2025-11-25")] {
        let report = run_client(mode, None, product_id, &unique("mcp-anon-")).await;
        assert_eq!(report["protocol_version"], version, "{report}");
        assert_eq!(succeeded(&report, "get_product")["id"], product_id, "reading the catalog needs no token");
        for step in ["add_to_cart", "view_cart", "checkout", "list_orders", "cancel_order"] {
            failed_with(&report, step, "unauthorized");
        }
    }
    assert_eq!(api.stock_of(product_id).await, 3, "nothing was reserved without a token");
}

/// `_meta` of a 2026-07-28 request.
fn meta() -> Value {
    serde_json::json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} })
}

async fn post(api: &Api, headers: &[(&str, &str)], body: &[u8]) -> tests::Answer {
    let mut all = vec![("accept", "application/json, text/event-stream")];
    all.extend_from_slice(headers);
    api.send(reqwest::Method::POST, "/mcp", &all, Some(("application/json", body.to_vec()))).await
}

fn error_code(answer: &tests::Answer) -> i64 {
    answer.json["error"]["code"].as_i64().unwrap_or_else(|| panic!("not a JSON-RPC error ({}): {}", answer.status, answer.text))
}

#[tokio::test]
async fn the_transport_answers_bad_messages_with_the_protocols_codes() {
    let api = Api::new();
    let modern = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")];
    let list = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": meta() } }).to_string();

    let answer = post(&api, &modern, list.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["tools"].as_array().map(Vec::len), Some(10));
    assert_eq!(answer.json["result"]["resultType"], "complete");
    assert!(answer.headers.get("mcp-session-id").is_none(), "a stateless server makes no session");

    let not_json = post(&api, &[], b"{not json").await;
    assert_eq!((not_json.status, error_code(&not_json)), (400, -32700));
    let batch = post(&api, &[], b"[]").await;
    assert_eq!((batch.status, error_code(&batch)), (400, -32600));
    let no_method = post(&api, &[], br#"{"jsonrpc":"2.0","id":2}"#).await;
    assert_eq!((no_method.status, error_code(&no_method)), (400, -32600));

    let unknown = serde_json::json!({ "jsonrpc": "2.0", "id": 3, "method": "no/such", "params": { "_meta": meta() } }).to_string();
    let answer = post(&api, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "no/such")], unknown.as_bytes()).await;
    assert_eq!((answer.status, error_code(&answer)), (404, -32601));

    let mismatch = post(&api, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call")], list.as_bytes()).await;
    assert_eq!((mismatch.status, error_code(&mismatch)), (400, -32020));
    let missing = post(&api, &[("mcp-protocol-version", "2026-07-28")], list.as_bytes()).await;
    assert_eq!((missing.status, error_code(&missing)), (400, -32020));
    let no_meta = serde_json::json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {} }).to_string();
    let answer = post(&api, &modern, no_meta.as_bytes()).await;
    assert_eq!((answer.status, error_code(&answer)), (400, -32602), "missing _meta on a modern request");

    let mut old_meta = meta();
    old_meta["io.modelcontextprotocol/protocolVersion"] = "2099-01-01".into();
    let future = serde_json::json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": { "_meta": old_meta } }).to_string();
    let answer = post(&api, &[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")], future.as_bytes()).await;
    assert_eq!((answer.status, error_code(&answer)), (400, -32022));
    assert_eq!(answer.json["error"]["data"]["supported"], serde_json::json!(["2026-07-28", "2025-11-25"]));

    let call = |name: &str| serde_json::json!({ "jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": { "_meta": meta(), "name": name, "arguments": {} } }).to_string();
    let answer = post(&api, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "nope")], call("nope").as_bytes()).await;
    assert_eq!((answer.status, error_code(&answer)), (400, -32602), "an unknown tool");
    let answer = post(&api, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "=?base64?dmlld19jYXJ0?=")], call("view_cart").as_bytes()).await;
    assert_eq!(answer.status, 200, "a base64-encoded Mcp-Name is decoded: {}", answer.text);
    assert_eq!(answer.json["result"]["isError"], true, "view_cart without a token is a tool error");
    assert_eq!(answer.json["result"]["structuredContent"]["code"], "unauthorized");

    let notification = post(&api, &[("mcp-protocol-version", "2025-11-25")], br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert_eq!((notification.status, notification.text.as_str()), (202, ""));

    let foreign = post(&api, &[("origin", "https://evil.example")].iter().chain(&modern).copied().collect::<Vec<_>>(), list.as_bytes()).await;
    assert_eq!(foreign.status, 403, "a foreign browser origin: {}", foreign.text);
    let local = post(&api, &[("origin", "http://localhost:5173")].iter().chain(&modern).copied().collect::<Vec<_>>(), list.as_bytes()).await;
    assert_eq!(local.status, 200, "a loopback origin: {}", local.text);

    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let answer = api.send(method.clone(), "/mcp", &[("accept", "text/event-stream")], None).await;
        assert_eq!(answer.status, 405, "{method} /mcp");
        assert_eq!(answer.headers.get("allow").and_then(|value| value.to_str().ok()), Some("POST"));
    }
}
