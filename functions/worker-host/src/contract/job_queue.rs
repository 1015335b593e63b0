//! Test builds only (feature `testkit`): the job queue contract on Cloudflare Queues, push side.
//!
//! Queues pushes batches to a consumer, so the pull-side suite (`shared::contract::job_queue`, on `JobInbox`)
//! cannot run here. This is its push-side twin, run through the real producer ([`CfJobQueue`] on the `JOBS`
//! binding), the real consumer (`jobs::consume`, the very code that settles production jobs) and the platform's
//! own retries and dead-lettering (`max_retries` and `dead_letter_queue` in `wrangler.toml`'s test env).
//! `POST /__test/queue-contract` sends one test job per case (kind [`KIND`], which only this build handles) and
//! answers the run id. The consumer hands each test job to [`handle`], which settles it as the job's plan says
//! and records the delivery (message id, attempt, outcome, time) in D1 through the item store; the dead-letter
//! queue's consumer records what arrives there ([`consume_dead_letters`]).
//! `GET /__test/queue-contract?run=..&max_retries=..` judges the records: 200 when every case passed, 202 while
//! a case still waits for deliveries, 500 when one failed. A case that expects "once" fails as soon as a second
//! delivery is seen; the caller polls until no case is pending and then reads the report once more after a grace
//! period, so a late duplicate is caught too. This module is never compiled into a release build.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::adapters::QueueSettings;
use shared::adapters::queues::{CfJobQueue, ConsumedMessage};
use shared::http::AppState;
use shared::ports::job_queue::MAX_JOB_BYTES;
use shared::ports::{
    Clock, Condition, Delivery, Item, ItemKey, ItemStore as _, JobQueue as _, NewJob, Outcome, Query, QueueError,
};
use worker::Env;
use worker::wasm_bindgen::JsValue;

use crate::app::Store;
use crate::config;
use crate::platform::{CryptoIds, JsClock};

/// The job kind of the contract's test jobs.
pub(crate) const KIND: &str = "test.queue_contract";
/// How long the "retry" case asks to wait before its job comes back.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// How long the "exhaust" case waits between its deliveries.
const EXHAUST_DELAY: Duration = Duration::from_secs(1);
/// How early a retried delivery may be stamped, against the requested delay (clock granularity).
const EARLY_TOLERANCE_MS: i64 = 100;
/// How long the records of a run are kept.
const RECORD_TTL_SECS: i64 = 3600;
/// The most `max_retries` a report accepts (Queues' own limit).
const MAX_RETRIES_LIMIT: u32 = 100;

/// What the consumer does with a test job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Plan {
    /// Ack on the first delivery.
    Ack,
    /// Retry after [`RETRY_DELAY`] on the first delivery, ack on the next.
    RetryOnce,
    /// Retry after [`EXHAUST_DELAY`] on every delivery.
    AlwaysRetry,
    /// Dead-letter on the first delivery (a permanent failure).
    Permanent,
}

/// A test job, as the consumer reads it.
#[derive(Debug, Deserialize)]
pub(crate) struct TestJob {
    #[serde(rename = "type")]
    kind: String,
    run: String,
    case: String,
    plan: Plan,
}

impl TestJob {
    /// The test job in `body`, or `None` when `body` is any other job.
    pub(crate) fn parse(body: &str) -> Option<Self> {
        let job: Self = serde_json::from_str(body).ok()?;
        (job.kind == KIND && well_formed(&job.run) && well_formed(&job.case)).then_some(job)
    }
}

/// Run ids and case names: 1 to 64 ASCII letters and digits (they become parts of item keys).
fn well_formed(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

fn job_body(run: &str, case: &str, plan: Plan, extra: Value) -> String {
    json!({ "type": KIND, "run": run, "case": case, "plan": plan, "extra": extra }).to_string()
}

fn partition(run: &str) -> String {
    format!("QCONTRACT#{run}")
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ack => "ack",
        Outcome::Retry { .. } => "retry",
        Outcome::DeadLetter { .. } => "dead_letter",
    }
}

/// Writes one record of a run, stamped with the time, under a fresh sort key below `prefix`.
async fn record(store: &Store, clock: &dyn Clock, run: &str, prefix: &str, mut data: Value) -> anyhow::Result<()> {
    let now = clock.now();
    if let Value::Object(fields) = &mut data {
        fields.insert("at_ms".to_owned(), Value::from(now.as_millis()));
    }
    let sort_key = format!("{prefix}#{}", shared::ports::IdGen::new_id(&CryptoIds::default()));
    let mut item = Item::new(ItemKey::new(partition(run), sort_key), 1, data);
    item.expires_at = Some(now.as_secs().saturating_add(RECORD_TTL_SECS));
    store.put(item, Condition::NotExists).await?;
    Ok(())
}

