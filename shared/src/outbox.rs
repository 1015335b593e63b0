//! The transactional outbox: how a change in the store and the job it starts are committed together, and how
//! those jobs reach their queues.
//!
//! A use case that must start a job writes an [`Event`] into the store's outbox in the same transaction as the
//! change itself ([`Event::write`]), so either both happen or neither does: a crash between "commit" and "send"
//! cannot lose the job, and a failed commit cannot send one. Right after the commit the host publishes the event
//! ([`Outbox::publish`]); whatever is still in the outbox later (the queue was down, the process died) is
//! published by the relay ([`Outbox::relay`]), which each host runs on a schedule: the local host's background
//! loop, the Worker's cron trigger and the `outbox-relay` Lambda function.
//!
//! Delivery is at least once. An event is deleted from the outbox only after its queue accepted it, and it is
//! sent with its id as the deduplication id, so a second send inside the queue's deduplication window (five
//! minutes or more) is dropped by the queue; past the window, consumers' idempotency absorbs it.
//!
//! Layout in the store: partition `OUTBOX`, sort key `<commit time, 20-digit milliseconds>#<event id>`, so the
//! relay reads the oldest first. This module owns no rule about what an event means: the use cases decide what
//! to write, the consumers what to do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, Query, StoreError, Write};
use crate::ports::job_queue::{JobQueue, NewJob, QueueError};
use crate::ports::Timestamp;

/// The partition holding the events not yet published.
pub const OUTBOX_PK: &str = "OUTBOX";
/// The most events one relay run reads from the store per query.
const RELAY_PAGE: usize = 100;

/// The queue an event is published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    /// Account data export and erasure requests, for the privacy job.
    Privacy,
    /// `order.created` and `order.cancelled`, for the order-events job.
    Orders,
}

impl Topic {
    /// The topic's name in logs and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Privacy => "privacy",
            Topic::Orders => "orders",
        }
    }
}

/// What is wrong with an event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The id is not a valid deduplication id, or the body is over the queue's limit.
    #[error(transparent)]
    Invalid(#[from] QueueError),
    /// The body could not be encoded.
    #[error("failed to encode an event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A job to start once the change that asks for it has committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's id: unique per job, the same on every publication of it (the queue's deduplication id).
    pub id: String,
    /// Where it goes.
    pub topic: Topic,
    /// The job's JSON document.
    pub body: String,
    /// When the change committed.
    pub committed_at: Timestamp,
}

impl Event {
    /// An event carrying `job` as its JSON body.
    ///
    /// # Errors
    /// [`EventError`] when the id is not a valid deduplication id or the body breaks the queue's limits.
    pub fn new(topic: Topic, id: impl Into<String>, job: &impl Serialize, committed_at: Timestamp) -> Result<Self, EventError> {
        let event = Self { id: id.into(), topic, body: serde_json::to_string(job)?, committed_at };
        event.job().validate()?;
        Ok(event)
    }

    /// The job to send: the body, deduplicated by the event's id.
    pub fn job(&self) -> NewJob {
        NewJob::deduplicated(self.body.clone(), self.id.clone())
    }

    /// Where the event is kept until it is published.
    pub fn key(&self) -> ItemKey {
        ItemKey::new(OUTBOX_PK, format!("{:020}#{}", self.committed_at.as_millis().max(0), self.id))
    }

    /// The write that puts the event into the outbox, to go into the transaction of the change it announces.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when the event cannot be encoded (it always can).
    pub fn write(&self) -> Result<Write, StoreError> {
        let data = serde_json::to_value(self).map_err(|error| StoreError::Internal(anyhow::Error::new(error).context("encode an outbox event")))?;
        Ok(Write::Put { item: Item::new(self.key(), 1, data), condition: Condition::NotExists })
    }
}

/// A future that a [`Publish`] implementation returns.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), QueueError>> + Send + 'a>>;

/// Sends an event's job to the queue of its topic.
///
/// Object-safe (the futures are boxed) so that one [`crate::http::AppState`] type carries any host's queues,
/// as it carries any host's clock; the cost is one allocation per publication.
pub trait Publish: Send + Sync {
    /// Sends `job` to `topic`'s queue.
    ///
    /// # Errors
    /// As [`JobQueue::send`].
    fn publish(&self, topic: Topic, job: NewJob) -> PublishFuture<'_>;
}

