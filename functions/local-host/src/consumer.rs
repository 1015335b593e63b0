//! The local host's job consumer loop: receives jobs from the embedded queue, hands each to
//! `shared::jobs::handle`, and settles it with the outcome. Nothing is dropped: a job that keeps failing
//! ends in the dead-letter queue after the queue's maximum attempts.

use std::time::Duration;

use shared::ports::{JobInbox, Outcome};
use tokio::sync::watch;

/// The most jobs taken per receive.
const BATCH: usize = 10;

/// Consumes `queue` until `stop` turns true, polling every `idle` when the queue is empty.
pub async fn run<Q: JobInbox>(queue: Q, idle: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let handled = match queue.receive(BATCH).await {
            Ok(deliveries) => {
                let count = deliveries.len();
                for delivery in deliveries {
                    let outcome = shared::jobs::handle(&delivery).await;
                    if let Outcome::DeadLetter { reason } = &outcome {
                        tracing::warn!(message_id = %delivery.message_id, reason = %reason, "job dead-lettered");
                    }
                    if let Err(error) = queue.settle(&delivery, outcome).await {
                        tracing::error!(error = ?error, message_id = %delivery.message_id, "failed to settle a job");
                    }
                }
                count
            }
            Err(error) => {
                tracing::error!(error = ?error, "failed to receive jobs");
                0
            }
        };
        if handled == 0 {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
