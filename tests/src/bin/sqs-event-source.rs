//! A stand-in for Lambda's SQS event source mapping, for running the queue consumers under `cargo lambda watch`
//! (which serves functions but maps no queue to them): receives batches from one SQS queue (moto in the AWS tier)
//! and invokes a function with each as an `SQSEvent`, as Lambda does with `ReportBatchItemFailures`: the messages
//! the function does not report are deleted, the reported ones are left to come back after the queue's
//! visibility timeout (and to reach the dead-letter queue through the queue's redrive policy), and a failed
//! invocation (an error, a crash) leaves the whole batch. Each delivery is appended to a log file as one JSON
//! line (`message_id`, `receive_count`, `body`), for checks on what the queue carried.
//!
//! Usage: `sqs-event-source <queue URL> <invoke URL> <delivery log>`, with `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_ENDPOINT_URL_SQS` (a loopback endpoint) in the environment. Runs until
//! killed.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};

fn variable(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [queue, invoke, log] = args.as_slice() else {
        anyhow::bail!("usage: sqs-event-source <queue URL> <invoke URL> <delivery log>");
    };
    let endpoint = variable("AWS_ENDPOINT_URL_SQS")?;
    anyhow::ensure!(endpoint.starts_with("http://127.0.0.1:") && invoke.starts_with("http://127.0.0.1:"), "endpoints must be on 127.0.0.1");
    let credentials = Credentials::new(variable("AWS_ACCESS_KEY_ID")?, variable("AWS_SECRET_ACCESS_KEY")?, None, None, "event-source");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(variable("AWS_REGION")?))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(shared::adapters::emulator_http_client()?)
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(config);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(180)).build()?;
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("open {log}"))?;
    let arn = format!("arn:aws:sqs:us-east-1:000000000000:{}", queue.rsplit('/').next().unwrap_or("queue"));
    loop {
        let received = match sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
        {
            Ok(received) => received.messages.unwrap_or_default(),
            Err(error) => {
                eprintln!("sqs-event-source: receive failed: {}", aws_sdk_sqs::error::DisplayErrorContext(&error));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if received.is_empty() {
            continue;
        }
        let mut records = Vec::new();
        for message in &received {
            let attributes: serde_json::Map<String, Value> = message
                .attributes
                .iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
                .collect();
            let receive_count = attributes.get("ApproximateReceiveCount").cloned().unwrap_or(Value::Null);
            writeln!(log, "{}", json!({ "message_id": message.message_id, "receive_count": receive_count, "body": message.body }))?;
            records.push(json!({
                "messageId": message.message_id, "receiptHandle": message.receipt_handle, "body": message.body,
                "attributes": attributes, "messageAttributes": {}, "md5OfBody": message.md5_of_body,
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
            }));
        }
        let answer = http.post(invoke.as_str()).json(&json!({ "Records": records })).send().await;
        let failed: Option<Vec<String>> = match answer {
            Ok(answer) if answer.status().is_success() => answer.json::<Value>().await.ok().and_then(|body| {
                body.get("batchItemFailures")?
                    .as_array()
                    .map(|failures| failures.iter().filter_map(|f| f.get("itemIdentifier")?.as_str().map(str::to_owned)).collect())
            }),
            Ok(answer) => {
                eprintln!("sqs-event-source: the function answered {}; the batch comes back", answer.status());
                None
            }
            Err(error) => {
                eprintln!("sqs-event-source: the invocation failed ({error}); the batch comes back");
                None
            }
        };
        let Some(failed) = failed else { continue };
        let done = received.iter().filter(|message| !message.message_id.as_ref().is_some_and(|id| failed.contains(id)));
        for handle in done.filter_map(|message| message.receipt_handle.as_ref()) {
            if let Err(error) = sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await {
                eprintln!("sqs-event-source: delete failed: {}", aws_sdk_sqs::error::DisplayErrorContext(&error));
            }
        }
    }
}
