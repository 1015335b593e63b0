//! The job queue port: producers send jobs; consumers end each delivery acked, retried later, or
//! dead-lettered.
//!
//! On Lambda and Workers the platform pulls messages and hands batches to a function, so the producer side
//! ([`JobQueue`]) is all those hosts implement for the domain; the pull side ([`JobInbox`]) is what the local
//! host's consumer loop and the contract suite drive. This module defines the contract only.

use std::future::Future;
use std::time::Duration;

/// The longest deduplication id (SQS's limit).
pub const MAX_DEDUP_ID_BYTES: usize = 128;
/// The largest job body, in bytes (SQS's and Cloudflare Queues' limits are larger; we keep one below both).
pub const MAX_JOB_BYTES: usize = 128 * 1024;

/// A job to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The job's JSON document.
    pub body: String,
    /// Jobs sent with an id already sent within the deduplication window are accepted but not delivered again.
    pub dedup_id: Option<String>,
}

impl NewJob {
    /// A job with a deduplication id.
    pub fn deduplicated(body: impl Into<String>, dedup_id: impl Into<String>) -> Self {
        Self { body: body.into(), dedup_id: Some(dedup_id.into()) }
    }

    /// Checks the limits every adapter enforces before sending.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] naming the broken limit.
    pub fn validate(&self) -> Result<(), QueueError> {
        if self.body.len() > MAX_JOB_BYTES {
            return Err(QueueError::Invalid(format!("a job body is at most {MAX_JOB_BYTES} bytes")));
        }
        if let Some(dedup_id) = &self.dedup_id {
            let valid = !dedup_id.is_empty()
                && dedup_id.len() <= MAX_DEDUP_ID_BYTES
                && dedup_id.bytes().all(|byte| byte.is_ascii_graphic());
            if !valid {
                return Err(QueueError::Invalid(format!(
                    "a deduplication id is 1 to {MAX_DEDUP_ID_BYTES} printable ASCII characters"
                )));
            }
        }
        Ok(())
    }
}

/// One delivery of a job to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job's id, the same on every delivery of it.
    pub message_id: String,
    /// The job's JSON document.
    pub body: String,
    /// How many times the job has been delivered, this delivery included (1 on the first).
    pub attempt: u32,
    /// The handle that settles this delivery (changes on every delivery).
    pub receipt: String,
}

/// How a consumer ends a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the job is removed.
    Ack,
    /// Deliver it again after `delay`, unless it has used up its attempts, in which case it is dead-lettered.
    Retry {
        /// How long the job stays invisible.
        delay: Duration,
    },
    /// A permanent failure: move it to the dead-letter queue now.
    DeadLetter {
        /// Why, for the operator (never personal data).
        reason: String,
    },
}

/// What can go wrong with a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The job or the request breaks a limit of the port.
    #[error("invalid queue request: {0}")]
    Invalid(String),
    /// The receipt is unknown or no longer current (the delivery timed out and was handed out again).
    #[error("stale receipt")]
    StaleReceipt,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The producer side of a queue.
///
/// Contract: a job whose `send` returned `Ok` is delivered at least once, unless a job with the same
/// deduplication id was sent within the deduplication window (at least five minutes), in which case it is not
/// delivered again.
pub trait JobQueue: Send + Sync + 'static {
    /// Sends a job.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] for a job over the limits; [`QueueError::Internal`] when the backend fails.
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The pull-consumer side of a queue with a dead-letter queue.
///
/// Contract (checked by `contract::job_queue`), which every adapter MUST keep:
/// - a received job is invisible to other receivers until it is settled or its visibility timeout passes,
///   after which it is delivered again with `attempt` one higher;
/// - `Ack` removes it; `Retry { delay }` makes it visible again after `delay`; `DeadLetter` moves it to the
///   dead-letter queue at once;
/// - a job is delivered at most `max_attempts` times (the adapter's setting): when it would be delivered once
///   more it is moved to the dead-letter queue instead, so nothing that keeps failing is silently dropped.
pub trait JobInbox: JobQueue {
    /// Up to `max` visible jobs, oldest first, each made invisible for the visibility timeout.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when the backend fails.
    fn receive(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Ends a delivery.
    ///
    /// # Errors
    /// [`QueueError::StaleReceipt`] when the delivery is no longer current; [`QueueError::Internal`] when the
    /// backend fails.
    fn settle(&self, delivery: &Delivery, outcome: Outcome) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Up to `max` jobs from the dead-letter queue, oldest first, without removing them.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when the backend fails.
    fn dead_letters(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;
}