/// The queue behind each topic.
#[derive(Debug, Clone)]
pub struct Topics<Q> {
    /// The privacy queue.
    pub privacy: Q,
    /// The orders queue; `None` on a host that has none yet (its order events then wait in the outbox).
    pub orders: Option<Q>,
}

impl<Q: JobQueue> Publish for Topics<Q> {
    fn publish(&self, topic: Topic, job: NewJob) -> PublishFuture<'_> {
        match topic {
            Topic::Privacy => Box::pin(self.privacy.send(job)),
            Topic::Orders => match &self.orders {
                Some(orders) => Box::pin(orders.send(job)),
                None => Box::pin(std::future::ready(Err(QueueError::Internal(anyhow::anyhow!("this host has no orders queue"))))),
            },
        }
    }
}

/// What one relay run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    /// Events sent to their queue and removed from the outbox.
    pub published: usize,
    /// Events whose queue refused them or failed; they stay in the outbox for the next run.
    pub failed: usize,
    /// Whether the run stopped at its limit with events left to read.
    pub more: bool,
}

/// The outbox on a store.
#[derive(Debug, Clone)]
pub struct Outbox<S> {
    store: S,
}

impl<S: ItemStore> Outbox<S> {
    /// The outbox kept in `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Publishes one committed event and removes it from the outbox.
    ///
    /// # Errors
    /// [`RelayError::Queue`] when the queue did not take it (it stays in the outbox);
    /// [`RelayError::Store`] when it was sent but could not be removed (the relay sends it again, and the
    /// queue's deduplication drops the copy).
    pub async fn publish(&self, event: &Event, publisher: &dyn Publish) -> Result<(), RelayError> {
        publisher.publish(event.topic, event.job()).await.map_err(RelayError::Queue)?;
        match self.store.delete(&event.key(), Condition::Exists).await {
            // Someone else (a concurrent relay) published and removed it first: it is out either way.
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(error) => Err(RelayError::Store(error)),
        }
    }

    /// Up to `max` events still in the outbox, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or an item is not an event.
    pub async fn pending(&self, max: usize) -> Result<(Vec<Event>, bool), StoreError> {
        let mut events = Vec::new();
        let mut after = None;
        loop {
            let limit = RELAY_PAGE.min(max.saturating_sub(events.len())).max(1);
            let page = self.store.query(&Query::new(OUTBOX_PK, "", limit).after(after)).await?;
            for item in page.items {
                let event: Event = serde_json::from_value(item.data).map_err(|error| {
                    StoreError::Internal(anyhow::Error::new(error).context(format!("decode the outbox item {}", item.key)))
                })?;
                events.push(event);
            }
            match page.next {
                Some(next) if events.len() < max => after = Some(next),
                Some(_) => return Ok((events, true)),
                None => return Ok((events, false)),
            }
        }
    }

