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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shared::adapters::QueueSettings;
    use shared::adapters::sqlite::SqliteDb;
    use shared::adapters::system::SystemClock;
    use shared::ports::{JobQueue, NewJob};

    use super::*;

    #[tokio::test]
    async fn the_loop_dead_letters_jobs_no_handler_can_take_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let db = SqliteDb::open(&dir.path().join("jobs.db"), Arc::new(SystemClock)).unwrap_or_else(|error| panic!("{error:#}"));
        let queue = db.job_queue("jobs", QueueSettings::default());
        for body in ["not json", "{\"type\":\"mystery\"}"] {
            queue.send(NewJob { body: body.to_owned(), dedup_id: None }).await.unwrap_or_else(|error| panic!("{error}"));
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let consumer = tokio::spawn(run(queue.clone(), Duration::from_millis(20), stop_rx));
        let mut dead = Vec::new();
        for _ in 0..200 {
            dead = queue.dead_letters(10).await.unwrap_or_default();
            if dead.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop_tx.send(true);
        tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap_or_else(|_| panic!("the loop did not stop")).unwrap_or_else(|error| panic!("{error}"));
        let bodies: Vec<&str> = dead.iter().map(|delivery| delivery.body.as_str()).collect();
        assert_eq!(bodies, ["not json", "{\"type\":\"mystery\"}"]);
        assert!(queue.receive(10).await.unwrap_or_default().is_empty(), "a dead-lettered job is still deliverable");
    }
}
