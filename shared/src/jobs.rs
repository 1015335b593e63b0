//! The job dispatcher shared by every host's consumer (the local loop, the SQS function, the Queues handler):
//! it reads a delivery's envelope and decides its outcome. Hosts only map outcomes to their platform.
//!
//! A job is a JSON object `{"type": "<kind>", ...}`. A delivery that is not such an object, or whose kind no
//! handler knows, can never succeed, so it is dead-lettered at once (a permanent failure, kept for an
//! operator) instead of being retried or dropped. Job kinds (order events, privacy requests, reports) are
//! added here as the functions that consume them land. The privacy jobs (`privacy`) are produced already, onto
//! the privacy queue; nothing consumes that queue yet, so they wait there for the privacy function.

pub mod privacy;

use serde::Deserialize;

use crate::ports::{Delivery, Outcome};

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

/// Handles one delivery and says how to settle it.
pub async fn handle(delivery: &Delivery) -> Outcome {
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
