//! The queue consumer: hands each message of the jobs queue to `shared::jobs::handle` and settles it with the
//! outcome; a batch from any other queue is never handled as jobs.
//!
//! Wiring only. Attempts are counted by the platform (`max_retries` in `wrangler.toml`), which moves a message
//! that keeps failing to the dead-letter queue, so nothing is dropped; each delivery carries the platform's
//! attempt count (the message's `attempts`, read from the raw JavaScript object). A message that cannot be
//! read (no id, no attempt count, a body that is not text) can never be handled and is dead-lettered.
//!
//! A batch's queue is told by name, against the variables `JOBS_QUEUE`, `JOBS_DLQ_QUEUE`, `PRIVACY_QUEUE` and
//! `ORDERS_QUEUE`. The deployed Worker consumes only the jobs queue. The dead-letter queue's messages wait for
//! an operator, the privacy queue's for the privacy function and the orders queue's for the order-events
//! function, so should a batch from any of them (or from a queue no variable names) arrive anyway, every message
//! is handed back with the longest retry delay and an error is logged: it must reach its real consumer or an
//! operator, not be acked away or run as a job. Test builds (feature `testkit`) consume the dead-letter, privacy
//! and orders queues to observe what arrives there (see `contract::job_queue`, `contract::privacy_queue` and
//! `contract::orders_queue`).

use std::time::Duration;

use shared::adapters::queues::{ConsumedMessage, MAX_RETRY_DELAY_SECS, batch_messages, batch_queue, settle};
use shared::ports::{Delivery, Outcome};
use worker::Env;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::MessageBatch;

use crate::config;

/// Which of the Worker's queues a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Jobs,
    DeadLetters,
    Privacy,
    Orders,
    Unknown,
}

impl Source {
    fn of(queue: &str, env: &Env) -> Self {
        let named = |binding: &str| config::optional_var(env, binding).as_deref() == Some(queue);
        if named(config::JOBS_QUEUE_BINDING) {
            Source::Jobs
        } else if named(config::JOBS_DLQ_QUEUE_BINDING) {
            Source::DeadLetters
        } else if named(config::PRIVACY_QUEUE_BINDING) {
            Source::Privacy
        } else if named(config::ORDERS_QUEUE_BINDING) {
            Source::Orders
        } else {
            Source::Unknown
        }
    }
}

/// Consumes one pushed batch, settling every message on its own.
///
/// # Errors
/// A JavaScript error when the batch cannot be read or a message could not be settled: the runtime would
/// otherwise count an unsettled message as delivered, so the batch fails and the platform delivers its
/// unsettled messages again (consumers are idempotent).
pub(crate) async fn consume(batch: &MessageBatch, env: &Env) -> Result<(), JsValue> {
    let queue = batch_queue(batch).map_err(|error| failed(&error))?;
    let messages = batch_messages(batch).map_err(|error| failed(&error))?;
    match Source::of(&queue, env) {
        Source::Jobs => consume_jobs(&queue, &messages, env).await,
        Source::DeadLetters => consume_dead_letters(&queue, &messages, env).await,
        Source::Privacy => consume_privacy(&queue, &messages, env).await,
        Source::Orders => consume_orders(&queue, &messages, env).await,
        Source::Unknown => {
            let why = format!(
                "a batch from a queue that none of {}, {}, {}, {} names",
                config::JOBS_QUEUE_BINDING,
                config::JOBS_DLQ_QUEUE_BINDING,
                config::PRIVACY_QUEUE_BINDING,
                config::ORDERS_QUEUE_BINDING
            );
            hand_back(&queue, &messages, &why)
        }
    }
}

async fn consume_jobs(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    let dead_letters = env.queue(config::JOBS_DLQ_BINDING).ok();
    let mut unsettled = 0_usize;
    for message in messages {
        let (body, outcome) = match message.delivery() {
            Some(delivery) => {
                let outcome = dispatch(&delivery, env).await;
                (delivery.body, outcome)
            }
            None => (
                message.text().unwrap_or_default(),
                Outcome::DeadLetter { reason: "the message has no id, attempt count or text body".to_owned() },
            ),
        };
        if let Err(error) = settle(message, &body, outcome, dead_letters.as_ref()).await {
            let message_id = message.id();
            tracing::error!(error = ?error, queue = %queue, message_id = message_id.as_deref().unwrap_or("unknown"), "failed to settle a message");
            unsettled += 1;
        }
    }
    if unsettled > 0 {
        return Err(JsValue::from_str(&format!("{unsettled} messages of a batch from {queue} could not be settled")));
    }
    Ok(())
}

fn failed(error: &shared::ports::QueueError) -> JsValue {
    tracing::error!(error = ?error, "failed to read a queue batch");
    JsValue::from_str("failed to read a queue batch")
}

/// The job's outcome. Test builds first offer the delivery to the queue contract's test jobs.
async fn dispatch(delivery: &Delivery, env: &Env) -> Outcome {
    #[cfg(feature = "testkit")]
    if let Some(job) = crate::contract::job_queue::TestJob::parse(&delivery.body) {
        return crate::contract::job_queue::handle(job, delivery, env).await;
    }
    #[cfg(not(feature = "testkit"))]
    let _ = env;
    shared::jobs::handle(delivery).await
}

/// A batch from the dead-letter queue. Test builds record what arrives; a deployed Worker has no consumer on
/// it, and should one be configured, hands every message back (it must reach an operator, not be acked away).
async fn consume_dead_letters(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    {
        let _ = queue;
        crate::contract::job_queue::consume_dead_letters(messages, env).await
    }
    #[cfg(not(feature = "testkit"))]
    {
        let _ = env;
        hand_back(queue, messages, "a batch from the dead-letter queue, which waits for an operator")
    }
}

/// A batch from the privacy queue. Test builds record what arrives; a deployed Worker has no consumer on it
/// yet (the privacy function will be one), so should one be configured, every message is handed back.
async fn consume_privacy(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    {
        let _ = queue;
        crate::contract::privacy_queue::consume(messages, env).await
    }
    #[cfg(not(feature = "testkit"))]
    {
        let _ = env;
        hand_back(queue, messages, "a batch from the privacy queue, which has no consumer yet")
    }
}

/// A batch from the orders queue. Test builds record what arrives; a deployed Worker has no consumer on it yet
/// (the order-events function will be one), so should one be configured, every message is handed back.
async fn consume_orders(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    {
        let _ = queue;
        crate::contract::orders_queue::consume(messages, env).await
    }
    #[cfg(not(feature = "testkit"))]
    {
        let _ = env;
        hand_back(queue, messages, "a batch from the orders queue, which has no consumer yet")
    }
}

/// Hands every message of a batch this Worker must not consume back to the queue, as late as Queues allows,
/// and logs why. It never acks: the messages are its real consumer's or an operator's.
///
/// # Errors
/// A JavaScript error when a message could not be handed back: the batch then fails, which also hands back
/// whatever was not settled (the runtime would otherwise count it as delivered).
fn hand_back(queue: &str, messages: &[ConsumedMessage], why: &str) -> Result<(), JsValue> {
    tracing::error!(queue = %queue, count = messages.len(), why, "a batch this Worker does not consume; handing it back");
    let delay = Duration::from_secs(MAX_RETRY_DELAY_SECS.into());
    let unsettled = messages.iter().filter(|message| message.retry(delay).is_err()).count();
    if unsettled > 0 {
        tracing::error!(queue = %queue, unsettled, "failed to hand messages back");
        return Err(JsValue::from_str(&format!("{unsettled} messages of a batch from {queue} could not be handed back")));
    }
    Ok(())
}
