//! What every host reports about itself besides its log lines: W3C trace context and metrics.
//!
//! **Traces.** Every HTTP request continues the trace of a well-formed W3C `traceparent` header, or starts
//! one ([`TraceParent::continue_or_start`]); the request-context middleware logs its trace id on every line of
//! the request. The checkout keeps the request's `traceparent` on the order and writes it into the
//! `order.created` and `order.cancelled` events, so it travels inside the outbox event and the queue message,
//! and the order-events job logs the same trace id: one order can be followed from `POST /checkout` to its
//! e-mail by searching the logs for one id.
//!
//! **Metrics.** A metric is one `tracing` event at target [`METRICS_TARGET`]: its string fields named in
//! [`DIMENSIONS`] are its dimensions, its numeric fields named in [`METRICS`] its values. The local host and
//! the Worker write it like any other structured log line; the Lambda host writes it as a CloudWatch Embedded
//! Metric Format document ([`emf_line`]) on a line of its own, which CloudWatch Logs turns into metrics with no
//! agent and no API call. One event per request ([`request`], which is that request's log line too: one line
//! per request, since on the Worker every line is a message out of the isolate), per checkout ([`checkout`])
//! and per job ([`job`]); nothing is aggregated in the process, so a Lambda instance or a Worker isolate that is
//! frozen or dropped loses nothing.
//!
//! No crate fits both halves on every host: `metrics_cloudwatch_embedded` (the EMF recorder for the `metrics`
//! facade) does not build for wasm32 and aggregates in process, and the OpenTelemetry SDK's propagator pulls
//! `rand` and does not check field lengths. What is written here is the wire format only, with its rules
//! checked by tests.

use std::fmt;

use serde_json::Value;

use crate::ports::random::Random;

/// The header that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The `tracing` target of metric events.
pub const METRICS_TARGET: &str = "metrics";

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Storefront";

/// The fields of a metric event that are dimensions.
pub const DIMENSIONS: &[&str] = &["function", "code", "outcome", "queue"];

/// The fields of a metric event that are values, with their CloudWatch units.
pub const METRICS: &[(&str, &str)] = &[
    ("requests", "Count"),
    ("errors", "Count"),
    ("cold_starts", "Count"),
    ("latency_ms", "Milliseconds"),
    ("checkouts", "Count"),
    ("jobs", "Count"),
];

/// One request served, as the request-context middleware saw it (`crate::http::context`).
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The function that served it.
    pub function: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The route template that matched (never the raw path, which may carry personal data), or `unmatched`.
    pub route: &'a str,
    /// The response's status.
    pub status: u16,
    /// The problem document's code, `ok` for a success or a redirection, else `other`.
    pub code: &'a str,
    /// From the request's arrival to its response.
    pub latency_ms: u64,
    /// Whether it was the function instance's first request.
    pub cold_start: bool,
}

/// The request's line, which is its metric event too (one line per request, not two): counted by `function` and
/// `code`, with its latency, whether it failed (a status of 500 or more) and whether it was a cold start, and
/// beside them the method, route and status a reader of the log wants.
pub fn request(served: &Served<'_>) {
    tracing::info!(
        target: METRICS_TARGET,
        function = served.function,
        method = served.method,
        route = served.route,
        status = served.status,
        code = served.code,
        requests = 1_u64,
        errors = u64::from(served.status >= 500),
        cold_starts = u64::from(served.cold_start),
        latency_ms = served.latency_ms,
        "handled"
    );
}

/// One checkout ended: `paid`, `declined`, `payment_unavailable`, `insufficient_stock`, `rejected` (any other
/// refusal) or `failed`.
pub fn checkout(outcome: &str) {
    tracing::info!(target: METRICS_TARGET, function = "checkout", outcome, checkouts = 1_u64, "metrics");
}

/// One delivery of `queue`'s consumer settled: `done`, `retried` or `dead_lettered`.
pub fn job(queue: &str, outcome: &str) {
    tracing::info!(target: METRICS_TARGET, queue, outcome, jobs = 1_u64, "metrics");
}

