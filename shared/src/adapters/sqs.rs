//! The job queue on Amazon SQS (feature `aws`): a FIFO queue with a FIFO dead-letter queue.
//!
//! FIFO, because the port promises deduplication and only FIFO queues have it (a standard queue would need a
//! second store to remember ids). Each job is its own message group: jobs are independent and consumers are
//! idempotent, so no job waits behind another's retries, and Lambda can spread a batch over many groups.
//! Attempts are SQS's `ApproximateReceiveCount`; the bound on them is the queue's redrive policy
//! (`maxReceiveCount`), which moves a job to the dead-letter queue instead of delivering it once more.
//! `Retry` is `ChangeMessageVisibility`; `DeadLetter` copies the job to the dead-letter queue and deletes it.
//! A producer that never settles a delivery (an HTTP function publishing an outbox event, the outbox relay)
//! holds an [`SqsJobSender`] instead: the send side alone, which needs no dead-letter queue.
//! This module turns SQS messages and errors into the port's types; nothing shaped like SQS leaves it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};

use crate::adapters::QueueSettings;
use crate::ports::job_queue::{Delivery, JobInbox, JobQueue, NewJob, Outcome, QueueError};

/// The message attribute that keeps a dead-lettered job's original message id.
const ORIGINAL_ID: &str = "storefront-original-id";
/// The message attribute that keeps how many deliveries a dead-lettered job had.
const ATTEMPTS: &str = "storefront-attempts";
/// The message attribute that says why a job was dead-lettered.
const REASON: &str = "storefront-reason";
/// The most messages one SQS receive returns.
const MAX_RECEIVE: usize = 10;
/// The longest visibility timeout SQS accepts (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// How long SQS keeps dead letters (its maximum, 14 days): long enough for an operator to look.
const DEAD_LETTER_RETENTION_SECS: u32 = 1_209_600;

fn backend_error<E>(error: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>, what: &'static str) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
{
    QueueError::Internal(anyhow::Error::new(error).context(what))
}

/// Whole seconds for SQS, rounded up so a job is never visible before its delay, capped at SQS's maximum.
fn visibility_secs(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs.min(MAX_VISIBILITY_SECS)).unwrap_or(i32::MAX)
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|error| QueueError::Internal(anyhow::Error::new(error).context("failed to build a message attribute")))
}

fn message_attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.message_attributes().and_then(|attributes| attributes.get(name)).and_then(|value| value.string_value())
}

/// A received message as a delivery; the attempt is SQS's receive count.
fn to_delivery(message: &Message) -> Result<Delivery, QueueError> {
    let message_id = message.message_id().ok_or_else(|| anyhow!("SQS returned a message without an id"))?;
    let receipt = message.receipt_handle().ok_or_else(|| anyhow!("SQS returned a message without a receipt"))?;
    let attempt = message
        .attributes()
        .and_then(|attributes| attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .ok_or_else(|| anyhow!("SQS returned a message without its receive count"))?
        .parse::<u32>()
        .context("SQS returned a receive count that is not a number")?;
    Ok(Delivery {
        message_id: message_id.to_owned(),
        body: message.body().unwrap_or_default().to_owned(),
        attempt,
        receipt: receipt.to_owned(),
    })
}

/// Refuses a queue URL that is not a FIFO queue's (FIFO names end in `.fifo`).
fn require_fifo(url: &str) -> Result<(), QueueError> {
    if url.ends_with(".fifo") {
        Ok(())
    } else {
        Err(QueueError::Invalid(format!("{url} is not a FIFO queue; deduplication needs one")))
    }
}

/// Sends `job` to the FIFO queue at `queue_url`, in a message group of its own.
async fn send_job(client: &Client, queue_url: &str, job: NewJob) -> Result<(), QueueError> {
    job.validate()?;
    // A job without a deduplication id must never be taken for another, so it gets a fresh one.
    let dedup_id = job.dedup_id.unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    client
        .send_message()
        .queue_url(queue_url)
        .message_body(job.body)
        .message_group_id(uuid::Uuid::now_v7().simple().to_string())
        .message_deduplication_id(dedup_id)
        .send()
        .await
        .map_err(|error| backend_error(error, "failed to send a job"))?;
    Ok(())
}

/// The send side alone of an SQS FIFO queue: what a producer needs (the `JobQueue` port), for hosts where the
/// platform, not this process, receives and settles the jobs. Cheap to clone: clones share the client.
#[derive(Clone)]
pub struct SqsJobSender {
    client: Client,
    queue_url: Arc<str>,
}

impl std::fmt::Debug for SqsJobSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsJobSender").field("queue_url", &self.queue_url).finish_non_exhaustive()
    }
}