/// The store and clock a consumer records with.
pub(crate) async fn recorder(env: &Env) -> anyhow::Result<(Store, Arc<dyn Clock>)> {
    let clock: Arc<dyn Clock> = Arc::new(JsClock::default());
    let store = crate::app::store(env, Arc::clone(&clock)).await?;
    Ok((store, clock))
}

/// Settles a test job as its plan says, and records the delivery. When the record cannot be written the job
/// is retried instead (the report then shows the missing or extra delivery).
pub(crate) async fn handle(job: TestJob, delivery: &Delivery, env: &Env) -> Outcome {
    let outcome = match job.plan {
        Plan::Ack => Outcome::Ack,
        Plan::RetryOnce if delivery.attempt <= 1 => Outcome::Retry { delay: RETRY_DELAY },
        Plan::RetryOnce => Outcome::Ack,
        Plan::AlwaysRetry => Outcome::Retry { delay: EXHAUST_DELAY },
        Plan::Permanent => Outcome::DeadLetter { reason: "queue contract: a permanent failure".to_owned() },
    };
    let data = json!({
        "case": job.case,
        "message_id": delivery.message_id,
        "attempt": delivery.attempt,
        "outcome": outcome_name(&outcome),
        "body": delivery.body,
    });
    let written = match recorder(env).await {
        Ok((store, clock)) => record(&store, clock.as_ref(), &job.run, &format!("D#{}", job.case), data).await,
        Err(error) => Err(error),
    };
    match written {
        Ok(()) => outcome,
        Err(error) => {
            tracing::error!(error = ?error, "queue contract: failed to record a delivery; retrying it");
            Outcome::Retry { delay: Duration::from_secs(1) }
        }
    }
}

/// Records every test job that reaches the dead-letter queue, then acks it; acks (with a warning) any other
/// message, since only test runs consume this queue.
///
/// # Errors
/// A JavaScript error when a message could not be settled (the platform delivers the batch again).
pub(crate) async fn consume_dead_letters(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    let mut unsettled = 0_usize;
    for message in messages {
        let body = message.text();
        let settled = match body.as_deref().and_then(TestJob::parse) {
            Some(job) => {
                let data = json!({
                    "case": job.case,
                    "message_id": message.id(),
                    "attempts": message.attempts(),
                    "body": body,
                });
                let written = match recorder(env).await {
                    Ok((store, clock)) => record(&store, clock.as_ref(), &job.run, &format!("L#{}", job.case), data).await,
                    Err(error) => Err(error),
                };
                match written {
                    Ok(()) => message.ack(),
                    Err(error) => {
                        tracing::error!(error = ?error, "queue contract: failed to record a dead letter; retrying it");
                        message.retry(Duration::from_secs(1))
                    }
                }
            }
            None => {
                let message_id = message.id();
                tracing::warn!(message_id = message_id.as_deref().unwrap_or("unknown"), "a dead letter that is not a queue contract job; acked");
                message.ack()
            }
        };
        if let Err(error) = settled {
            tracing::error!(error = ?error, "failed to settle a dead letter");
            unsettled += 1;
        }
    }
    if unsettled > 0 {
        return Err(JsValue::from_str(&format!("{unsettled} dead letters could not be settled")));
    }
    Ok(())
}

/// The routes' state: the app's state and the producer on the jobs queue (`None` without the binding).
#[derive(Clone)]
pub(crate) struct QueueContract {
    state: AppState<Store>,
    queue: Option<CfJobQueue<Store>>,
}

impl QueueContract {
    /// The contract's state on the `JOBS` binding, deduplicating through the app's store.
    pub(crate) fn new(state: AppState<Store>, env: &Env) -> Self {
        let queue = env.queue(config::JOBS_BINDING).ok().map(|queue| {
            CfJobQueue::new(queue, "jobs", state.store.clone(), Arc::clone(&state.clock), QueueSettings::default())
        });
        Self { state, queue }
    }
}

fn describe(result: &Result<(), QueueError>) -> String {
    match result {
        Ok(()) => "accepted".to_owned(),
        Err(QueueError::Invalid(reason)) => format!("invalid: {reason}"),
        Err(other) => format!("error: {other}"),
    }
}

fn internal(what: &str, error: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("{what}: {error}") }))).into_response()
}

