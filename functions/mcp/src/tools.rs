//! The shop's MCP tools: each one is an operation of the REST API, described by that operation's part of the
//! OpenAPI document and run by sending the operation's request to the functions' own routers, in process.
//!
//! So a tool cannot drift from its endpoint: its input schema is the operation's parameters and body fields,
//! its output schema the operation's success body (components inlined as `$defs`), and its call goes through
//! the same extractors, use cases and rules as an HTTP client's request, with the caller's bearer token. A
//! problem document comes back as a tool error (`isError: true`) carrying the problem.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderValue, Method, Request, header};
use http_body_util::BodyExt as _;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;

/// The largest REST answer a tool reads back (a page of 100 orders is far smaller).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What a tool is: its name, the REST operation it runs, and how it behaves.
struct Spec {
    name: &'static str,
    title: &'static str,
    operation_id: &'static str,
    description: &'static str,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

const SPECS: [Spec; 10] = [
    Spec {
        name: "search_products",
        title: "Search products",
        operation_id: "search_products",
        description: "Search the catalog as a shop's search box does: the words of `q` are found in names, categories and descriptions, the last word as a prefix, with typos forgiven; results are ranked by relevance unless `sort` is `price_asc`, `price_desc` or `newest`. Filter by `category` and price (minor units). The answer counts all matches (`total`) and the matches per category (`facets`). Results come a page at a time: pass `next_cursor` back as `cursor` for more.",
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "get_product",
        title: "Get a product",
        operation_id: "get_product",
        description: "One product by its id: name, description, category, price and stock.",
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "view_cart",
        title: "View the cart",
        operation_id: "view_cart",
        description: "The signed-in user's cart at the catalog's current prices, with the discount and the total a checkout would charge.",
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "add_to_cart",
        title: "Add to the cart",
        operation_id: "set_cart_line",
        description: "Put a product in the signed-in user's cart with `quantity` units (1 to 99); a line already there gets this quantity. Answers the cart.",
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "remove_from_cart",
        title: "Remove from the cart",
        operation_id: "remove_cart_line",
        description: "Take a product out of the signed-in user's cart. Answers the cart.",
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "apply_discount",
        title: "Apply a discount code",
        operation_id: "apply_discount",
        description: "Enter a discount code on the signed-in user's cart. Answers the cart, or an error with the reason the code does not apply.",
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "checkout",
        title: "Check out",
        operation_id: "checkout",
        description: "Pay for the signed-in user's cart with a payment token (in the sandbox, `tok_success` succeeds). `idempotency_key` must be unique to this checkout: calling again with the same key and token answers the same order and never charges twice.",
        read_only: false,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "list_orders",
        title: "List orders",
        operation_id: "list_orders",
        description: "The signed-in user's orders, newest first, a page at a time (pass `next_cursor` back as `cursor`).",
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "get_order",
        title: "Get an order",
        operation_id: "get_order",
        description: "One of the signed-in user's orders by its id.",
        read_only: true,
        destructive: false,
        idempotent: true,
    },
    Spec {
        name: "cancel_order",
        title: "Cancel an order",
        operation_id: "cancel_order",
        description: "Cancel one of the signed-in user's paid orders: it is refunded and its units go back in stock. Cancelling a cancelled order changes nothing.",
        read_only: false,
        destructive: true,
        idempotent: true,
    },
];

/// Where an argument goes in the REST request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// The `{name}` segment of the path.
    Path(String),
    /// The query parameter of this name.
    Query(String),
    /// The header of this name.
    Header(String),
    /// A field of the JSON body.
    Body,
}

/// One argument of a tool.
#[derive(Debug, Clone)]
struct Argument {
    name: String,
    place: Place,
    schema: Value,
    required: bool,
}

/// A tool: what `tools/list` shows and how `tools/call` runs it.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    tool: Tool,
    method: Method,
    path: String,
    arguments: Vec<Argument>,
}

/// Every tool, built once from the operations' OpenAPI parts.
#[derive(Debug, Clone)]
pub(crate) struct Toolbox {
    operations: Vec<Operation>,
}

/// Why a tool call was refused before it ran; the caller's mistake, told to it as a tool error.
#[derive(Debug)]
pub(crate) struct BadArguments(pub(crate) String);

/// The snake_case argument name of a parameter (`Idempotency-Key` → `idempotency_key`).
fn argument_name(parameter: &str) -> String {
    parameter.to_ascii_lowercase().replace('-', "_")
}

