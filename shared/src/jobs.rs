//! The job dispatcher shared by every host's consumer (the local loop, the SQS function, the Queues handler):
//! it reads a delivery's envelope and decides its outcome. Hosts only map outcomes to their platform.
//!
//! A job is a JSON object `{"type": "<kind>", ...}`. A delivery that is not such an object, or whose kind no
//! handler knows, can never succeed, so it is dead-lettered at once (a permanent failure, kept for an
//! operator) instead of being retried or dropped. Job kinds (order events, privacy requests, reports) are
//! added here as the functions that produce them land.

use serde::Deserialize;

use crate::ports::{Delivery, Outcome};

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
}

/// Handles one delivery and says how to settle it.
pub async fn handle(delivery: &Delivery) -> Outcome {
    let envelope: Envelope = match serde_json::from_str(&delivery.body) {
        Ok(envelope) => envelope,
        Err(_) => return Outcome::DeadLetter { reason: "not a job envelope".to_owned() },
    };
    let kind: String = envelope.kind.chars().take(64).collect();
    Outcome::DeadLetter { reason: format!("no handler for job type '{kind}'") }
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
}
