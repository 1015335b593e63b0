//! The local host's outbox relay: publishes the events that use cases committed to the store's outbox and
//! that have not reached their queue yet (the request's own publication failed, or the process stopped in
//! between). Events are normally published right after their commit; this loop is the guarantee, not the
//! fast path, so a short fixed interval is enough.

use std::time::Duration;

use shared::outbox::{Outbox, Publisher};
use shared::ports::ItemStore;
use tokio::sync::watch;

/// The most events relayed per run.
const MAX_PER_RUN: usize = 100;

/// Relays every `interval` until `stop` turns true.
pub async fn run<S: ItemStore>(outbox: Outbox<S>, publisher: Publisher, interval: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let more = match outbox.relay(publisher.as_ref(), MAX_PER_RUN).await {
            Ok(report) => {
                if report.published > 0 || report.failed > 0 {
                    tracing::info!(published = report.published, failed = report.failed, "outbox relayed");
                }
                report.more && report.failed == 0
            }
            Err(error) => {
                tracing::error!(error = ?error, "failed to read the outbox");
                false
            }
        };
        if !more {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
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
    use shared::jobs::privacy::PrivacyJob;
    use shared::outbox::Topics;
    use shared::domain::UserId;
    use shared::ports::Clock;

    use super::*;

    #[tokio::test]
    async fn the_loop_moves_committed_events_from_the_outbox_to_their_queue() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let db = SqliteDb::open(&dir.path().join("relay.db"), clock.clone()).unwrap_or_else(|error| panic!("{error:#}"));
        let store = db.item_store();
        let privacy = db.job_queue("privacy", QueueSettings::default());
        let user_id = UserId::parse("u-relay").unwrap_or_else(|error| panic!("{error}"));
        let event = PrivacyJob::Erase { user_id, requested_at: clock.now() }.event().unwrap_or_else(|error| panic!("{error}"));
        let write = event.write().unwrap_or_else(|error| panic!("{error}"));
        store.transact(vec![write]).await.unwrap_or_else(|error| panic!("{error}"));

        let (stop_tx, stop_rx) = watch::channel(false);
        let publisher: Publisher = Arc::new(Topics { privacy: privacy.clone(), orders: Some(db.job_queue("orders", QueueSettings::default())) });
        let relay = tokio::spawn(run(Outbox::new(store.clone()), publisher, Duration::from_millis(20), stop_rx));
        let mut waiting = Vec::new();
        for _ in 0..200 {
            waiting = privacy.waiting(10).unwrap_or_default();
            if !waiting.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop_tx.send(true);
        tokio::time::timeout(Duration::from_secs(5), relay).await.unwrap_or_else(|_| panic!("the loop did not stop")).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(waiting.iter().map(|job| job.body.as_str()).collect::<Vec<_>>(), [event.body.as_str()]);
        let left = Outbox::new(store).pending(10).await.unwrap_or_else(|error| panic!("{error}")).0;
        assert!(left.is_empty(), "a relayed event stayed in the outbox");
    }
}
