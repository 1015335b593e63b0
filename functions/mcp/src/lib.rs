//! `POST /mcp`: the shop for AI agents, as a Model Context Protocol server over Streamable HTTP.
//!
//! Stateless: no session is ever made, every request is answered with one JSON body (never a stream), and
//! `GET` and `DELETE` answer 405. Both eras of the protocol are served on the one endpoint:
//! - **2026-07-28** (the latest): no `initialize`; a client discovers the server with `server/discover`, and
//!   every request carries its protocol version and capabilities in `params._meta`, which must agree with the
//!   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers (400 and -32020 when they do not);
//! - **2025-11-25**: `initialize` (answered with 2025-11-25), `notifications/initialized`, then requests with the
//!   `MCP-Protocol-Version` header; results without the newer fields.
//!
//! The protocol's messages are the official Rust SDK's model types (`rmcp::model`); the JSON-RPC dispatch is
//! ours, because the SDK's transports are tokio/hyper servers that do not run in a Worker. The tools
//! (`tools.rs`) are REST operations run in process through the functions' own routers with the caller's bearer
//! token, so they follow exactly the rules of the REST API; without a token, a tool that needs one answers a
//! tool error (`unauthorized`), never a transport error.
//!
//! Errors: a body that is not JSON answers -32700, a message that is not a JSON-RPC request -32600, an unknown
//! method -32601 (404 on 2026-07-28), an unknown tool or malformed `tools/call` params -32602 (as the
//! specification's tools page says); arguments that do not fit a tool's input schema, and every refusal of the
//! shop itself, are tool errors (`isError: true`) the model can act on. A browser `Origin` other than a
//! loopback one or one the host allows answers 403 (the transport's DNS-rebinding rule).

mod tools;

use std::sync::{Arc, LazyLock, OnceLock};

use axum::{Extension, Router};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rmcp::model::{
    CacheScope, CallToolRequestParams, DiscoverResult, ErrorCode, ErrorData, Implementation, InitializeResult,
    JsonRpcError, JsonRpcMessage, ListToolsResult, ProtocolVersion, RequestId, ServerCapabilities,
    ServerJsonRpcMessage, ServerResult, ToolsCapability,
};
use serde_json::{Value, json};
use shared::http::AppState;
use shared::http::context::observed;
use shared::ports::ItemStore;
use shared::telemetry::{TRACEPARENT, TraceParent};

use crate::tools::Toolbox;

/// The function's name in logs.
pub const FUNCTION: &str = "mcp";

/// The endpoint's path.
pub const PATH: &str = "/mcp";

/// The `_meta` key of a request's protocol version (2026-07-28).
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key of a request's client capabilities (2026-07-28).
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// How long a client may keep `tools/list` and `server/discover` answers: they change only with a deployment.
const LIST_TTL_MS: u64 = 5 * 60 * 1000;

/// What the host decides about the endpoint.
#[derive(Debug, Clone, Default)]
pub struct McpSettings {
    /// Browser origins allowed besides loopback ones (`http://localhost:*`, `http://127.0.0.1:*`,
    /// `http://[::1]:*`), exactly as a browser sends them (`https://shop.example`). Requests without an `Origin`
    /// (every non-browser client) are always allowed.
    pub allowed_origins: Vec<String>,
}

impl McpSettings {
    /// Settings from a comma-separated list of origins (the hosts' `STOREFRONT_MCP_ALLOWED_ORIGINS`).
    pub fn from_list(list: &str) -> Self {
        Self { allowed_origins: list.split(',').map(str::trim).filter(|origin| !origin.is_empty()).map(str::to_owned).collect() }
    }

    fn allows(&self, origin: &str) -> bool {
        let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]", "https://localhost", "https://127.0.0.1", "https://[::1]"]
            .iter()
            .any(|base| origin.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.strip_prefix(':').is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))));
        loopback || self.allowed_origins.iter().any(|allowed| allowed == origin)
    }
}

/// The protocol eras this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// 2026-07-28: per-request `_meta`, routing headers, `server/discover`.
    Modern,
    /// 2025-11-25: `initialize` and the `MCP-Protocol-Version` header.
    Legacy,
}