/// Sends the run's jobs: the refused ones first, then one job per case. Answers 202 with the run id.
async fn start(State(contract): State<QueueContract>) -> Response {
    let Some(queue) = contract.queue.as_ref() else {
        return internal("no queue", format!("the binding {} must be set", config::JOBS_BINDING));
    };
    let store = &contract.state.store;
    let clock = contract.state.clock.as_ref();
    let run = contract.state.ids.new_id();

    let padding = "x".repeat(MAX_JOB_BYTES);
    let oversized = queue.send(NewJob { body: job_body(&run, "bad", Plan::Ack, Value::from(padding)), dedup_id: None }).await;
    let bad_id = queue.send(NewJob::deduplicated(job_body(&run, "bad", Plan::Ack, Value::Null), "has space")).await;
    let refused = json!({
        "oversized": describe(&oversized),
        "malformed_dedup_id": describe(&bad_id),
        "both_invalid": matches!(oversized, Err(QueueError::Invalid(_))) && matches!(bad_id, Err(QueueError::Invalid(_))),
    });
    if let Err(error) = record(store, clock, &run, "R#bad", refused).await {
        return internal("failed to record the refused sends", error);
    }

    let mut jobs: Vec<(&str, NewJob)> = [
        ("ack", Plan::Ack),
        ("retry", Plan::RetryOnce),
        ("exhaust", Plan::AlwaysRetry),
        ("permanent", Plan::Permanent),
    ]
    .into_iter()
    .map(|(case, plan)| (case, NewJob { body: job_body(&run, case, plan, Value::Null), dedup_id: None }))
    .collect();
    let copy_id = format!("{run}-copy");
    jobs.push(("dedup", NewJob::deduplicated(job_body(&run, "dedup", Plan::Ack, json!("copy 1")), copy_id.clone())));
    jobs.push(("dedup", NewJob::deduplicated(job_body(&run, "dedup", Plan::Ack, json!("copy 2")), copy_id)));
    jobs.push(("dedup", NewJob::deduplicated(job_body(&run, "dedup", Plan::Ack, json!("other")), format!("{run}-other"))));
    for (case, job) in jobs {
        // Recorded before the send, so a delivery never arrives before the record of what was sent.
        if let Err(error) = record(store, clock, &run, &format!("S#{case}"), json!({ "case": case, "body": job.body })).await {
            return internal("failed to record a sent job", error);
        }
        if let Err(error) = queue.send(job).await {
            return internal("failed to send a job", error);
        }
    }
    (StatusCode::ACCEPTED, Json(json!({ "run": run }))).into_response()
}

/// `run` and `max_retries` from a report's query string; `None` when either is missing or malformed.
fn report_params(query: Option<&str>) -> Option<(String, u32)> {
    let mut run = None;
    let mut max_retries = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "run" => run = Some(value.into_owned()),
            "max_retries" => max_retries = value.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (run, max_retries) = (run?, max_retries?);
    (well_formed(&run) && max_retries <= MAX_RETRIES_LIMIT).then_some((run, max_retries))
}

/// One recorded delivery or dead letter.
#[derive(Debug, Deserialize)]
struct Seen {
    message_id: Option<String>,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    outcome: String,
    body: Option<String>,
    at_ms: i64,
}

#[derive(Default)]
struct Records {
    sent: BTreeMap<String, Vec<String>>,
    deliveries: BTreeMap<String, Vec<Seen>>,
    dead: BTreeMap<String, Vec<Seen>>,
    refused: Option<Value>,
}

impl Records {
    fn of<'a>(map: &'a BTreeMap<String, Vec<Seen>>, case: &str) -> &'a [Seen] {
        map.get(case).map_or(&[], Vec::as_slice)
    }
}

async fn load(store: &Store, run: &str) -> anyhow::Result<Records> {
    let mut records = Records::default();
    let mut after = None;
    loop {
        let page = store.query(&Query::new(partition(run), "", 1000).after(after)).await?;
        for item in page.items {
            let case = item.data.get("case").and_then(Value::as_str).unwrap_or_default().to_owned();
            match item.key.sk.split('#').next() {
                Some("S") => {
                    let body = item.data.get("body").and_then(Value::as_str).unwrap_or_default().to_owned();
                    records.sent.entry(case).or_default().push(body);
                }
                Some("D") => records.deliveries.entry(case).or_default().push(serde_json::from_value(item.data)?),
                Some("L") => records.dead.entry(case).or_default().push(serde_json::from_value(item.data)?),
                Some("R") => records.refused = Some(item.data),
                _ => {}
            }
        }
        after = page.next;
        if after.is_none() {
            return Ok(records);
        }
    }
}