impl SqsJobSender {
    /// Sends to the queue at `queue_url`. Makes no request.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] when the URL is not a FIFO queue's (FIFO names end in `.fifo`).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Result<Self, QueueError> {
        let queue_url = queue_url.into();
        require_fifo(&queue_url)?;
        Ok(Self { client, queue_url: Arc::from(queue_url) })
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl JobQueue for SqsJobSender {
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send {
        send_job(&self.client, &self.queue_url, job)
    }
}

/// A job queue on an SQS FIFO queue and its dead-letter queue. Cheap to clone: clones share the client.
#[derive(Clone)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: Arc<str>,
    dead_letter_url: Arc<str>,
    settings: QueueSettings,
}

impl std::fmt::Debug for SqsJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsJobQueue")
            .field("queue_url", &self.queue_url)
            .field("dead_letter_url", &self.dead_letter_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SqsJobQueue {
    /// The queue at `queue_url` with its dead-letter queue at `dead_letter_url`. `settings` must match the
    /// queue's own attributes (the redrive policy's `maxReceiveCount` is what bounds attempts); its
    /// visibility timeout is used for every receive. Makes no request.
    ///
    /// # Errors
    /// [`QueueError::Invalid`] when either URL is not a FIFO queue's (FIFO names end in `.fifo`).
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
        settings: QueueSettings,
    ) -> Result<Self, QueueError> {
        let (queue_url, dead_letter_url) = (queue_url.into(), dead_letter_url.into());
        for url in [&queue_url, &dead_letter_url] {
            require_fifo(url)?;
        }
        Ok(Self { client, queue_url: Arc::from(queue_url), dead_letter_url: Arc::from(dead_letter_url), settings })
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Creates (or finds) the FIFO queue `<name>.fifo` and its dead-letter queue `<name>-dlq.fifo`, with the
    /// redrive policy and visibility timeout from `settings`. For local runs and tests: on AWS the SAM
    /// template owns the queues.
    ///
    /// # Errors
    /// When SQS refuses to create either queue.
    pub async fn create(client: Client, name: &str, settings: QueueSettings) -> anyhow::Result<Self> {
        let dead_letter_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::MessageRetentionPeriod, DEAD_LETTER_RETENTION_SECS.to_string())
            .send()
            .await
            .context("failed to create the dead-letter queue")?
            .queue_url
            .context("SQS created a dead-letter queue without a URL")?;
        let dead_letter_arn = client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .context("failed to read the dead-letter queue's ARN")?
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .context("SQS did not say the dead-letter queue's ARN")?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": settings.max_attempts.to_string(),
        });
        let queue_url = client
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs(settings.visibility_timeout).to_string())
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .context("failed to create the queue")?
            .queue_url
            .context("SQS created a queue without a URL")?;
        Ok(Self::new(client, queue_url, dead_letter_url, settings)?)
    }

    async fn receive_jobs(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .receive_message()
            .queue_url(self.queue_url.as_ref())
            .max_number_of_messages(i32::try_from(max.min(MAX_RECEIVE)).unwrap_or(1))
            .visibility_timeout(visibility_secs(self.settings.visibility_timeout))
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|error| backend_error(error, "failed to receive jobs"))?;
        output.messages().iter().map(to_delivery).collect()
    }

    /// Sets the delivery's visibility; a receipt that is no longer current is [`QueueError::StaleReceipt`].
    async fn change_visibility(&self, delivery: &Delivery, duration: Duration) -> Result<(), QueueError> {
        let result = self
            .client
            .change_message_visibility()
            .queue_url(self.queue_url.as_ref())
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(visibility_secs(duration))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(|service| {
                    service.is_message_not_inflight() || service.is_receipt_handle_is_invalid()
                }) =>
            {
                Err(QueueError::StaleReceipt)
            }
            Err(error) => Err(backend_error(error, "failed to change a job's visibility")),
        }
    }

    async fn delete(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let result =
            self.client.delete_message().queue_url(self.queue_url.as_ref()).receipt_handle(&delivery.receipt).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|service| service.is_receipt_handle_is_invalid()) => {
                Err(QueueError::StaleReceipt)
            }
            Err(error) => Err(backend_error(error, "failed to delete a job")),
        }
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        // Renewing the visibility first proves the receipt is current, so a stale delivery is refused
        // before anything is copied, and keeps the job hidden while it is copied.
        self.change_visibility(delivery, self.settings.visibility_timeout).await?;
        self.copy_to_dead_letters(delivery, reason).await?;
        self.delete(delivery).await
    }

    /// Copies a delivery to the dead-letter queue with its id, attempts and `reason`, without touching the
    /// delivery itself. The Lambda consumer calls this for a `DeadLetter` outcome and then leaves the
    /// delivery out of its batch failures, so that the event source mapping deletes it; the pull consumer
    /// uses it inside `settle`. Deduplicated by the job's id, so copying the same job twice within SQS's
    /// five-minute window leaves one dead letter.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when SQS refuses the copy (the job must then stay where it is).
    pub async fn copy_to_dead_letters(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let attempts = delivery.attempt.to_string();
        self.client
            .send_message()
            .queue_url(self.dead_letter_url.as_ref())
            .message_body(&delivery.body)
            .message_group_id(&delivery.message_id)
            .message_deduplication_id(&delivery.message_id)
            .message_attributes(ORIGINAL_ID, string_attribute(&delivery.message_id)?)
            .message_attributes(ATTEMPTS, string_attribute(&attempts)?)
            .message_attributes(REASON, string_attribute(if reason.is_empty() { "unspecified" } else { reason })?)
            .send()
            .await
            .map_err(|error| backend_error(error, "failed to copy a job to the dead-letter queue"))?;
        Ok(())
    }

    async fn settle_delivery(&self, delivery: &Delivery, outcome: Outcome) -> Result<(), QueueError> {
        match outcome {
            Outcome::Ack => self.delete(delivery).await,
            Outcome::Retry { delay } => self.change_visibility(delivery, delay).await,
            Outcome::DeadLetter { reason } => self.dead_letter(delivery, &reason).await,
        }
    }

    async fn peek_dead_letters(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // A zero visibility timeout leaves the dead letters where they are, visible to the next look.
        let output = self
            .client
            .receive_message()
            .queue_url(self.dead_letter_url.as_ref())
            .max_number_of_messages(i32::try_from(max.min(MAX_RECEIVE)).unwrap_or(1))
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|error| backend_error(error, "failed to read the dead-letter queue"))?;
        let mut dead = Vec::with_capacity(output.messages().len());
        for message in output.messages() {
            let mut delivery = to_delivery(message)?;
            // A job this adapter copied keeps its own id and attempts; one SQS's redrive moved kept them anyway.
            if let Some(original_id) = message_attribute(message, ORIGINAL_ID) {
                delivery.message_id = original_id.to_owned();
            }
            if let Some(attempts) = message_attribute(message, ATTEMPTS).and_then(|value| value.parse().ok()) {
                delivery.attempt = attempts;
            }
            dead.push(delivery);
        }
        Ok(dead)
    }

    /// Why each dead letter was dead-lettered, by job id, for operators' tools.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when SQS fails.
    pub async fn dead_letter_reasons(&self, max: usize) -> Result<HashMap<String, String>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(self.dead_letter_url.as_ref())
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_RECEIVE)).unwrap_or(1))
            .visibility_timeout(0)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|error| backend_error(error, "failed to read the dead-letter queue"))?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|message| {
                let id = message_attribute(message, ORIGINAL_ID).or(message.message_id())?;
                let reason = message_attribute(message, REASON).unwrap_or("max attempts reached");
                Some((id.to_owned(), reason.to_owned()))
            })
            .collect())
    }
}

