//! The jobs: what every host's consumers and schedules call (the local loops, the SQS and EventBridge Lambda
//! functions, the Worker's queue and cron handlers). Hosts only map outcomes to their platform.
//!
//! A queued job is a JSON object `{"type": "<kind>", ...}`. Each queue has its consumer: [`Jobs::orders`]
//! (`order.created`, `order.cancelled`: the order-events job in [`orders`]), [`Jobs::privacy`]
//! (`privacy.export`, `privacy.erase`: [`privacy`]), and [`handle`] for the generic jobs queue. A delivery
//! that is not such an object, or whose kind its queue's consumer does not know, can never succeed, so it is
//! dead-lettered at once (kept for an operator) instead of being retried or dropped; a job that fails for a
//! reason that may pass (the store or the mail carrier down) is retried with a growing delay, and the queue
//! moves it to its dead-letter queue once its attempts are spent (invariant 4). Every failure is logged with
//! the event's id, its attempt and the reason. The daily sales report ([`reports`]) runs on a schedule.

pub mod orders;
pub mod privacy;
pub mod reports;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::mail::{MailSettings, Outgoing, OutgoingError};
use crate::ports::item_store::{ItemStore, StoreError};
use crate::ports::mailer::{MailError, Mailer};
use crate::ports::{Clock, Delivery, Outcome};

/// The longest a failed job waits before its next attempt.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// It can never succeed (malformed, refused for good): dead-letter it now.
    #[error("{0}")]
    Permanent(String),
    /// It may succeed later: retry it.
    #[error(transparent)]
    Transient(anyhow::Error),
}

impl JobError {
    /// A store failure: always worth another attempt.
    pub fn store(error: StoreError) -> Self {
        JobError::Transient(anyhow::Error::new(error).context("store call failed"))
    }

    /// A mail that could not be made or sent.
    pub fn mail(error: MailError) -> Self {
        if error.is_transient() { JobError::Transient(anyhow::Error::new(error)) } else { JobError::Permanent(error.to_string()) }
    }

    /// A mail that could not be sent once.
    pub fn outgoing(error: OutgoingError) -> Self {
        match error {
            OutgoingError::Mail(error) => Self::mail(error),
            OutgoingError::Store(error) => Self::store(error),
        }
    }
}

/// The delay before attempt `attempt + 1` of a failed job: 2, 4, 8 … seconds, at most five minutes.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs(1_u64 << attempt.clamp(1, 16)).min(MAX_RETRY_DELAY)
}

/// The outcome of a job's result, logged with the delivery's id, attempt and reason when it failed, and
/// counted in the job metric (`crate::telemetry::job`).
pub fn outcome(queue: &str, delivery: &Delivery, result: Result<(), JobError>) -> Outcome {
    let outcome = settle(queue, delivery, result);
    crate::telemetry::job(queue, outcome_name(&outcome));
    outcome
}

/// The job metric's name of an outcome.
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ack => "done",
        Outcome::Retry { .. } => "retried",
        Outcome::DeadLetter { .. } => "dead_lettered",
    }
}

fn settle(queue: &str, delivery: &Delivery, result: Result<(), JobError>) -> Outcome {
    let event_id = event_id_of(&delivery.body);
    match result {
        Ok(()) => Outcome::Ack,
        Err(JobError::Permanent(reason)) => {
            tracing::error!(queue, event_id = %event_id, message_id = %delivery.message_id, attempt = delivery.attempt, reason = %reason, "job dead-lettered: it can never succeed");
            Outcome::DeadLetter { reason }
        }
        Err(JobError::Transient(error)) => {
            tracing::warn!(queue, event_id = %event_id, message_id = %delivery.message_id, attempt = delivery.attempt, reason = %format!("{error:#}"), "job failed; it is retried, and dead-lettered once its attempts are spent");
            Outcome::Retry { delay: retry_delay(delivery.attempt) }
        }
    }
}

/// The `event_id` (or, for jobs without one, the `type`) of a job body, for logs; never personal data.
fn event_id_of(body: &str) -> String {
    #[derive(Deserialize)]
    struct Ids {
        event_id: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        user_id: Option<String>,
        requested_at: Option<i64>,
    }
    let Ok(ids) = serde_json::from_str::<Ids>(body) else { return "(not a job)".to_owned() };
    let id = match (ids.event_id, ids.kind, ids.user_id, ids.requested_at) {
        (Some(id), ..) => id,
        (None, Some(kind), Some(user), Some(at)) if kind == "privacy.export" => format!("{kind}.{user}.{at}"),
        (None, Some(kind), Some(user), _) => format!("{kind}.{user}"),
        (None, Some(kind), ..) => kind,
        _ => "(no id)".to_owned(),
    };
    id.chars().take(160).collect()
}

/// A test-only fault of the native hosts' consumers: after this many handled deliveries, before the batch is
/// settled, the process exits at once (status 70), as a crash in the middle of a batch would, so the batch is
/// delivered again. Hosts build it from their configuration only in debug builds; release builds never crash.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default)]
pub struct CrashAfter(Option<std::sync::atomic::AtomicU32>);

#[cfg(not(target_arch = "wasm32"))]
impl CrashAfter {
    /// Never crash (a `const`, for statics).
    pub const fn never() -> Self {
        Self(None)
    }

    /// Crash after `jobs` handled deliveries, or never.
    pub fn new(jobs: Option<u32>) -> Self {
        Self(jobs.map(std::sync::atomic::AtomicU32::new))
    }

