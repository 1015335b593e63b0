//! Cloudflare Queues: the producer side of the job queue port, and the mapping of job outcomes onto a
//! consumer's messages.
//!
//! Queues has no deduplication id, so [`CfJobQueue`] keeps one itself: before sending, it claims the id in the
//! item store (put-if-absent, expiring after the deduplication window); a claim that already exists means the
//! job was sent, and the send is skipped. When the send fails the claim is released, so a retry sends again.
//! One window remains: if the isolate dies between the claim and the send, a retry within the window is
//! skipped. Consumers are idempotent and the outbox relay re-sends only unconfirmed events, so this trades a
//! rare lost duplicate-suppression for never sending twice from one claim.
//!
//! On the consumer side the platform counts attempts and moves a message that was retried `max_retries`
//! times to the dead-letter queue declared in `wrangler.toml`; a permanent failure is sent to the
//! dead-letter queue at once (Queues has no "dead-letter now" call) and then acknowledged.

use std::sync::Arc;
use std::time::Duration;

use worker::send::SendFuture;
use worker::wasm_bindgen::JsValue;
use worker::{MessageExt as _, Queue, QueueContentType, QueueRetryOptionsBuilder, RawMessage, RawMessageBuilder};

use crate::adapters::QueueSettings;
use crate::ports::job_queue::{JobQueue, NewJob, Outcome, QueueError};
use crate::ports::{Clock, Condition, Item, ItemKey, ItemStore, StoreError};

/// Queues' longest retry delay, in seconds (12 hours).
pub const MAX_RETRY_DELAY_SECS: u32 = 43_200;

async fn send_text(queue: &Queue, body: &str) -> Result<(), QueueError> {
    let message = RawMessageBuilder::new(JsValue::from_str(body)).build_with_content_type(QueueContentType::Text);
    SendFuture::new(queue.send_raw(message))
        .await
        .map_err(|error| QueueError::Internal(anyhow::anyhow!("failed to send to the queue: {error}")))
}

/// The producer side of a Cloudflare queue, deduplicating through the item store.
#[derive(Clone)]
pub struct CfJobQueue<S> {
    queue: Arc<Queue>,
    name: String,
    dedup_store: S,
    clock: Arc<dyn Clock>,
    settings: QueueSettings,
}

impl<S: ItemStore> CfJobQueue<S> {
    /// A producer on the queue binding; `name` scopes its deduplication ids in `dedup_store`.
    pub fn new(queue: Queue, name: &str, dedup_store: S, clock: Arc<dyn Clock>, settings: QueueSettings) -> Self {
        Self { queue: Arc::new(queue), name: name.to_owned(), dedup_store, clock, settings }
    }

    fn claim_key(&self, dedup_id: &str) -> ItemKey {
        ItemKey::new(format!("DEDUP#{}", self.name), dedup_id)
    }

    async fn send_now(&self, job: NewJob) -> Result<(), QueueError> {
        job.validate()?;
        let Some(dedup_id) = job.dedup_id.as_deref() else {
            return send_text(&self.queue, &job.body).await;
        };
        let now = self.clock.now();
        let window_secs = i64::try_from(self.settings.dedup_window.as_secs()).unwrap_or(i64::MAX);
        let mut claim = Item::new(self.claim_key(dedup_id), 1, serde_json::json!({ "sent_at": now.as_millis() }));
        claim.expires_at = Some(now.as_secs().saturating_add(window_secs));
        match self.dedup_store.put(claim, Condition::NotExists).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Ok(()),
            Err(error) => return Err(QueueError::Internal(anyhow::Error::new(error).context("failed to claim a deduplication id"))),
        }
        if let Err(error) = send_text(&self.queue, &job.body).await {
            if let Err(release) = self.dedup_store.delete(&self.claim_key(dedup_id), Condition::None).await {
                tracing::error!(error = ?release, "failed to release a deduplication claim after a failed send");
            }
            return Err(error);
        }
        Ok(())
    }
}

impl<S: ItemStore> JobQueue for CfJobQueue<S> {
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send {
        SendFuture::new(async move { self.send_now(job).await })
    }
}

/// The body of a consumed message as text: text bodies as they are, others as JSON; `None` when it cannot be
/// written as text at all.
pub fn message_text(message: &RawMessage) -> Option<String> {
    let body = message.body();
    body.as_string().or_else(|| worker::js_sys::JSON::stringify(&body).ok().and_then(|text| text.as_string()))
}

/// Ends a consumed message as the job's outcome says: ack; retry after the delay (the platform dead-letters it
/// after `max_retries`); or, for a permanent failure, copy it to `dead_letters` and ack (retrying instead if the
/// copy fails, so nothing is dropped).
pub async fn settle(message: &RawMessage, body: &str, outcome: Outcome, dead_letters: Option<&Queue>) {
    match outcome {
        Outcome::Ack => message.ack(),
        Outcome::Retry { delay } => retry(message, delay),
        Outcome::DeadLetter { reason } => {
            let copied = match dead_letters {
                Some(queue) => send_text(queue, body).await,
                None => Err(QueueError::Internal(anyhow::anyhow!("no dead-letter queue binding"))),
            };
            match copied {
                Ok(()) => {
                    tracing::warn!(message_id = %message.id(), reason = %reason, "job dead-lettered");
                    message.ack();
                }
                Err(error) => {
                    tracing::error!(error = ?error, message_id = %message.id(), "failed to dead-letter a job; retrying it");
                    retry(message, Duration::from_secs(30));
                }
            }
        }
    }
}

fn retry(message: &RawMessage, delay: Duration) {
    let secs = u32::try_from(delay.as_secs()).unwrap_or(MAX_RETRY_DELAY_SECS).min(MAX_RETRY_DELAY_SECS);
    message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build());
}
