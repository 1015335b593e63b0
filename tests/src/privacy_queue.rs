//! What reached the host's privacy queue, for the scenarios that check that `DELETE /me` and `POST /me/export`
//! enqueue their jobs. Nothing consumes that queue yet, so every job a run sent is still there to look at.
//!
//! The in-process host's queue is read from its SQLite file. A host at a base URL names its queue in
//! `STOREFRONT_PRIVACY_QUEUE`:
//! - `sqlite:<data file>`: the local host binary's SQLite file (read without receiving anything);
//! - `sqs:<queue URL>`: an SQS queue (the emulator in the AWS tier), received with a visibility timeout of 0
//!   so the look hides nothing; credentials and region come from the usual `AWS_*` variables. Each look still
//!   counts as a receive, so a queue with a redrive policy would dead-letter its jobs after `maxReceiveCount`
//!   looks: the AWS tier gives its test privacy queue SQS's maximum of 1000;
//! - `http:<URL>`: a test build's endpoint answering `{"messages": ["<job body>", ...]}` (the Worker's
//!   `/__test/privacy-jobs`, fed by a test-only consumer of the privacy queue).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;
use shared::adapters::QueueSettings;
use shared::adapters::sqlite::SqliteDb;
use shared::adapters::system::SystemClock;

/// The variable naming the privacy queue of a host at a base URL.
pub const PRIVACY_QUEUE_VAR: &str = "STOREFRONT_PRIVACY_QUEUE";
/// The queue name the local host gives its privacy queue.
const LOCAL_PRIVACY_QUEUE: &str = local_host::PRIVACY_QUEUE;

/// Where a host's privacy queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivacyQueue {
    /// The privacy queue in a local host's SQLite file.
    Sqlite(PathBuf),
    /// An SQS queue URL.
    Sqs(String),
    /// A test endpoint listing what reached the queue.
    Http(String),
}

impl PrivacyQueue {
    /// Reads the `scheme:location` form of [`PRIVACY_QUEUE_VAR`].
    ///
    /// # Errors
    /// When the scheme is none of `sqlite`, `sqs` and `http`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        match text.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            Some(("sqs", url)) if !url.is_empty() => Ok(Self::Sqs(url.to_owned())),
            Some(("http", url)) if !url.is_empty() => Ok(Self::Http(url.to_owned())),
            _ => anyhow::bail!("{PRIVACY_QUEUE_VAR} must be sqlite:<data file>, sqs:<queue URL> or http:<URL>, not {text:?}"),
        }
    }

    /// The bodies of the jobs on the queue now, parsed as JSON (a body that is not JSON is kept as a string).
    ///
    /// # Errors
    /// When the queue cannot be read.
    pub async fn jobs(&self) -> anyhow::Result<Vec<Value>> {
        let bodies = match self {
            Self::Sqlite(path) => {
                let db = SqliteDb::open(path, Arc::new(SystemClock))?;
                let waiting = db.job_queue(LOCAL_PRIVACY_QUEUE, QueueSettings::default()).waiting(1000)?;
                waiting.into_iter().map(|job| job.body).collect()
            }
            Self::Sqs(url) => sqs_bodies(url).await?,
            Self::Http(url) => {
                let answer = reqwest::get(url).await.with_context(|| format!("GET {url}"))?;
                anyhow::ensure!(answer.status().is_success(), "GET {url} answered {}", answer.status());
                let listing: Value = answer.json().await.with_context(|| format!("GET {url} is not JSON"))?;
                let messages = listing.get("messages").and_then(Value::as_array).context("no `messages` array")?;
                messages.iter().map(|message| message.as_str().map(str::to_owned).context("a message that is not a string")).collect::<anyhow::Result<Vec<_>>>()?
            }
        };
        Ok(bodies.into_iter().map(|body: String| serde_json::from_str(&body).unwrap_or(Value::String(body))).collect())
    }
}

/// Every message on an SQS queue, received with a visibility timeout of 0 (so none is hidden from anyone),
/// a few receives in a row because one receive returns at most 10 and SQS samples its servers.
async fn sqs_bodies(url: &str) -> anyhow::Result<Vec<String>> {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let variable = |name: &str| std::env::var(name).with_context(|| format!("{name} must be set to read {url}"));
    let region = variable("AWS_REGION").or_else(|_| variable("AWS_DEFAULT_REGION"))?;
    let credentials = Credentials::new(variable("AWS_ACCESS_KEY_ID")?, variable("AWS_SECRET_ACCESS_KEY")?, None, None, "scenarios");
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let endpoint = format!("{}://{}", parsed.scheme(), parsed.host_str().context("a queue URL without a host")?)
        + &parsed.port().map(|port| format!(":{port}")).unwrap_or_default();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_sqs::Client::from_conf(config);
    let mut bodies = std::collections::BTreeMap::new();
    for _ in 0..5 {
        let received = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .with_context(|| format!("receive from {url}"))?;
        for message in received.messages.unwrap_or_default() {
            if let (Some(id), Some(body)) = (message.message_id, message.body) {
                bodies.insert(id, body);
            }
        }
    }
    Ok(bodies.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_one_of_three_kinds_of_queue() {
        assert_eq!(PrivacyQueue::parse("sqlite:/tmp/x.db").ok(), Some(PrivacyQueue::Sqlite(PathBuf::from("/tmp/x.db"))));
        assert_eq!(
            PrivacyQueue::parse(" sqs:http://127.0.0.1:5000/123/privacy.fifo ").ok(),
            Some(PrivacyQueue::Sqs("http://127.0.0.1:5000/123/privacy.fifo".to_owned()))
        );
        assert_eq!(
            PrivacyQueue::parse("http:http://127.0.0.1:8787/__test/privacy-jobs").ok(),
            Some(PrivacyQueue::Http("http://127.0.0.1:8787/__test/privacy-jobs".to_owned()))
        );
        assert!(PrivacyQueue::parse("kafka:topic").is_err());
        assert!(PrivacyQueue::parse("sqlite:").is_err());
    }
}