/// The CloudWatch Embedded Metric Format document of a metric event's `fields` (with those of the spans it
/// happened in, so a request's line keeps its request and trace ids), at `timestamp_ms`, as one line of JSON
/// ending in a newline: every field as a member, and one directive in [`NAMESPACE`] with the event's dimensions
/// as its one dimension set and its values as metrics. Members that are neither stay in the document as log
/// fields, which CloudWatch Logs Insights can query. `None` when the fields hold no metric value.
///
/// Written straight from the fields, with no JSON map in between: built as a `serde_json::Value` and then
/// serialised, a request's line cost about 49,000 instructions, a fifth of a Lambda invocation's (callgrind).
pub fn emf_line(fields: &Fields, timestamp_ms: i64) -> Option<Vec<u8>> {
    let dimensions: Vec<&str> = DIMENSIONS.iter().copied().filter(|name| fields.get(name).is_some_and(Value::is_string)).collect();
    let metrics: Vec<EmfMetric<'_>> =
        METRICS.iter().filter(|(name, _)| fields.get(name).is_some_and(Value::is_number)).map(|&(name, unit)| EmfMetric { name, unit }).collect();
    if metrics.is_empty() {
        return None;
    }
    let aws = EmfMetadata { timestamp: timestamp_ms, directives: [EmfDirective { namespace: NAMESPACE, dimensions: [dimensions], metrics }] };
    let mut line = serde_json::to_vec(&EmfDocument { fields, aws }).ok()?;
    line.push(b'\n');
    Some(line)
}

/// An EMF document: the fields, then the `_aws` metadata (which a field of that name cannot replace).
struct EmfDocument<'a> {
    fields: &'a Fields,
    aws: EmfMetadata<'a>,
}

impl serde::Serialize for EmfDocument<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut document = serializer.serialize_map(None)?;
        for (name, value) in self.fields.0.iter().filter(|(name, _)| *name != "_aws") {
            document.serialize_entry(name, value)?;
        }
        document.serialize_entry("_aws", &self.aws)?;
        document.end()
    }
}

#[derive(serde::Serialize)]
struct EmfMetadata<'a> {
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "CloudWatchMetrics")]
    directives: [EmfDirective<'a>; 1],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct EmfDirective<'a> {
    namespace: &'a str,
    dimensions: [Vec<&'a str>; 1],
    metrics: Vec<EmfMetric<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct EmfMetric<'a> {
    name: &'a str,
    unit: &'a str,
}

/// Fields in the order they were first recorded, a later value for a name replacing the earlier one in place:
/// what an EMF line is written from ([`emf_line`]), with no key copied into a map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    /// Sets field `name` to `value`, replacing a field of that name already there in place.
    pub fn put(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The value of field `name`, if recorded.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(field, _)| *field == name).map(|(_, value)| value)
    }

    /// Puts every field of `other` here ([`Fields::put`]).
    pub fn extend_from(&mut self, other: &Self) {
        for (name, value) in &other.0 {
            self.put(name, value.clone());
        }
    }

    /// Moves every field of `other` here ([`Fields::put`]), cloning nothing.
    pub fn absorb(&mut self, other: Self) {
        for (name, value) in other.0 {
            self.put(name, value);
        }
    }

    /// The fields in the order they were first recorded.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(name, value)| (*name, value))
    }
}

/// Collects a `tracing` event's or span's fields as JSON values (numbers and booleans as themselves, an error
/// with its chain of causes, anything else as text) into [`Fields`]: the Worker's log lines and the Lambda host's
/// EMF lines are written from them.
pub struct JsonFields<'a>(pub &'a mut Fields);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.put(field.name(), serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.put(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.put(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.put(field.name(), Value::from(value));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.put(field.name(), Value::from(value));
    }

    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.put(field.name(), Value::from(text));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.put(field.name(), Value::from(format!("{value:?}")));
    }
}

/// A W3C Trace Context `traceparent`: the trace's id, the id of the span that is the parent of what happens
/// next, and the trace flags.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.parent_id), self.flags)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N * 2 || !bytes.iter().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte)) {
        return None;
    }
    let mut out = [0; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl TraceParent {
    /// Reads a `traceparent` header as the specification says a receiver must: lowercase hex fields of 2, 32,
    /// 16 and 2 characters; version `ff` and all-zero ids are invalid; a version after `00` may carry more
    /// fields after a `-`, which are ignored.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim_matches([' ', '\t']);
        let version = unhex::<1>(header.get(..2)?)?[0];
        let valid_length = match version {
            0xff => false,
            0 => header.len() == 55,
            _ => header.len() == 55 || (header.len() > 55 && header.as_bytes()[55] == b'-'),
        };
        if !valid_length || header.as_bytes()[2] != b'-' || header.as_bytes()[35] != b'-' || header.as_bytes()[52] != b'-' {
            return None;
        }
        let trace_id = unhex::<16>(header.get(3..35)?)?;
        let parent_id = unhex::<8>(header.get(36..52)?)?;
        let flags = unhex::<1>(header.get(53..55)?)?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, parent_id, flags })
    }

    /// A new trace, sampled, whose first span is what happens next: both ids from one draw of random bytes.
    pub fn start(random: &dyn Random) -> Self {
        let bytes: [u8; 24] = nonzero(random);
        let (mut trace_id, mut parent_id) = ([0; 16], [0; 8]);
        trace_id.copy_from_slice(&bytes[..16]);
        parent_id.copy_from_slice(&bytes[16..]);
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        if parent_id == [0; 8] {
            parent_id[7] = 1;
        }
        Self { trace_id, parent_id, flags: 0x01 }
    }

    /// The same trace with a new span id: this process's span, the parent of what it calls.
    #[must_use]
    pub fn child(&self, random: &dyn Random) -> Self {
        Self { parent_id: nonzero(random), ..*self }
    }

    /// The trace of `header` when it is a valid `traceparent` (continued with a span of this process), else a
    /// new one.
    pub fn continue_or_start(header: Option<&str>, random: &dyn Random) -> Self {
        header.and_then(Self::parse).map_or_else(|| Self::start(random), |parent| parent.child(random))
    }

    /// The trace's id, 32 lowercase hex characters: what a log search for one order's path looks for.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }
}