/// The REST routers the tools run on, built on the first `tools/call` an instance serves.
type RestApi = LazyLock<Router, Box<dyn FnOnce() -> Router + Send>>;

#[derive(Clone)]
struct Mcp {
    /// The REST routers the tools run on. Built when a tool is first called rather than with the instance: a
    /// session opens with `server/discover` or `initialize` and `tools/list`, which never need them, so a cold
    /// instance answers those without building five functions' routes (on Lambda, about a fifth of the
    /// function's init).
    api: Arc<RestApi>,
    settings: Arc<McpSettings>,
}

/// The tools, built once per instance from the operations' OpenAPI parts.
fn toolbox() -> Result<&'static Toolbox, &'static str> {
    static TOOLS: OnceLock<Result<Toolbox, String>> = OnceLock::new();
    TOOLS.get_or_init(|| Toolbox::from_document(&operations_document())).as_ref().map_err(String::as_str)
}

/// The OpenAPI parts of the functions the tools run.
fn operations_document() -> Value {
    let parts = [products::openapi(), product::openapi(), cart::openapi(), checkout::openapi(), orders::openapi()];
    serde_json::to_value(shared::http::openapi::assemble("tools", parts)).unwrap_or(Value::Null)
}

fn server_info() -> Implementation {
    Implementation::new("storefront", env!("CARGO_PKG_VERSION")).with_title("Storefront")
}

fn capabilities() -> ServerCapabilities {
    let mut capabilities = ServerCapabilities::default();
    capabilities.tools = Some(ToolsCapability::default());
    capabilities
}

const INSTRUCTIONS: &str = "Tools for a shop: search products, manage the signed-in user's cart, check out and \
    manage orders. Tools that touch a cart or an order act as the user whose bearer token the HTTP request \
    carries. Money is in integer minor units (cents).";

/// A JSON-RPC error answer with `status`.
fn error_answer(status: StatusCode, id: Option<RequestId>, error: ErrorData) -> Response {
    json_answer(status, &JsonRpcError::new(id, error))
}

fn json_answer(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A routing header's value, decoded from the `=?base64?...?=` form when it is in it.
fn routing_header(headers: &HeaderMap, name: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = header_text(headers, name)?;
    match raw.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => base64::engine::general_purpose::STANDARD.decode(encoded).ok().and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(raw.to_owned()),
    }
}

