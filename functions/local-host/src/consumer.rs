//! The local host's queue consumer loop: receives jobs from an embedded queue, hands each to its handler
//! (`shared::jobs`), and settles it with the outcome. Nothing is dropped: a job that keeps failing ends in the
//! dead-letter queue after the queue's maximum attempts, and a job whose handler crashed is delivered again
//! after the visibility timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use shared::jobs::CrashAfter;
use shared::ports::{Delivery, JobInbox, Outcome};
use tokio::sync::watch;

/// The most jobs taken per receive.
const BATCH: usize = 10;

/// Consumes `queue` with `handle` until `stop` turns true, polling every `idle` when the queue is empty.
pub async fn run<Q, H, F>(queue: Q, handle: H, crash: Arc<CrashAfter>, idle: Duration, mut stop: watch::Receiver<bool>)
where
    Q: JobInbox,
    H: Fn(Delivery) -> F,
    F: Future<Output = Outcome>,
{
    while !*stop.borrow() {
        let handled = match queue.receive(BATCH).await {
            Ok(deliveries) => {
                let count = deliveries.len();
                let mut outcomes = Vec::with_capacity(count);
                for delivery in deliveries {
                    let outcome = handle(delivery.clone()).await;
                    crash.handled_one();
                    outcomes.push((delivery, outcome));
                }
                for (delivery, outcome) in outcomes {
                    if matches!(outcome, Outcome::Retry { .. }) && delivery.attempt >= queue_max_attempts() {
                        tracing::error!(message_id = %delivery.message_id, attempt = delivery.attempt, "job failed on its last attempt: it goes to the dead-letter queue");
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

/// The attempts every local queue allows (`QueueSettings::default`).
fn queue_max_attempts() -> u32 {
    shared::adapters::QueueSettings::default().max_attempts
}

#[cfg(test)]
mod tests {
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
        let handler = |delivery: Delivery| async move { shared::jobs::handle(&delivery).await };
        let consumer = tokio::spawn(run(queue.clone(), handler, Arc::new(CrashAfter::default()), Duration::from_millis(20), stop_rx));
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