/// `#/components/schemas/X` → `X`.
fn component_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

/// Rewrites every component reference in `value` to `#/$defs/...` and collects the names it names.
fn rewrite_references(value: &mut Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "$ref" {
                    if let Some(name) = inner.as_str().and_then(component_name).map(str::to_owned) {
                        *inner = Value::String(format!("#/$defs/{name}"));
                        names.insert(name);
                    }
                } else {
                    rewrite_references(inner, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_references(item, names)),
        _ => {}
    }
}

/// A self-contained JSON Schema for the component `name`: the component itself at the root (so that the root
/// is an object schema), and every component it reaches in `$defs`.
fn standalone_schema(components: &Map<String, Value>, name: &str) -> Option<JsonObject> {
    let mut root = components.get(name)?.clone();
    let mut wanted = BTreeSet::new();
    rewrite_references(&mut root, &mut wanted);
    let mut defs = Map::new();
    while let Some(next) = wanted.iter().find(|name| !defs.contains_key(*name)).cloned() {
        let mut schema = components.get(&next)?.clone();
        rewrite_references(&mut schema, &mut wanted);
        defs.insert(next, schema);
    }
    let Value::Object(mut root) = root else { return None };
    if !defs.is_empty() {
        root.insert("$defs".to_owned(), Value::Object(defs));
    }
    Some(root)
}

impl Operation {
    fn from_document(spec: &Spec, document: &Value) -> Option<Self> {
        let components = document["components"]["schemas"].as_object()?;
        let (path, method, operation) = document["paths"].as_object()?.iter().find_map(|(path, item)| {
            item.as_object()?.iter().find_map(|(method, operation)| {
                (operation["operationId"] == spec.operation_id).then(|| (path.clone(), method.clone(), operation))
            })
        })?;
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?;
        let mut arguments = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str()?;
            let place = match parameter["in"].as_str()? {
                "path" => Place::Path(name.to_owned()),
                "query" => Place::Query(name.to_owned()),
                "header" => Place::Header(name.to_owned()),
                _ => return None,
            };
            let mut schema = parameter["schema"].clone();
            if let (Value::Object(map), Some(about)) = (&mut schema, parameter["description"].as_str()) {
                map.insert("description".to_owned(), Value::String(about.to_owned()));
            }
            let required = parameter["required"].as_bool().unwrap_or(false);
            arguments.push(Argument { name: argument_name(name), place, schema, required });
        }
        if let Some(reference) = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
            let body = standalone_schema(components, component_name(reference)?)?;
            let required: BTreeSet<&str> = body.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            for (name, schema) in body.get("properties").and_then(Value::as_object).into_iter().flatten() {
                arguments.push(Argument { name: name.clone(), place: Place::Body, schema: schema.clone(), required: required.contains(name.as_str()) });
            }
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        for argument in &arguments {
            properties.insert(argument.name.clone(), argument.schema.clone());
            if argument.required {
                required.push(Value::String(argument.name.clone()));
            }
        }
        let input = json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false });
        let Value::Object(input) = input else { return None };
        let responses = operation["responses"].as_object()?;
        let success = responses.iter().find(|(status, _)| status.starts_with('2'))?.1;
        let output = component_name(success["content"]["application/json"]["schema"]["$ref"].as_str()?)
            .and_then(|name| standalone_schema(components, name))?;
        let annotations = ToolAnnotations::new()
            .read_only(spec.read_only)
            .destructive(spec.destructive)
            .idempotent(spec.idempotent)
            .open_world(false);
        let tool = Tool::new(spec.name, spec.description, Arc::new(input))
            .with_title(spec.title)
            .with_raw_output_schema(Arc::new(output))
            .with_annotations(annotations);
        Some(Self { tool, method, path, arguments })
    }

    /// The REST request for `arguments`, checked against the tool's input schema first.
    fn request(&self, arguments: &JsonObject, authorization: Option<&HeaderValue>, trace: Option<&HeaderValue>) -> Result<Request<Body>, BadArguments> {
        let known: BTreeSet<&str> = self.arguments.iter().map(|argument| argument.name.as_str()).collect();
        if let Some(unknown) = arguments.keys().find(|name| !known.contains(name.as_str())) {
            return Err(BadArguments(format!("unknown argument '{unknown}'; the arguments are: {}", known.iter().copied().collect::<Vec<_>>().join(", "))));
        }
        let mut path = self.path.clone();
        let mut query = form_urlencoded::Serializer::new(String::new());
        let mut headers = Vec::new();
        let mut body = Map::new();
        for argument in &self.arguments {
            let value = arguments.get(&argument.name).filter(|value| !value.is_null());
            let Some(value) = value else {
                if argument.required {
                    return Err(BadArguments(format!("'{}' is required", argument.name)));
                }
                continue;
            };
            check_type(&argument.name, &argument.schema, value)?;
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match &argument.place {
                Place::Path(name) => {
                    if text.is_empty() {
                        return Err(BadArguments(format!("'{}' must not be empty", argument.name)));
                    }
                    let encoded = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC).to_string();
                    path = path.replace(&format!("{{{name}}}"), &encoded);
                }
                Place::Query(name) => {
                    query.append_pair(name, &text);
                }
                Place::Header(name) => {
                    let value = HeaderValue::from_str(&text).map_err(|_| BadArguments(format!("'{}' must be visible ASCII text", argument.name)))?;
                    headers.push((name.clone(), value));
                }
                Place::Body => {
                    body.insert(argument.name.clone(), value.clone());
                }
            }
        }
        let query = query.finish();
        let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
        let mut request = Request::builder().method(self.method.clone()).uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        if let Some(trace) = trace {
            request = request.header(shared::telemetry::TRACEPARENT, trace.clone());
        }
        let has_body = self.arguments.iter().any(|argument| argument.place == Place::Body);
        let body = if has_body {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(Value::Object(body).to_string())
        } else {
            Body::empty()
        };
        request.body(body).map_err(|error| BadArguments(format!("the arguments do not make a request: {error}")))
    }
}

