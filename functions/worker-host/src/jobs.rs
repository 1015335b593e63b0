//! The jobs queue consumer: hands each message to `shared::jobs::handle` and settles it with the outcome.
//!
//! Wiring only. Attempts are counted by the platform (`max_retries` in `wrangler.toml`), which moves a message
//! that keeps failing to the dead-letter queue, so nothing is dropped. workers-rs 0.8.7 does not expose a
//! message's attempt count, so deliveries carry `attempt: 0` (unknown); no job handler reads it.

use shared::adapters::queues::{message_text, settle};
use shared::ports::{Delivery, Outcome};
use worker::{Env, MessageBatch, MessageExt as _};

use crate::config;

/// Settles every message of the batch on its own.
pub(crate) async fn consume(batch: &MessageBatch<serde_json::Value>, env: &Env) {
    let dead_letters = env.queue(config::JOBS_DLQ_BINDING).ok();
    for message in batch.raw_iter() {
        let id = message.id();
        let (body, outcome) = match message_text(&message) {
            Some(body) => {
                let delivery = Delivery { message_id: id.clone(), body, attempt: 0, receipt: id };
                let outcome = shared::jobs::handle(&delivery).await;
                (delivery.body, outcome)
            }
            None => (String::new(), Outcome::DeadLetter { reason: "the message body is not text".to_owned() }),
        };
        settle(&message, &body, outcome, dead_letters.as_ref()).await;
    }
}