/// Random bytes that are not all zero (an all-zero id is invalid). A failing source (never seen: the OS or
/// `crypto.getRandomValues`) still gives a valid id, from a process-wide counter, so tracing never fails a request.
fn nonzero<const N: usize>(random: &dyn Random) -> [u8; N] {
    let mut bytes = [0; N];
    if random.fill(&mut bytes).is_err() || bytes == [0; N] {
        static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let counter = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_be_bytes();
        for (index, slot) in bytes.iter_mut().enumerate() {
            *slot = counter[index % counter.len()] | u8::from(index == 0);
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::SequentialIds;
    use serde_json::json;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_written_back_unchanged() {
        let parsed = TraceParent::parse(VALID).unwrap_or_else(|| panic!("refused {VALID}"));
        assert_eq!(parsed.to_string(), VALID);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        let cases = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for case in cases {
            assert_eq!(TraceParent::parse(case), None, "accepted {case:?}");
        }
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parsed = TraceParent::parse(later).unwrap_or_else(|| panic!("refused {later}"));
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"), None);
    }

    #[test]
    fn a_request_continues_a_valid_trace_with_its_own_span_and_starts_one_otherwise() {
        let random = SequentialIds::new("trace-");
        let continued = TraceParent::continue_or_start(Some(VALID), &random);
        assert_eq!(continued.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(continued.to_string(), VALID, "the span id must be this process's own");
        let started = TraceParent::continue_or_start(Some("garbage"), &random);
        assert_ne!(started.trace_id(), continued.trace_id());
        assert_eq!(TraceParent::parse(&started.to_string()), Some(started), "a started trace must be a valid traceparent");
    }

    fn fields(pairs: &[(&'static str, Value)]) -> Fields {
        let mut fields = Fields::default();
        for (name, value) in pairs {
            fields.put(name, value.clone());
        }
        fields
    }

    #[test]
    fn a_metric_event_becomes_one_emf_directive_on_one_line() {
        let fields = fields(&[
            ("message", json!("metrics")),
            ("function", json!("product")),
            ("code", json!("ok")),
            ("requests", json!(1)),
            ("latency_ms", json!(4)),
            ("trace", json!("x")),
            ("_aws", json!("a field cannot replace the metadata")),
        ]);
        let line = emf_line(&fields, 1_800_000_000_000).unwrap_or_else(|| panic!("no document"));
        let text = String::from_utf8(line).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(text.matches('\n').count(), 1, "one line, ending in a newline: {text}");
        assert!(text.ends_with('\n'), "{text}");
        let document: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"));
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_800_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Storefront",
                        "Dimensions": [["function", "code"]],
                        "Metrics": [{ "Name": "requests", "Unit": "Count" }, { "Name": "latency_ms", "Unit": "Milliseconds" }],
                    }],
                },
                "message": "metrics",
                "function": "product",
                "code": "ok",
                "requests": 1,
                "latency_ms": 4,
                "trace": "x",
            })
        );
        assert_eq!(text.matches("\"_aws\"").count(), 1, "one _aws member: {text}");
        assert_eq!(emf_line(&self::fields(&[("function", json!("product"))]), 0), None);
    }

    #[test]
    fn a_later_field_of_the_same_name_replaces_the_earlier_in_place() {
        let mut span = fields(&[("request_id", json!("r-1")), ("function", json!("product"))]);
        span.put("function", json!("cart"));
        let mut event = fields(&[("trace_id", json!("t"))]);
        event.extend_from(&span);
        assert_eq!(event, fields(&[("trace_id", json!("t")), ("request_id", json!("r-1")), ("function", json!("cart"))]));
        assert_eq!(event.get("function"), Some(&json!("cart")));
        assert_eq!(event.get("status"), None);
        // A span's later record moves its fields in the same way.
        span.absorb(fields(&[("status", json!(200)), ("request_id", json!("r-2"))]));
        let names: Vec<_> = span.iter().map(|(name, value)| (name, value.clone())).collect();
        assert_eq!(names, [("request_id", json!("r-2")), ("function", json!("cart")), ("status", json!(200))]);
    }
}