impl JobQueue for SqsJobQueue {
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send {
        send_job(&self.client, &self.queue_url, job)
    }
}

impl JobInbox for SqsJobQueue {
    fn receive(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        self.receive_jobs(max)
    }

    fn settle(&self, delivery: &Delivery, outcome: Outcome) -> impl Future<Output = Result<(), QueueError>> + Send {
        self.settle_delivery(delivery, outcome)
    }

    fn dead_letters(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        self.peek_dead_letters(max)
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;
    use crate::adapters::system::SystemClock;
    use crate::contract::{self, CONTRACT_QUEUE_SETTINGS, Harness};
    use crate::ports::{Clock as _, Timestamp};

    /// The variable naming the SQS emulator's endpoint (`scripts/aws-emulators.sh env` sets it).
    const SQS_ENDPOINT: &str = "SQS_ENDPOINT";

    /// Time on a real backend: the system clock, and sleeping to let time pass.
    struct RealTime;

    impl Harness for RealTime {
        fn now(&self) -> Timestamp {
            SystemClock.now()
        }

        fn advance(&self, duration: Duration) -> impl Future<Output = ()> + Send {
            tokio::time::sleep(duration)
        }
    }

    /// A client for the emulator at `endpoint` with static dummy keys, so that the SDK never looks for
    /// credentials anywhere else (in particular never at the EC2 metadata service).
    fn emulator_client(endpoint: &str) -> Client {
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{SQS_ENDPOINT} must be an http://127.0.0.1 address, not {endpoint}");
        let credentials = aws_sdk_sqs::config::Credentials::new("storefrontlocal", "storefrontlocal", None, None, "static");
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(endpoint)
            .http_client(crate::adapters::emulator_http_client().unwrap_or_else(|error| panic!("{error}")))
            .build();
        Client::from_conf(config)
    }

    #[test]
    fn visibility_rounds_up_to_whole_seconds_within_the_sqs_limit() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1)), 1);
        assert_eq!(visibility_secs(Duration::from_secs(2)), 2);
        assert_eq!(visibility_secs(Duration::from_millis(2001)), 3);
        assert_eq!(visibility_secs(Duration::from_secs(u64::MAX)), 43_200);
    }

    #[tokio::test]
    async fn a_standard_queue_is_refused() {
        let client = emulator_client("http://127.0.0.1:1");
        let standard = SqsJobQueue::new(client, "http://127.0.0.1:1/q", "http://127.0.0.1:1/d.fifo", CONTRACT_QUEUE_SETTINGS);
        assert!(matches!(standard, Err(QueueError::Invalid(_))), "{standard:?}");
        let sender = SqsJobSender::new(emulator_client("http://127.0.0.1:1"), "http://127.0.0.1:1/q");
        assert!(matches!(sender, Err(QueueError::Invalid(_))), "{sender:?}");
    }

    #[tokio::test]
    async fn sqs_job_queue_keeps_the_job_queue_contract() {
        let Ok(endpoint) = std::env::var(SQS_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {SQS_ENDPOINT} is not set, so the SQS job queue was NOT tested.");
            eprintln!("!!!! Run scripts/test-aws.sh (it starts the SQS emulator) to test it.\n");
            return;
        };
        let client = emulator_client(&endpoint);
        let run = uuid::Uuid::now_v7().simple().to_string();
        let make = |slug: &'static str| {
            let (client, name) = (client.clone(), format!("c{run}-{slug}"));
            async move {
                SqsJobQueue::create(client, &name, CONTRACT_QUEUE_SETTINGS).await.unwrap_or_else(|error| panic!("{error:#}"))
            }
        };
        let reports = contract::job_queue::run(make, &RealTime, CONTRACT_QUEUE_SETTINGS).await;
        for report in &reports {
            eprintln!("sqs contract: {} ... {}", report.name, if report.outcome.is_ok() { "ok" } else { "FAILED" });
        }
        assert!(reports.len() >= 7, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn a_sender_delivers_to_the_queue_once_per_deduplication_id() {
        let Ok(endpoint) = std::env::var(SQS_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {SQS_ENDPOINT} is not set, so the SQS job sender was NOT tested.\n");
            return;
        };
        let client = emulator_client(&endpoint);
        let run = uuid::Uuid::now_v7().simple().to_string();
        let queue = SqsJobQueue::create(client.clone(), &format!("s{run}"), CONTRACT_QUEUE_SETTINGS)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        let sender = SqsJobSender::new(client, queue.queue_url()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(sender.queue_url(), queue.queue_url());
        for _ in 0..2 {
            sender.send(NewJob::deduplicated("{\"n\":1}", format!("job-{run}"))).await.unwrap_or_else(|error| panic!("{error:?}"));
        }
        let delivered = queue.receive(10).await.unwrap_or_else(|error| panic!("{error:?}"));
        let bodies: Vec<&str> = delivered.iter().map(|delivery| delivery.body.as_str()).collect();
        assert_eq!(bodies, ["{\"n\":1}"], "a job sent twice with one deduplication id must arrive once");
    }

    #[tokio::test]
    async fn a_dead_letter_keeps_its_reason() {
        let Ok(endpoint) = std::env::var(SQS_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {SQS_ENDPOINT} is not set, so SQS dead-letter reasons were NOT tested.\n");
            return;
        };
        let run = uuid::Uuid::now_v7().simple().to_string();
        let queue = SqsJobQueue::create(emulator_client(&endpoint), &format!("r{run}"), CONTRACT_QUEUE_SETTINGS)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        queue.send(NewJob { body: "{}".to_owned(), dedup_id: None }).await.unwrap_or_else(|error| panic!("{error:?}"));
        let delivered = queue.receive(1).await.unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        let outcome = Outcome::DeadLetter { reason: "unknown job type".to_owned() };
        queue.settle(&delivered[0], outcome.clone()).await.unwrap_or_else(|error| panic!("{error:?}"));
        let stale = queue.settle(&delivered[0], outcome).await;
        assert!(matches!(stale, Err(QueueError::StaleReceipt)), "settling a settled delivery gave {stale:?}");
        let reasons = queue.dead_letter_reasons(10).await.unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(reasons.get(&delivered[0].message_id).map(String::as_str), Some("unknown job type"));
    }
}
