//! The request-context middleware: gives every request an id (kept from a well-formed `x-request-id`, else
//! new), returns it in the response, and writes one structured log line per request with the function's
//! name, the route template (never the raw path or query, which may carry personal data), the status, the
//! latency and whether this was the function instance's first request (cold start). It continues the W3C trace
//! of the request's `traceparent` (or starts one), logs its trace id on every line of the request and hands the
//! handlers the [`TraceParent`] in the request's extensions; and it writes the request's metric event
//! (`crate::telemetry::request`), counted by the problem document's code ([`ProblemCode`]) or `ok`.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument as _;

use crate::ports::{Clock, IdGen};
use crate::telemetry::{self, TRACEPARENT, TraceParent};

/// The header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;

/// The id of the request being handled, stored in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The machine code of a problem response, kept in the response's extensions for the request's metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode(pub &'static str);

#[derive(Clone)]
struct Observer {
    function: &'static str,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

/// The functions that have served a request in this process (or Worker isolate). Kept per process rather
/// than per router, because the Workers host builds its routers on every request.
static SERVED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Whether this is the first request `function` serves in this process, marking it served.
fn first_request(function: &'static str) -> bool {
    let mut served = SERVED.lock().unwrap_or_else(PoisonError::into_inner);
    if served.contains(&function) {
        false
    } else {
        served.push(function);
        true
    }
}

fn well_formed(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate.len() <= MAX_REQUEST_ID_CHARS
        && candidate.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

async fn observe(State(observer): State<Observer>, mut req: Request, next: Next) -> Response {
    let started = observer.clock.now();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|candidate| well_formed(candidate))
        .map_or_else(|| observer.ids.new_id(), str::to_owned);
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |path| path.as_str()).to_owned();
    let method = req.method().clone();
    let cold_start = first_request(observer.function);
    let trace = TraceParent::continue_or_start(req.headers().get(TRACEPARENT).and_then(|value| value.to_str().ok()), &*observer.ids);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(trace);
    let span = tracing::info_span!("request", request_id = %request_id, function = observer.function, trace_id = %trace.trace_id());
    let mut response = next.run(req).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let latency_ms = u64::try_from(observer.clock.now().as_millis().saturating_sub(started.as_millis())).unwrap_or(0);
    let status = response.status();
    let code = response.extensions().get::<ProblemCode>().map_or(if status.is_success() || status.is_redirection() { "ok" } else { "other" }, |code| code.0);
    span.in_scope(|| {
        tracing::info!(method = %method, route = %route, status = status.as_u16(), latency_ms, cold_start, "handled");
        telemetry::request(observer.function, code, latency_ms, status.is_server_error(), cold_start);
    });
    response
}

/// Wraps a function's routes with the request-context middleware, and answers a method the routes do not
/// take with a 405 problem document.
pub fn observed(router: Router, function: &'static str, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    let observer = Observer { function, clock, ids };
    router
        .method_not_allowed_fallback(crate::http::error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(observer, observe))
}
