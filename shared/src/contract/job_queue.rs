//! The job queue contract (see `ports::job_queue::JobInbox`), as named cases. Each case gets a fresh, empty
//! queue from the factory, configured with the settings the suite is told about.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use crate::adapters::QueueSettings;
use crate::contract::{CaseReport, Harness, ensure};
use crate::ports::job_queue::{Delivery, JobInbox, NewJob, Outcome, QueueError, MAX_JOB_BYTES};

fn fmt_err<E: std::fmt::Debug>(error: E) -> String {
    format!("{error:?}")
}

fn job(body: &str) -> NewJob {
    NewJob { body: body.to_owned(), dedup_id: None }
}

/// Receives until `expected` deliveries came or three receives came back short (long-polling backends may
/// hand out visible jobs over several calls).
async fn receive_some<Q: JobInbox>(queue: &Q, expected: usize) -> Result<Vec<Delivery>, String> {
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.extend(queue.receive(10).await.map_err(fmt_err)?);
        if deliveries.len() >= expected {
            break;
        }
    }
    Ok(deliveries)
}

async fn send_receive_ack<Q: JobInbox, H: Harness>(queue: Q, harness: &H, settings: QueueSettings) -> Result<(), String> {
    for body in ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"] {
        queue.send(job(body)).await.map_err(fmt_err)?;
    }
    let deliveries = receive_some(&queue, 3).await?;
    let bodies: BTreeSet<&str> = deliveries.iter().map(|delivery| delivery.body.as_str()).collect();
    ensure!(bodies == BTreeSet::from(["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]), "received {bodies:?}");
    ensure!(deliveries.iter().all(|delivery| delivery.attempt == 1), "first deliveries: {deliveries:?}");
    ensure!(queue.receive(10).await.map_err(fmt_err)?.is_empty(), "received jobs are visible to a second receive");
    for delivery in &deliveries {
        queue.settle(delivery, Outcome::Ack).await.map_err(fmt_err)?;
    }
    harness.advance(settings.visibility_timeout + Duration::from_secs(1)).await;
    let again = queue.receive(10).await.map_err(fmt_err)?;
    ensure!(again.is_empty(), "acked jobs came back: {again:?}");
    Ok(())
}

async fn unsettled_jobs_come_back<Q: JobInbox, H: Harness>(queue: Q, harness: &H, settings: QueueSettings) -> Result<(), String> {
    queue.send(job("{\"lost\":true}")).await.map_err(fmt_err)?;
    let first = receive_some(&queue, 1).await?;
    ensure!(first.len() == 1, "received {first:?}");
    harness.advance(settings.visibility_timeout + Duration::from_secs(1)).await;
    let second = receive_some(&queue, 1).await?;
    ensure!(second.len() == 1, "after the visibility timeout received {second:?}");
    ensure!(second[0].message_id == first[0].message_id && second[0].attempt == 2, "redelivery: {second:?}");
    queue.settle(&second[0], Outcome::Ack).await.map_err(fmt_err)?;
    Ok(())
}

async fn retry_after_a_delay<Q: JobInbox, H: Harness>(queue: Q, harness: &H, _settings: QueueSettings) -> Result<(), String> {
    queue.send(job("{\"retry\":true}")).await.map_err(fmt_err)?;
    let first = receive_some(&queue, 1).await?;
    ensure!(first.len() == 1, "received {first:?}");
    queue.settle(&first[0], Outcome::Retry { delay: Duration::from_secs(2) }).await.map_err(fmt_err)?;
    let early = queue.receive(10).await.map_err(fmt_err)?;
    ensure!(early.is_empty(), "a job retried after 2 s came back at once: {early:?}");
    harness.advance(Duration::from_secs(3)).await;
    let later = receive_some(&queue, 1).await?;
    ensure!(later.len() == 1 && later[0].message_id == first[0].message_id, "after the delay received {later:?}");
    ensure!(later[0].attempt == 2, "the retried delivery is attempt {}", later[0].attempt);
    queue.settle(&later[0], Outcome::Ack).await.map_err(fmt_err)?;
    Ok(())
}

async fn dead_letter_after_max_attempts<Q: JobInbox, H: Harness>(queue: Q, harness: &H, settings: QueueSettings) -> Result<(), String> {
    queue.send(job("{\"poison\":true}")).await.map_err(fmt_err)?;
    let mut message_id = None;
    for attempt in 1..=settings.max_attempts {
        let delivered = receive_some(&queue, 1).await?;
        ensure!(delivered.len() == 1, "attempt {attempt} received {delivered:?}");
        ensure!(delivered[0].attempt == attempt, "delivery {attempt} said attempt {}", delivered[0].attempt);
        message_id = Some(delivered[0].message_id.clone());
        queue.settle(&delivered[0], Outcome::Retry { delay: Duration::ZERO }).await.map_err(fmt_err)?;
        harness.advance(Duration::from_millis(10)).await;
    }
    let after = receive_some(&queue, 1).await?;
    ensure!(after.is_empty(), "a job was delivered past max attempts: {after:?}");
    let dead = queue.dead_letters(10).await.map_err(fmt_err)?;
    ensure!(dead.len() == 1 && Some(&dead[0].message_id) == message_id.as_ref(), "dead letters: {dead:?}");
    ensure!(dead[0].body == "{\"poison\":true}", "the dead letter's body changed: {}", dead[0].body);
    Ok(())
}

async fn dead_letter_on_request<Q: JobInbox, H: Harness>(queue: Q, harness: &H, settings: QueueSettings) -> Result<(), String> {
    queue.send(job("{\"permanent\":true}")).await.map_err(fmt_err)?;
    let delivered = receive_some(&queue, 1).await?;
    ensure!(delivered.len() == 1, "received {delivered:?}");
    queue
        .settle(&delivered[0], Outcome::DeadLetter { reason: "contract: permanent failure".to_owned() })
        .await
        .map_err(fmt_err)?;
    harness.advance(settings.visibility_timeout + Duration::from_secs(1)).await;
    ensure!(queue.receive(10).await.map_err(fmt_err)?.is_empty(), "a dead-lettered job was delivered again");
    let dead = queue.dead_letters(10).await.map_err(fmt_err)?;
    ensure!(dead.len() == 1 && dead[0].message_id == delivered[0].message_id, "dead letters: {dead:?}");
    Ok(())
}

async fn duplicates_are_delivered_once<Q: JobInbox, H: Harness>(queue: Q, _harness: &H, _settings: QueueSettings) -> Result<(), String> {
    queue.send(NewJob::deduplicated("{\"copy\":1}", "order-1")).await.map_err(fmt_err)?;
    queue.send(NewJob::deduplicated("{\"copy\":2}", "order-1")).await.map_err(fmt_err)?;
    queue.send(NewJob::deduplicated("{\"other\":true}", "order-2")).await.map_err(fmt_err)?;
    let deliveries = receive_some(&queue, 3).await?;
    let bodies: BTreeSet<&str> = deliveries.iter().map(|delivery| delivery.body.as_str()).collect();
    ensure!(bodies == BTreeSet::from(["{\"copy\":1}", "{\"other\":true}"]), "received {bodies:?}");
    Ok(())
}

async fn bad_jobs_are_refused<Q: JobInbox, H: Harness>(queue: Q, _harness: &H, _settings: QueueSettings) -> Result<(), String> {
    let oversized = queue.send(job(&"x".repeat(MAX_JOB_BYTES + 1))).await;
    ensure!(matches!(oversized, Err(QueueError::Invalid(_))), "an oversized job gave {oversized:?}");
    let bad_id = queue.send(NewJob::deduplicated("{}", "has space")).await;
    ensure!(matches!(bad_id, Err(QueueError::Invalid(_))), "a malformed deduplication id gave {bad_id:?}");
    ensure!(receive_some(&queue, 1).await?.is_empty(), "a refused job was enqueued");
    Ok(())
}

/// Runs every queue case, each on a fresh queue from `make_queue(case_slug)`, configured with `settings`.
pub async fn run<Q, F, Fut, H>(make_queue: F, harness: &H, settings: QueueSettings) -> Vec<CaseReport>
where
    Q: JobInbox,
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = Q>,
    H: Harness,
{
    vec![
        CaseReport { name: "send, receive and ack", outcome: send_receive_ack(make_queue("ack").await, harness, settings).await },
        CaseReport { name: "unsettled jobs come back", outcome: unsettled_jobs_come_back(make_queue("visibility").await, harness, settings).await },
        CaseReport { name: "retry after a delay", outcome: retry_after_a_delay(make_queue("retry").await, harness, settings).await },
        CaseReport { name: "dead letter after max attempts", outcome: dead_letter_after_max_attempts(make_queue("exhaust").await, harness, settings).await },
        CaseReport { name: "dead letter on request", outcome: dead_letter_on_request(make_queue("permanent").await, harness, settings).await },
        CaseReport { name: "duplicates are delivered once", outcome: duplicates_are_delivered_once(make_queue("dedup").await, harness, settings).await },
        CaseReport { name: "bad jobs are refused", outcome: bad_jobs_are_refused(make_queue("bad").await, harness, settings).await },
    ]
}