/// Whether the `Accept` header (absent means anything) takes a JSON answer.
fn accepts_json(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok()).collect();
    values.is_empty()
        || values.iter().flat_map(|value| value.split(',')).any(|range| {
            let media = range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            media == "application/json" || media == "application/*" || media == "*/*"
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    header_text(headers, header::CONTENT_TYPE.as_str())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn version_of(text: &str) -> Option<ProtocolVersion> {
    serde_json::from_value(Value::String(text.to_owned())).ok()
}

fn unsupported_version(id: Option<RequestId>, requested: &str) -> Response {
    let supported = [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25];
    let requested = version_of(requested).unwrap_or(ProtocolVersion::V_2026_07_28);
    error_answer(StatusCode::BAD_REQUEST, id, ErrorData::unsupported_protocol_version(requested, &supported))
}

#[utoipa::path(
    post,
    path = "/mcp",
    operation_id = "mcp",
    tag = "agents",
    summary = "Model Context Protocol (Streamable HTTP, stateless; 2026-07-28 and 2025-11-25)",
    request_body(content = Object, content_type = "application/json", description = "One JSON-RPC 2.0 request or notification"),
    params(
        ("MCP-Protocol-Version" = Option<String>, Header, description = "`2026-07-28` (with `Mcp-Method`, and `Mcp-Name` for `tools/call`), or `2025-11-25` after `initialize`"),
    ),
    responses(
        (status = 200, description = "The JSON-RPC response (a result, or an error of a 2025-11-25 request)", content_type = "application/json", body = Object),
        (status = 202, description = "A notification or response was accepted"),
        (status = 400, description = "A JSON-RPC error: -32700 (not JSON), -32600 (not a request), -32602 (bad params, missing `_meta`), -32020 (routing headers missing or not matching the body), -32022 (unsupported protocol version)", content_type = "application/json", body = Object),
        (status = 403, description = "The `Origin` is not allowed", content_type = "application/json", body = Object),
        (status = 404, description = "A JSON-RPC error -32601: no such method (2026-07-28)", content_type = "application/json", body = Object),
        (status = 406, description = "The `Accept` header does not take `application/json`", content_type = "application/json", body = Object),
        (status = 415, description = "The body is not declared as `application/json`", content_type = "application/json", body = Object),
    )
)]
async fn handle(State(mcp): State<Mcp>, trace: Option<Extension<TraceParent>>, mut headers: HeaderMap, body: Bytes) -> Response {
    // The tools' REST requests continue this request's trace (`shared::telemetry`), so a checkout made through
    // MCP keeps the MCP request's trace id on its order and its events.
    if let Some(Extension(trace)) = trace
        && let Ok(value) = HeaderValue::from_str(&trace.to_string())
    {
        headers.insert(TRACEPARENT, value);
    }
    if let Some(origin) = header_text(&headers, header::ORIGIN.as_str())
        && !mcp.settings.allows(origin)
    {
        return error_answer(StatusCode::FORBIDDEN, None, ErrorData::invalid_request("this Origin is not allowed", None));
    }
    if !accepts_json(&headers) {
        return error_answer(StatusCode::NOT_ACCEPTABLE, None, ErrorData::invalid_request("Accept must include application/json", None));
    }
    if !is_json(&headers) {
        return error_answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, ErrorData::invalid_request("send the message as application/json", None));
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return error_answer(StatusCode::BAD_REQUEST, None, ErrorData::parse_error("the body is not JSON", None));
    };
    let Value::Object(message) = message else {
        return error_answer(StatusCode::BAD_REQUEST, None, ErrorData::invalid_request("one JSON-RPC message per request; batches are not supported", None));
    };
    let id = match message.get("id") {
        None => None,
        Some(id) => match serde_json::from_value::<RequestId>(id.clone()) {
            Ok(id) => Some(id),
            Err(_) => return error_answer(StatusCode::BAD_REQUEST, None, ErrorData::invalid_request("the id must be a string or an integer", None)),
        },
    };
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return error_answer(StatusCode::BAD_REQUEST, id, ErrorData::invalid_request("jsonrpc must be \"2.0\"", None));
    }
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        // A response to a request this server never sends, or a malformed message.
        if id.is_some() && (message.contains_key("result") || message.contains_key("error")) {
            return StatusCode::ACCEPTED.into_response();
        }
        return error_answer(StatusCode::BAD_REQUEST, id, ErrorData::invalid_request("a request needs a method", None));
    };
    let Some(id) = id else {
        // A notification (`notifications/initialized`, `notifications/cancelled`, ...): nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
    if !params.is_object() {
        return error_answer(StatusCode::BAD_REQUEST, Some(id), ErrorData::invalid_params("params must be an object", None));
    }
    let meta_version = params["_meta"][META_VERSION].as_str();
    let header_version = header_text(&headers, "mcp-protocol-version");
    let legacy_header = header_version.and_then(version_of).is_some_and(|version| version.has_initialize());
    let era = if meta_version.is_some() || (header_version.is_some() && !legacy_header) { Era::Modern } else { Era::Legacy };
    match era {
        Era::Modern => modern(&mcp, &headers, id, method, &params).await,
        Era::Legacy => legacy(&mcp, &headers, id, method, &params).await,
    }
}

