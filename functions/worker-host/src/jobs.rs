//! The queue consumer: hands each message of the jobs queue to `shared::jobs::handle` and settles it with the
//! outcome; batches from the dead-letter queue are not jobs and are never handled as such.
//!
//! Wiring only. Attempts are counted by the platform (`max_retries` in `wrangler.toml`), which moves a message
//! that keeps failing to the dead-letter queue, so nothing is dropped; each delivery carries the platform's
//! attempt count (the message's `attempts`, read from the raw JavaScript object). A message that cannot be
//! read (no id, no attempt count, a body that is not text) can never be handled and is dead-lettered.
//! The dead-letter queue has no consumer in the deployed Worker: its messages wait there for an operator.
//! Should a batch from it arrive anyway, it is handed back untouched. Test builds (feature `testkit`) consume it
//! to observe what arrives there (see `contract::job_queue`).

use shared::adapters::queues::{ConsumedMessage, batch_messages, batch_queue, settle};
use shared::ports::{Delivery, Outcome};
use worker::Env;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::MessageBatch;

use crate::config;

/// Consumes one pushed batch, settling every message on its own.
///
/// # Errors
/// A JavaScript error when the batch cannot be read or a message could not be settled: the runtime would
/// otherwise count an unsettled message as delivered, so the batch fails and the platform delivers its
/// unsettled messages again (consumers are idempotent).
pub(crate) async fn consume(batch: &MessageBatch, env: &Env) -> Result<(), JsValue> {
    let queue = batch_queue(batch).map_err(|error| failed(&error))?;
    let messages = batch_messages(batch).map_err(|error| failed(&error))?;
    let dead_letter_queue = env.var(config::JOBS_DLQ_QUEUE_BINDING).ok().map(|name| name.to_string());
    if dead_letter_queue.as_deref() == Some(queue.as_str()) {
        return consume_dead_letters(&messages, env).await;
    }
    let dead_letters = env.queue(config::JOBS_DLQ_BINDING).ok();
    let mut unsettled = 0_usize;
    for message in &messages {
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
async fn consume_dead_letters(messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    return crate::contract::job_queue::consume_dead_letters(messages, env).await;
    #[cfg(not(feature = "testkit"))]
    {
        let _ = env;
        tracing::error!(count = messages.len(), "a batch from the dead-letter queue reached the Worker; handing it back");
        for message in messages {
            if let Err(error) = message.retry(std::time::Duration::from_secs(shared::adapters::queues::MAX_RETRY_DELAY_SECS.into())) {
                tracing::error!(error = ?error, "failed to hand back a dead letter");
            }
        }
        Ok(())
    }
}
