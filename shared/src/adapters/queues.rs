//! Cloudflare Queues: the producer side of the job queue port, and the consumer side that turns a pushed batch
//! into deliveries and settles each one with its job's outcome.
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
//! Consumed messages are read through the raw JavaScript objects (`worker_sys`), whose calls report failures
//! as values: workers-rs' own message wrappers unwrap them (a panic, which resets the isolate) and do not
//! expose the message's `attempts`, which the port's [`Delivery`] carries.

use std::sync::Arc;
use std::time::Duration;

use worker::js_sys::{Array, Object, Reflect};
use worker::send::SendFuture;
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::{Message as MessageSys, MessageBatch as MessageBatchSys};
use worker::{Queue, QueueContentType, RawMessageBuilder};

use crate::adapters::QueueSettings;
use crate::ports::job_queue::{Delivery, JobQueue, NewJob, Outcome, QueueError};
use crate::ports::{Clock, Condition, Item, ItemKey, ItemStore, StoreError};

/// Queues' longest retry delay, in seconds (12 hours).
pub const MAX_RETRY_DELAY_SECS: u32 = 43_200;
/// How long a job whose dead-letter copy failed waits before it is delivered again.
const DEAD_LETTER_FAILED_RETRY: Duration = Duration::from_secs(30);

fn js_error(what: &str, error: &JsValue) -> QueueError {
    let detail = error.as_string().or_else(|| {
        error.dyn_ref::<worker::js_sys::Error>().map(|error| String::from(error.message()))
    });
    QueueError::Internal(anyhow::anyhow!("{what}: {}", detail.unwrap_or_else(|| "a JavaScript exception".to_owned())))
}

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

/// The name of the queue a pushed batch came from.
///
/// # Errors
/// [`QueueError::Internal`] when the batch object has no queue name.
pub fn batch_queue(batch: &MessageBatchSys) -> Result<String, QueueError> {
    batch.queue().map(String::from).map_err(|error| js_error("failed to read the batch's queue", &error))
}

/// The messages of a pushed batch.
///
/// # Errors
/// [`QueueError::Internal`] when the batch object has no message list.
pub fn batch_messages(batch: &MessageBatchSys) -> Result<Vec<ConsumedMessage>, QueueError> {
    let messages: Array = batch.messages().map_err(|error| js_error("failed to read the batch's messages", &error))?;
    Ok(messages.iter().map(|message| ConsumedMessage { inner: message.unchecked_into() }).collect())
}

/// One message of a pushed batch.
#[derive(Debug)]
pub struct ConsumedMessage {
    inner: MessageSys,
}

impl ConsumedMessage {
    /// The message's id, the same on every delivery of it; `None` when the object has none.
    pub fn id(&self) -> Option<String> {
        self.inner.id().ok().map(String::from)
    }

    /// How many times the platform has delivered this message, this delivery included (1 on the first);
    /// `None` when the object does not say.
    pub fn attempts(&self) -> Option<u32> {
        let attempts = Reflect::get(&self.inner, &JsValue::from_str("attempts")).ok()?.as_f64()?;
        let whole = attempts >= 1.0 && attempts.fract() == 0.0 && attempts <= f64::from(u32::MAX);
        // Checked above: a whole number in 1..=u32::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        whole.then_some(attempts as u32)
    }

    /// The body as text: text bodies as they are, others as JSON; `None` when it cannot be written as text.
    pub fn text(&self) -> Option<String> {
        let body = self.inner.body().ok()?;
        body.as_string().or_else(|| worker::js_sys::JSON::stringify(&body).ok().and_then(|text| text.as_string()))
    }

    /// The port's view of this delivery; `None` when the message has no id, no attempt count or no text body
    /// (such a message can never be handled).
    pub fn delivery(&self) -> Option<Delivery> {
        let message_id = self.id()?;
        Some(Delivery { receipt: message_id.clone(), message_id, body: self.text()?, attempt: self.attempts()? })
    }

    /// Acknowledges the message: it is not delivered again.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when the runtime refuses the call.
    pub fn ack(&self) -> Result<(), QueueError> {
        self.inner.ack().map_err(|error| js_error("failed to ack a message", &error))
    }

    /// Hands the message back to be delivered again after `delay` (at most [`MAX_RETRY_DELAY_SECS`]); the
    /// platform dead-letters it instead once it has used up `max_retries`.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when the runtime refuses the call.
    pub fn retry(&self, delay: Duration) -> Result<(), QueueError> {
        let secs = u32::try_from(delay.as_secs()).unwrap_or(MAX_RETRY_DELAY_SECS).min(MAX_RETRY_DELAY_SECS);
        let options = Object::new();
        Reflect::set(&options, &JsValue::from_str("delaySeconds"), &JsValue::from_f64(f64::from(secs)))
            .map_err(|error| js_error("failed to build the retry options", &error))?;
        self.inner.retry(options.into()).map_err(|error| js_error("failed to retry a message", &error))
    }
}

/// Ends a consumed message as the job's outcome says: ack; retry after the delay (the platform dead-letters it
/// after `max_retries`); or, for a permanent failure, copy `body` to `dead_letters` and ack (retrying instead if
/// the copy fails, so nothing is dropped).
///
/// # Errors
/// [`QueueError::Internal`] when the runtime refused to settle the message: it was neither acked nor handed
/// back, so the caller must fail the batch (the platform then delivers it again) rather than let the
/// runtime count it as delivered.
pub async fn settle(message: &ConsumedMessage, body: &str, outcome: Outcome, dead_letters: Option<&Queue>) -> Result<(), QueueError> {
    match outcome {
        Outcome::Ack => message.ack(),
        Outcome::Retry { delay } => message.retry(delay),
        Outcome::DeadLetter { reason } => {
            let copied = match dead_letters {
                Some(queue) => send_text(queue, body).await,
                None => Err(QueueError::Internal(anyhow::anyhow!("no dead-letter queue binding"))),
            };
            match copied {
                Ok(()) => {
                    tracing::warn!(message_id = message.id().as_deref().unwrap_or("unknown"), reason = %reason, "job dead-lettered");
                    message.ack()
                }
                Err(error) => {
                    let message_id = message.id();
                    tracing::error!(error = ?error, message_id = message_id.as_deref().unwrap_or("unknown"), "failed to dead-letter a job; retrying it");
                    message.retry(DEAD_LETTER_FAILED_RETRY)
                }
            }
        }
    }
}