/// A request of the 2026-07-28 era: `_meta` and the routing headers checked, then dispatched.
async fn modern(mcp: &Mcp, headers: &HeaderMap, id: RequestId, method: &str, params: &Value) -> Response {
    let meta = &params["_meta"];
    let (Some(version), true) = (meta[META_VERSION].as_str(), meta[META_CAPABILITIES].is_object()) else {
        let error = ErrorData::invalid_params(format!("params._meta must carry {META_VERSION} and {META_CAPABILITIES}"), None);
        return error_answer(StatusCode::BAD_REQUEST, Some(id), error);
    };
    let mismatch = |what: String| error_answer(StatusCode::BAD_REQUEST, Some(id.clone()), ErrorData::new(ErrorCode::HEADER_MISMATCH, what, None));
    match header_text(headers, "mcp-protocol-version") {
        Some(header) if header == version => {}
        Some(header) => return mismatch(format!("MCP-Protocol-Version header '{header}' does not match _meta '{version}'")),
        None => return mismatch("the MCP-Protocol-Version header is missing".to_owned()),
    }
    match routing_header(headers, "mcp-method") {
        Some(header) if header == method => {}
        Some(header) => return mismatch(format!("Mcp-Method header '{header}' does not match the method '{method}'")),
        None => return mismatch("the Mcp-Method header is missing".to_owned()),
    }
    if method == "tools/call" {
        let name = params["name"].as_str().unwrap_or_default();
        match routing_header(headers, "mcp-name") {
            Some(header) if header == name => {}
            Some(header) => return mismatch(format!("Mcp-Name header '{header}' does not match the tool '{name}'")),
            None => return mismatch("the Mcp-Name header is missing".to_owned()),
        }
    }
    if version_of(version) != Some(ProtocolVersion::V_2026_07_28) {
        return unsupported_version(Some(id), version);
    }
    let tools = match toolbox() {
        Ok(tools) => tools,
        Err(why) => return internal(Some(id), why),
    };
    let result = match method {
        "server/discover" => {
            let mut discovered = DiscoverResult::new(vec![ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25], capabilities())
                .with_server_info(server_info())
                .with_ttl_ms(LIST_TTL_MS)
                .with_cache_scope(CacheScope::Public);
            discovered.instructions = Some(INSTRUCTIONS.to_owned());
            ServerResult::DiscoverResult(discovered)
        }
        "tools/list" => ServerResult::ListToolsResult(
            ListToolsResult::with_all_items(tools.tools()).with_ttl_ms(LIST_TTL_MS).with_cache_scope(CacheScope::Public),
        ),
        "tools/call" => match call(mcp, tools, headers, &id, params).await {
            Ok(result) => ServerResult::CallToolResult(result),
            Err(response) => return response,
        },
        other => return error_answer(StatusCode::NOT_FOUND, Some(id), ErrorData::new(ErrorCode::METHOD_NOT_FOUND, format!("no method '{other}'"), None)),
    };
    let answer: ServerJsonRpcMessage = JsonRpcMessage::response(result, id);
    json_answer(StatusCode::OK, &answer)
}

/// A request of the 2025-11-25 era. Its errors are JSON-RPC errors in a 200 answer, except for a body that is
/// not a request at all, because to such a client a 404 would mean its session is gone.
async fn legacy(mcp: &Mcp, headers: &HeaderMap, id: RequestId, method: &str, params: &Value) -> Response {
    if method != "initialize"
        && let Some(header) = header_text(headers, "mcp-protocol-version")
        && version_of(header) != Some(ProtocolVersion::V_2025_11_25)
    {
        return unsupported_version(Some(id), header);
    }
    let tools = match toolbox() {
        Ok(tools) => tools,
        Err(why) => return internal(Some(id), why),
    };
    let mut result = match method {
        // This server's only version with `initialize`, whatever the client offers (the client decides whether
        // it can speak it).
        "initialize" => ServerResult::InitializeResult(
            InitializeResult::new(capabilities())
                .with_server_info(server_info())
                .with_protocol_version(ProtocolVersion::V_2025_11_25)
                .with_instructions(INSTRUCTIONS),
        ),
        "ping" => ServerResult::empty(()),
        "tools/list" => ServerResult::ListToolsResult(ListToolsResult::with_all_items(tools.tools())),
        "tools/call" => match call(mcp, tools, headers, &id, params).await {
            Ok(result) => ServerResult::CallToolResult(result),
            Err(response) => return response,
        },
        other => return error_answer(StatusCode::OK, Some(id), ErrorData::new(ErrorCode::METHOD_NOT_FOUND, format!("no method '{other}'"), None)),
    };
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    let answer: ServerJsonRpcMessage = JsonRpcMessage::response(result, id);
    json_answer(StatusCode::OK, &answer)
}