    /// Counts one handled delivery, and exits the process when it was the last one allowed.
    pub fn handled_one(&self) {
        let Some(left) = &self.0 else { return };
        if left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            tracing::error!("test fault: the consumer crashes now, in the middle of its batch, before settling it");
            std::process::exit(70);
        }
    }
}

/// Every queue consumer and scheduled job of a host, built once per instance.
#[derive(Clone)]
pub struct Jobs<S> {
    orders: orders::OrderEvents<S>,
    privacy: privacy::PrivacyJobs<S>,
    reports: reports::SalesReports<S>,
}

impl<S: ItemStore + Clone> Jobs<S> {
    /// The jobs on `store`, mailing through `mailer` with `settings`.
    pub fn new(store: S, mailer: Arc<dyn Mailer>, clock: Arc<dyn Clock>, settings: MailSettings) -> Self {
        let outgoing = Outgoing::new(store.clone(), mailer, clock.clone());
        Self {
            orders: orders::OrderEvents::new(store.clone(), outgoing.clone(), settings.clone(), clock.clone()),
            privacy: privacy::PrivacyJobs::new(store.clone(), outgoing.clone(), settings.clone(), clock.clone()),
            reports: reports::SalesReports::new(store, outgoing, settings, clock),
        }
    }

    /// These jobs with the order-events job's test-only poison fault (see
    /// [`orders::OrderEvents::with_poison_prefix`]).
    #[must_use]
    pub fn with_poison_prefix(mut self, prefix: Option<String>) -> Self {
        self.orders = self.orders.with_poison_prefix(prefix);
        self
    }

    /// The orders queue's consumer.
    pub async fn orders(&self, delivery: &Delivery) -> Outcome {
        outcome("orders", delivery, self.orders.handle(&delivery.body).await)
    }

    /// The privacy queue's consumer.
    pub async fn privacy(&self, delivery: &Delivery) -> Outcome {
        outcome("privacy", delivery, self.privacy.handle(&delivery.body).await)
    }

    /// The daily sales report job: closes yesterday's report (UTC) and mails it to the admins, once.
    ///
    /// # Errors
    /// [`JobError`] when the store or the carrier fails (the next run, or a retry, finishes it).
    pub async fn sales_report(&self) -> Result<reports::ReportRun, JobError> {
        self.reports.close_yesterday().await
    }

    /// The sales figures, for `GET /reports/sales`.
    pub fn sales(&self) -> &reports::SalesReports<S> {
        &self.reports
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    /// The outcome a [`TESTKIT_KIND`] job asks for; ignored by every other kind.
    #[cfg(feature = "testkit")]
    #[serde(default)]
    outcome: Option<String>,
}

/// A job kind that exists only in builds with the `testkit` feature (never in a default or deployed build):
/// `{"type": "testkit.outcome", "outcome": "ack" | "retry" | "dead-letter"}` ends with the outcome it names,
/// so hosts' consumers can be tested end to end before any production job kind can succeed.
#[cfg(feature = "testkit")]
pub const TESTKIT_KIND: &str = "testkit.outcome";

/// Handles one delivery of the generic jobs queue and says how to settle it, counted in the job metric.
pub async fn handle(delivery: &Delivery) -> Outcome {
    let outcome = generic(delivery);
    crate::telemetry::job("jobs", outcome_name(&outcome));
    outcome
}

fn generic(delivery: &Delivery) -> Outcome {
    let envelope: Envelope = match serde_json::from_str(&delivery.body) {
        Ok(envelope) => envelope,
        Err(_) => return Outcome::DeadLetter { reason: "not a job envelope".to_owned() },
    };
    #[cfg(feature = "testkit")]
    if envelope.kind == TESTKIT_KIND {
        return testkit_outcome(envelope.outcome.as_deref());
    }
    let kind: String = envelope.kind.chars().take(64).collect();
    Outcome::DeadLetter { reason: format!("no handler for job type '{kind}'") }
}

#[cfg(feature = "testkit")]
fn testkit_outcome(outcome: Option<&str>) -> Outcome {
    match outcome {
        Some("ack") => Outcome::Ack,
        Some("retry") => Outcome::Retry { delay: std::time::Duration::from_secs(1) },
        Some("dead-letter") => Outcome::DeadLetter { reason: "the test job asked to be dead-lettered".to_owned() },
        _ => Outcome::DeadLetter { reason: "a test job without a known outcome".to_owned() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body: &str) -> Delivery {
        Delivery { message_id: "m1".to_owned(), body: body.to_owned(), attempt: 1, receipt: "r1".to_owned() }
    }

    #[tokio::test]
    async fn malformed_and_unknown_jobs_are_dead_lettered_not_retried() {
        assert_eq!(handle(&delivery("not json")).await, Outcome::DeadLetter { reason: "not a job envelope".to_owned() });
        assert_eq!(
            handle(&delivery("{\"type\":\"mystery\"}")).await,
            Outcome::DeadLetter { reason: "no handler for job type 'mystery'".to_owned() }
        );
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn a_test_job_ends_with_the_outcome_its_body_names() {
        let job = |outcome: &str| delivery(&format!("{{\"type\":\"{TESTKIT_KIND}\",\"outcome\":\"{outcome}\"}}"));
        assert_eq!(handle(&job("ack")).await, Outcome::Ack);
        assert!(matches!(handle(&job("retry")).await, Outcome::Retry { .. }));
        assert!(matches!(handle(&job("dead-letter")).await, Outcome::DeadLetter { .. }));
        assert!(matches!(handle(&job("explode")).await, Outcome::DeadLetter { .. }));
    }
}

#[cfg(test)]
mod flow_tests;