    /// Publishes up to `max` of the events still in the outbox, oldest first. A failed event is logged and
    /// left for the next run; the others go on.
    ///
    /// # Errors
    /// [`StoreError`] when the outbox cannot be read.
    pub async fn relay(&self, publisher: &dyn Publish, max: usize) -> Result<RelayReport, StoreError> {
        let (events, more) = self.pending(max).await?;
        let mut report = RelayReport { more, ..RelayReport::default() };
        for event in &events {
            match self.publish(event, publisher).await {
                Ok(()) => report.published += 1,
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(event_id = %event.id, topic = event.topic.name(), error = ?error, "outbox event not published");
                }
            }
        }
        Ok(report)
    }
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The queue did not take the job; the event stays in the outbox.
    #[error("the queue did not take the event")]
    Queue(#[source] QueueError),
    /// The job was sent, but the event could not be removed from the outbox.
    #[error("the event was sent but not removed from the outbox")]
    Store(#[source] StoreError),
}

/// A shared handle on a host's publisher, as the HTTP state and the relay hold it.
pub type Publisher = Arc<dyn Publish>;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::adapters::QueueSettings;
    use crate::adapters::memory::{ManualClock, MemoryItemStore, MemoryJobQueue};
    use crate::ports::{Clock, JobInbox};

    fn event(id: &str, at: i64) -> Event {
        Event::new(Topic::Privacy, id, &serde_json::json!({"type": "test.event", "id": id}), Timestamp::from_millis(at))
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// A privacy queue that can be switched off, to stand for a queue that is down.
    struct Flaky {
        queue: MemoryJobQueue,
        topics: Topics<MemoryJobQueue>,
        down: AtomicBool,
    }

    impl Publish for Flaky {
        fn publish(&self, topic: Topic, job: NewJob) -> PublishFuture<'_> {
            if self.down.load(Ordering::SeqCst) {
                return Box::pin(std::future::ready(Err(QueueError::Internal(anyhow::anyhow!("the queue is down")))));
            }
            self.topics.publish(topic, job)
        }
    }

    fn setup() -> (MemoryItemStore, Flaky) {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let store = MemoryItemStore::new(clock.clone());
        let queue = MemoryJobQueue::new(clock, QueueSettings::default());
        (store, Flaky { topics: Topics { privacy: queue.clone(), orders: Some(queue.clone()) }, queue, down: AtomicBool::new(false) })
    }

    async fn bodies(queue: &MemoryJobQueue) -> Vec<String> {
        queue.receive(100).await.unwrap_or_default().into_iter().map(|delivery| delivery.body).collect()
    }

    #[test]
    fn an_event_refuses_an_id_the_queue_could_not_deduplicate_by() {
        let at = Timestamp::from_millis(1);
        assert!(matches!(Event::new(Topic::Privacy, "", &1, at), Err(EventError::Invalid(_))));
        assert!(matches!(Event::new(Topic::Privacy, "has space", &1, at), Err(EventError::Invalid(_))));
        assert!(Event::new(Topic::Privacy, "privacy.erase.u-1", &1, at).is_ok());
    }

    #[tokio::test]
    async fn an_event_written_with_its_change_is_published_once_and_leaves_the_outbox() {
        let (store, publisher) = setup();
        let outbox = Outbox::new(store.clone());
        let first = event("e1", 2_000);
        store.transact(vec![first.write().unwrap_or_else(|e| panic!("{e}"))]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outbox.pending(10).await.unwrap_or_else(|e| panic!("{e}")).0, vec![first.clone()]);
        outbox.publish(&first, &publisher).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(outbox.pending(10).await.unwrap_or_else(|e| panic!("{e}")).0.is_empty());
        // A second publication (a relay that read it before it was removed) is dropped by the queue.
        outbox.publish(&first, &publisher).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bodies(&publisher.queue).await, vec![first.body]);
    }

    #[tokio::test]
    async fn the_relay_keeps_what_the_queue_refused_and_publishes_it_on_a_later_run() {
        let (store, publisher) = setup();
        let outbox = Outbox::new(store.clone());
        let events = [event("late", 3_000), event("early", 1_000), event("middle", 2_000)];
        for event in &events {
            store.transact(vec![event.write().unwrap_or_else(|e| panic!("{e}"))]).await.unwrap_or_else(|e| panic!("{e}"));
        }
        publisher.down.store(true, Ordering::SeqCst);
        let report = outbox.relay(&publisher, 10).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report, RelayReport { published: 0, failed: 3, more: false });
        assert_eq!(outbox.pending(10).await.unwrap_or_else(|e| panic!("{e}")).0.len(), 3, "a refused event was lost");

        publisher.down.store(false, Ordering::SeqCst);
        let report = outbox.relay(&publisher, 2).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report, RelayReport { published: 2, failed: 0, more: true });
        let report = outbox.relay(&publisher, 2).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report, RelayReport { published: 1, failed: 0, more: false });
        let ids: Vec<String> = bodies(&publisher.queue)
            .await
            .iter()
            .filter_map(|body| serde_json::from_str::<serde_json::Value>(body).ok()?.get("id")?.as_str().map(str::to_owned))
            .collect();
        assert_eq!(ids, ["early", "middle", "late"], "the relay publishes the oldest first");
        assert_eq!(outbox.relay(&publisher, 10).await.unwrap_or_else(|e| panic!("{e}")), RelayReport::default());
    }
}