enum Verdict {
    Pass,
    Pending(String),
    Fail(String),
}

macro_rules! fail_unless {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Verdict::Fail(format!($($message)+));
        }
    };
}

fn sent_body<'a>(records: &'a Records, case: &str) -> &'a str {
    records.sent.get(case).and_then(|bodies| bodies.first()).map_or("", String::as_str)
}

fn acked_once(records: &Records) -> Verdict {
    let delivered = Records::of(&records.deliveries, "ack");
    fail_unless!(delivered.len() <= 1, "delivered {} times: {delivered:?}", delivered.len());
    fail_unless!(Records::of(&records.dead, "ack").is_empty(), "an acked job reached the dead-letter queue");
    let Some(first) = delivered.first() else { return Verdict::Pending("not delivered yet".to_owned()) };
    fail_unless!(first.attempt == 1, "the first delivery said attempt {}", first.attempt);
    fail_unless!(first.outcome == "ack", "the handler's outcome was {}", first.outcome);
    fail_unless!(first.body.as_deref() == Some(sent_body(records, "ack")), "the delivered body changed: {:?}", first.body);
    Verdict::Pass
}

fn retried_after_the_delay(records: &Records) -> Verdict {
    let mut delivered: Vec<&Seen> = Records::of(&records.deliveries, "retry").iter().collect();
    delivered.sort_by_key(|seen| (seen.attempt, seen.at_ms));
    fail_unless!(delivered.len() <= 2, "delivered {} times: {delivered:?}", delivered.len());
    fail_unless!(Records::of(&records.dead, "retry").is_empty(), "a job acked on its retry reached the dead-letter queue");
    let [first, second] = delivered.as_slice() else {
        return Verdict::Pending(format!("{} of 2 deliveries", delivered.len()));
    };
    fail_unless!(first.message_id == second.message_id, "the retry came with another message id: {delivered:?}");
    fail_unless!(
        (first.attempt, second.attempt) == (1, 2),
        "attempts were {} then {}",
        first.attempt,
        second.attempt
    );
    fail_unless!(first.outcome == "retry" && second.outcome == "ack", "outcomes were {} then {}", first.outcome, second.outcome);
    let delay_ms = i64::try_from(RETRY_DELAY.as_millis()).unwrap_or(i64::MAX);
    let gap = second.at_ms - first.at_ms;
    fail_unless!(gap >= delay_ms - EARLY_TOLERANCE_MS, "the retry came back after {gap} ms, before its {delay_ms} ms delay");
    Verdict::Pass
}

fn dead_lettered_after_max_retries(records: &Records, max_retries: u32) -> Verdict {
    let expected = usize::try_from(max_retries).unwrap_or(usize::MAX).saturating_add(1);
    let mut delivered: Vec<&Seen> = Records::of(&records.deliveries, "exhaust").iter().collect();
    delivered.sort_by_key(|seen| (seen.attempt, seen.at_ms));
    let dead = Records::of(&records.dead, "exhaust");
    fail_unless!(
        delivered.len() <= expected,
        "delivered {} times, more than max_retries + 1 = {expected}",
        delivered.len()
    );
    fail_unless!(dead.len() <= 1, "dead-lettered {} times", dead.len());
    if delivered.len() < expected || dead.is_empty() {
        return Verdict::Pending(format!("{} of {expected} deliveries, {} dead letters", delivered.len(), dead.len()));
    }
    let attempts: Vec<u32> = delivered.iter().map(|seen| seen.attempt).collect();
    let wanted: Vec<u32> = (1..=max_retries.saturating_add(1)).collect();
    fail_unless!(attempts == wanted, "attempts were {attempts:?}, expected {wanted:?}");
    fail_unless!(
        delivered.iter().all(|seen| seen.message_id == delivered[0].message_id && seen.outcome == "retry"),
        "deliveries: {delivered:?}"
    );
    let last_at = delivered.iter().map(|seen| seen.at_ms).max().unwrap_or_default();
    fail_unless!(dead[0].at_ms >= last_at, "the dead letter arrived before the last delivery");
    fail_unless!(dead[0].body.as_deref() == Some(sent_body(records, "exhaust")), "the dead letter's body changed: {:?}", dead[0].body);
    Verdict::Pass
}

