//! Traces and metrics, read from the log of a running host (`STOREFRONT_HOST_LOG`, the file its output goes
//! to): one order's `traceparent` trace id on the checkout's log line and on the line of the order-events job
//! that handled its event, and the metric events written as `STOREFRONT_METRICS_FORMAT` says the host writes
//! them: `emf` (the Lambda host: CloudWatch Embedded Metric Format documents, checked against the
//! specification's rules) or `log` (the local host and the Worker: structured log lines at target `metrics`).
//! These scenarios need a host binary and its log, so the in-process run skips them (`scripts/test`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Map, Value, json};
use tests::{Api, unique};

const ADMIN_PASSWORD: &str = "scenario-admin-password-0001";
const JOB_WAIT: Duration = Duration::from_secs(90);
/// CloudWatch's units (the EMF specification's list).
const UNITS: &[&str] = &[
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits",
    "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
];

fn host_log() -> String {
    let path = std::env::var("STOREFRONT_HOST_LOG").unwrap_or_else(|_| panic!("host_log:: reads the host's log: set STOREFRONT_HOST_LOG to its file"));
    String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))).into_owned()
}

/// The JSON object a log line holds, if any: hosts may prefix their lines (wrangler, cargo lambda watch).
fn json_of(line: &str) -> Option<Map<String, Value>> {
    let start = line.find('{')?;
    match serde_json::from_str(&line[start..]) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// Waits until some line of the host's log satisfies `found`; returns that line.
async fn wait_for_line(what: &str, found: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(line) = host_log().lines().find(|line| found(line)) {
            return line.to_owned();
        }
        assert!(started.elapsed() < JOB_WAIT, "no line of the host's log shows {what} after {JOB_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A metric event's dimensions and values, checked against the EMF specification when the host writes EMF.
fn metrics_in(log: &str, format: &str) -> Vec<Map<String, Value>> {
    let mut metrics = Vec::new();
    for line in log.lines() {
        let Some(object) = json_of(line) else { continue };
        match format {
            "emf" => {
                if object.contains_key("_aws") {
                    check_emf(&object, line);
                    metrics.push(object);
                }
            }
            "log" => {
                if object.get("target").and_then(Value::as_str) == Some("metrics") {
                    let fields = object.get("fields").and_then(Value::as_object).cloned().unwrap_or_else(|| object.clone());
                    metrics.push(fields);
                }
            }
            other => panic!("STOREFRONT_METRICS_FORMAT is `emf` or `log`, not {other:?}"),
        }
    }
    metrics
}

/// The rules of the Embedded Metric Format specification that one document must keep.
fn check_emf(document: &Map<String, Value>, line: &str) {
    let aws = document["_aws"].as_object().unwrap_or_else(|| panic!("_aws is not an object: {line}"));
    assert!(aws.get("Timestamp").is_some_and(Value::is_i64), "_aws.Timestamp is not an integer of milliseconds: {line}");
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).unwrap_or_else(|| panic!("_aws.CloudWatchMetrics is not an array: {line}"));
    assert!(!directives.is_empty(), "no metric directive: {line}");
    for directive in directives {
        assert_eq!(directive["Namespace"], "Storefront", "{line}");
        let sets = directive["Dimensions"].as_array().unwrap_or_else(|| panic!("Dimensions is not an array: {line}"));
        for set in sets {
            let keys = set.as_array().unwrap_or_else(|| panic!("a dimension set is not an array: {line}"));
            assert!(keys.len() <= 30, "more than 30 dimensions: {line}");
            for key in keys {
                let key = key.as_str().unwrap_or_else(|| panic!("a dimension key is not a string: {line}"));
                assert!(document.get(key).is_some_and(Value::is_string), "dimension {key} has no string value at the top level: {line}");
            }
        }
        let metrics = directive["Metrics"].as_array().unwrap_or_else(|| panic!("Metrics is not an array: {line}"));
        assert!(!metrics.is_empty() && metrics.len() <= 100, "1 to 100 metrics per directive: {line}");
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap_or_else(|| panic!("a metric has no name: {line}"));
            assert!(!name.is_empty() && name.len() <= 1024, "{line}");
            let unit = metric["Unit"].as_str().unwrap_or_else(|| panic!("metric {name} has no unit: {line}"));
            assert!(UNITS.contains(&unit), "metric {name} has unit {unit}, not a CloudWatch unit: {line}");
            assert!(document.get(name).is_some_and(Value::is_number), "metric {name} has no number at the top level: {line}");
        }
    }
}

fn has(metric: &Map<String, Value>, pairs: &[(&str, Value)]) -> bool {
    pairs.iter().all(|(name, value)| metric.get(*name) == Some(value))
}

#[tokio::test]
async fn one_orders_trace_id_is_on_its_checkouts_line_and_its_jobs_line_and_the_metrics_count_them() {
    let format = std::env::var("STOREFRONT_METRICS_FORMAT").unwrap_or_else(|_| panic!("set STOREFRONT_METRICS_FORMAT to `emf` or `log`"));
    let api = Api::new();
    let admin = api.admin(ADMIN_PASSWORD).await;
    let lamp = api.create_product(&admin, "traced", 1900, 5).await;
    let buyer = api.new_user("traced").await;
    let id = lamp["id"].as_str().unwrap_or_default();
    let line = api.call(Method::PUT, &format!("/cart/items/{id}"), Some(&buyer.access), Some(&json!({ "quantity": 1 }))).await;
    assert_eq!(line.status, 200, "{}", line.text);

    // A trace id no other run uses: 32 hex characters of a digest of a unique text.
    let digest = <sha2::Sha256 as sha2::Digest>::digest(unique("trace-").as_bytes());
    let trace_id: String = digest[..16].iter().map(|byte| format!("{byte:02x}")).collect();
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = json!({ "payment_token": "tok_success" }).to_string().into_bytes();
    let authorization = format!("Bearer {}", buyer.access);
    let key = unique("traced-");
    let headers = [("authorization", authorization.as_str()), ("idempotency-key", key.as_str()), ("traceparent", traceparent.as_str())];
    let order = api.send(Method::POST, "/checkout", &headers, Some(("application/json", body))).await;
    assert_eq!(order.status, 201, "{}", order.text);

    // A path no function serves gets its problem document and its one line too, as function `unrouted`.
    let stray_trace: String = digest[16..].iter().map(|byte| format!("{byte:02x}")).collect();
    let stray_traceparent = format!("00-{stray_trace}-00f067aa0ba902b7-01");
    let stray = api.send(Method::GET, &format!("/{}", unique("no-such-path-")), &[("traceparent", stray_traceparent.as_str())], None).await;
    assert_eq!(stray.status, 404, "{}", stray.text);
    assert_eq!(stray.problem_code(), Some("not_found"), "{}", stray.text);

    let checkout_line = wait_for_line("the checkout's request line with its trace id", |line| line.contains(&trace_id) && line.contains("checkout") && line.contains("handled")).await;
    let job_line = wait_for_line("the order-events job's line with the checkout's trace id", |line| line.contains(&trace_id) && line.contains("order event handled")).await;
    println!("trace {trace_id}: checkout line `{}`; job line `{}`", checkout_line.trim(), job_line.trim());
    let stray_line = wait_for_line("the unrouted request's line with its trace id", |line| {
        json_of(line).is_some_and(|object| {
            let fields = object.get("fields").and_then(Value::as_object).unwrap_or(&object);
            line.contains(&stray_trace) && fields.get("function") == Some(&json!("unrouted")) && fields.get("status") == Some(&json!(404))
        })
    })
    .await;
    println!("trace {stray_trace}: unrouted request line `{}`", stray_line.trim());

    // The metric events of this checkout and its job are written by then (each host writes a request's metric
    // with its log line, and a job's when it settles the delivery, just after its last line).
    let started = Instant::now();
    let wanted: [(&str, Vec<(&str, Value)>); 5] = [
        ("a paid checkout request", vec![("function", json!("checkout")), ("code", json!("ok")), ("requests", json!(1))]),
        ("a checkout counted as paid", vec![("function", json!("checkout")), ("outcome", json!("paid")), ("checkouts", json!(1))]),
        ("an orders job done", vec![("queue", json!("orders")), ("outcome", json!("done")), ("jobs", json!(1))]),
        ("a cold start", vec![("cold_starts", json!(1))]),
        ("an unrouted request", vec![("function", json!("unrouted")), ("code", json!("not_found")), ("requests", json!(1))]),
    ];
    loop {
        let metrics = metrics_in(&host_log(), &format);
        let missing: Vec<&str> = wanted.iter().filter(|(_, pairs)| !metrics.iter().any(|metric| has(metric, pairs))).map(|(what, _)| *what).collect();
        if missing.is_empty() {
            assert!(metrics.iter().all(|metric| metric.get("latency_ms").is_none_or(Value::is_u64)), "a latency is not a whole number of milliseconds");
            println!("{} metric events in the host's log ({format}), every one well formed", metrics.len());
            break;
        }
        assert!(started.elapsed() < JOB_WAIT, "the host's log holds {} metric events ({format}) but none for {missing:?}", metrics.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
