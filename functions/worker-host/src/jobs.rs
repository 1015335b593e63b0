//! The queue consumer: hands each message of the jobs queue to `shared::jobs::handle` and settles it with the
//! outcome; a batch from any other queue is never handled as jobs.
//!
//! Wiring only. Attempts are counted by the platform (`max_retries` in `wrangler.toml`), which moves a message
//! that keeps failing to the dead-letter queue, so nothing is dropped; each delivery carries the platform's
//! attempt count (the message's `attempts`, read from the raw JavaScript object). A message that cannot be
//! read (no id, no attempt count, a body that is not text) can never be handled and is dead-lettered.
//!
//! A batch's queue is told by name, against the variables `JOBS_QUEUE`, `JOBS_DLQ_QUEUE`, `PRIVACY_QUEUE` and
//! `ORDERS_QUEUE`. The Worker consumes the jobs queue (`shared::jobs::handle`), the orders queue (the
//! order-events job) and the privacy queue (the privacy job), each message settled on its own; a message that can
//! never succeed goes to its queue's dead-letter queue at once (`JOBS_DLQ`, `ORDERS_DLQ`, `PRIVACY_DLQ`). The
//! jobs dead-letter queue's messages wait for an operator, so should a batch from it (or from a queue no variable
//! names) arrive anyway, every message is handed back with the longest retry delay and an error is logged. Test
//! builds (feature `testkit`) consume the jobs dead-letter queue and record what reaches the privacy and orders
//! queues before handling it (see `contract::job_queue`, `contract::privacy_queue` and `contract::orders_queue`).

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
    #[cfg(feature = "testkit")]
    OrdersDeadLetters,
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
            #[cfg(feature = "testkit")]
            if named(config::ORDERS_DLQ_QUEUE_BINDING) {
                return Source::OrdersDeadLetters;
            }
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
        #[cfg(feature = "testkit")]
        Source::OrdersDeadLetters => crate::contract::orders_queue::consume_dead_letters(&messages, env).await,
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
            None => unreadable(message),
        };
        unsettled += usize::from(!settled(queue, message, &body, outcome, dead_letters.as_ref()).await);
    }
    all_settled(queue, unsettled)
}

/// A message that cannot be read as a delivery can never be handled: it is dead-lettered.
fn unreadable(message: &ConsumedMessage) -> (String, Outcome) {
    (message.text().unwrap_or_default(), Outcome::DeadLetter { reason: "the message has no id, attempt count or text body".to_owned() })
}

/// Settles one message with its outcome; `false` (logged) when that failed.
async fn settled(queue: &str, message: &ConsumedMessage, body: &str, outcome: Outcome, dead_letters: Option<&worker::Queue>) -> bool {
    match settle(message, body, outcome, dead_letters).await {
        Ok(()) => true,
        Err(error) => {
            let message_id = message.id();
            tracing::error!(error = ?error, queue = %queue, message_id = message_id.as_deref().unwrap_or("unknown"), "failed to settle a message");
            false
        }
    }
}

/// The batch's result: an error when some message could not be settled, so the platform delivers the batch
/// again rather than count an unsettled message as delivered.
fn all_settled(queue: &str, unsettled: usize) -> Result<(), JsValue> {
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

/// A batch from the privacy queue: the privacy job (exports and erasures). Test builds first record what
/// arrives (`contract::privacy_queue`).
async fn consume_privacy(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    crate::contract::privacy_queue::observe(messages, env).await?;
    consume_events(queue, messages, env, Consumer::Privacy).await
}

/// A batch from the orders queue: the order-events job. Test builds first record what arrives
/// (`contract::orders_queue`).
async fn consume_orders(queue: &str, messages: &[ConsumedMessage], env: &Env) -> Result<(), JsValue> {
    #[cfg(feature = "testkit")]
    crate::contract::orders_queue::observe(messages, env).await?;
    consume_events(queue, messages, env, Consumer::Orders).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consumer {
    Orders,
    Privacy,
}

/// Test builds only: the orders whose events already made the consumer fail its batch (see [`crash_now`]). A
/// Worker isolate runs one thread; the set lives as long as the isolate.
#[cfg(feature = "testkit")]
static CRASHED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Test builds only: whether to fail the batch now, unsettled, after handling `delivery` (a crash in the middle
/// of a batch): the first time an event of an order whose id starts with `STOREFRONT_FAULT_CRASH_ORDERS` is
/// handled in this isolate, so that its redelivery goes through.
#[cfg(feature = "testkit")]
fn crash_now(env: &Env, delivery: &Delivery) -> bool {
    let Some(prefix) = config::optional_var(env, config::FAULT_CRASH_ORDERS_BINDING) else { return false };
    let order_id = serde_json::from_str::<serde_json::Value>(&delivery.body)
        .ok()
        .and_then(|body| body.get("order_id").and_then(serde_json::Value::as_str).map(str::to_owned))
        .filter(|order_id| order_id.starts_with(&prefix));
    let Some(order_id) = order_id else { return false };
    let mut crashed = CRASHED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if crashed.contains(&order_id) {
        return false;
    }
    crashed.push(order_id);
    true
}

/// Hands each message to its consumer in `shared::jobs` and settles it with the outcome: acked, retried with the
/// job's delay (the platform dead-letters it after `max_retries`), or sent to the queue's dead-letter queue now.
async fn consume_events(queue: &str, messages: &[ConsumedMessage], env: &Env, consumer: Consumer) -> Result<(), JsValue> {
    let state = crate::app::state_for_jobs(env).await.map_err(|error| {
        tracing::error!(queue = %queue, error = ?error, "failed to build the worker's state");
        JsValue::from_str("worker misconfigured")
    })?;
    let jobs = crate::app::jobs(env, &state).map_err(|error| {
        tracing::error!(queue = %queue, error = ?error, "failed to build the jobs");
        JsValue::from_str("worker misconfigured")
    })?;
    let dead_letters = env
        .queue(match consumer {
            Consumer::Orders => config::ORDERS_DLQ_BINDING,
            Consumer::Privacy => config::PRIVACY_DLQ_BINDING,
        })
        .ok();
    let mut handled = Vec::with_capacity(messages.len());
    for message in messages {
        let (body, outcome) = match message.delivery() {
            Some(delivery) => {
                let outcome = match consumer {
                    Consumer::Orders => jobs.orders(&delivery).await,
                    Consumer::Privacy => jobs.privacy(&delivery).await,
                };
                #[cfg(feature = "testkit")]
                if consumer == Consumer::Orders && crash_now(env, &delivery) {
                    tracing::error!(queue = %queue, "test fault: the consumer fails its batch now, before settling it");
                    return Err(JsValue::from_str("test fault: a crash in the middle of a batch"));
                }
                (delivery.body, outcome)
            }
            None => unreadable(message),
        };
        handled.push((message, body, outcome));
    }
    let mut unsettled = 0_usize;
    for (message, body, outcome) in handled {
        unsettled += usize::from(!settled(queue, message, &body, outcome, dead_letters.as_ref()).await);
    }
    all_settled(queue, unsettled)
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