fn dead_lettered_on_request(records: &Records) -> Verdict {
    let delivered = Records::of(&records.deliveries, "permanent");
    let dead = Records::of(&records.dead, "permanent");
    fail_unless!(delivered.len() <= 1, "a job dead-lettered on request was delivered {} times", delivered.len());
    fail_unless!(dead.len() <= 1, "dead-lettered {} times", dead.len());
    let (Some(first), Some(letter)) = (delivered.first(), dead.first()) else {
        return Verdict::Pending(format!("{} deliveries, {} dead letters", delivered.len(), dead.len()));
    };
    fail_unless!(first.attempt == 1 && first.outcome == "dead_letter", "the delivery: {first:?}");
    fail_unless!(letter.body.as_deref() == Some(sent_body(records, "permanent")), "the dead letter's body changed: {:?}", letter.body);
    Verdict::Pass
}

fn duplicates_delivered_once(records: &Records) -> Verdict {
    let delivered = Records::of(&records.deliveries, "dedup");
    fail_unless!(Records::of(&records.dead, "dedup").is_empty(), "a deduplicated job reached the dead-letter queue");
    let sent = records.sent.get("dedup").map_or(&[][..], Vec::as_slice);
    let [copy_1, copy_2, other] = sent else {
        return Verdict::Fail(format!("{} dedup jobs were recorded as sent, not 3", sent.len()));
    };
    let count = |body: &String| delivered.iter().filter(|seen| seen.body.as_ref() == Some(body)).count();
    fail_unless!(count(copy_2) == 0, "the second send with the same deduplication id was delivered");
    fail_unless!(count(copy_1) <= 1 && count(other) <= 1, "a deduplicated job was delivered twice: {delivered:?}");
    fail_unless!(delivered.len() <= 2, "unexpected deliveries: {delivered:?}");
    if count(copy_1) == 0 || count(other) == 0 {
        return Verdict::Pending(format!("{} of 2 deliveries", delivered.len()));
    }
    Verdict::Pass
}

fn bad_jobs_refused(records: &Records) -> Verdict {
    let Some(refused) = &records.refused else { return Verdict::Fail("the refused sends were not recorded".to_owned()) };
    fail_unless!(refused.get("both_invalid") == Some(&Value::Bool(true)), "send answered {refused}");
    let delivered = Records::of(&records.deliveries, "bad");
    fail_unless!(delivered.is_empty(), "a refused job was delivered: {delivered:?}");
    Verdict::Pass
}

#[derive(Serialize)]
struct CaseView {
    name: &'static str,
    ok: bool,
    pending: bool,
    error: Option<String>,
}

/// Judges a run from its records (see the module's doc for the statuses).
async fn report(State(contract): State<QueueContract>, RawQuery(query): RawQuery) -> Response {
    let Some((run, max_retries)) = report_params(query.as_deref()) else {
        let error = "the query needs run (a run id) and max_retries (0 to 100)";
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    };
    let records = match load(&contract.state.store, &run).await {
        Ok(records) => records,
        Err(error) => return internal("failed to read the run's records", error),
    };
    if records.sent.is_empty() {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": "no such run" }))).into_response();
    }
    let verdicts = [
        ("a sent job is delivered once and acked", acked_once(&records)),
        ("a retried job comes back after its delay with the next attempt", retried_after_the_delay(&records)),
        ("a job that keeps failing is dead-lettered after max_retries", dead_lettered_after_max_retries(&records, max_retries)),
        ("a job marked permanent is dead-lettered at once", dead_lettered_on_request(&records)),
        ("two sends with one deduplication id are delivered once", duplicates_delivered_once(&records)),
        ("bad jobs are refused by send", bad_jobs_refused(&records)),
    ];
    let cases: Vec<CaseView> = verdicts
        .into_iter()
        .map(|(name, verdict)| match verdict {
            Verdict::Pass => CaseView { name, ok: true, pending: false, error: None },
            Verdict::Pending(waiting) => CaseView { name, ok: false, pending: true, error: Some(waiting) },
            Verdict::Fail(error) => CaseView { name, ok: false, pending: false, error: Some(error) },
        })
        .collect();
    let passed = cases.iter().filter(|case| case.ok).count();
    let pending = cases.iter().filter(|case| case.pending).count();
    let failed = cases.len() - passed - pending;
    let status = match (failed, pending) {
        (0, 0) => StatusCode::OK,
        (0, _) => StatusCode::ACCEPTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = json!({
        "suite": "job_queue (push: Cloudflare Queues)",
        "run": run,
        "complete": pending == 0,
        "passed": passed,
        "failed": failed,
        "pending": pending,
        "cases": cases,
    });
    (status, Json(body)).into_response()
}

/// The queue contract's routes.
pub(crate) fn router(contract: QueueContract) -> Router {
    Router::new().route("/__test/queue-contract", post(start).get(report)).with_state(contract)
}
