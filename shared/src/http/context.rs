//! The request-context middleware: gives every request an id (kept from a well-formed `x-request-id`, else
//! new), returns it in the response, and writes one structured line per request: the request's metric event
//! (`crate::telemetry::request`), which names the function, the route template (never the raw path or query,
//! which may carry personal data), the status, the code it is counted by (the problem document's
//! [`ProblemCode`], or `ok`), the latency and whether this was the function instance's first request (cold
//! start). It continues the W3C trace of the request's `traceparent` (or starts one), logs its trace id on every
//! line of the request and hands the handlers the [`TraceParent`] in the request's extensions.
//!
//! [`observed`] wraps a function's routes with it; [`with_unrouted`] gives a host's fallback (a path no function
//! serves) the same line, as function [`UNROUTED`]; a host that answers a request without a router (the Worker's
//! listing cache) calls [`Observer::begin`] and [`Observation::end`] itself.

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

/// The function name of the requests no function's route matches ([`with_unrouted`]).
pub const UNROUTED: &str = "unrouted";

/// What the middleware needs to observe one function's requests.
#[derive(Clone)]
pub struct Observer {
    function: &'static str,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

/// One request being observed: from [`Observer::begin`] to [`Observation::end`].
#[must_use = "a request's line is written by `end`"]
pub struct Observation {
    function: &'static str,
    clock: Arc<dyn Clock>,
    started: crate::ports::Timestamp,
    request_id: String,
    method: http::Method,
    route: String,
    span: tracing::Span,
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

impl Observer {
    /// An observer of `function`'s requests.
    pub fn new(function: &'static str, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Self {
        Self { function, clock, ids }
    }

    /// Starts observing `req`, served by the route template `route`: gives it its request id and trace (in its
    /// extensions) and opens its span, in which whatever serves it should run ([`Observation::span`]).
    pub fn begin(&self, req: &mut Request, route: String) -> Observation {
        let started = self.clock.now();
        let request_id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|candidate| well_formed(candidate))
            .map_or_else(|| self.ids.new_id(), str::to_owned);
        let trace = TraceParent::continue_or_start(req.headers().get(TRACEPARENT).and_then(|value| value.to_str().ok()), &*self.ids);
        req.extensions_mut().insert(RequestId(request_id.clone()));
        req.extensions_mut().insert(trace);
        let span = tracing::info_span!("request", request_id = %request_id, function = self.function, trace_id = %trace.trace_id());
        Observation { function: self.function, clock: Arc::clone(&self.clock), started, request_id, method: req.method().clone(), route, span }
    }
}

impl Observation {
    /// The request's span: every line written in it carries the request id, the function and the trace id.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Ends the observation with the request's `response`: returns the request id in it and writes the
    /// request's one line.
    pub fn end(self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let latency_ms = u64::try_from(self.clock.now().as_millis().saturating_sub(self.started.as_millis())).unwrap_or(0);
        let status = response.status();
        let code = response.extensions().get::<ProblemCode>().map_or(if status.is_success() || status.is_redirection() { "ok" } else { "other" }, |code| code.0);
        let cold_start = first_request(self.function);
        self.span.in_scope(|| {
            telemetry::request(&telemetry::Served {
                function: self.function,
                method: self.method.as_str(),
                route: &self.route,
                status: status.as_u16(),
                code,
                latency_ms,
                cold_start,
            });
        });
    }
}

async fn observe(State(observer): State<Observer>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |path| path.as_str()).to_owned();
    let observation = observer.begin(&mut req, route);
    let mut response = next.run(req).instrument(observation.span()).await;
    observation.end(&mut response);
    response
}

/// Wraps a function's routes with the request-context middleware, and answers a method the routes do not
/// take with a 405 problem document.
pub fn observed(router: Router, function: &'static str, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    let observer = Observer::new(function, clock, ids);
    router
        .method_not_allowed_fallback(crate::http::error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(observer, observe))
}

/// Gives `router` the fallback every host uses: a 404 problem document for a path no route matches, observed as
/// function [`UNROUTED`] (route `unmatched`), so such requests get their line and count like any other.
pub fn with_unrouted(router: Router, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>) -> Router {
    router.fallback_service(observed(Router::new().fallback(crate::http::error::not_found), UNROUTED, clock, ids))
}