fn internal(id: Option<RequestId>, why: &str) -> Response {
    tracing::error!(error = why, "the MCP tools could not be built");
    error_answer(StatusCode::INTERNAL_SERVER_ERROR, id, ErrorData::internal_error("the server failed; it has been logged", None))
}

/// `tools/call`: the tool run with the request's bearer token; protocol errors as an answer in `Err`.
async fn call(
    mcp: &Mcp,
    tools: &Toolbox,
    headers: &HeaderMap,
    id: &RequestId,
    params: &Value,
) -> Result<rmcp::model::CallToolResult, Response> {
    let invalid = |why: String| error_answer(StatusCode::BAD_REQUEST, Some(id.clone()), ErrorData::invalid_params(why, None));
    let params: CallToolRequestParams = serde_json::from_value(params.clone())
        .map_err(|error| invalid(format!("tools/call params: {error}")))?;
    if !tools.has(&params.name) {
        return Err(invalid(format!("Unknown tool: {}", params.name)));
    }
    let arguments = params.arguments.unwrap_or_default();
    let result = tools.call(&mcp.api, &params.name, &arguments, headers.get(header::AUTHORIZATION), headers.get(TRACEPARENT)).await;
    tracing::info!(tool = %params.name, is_error = result.is_error.unwrap_or(false), "tool called");
    Ok(result)
}

/// `GET` and `DELETE` on the endpoint: this server keeps no stream and no session.
async fn not_here() -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(handle))]
struct Api;

/// The function's operation, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}

/// The function's routes, allowing only loopback browser origins.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    router_with(state, McpSettings::default())
}

/// The function's routes with the host's settings.
pub fn router_with<S: ItemStore + Clone>(state: AppState<S>, settings: McpSettings) -> Router {
    let (clock, ids) = (state.clock.clone(), state.ids.clone());
    let api: RestApi = LazyLock::new(Box::new(move || {
        Router::new()
            .merge(products::router(state.clone()))
            .merge(product::router(state.clone()))
            .merge(cart::router(state.clone()))
            .merge(checkout::router(state.clone()))
            .merge(orders::router(state))
            .fallback(shared::http::error::not_found)
    }));
    let mcp = Mcp { api: Arc::new(api), settings: Arc::new(settings) };
    let routes = Router::new().route(PATH, post(handle).get(not_here).delete(not_here)).with_state(mcp);
    observed(routes, FUNCTION, clock, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_built_from_its_operation_with_object_schemas() {
        let tools = toolbox().unwrap_or_else(|why| panic!("{why}"));
        let listed = tools.tools();
        let names: Vec<&str> = listed.iter().map(|tool| tool.name.as_ref()).collect();
        assert_eq!(
            names,
            ["search_products", "get_product", "view_cart", "add_to_cart", "remove_from_cart", "apply_discount", "checkout", "list_orders", "get_order", "cancel_order"]
        );
        for tool in &listed {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
            let output = tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} has no output schema", tool.name));
            assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
            let text = Value::Object((**output).clone()).to_string();
            assert!(!text.contains("#/components/"), "{} refers outside its schema: {text}", tool.name);
        }
        let checkout = listed.iter().find(|tool| tool.name == "checkout").map(|tool| Value::Object((*tool.input_schema).clone()));
        let checkout = checkout.unwrap_or_default();
        assert_eq!(checkout["required"], json!(["idempotency_key", "payment_token"]));
        let add = listed.iter().find(|tool| tool.name == "add_to_cart").map(|tool| Value::Object((*tool.input_schema).clone())).unwrap_or_default();
        assert_eq!(add["required"], json!(["product_id", "quantity"]));
    }

    #[test]
    fn loopback_and_listed_origins_are_allowed_and_others_are_not() {
        let settings = McpSettings::from_list(" https://shop.example , ");
        for allowed in ["http://localhost:3000", "http://127.0.0.1:8080", "http://localhost", "https://shop.example"] {
            assert!(settings.allows(allowed), "{allowed}");
        }
        for refused in ["http://localhost.evil.example", "http://127.0.0.1.evil:80", "https://evil.example", "null", "http://localhost:"] {
            assert!(!settings.allows(refused), "{refused}");
        }
    }
}