/// Whether `value` has one of the JSON types `schema` allows (its `type`, a name or a list of names).
fn check_type(name: &str, schema: &Value, value: &Value) -> Result<(), BadArguments> {
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        // A schema without a type (a reference) is checked by the endpoint itself.
        _ => return Ok(()),
    };
    let fits = |kind: &str| match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    };
    if allowed.iter().any(|kind| fits(kind)) {
        Ok(())
    } else {
        Err(BadArguments(format!("'{name}' must be {}", allowed.join(" or "))))
    }
}

impl Toolbox {
    /// The tools, from the OpenAPI parts of the functions they run.
    ///
    /// # Errors
    /// Names the tool whose operation is missing from the document or cannot be described; a build that fails
    /// here fails its tests, never a request.
    pub(crate) fn from_document(document: &Value) -> Result<Self, String> {
        let operations = SPECS
            .iter()
            .map(|spec| Operation::from_document(spec, document).ok_or_else(|| format!("the tool {} has no describable operation {}", spec.name, spec.operation_id)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { operations })
    }

    /// Every tool, in a stable order.
    pub(crate) fn tools(&self) -> Vec<Tool> {
        self.operations.iter().map(|operation| operation.tool.clone()).collect()
    }

    /// Whether a tool of this name exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.operations.iter().any(|operation| operation.tool.name == name)
    }

    /// Runs the tool `name` on the REST routers `api`, as the bearer of `authorization`, in the trace `trace`
    /// (the MCP request's `traceparent`).
    pub(crate) async fn call(&self, api: &Router, name: &str, arguments: &JsonObject, authorization: Option<&HeaderValue>, trace: Option<&HeaderValue>) -> CallToolResult {
        let Some(operation) = self.operations.iter().find(|operation| operation.tool.name == name) else {
            return CallToolResult::error(vec![ContentBlock::text(format!("unknown tool '{name}'"))]);
        };
        let request = match operation.request(arguments, authorization, trace) {
            Ok(request) => request,
            Err(BadArguments(why)) => return CallToolResult::error(vec![ContentBlock::text(format!("invalid arguments: {why}"))]),
        };
        let response = match api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = match http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return CallToolResult::error(vec![ContentBlock::text("the answer could not be read")]),
        };
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() && answer.is_object() {
            CallToolResult::structured(answer)
        } else if answer.is_object() {
            // A problem document: its `code` and `detail` tell the caller what to change.
            CallToolResult::structured_error(answer)
        } else {
            CallToolResult::error(vec![ContentBlock::text(format!("the shop answered {status}"))])
        }
    }
}
