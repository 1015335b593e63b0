//! The privacy queue before its consumer: `POST /me/export` and `DELETE /me` each put exactly one job on the
//! host's privacy queue, read straight from the queue (`tests::privacy_queue`). Hosts whose privacy job
//! consumes the queue (the local host today) show the jobs' effects instead (`after_sale`), so this scenario
//! runs only where `STOREFRONT_PRIVACY_QUEUE` names a queue nothing consumes: the README test command sets it for
//! the Lambda and Workers tiers until their privacy consumers land (issue 10), and says so.

use reqwest::Method;
use tests::Api;

/// The privacy jobs of `user_id` on the host's privacy queue, as their `type`s sorted, once at least `expected`
/// of them are there (or after 30 s, whatever is there then).
async fn privacy_jobs_of(user_id: &str, expected: usize) -> Vec<String> {
    let queue = tests::privacy_queue();
    let mut kinds = Vec::new();
    for _ in 0..60 {
        let jobs = queue.jobs().await.unwrap_or_else(|error| panic!("reading the privacy queue {queue:?}: {error:#}"));
        kinds = jobs
            .iter()
            .filter(|job| job["user_id"] == user_id)
            .map(|job| job["type"].as_str().unwrap_or("(no type)").to_owned())
            .collect();
        if kinds.len() >= expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    kinds.sort();
    kinds
}

#[tokio::test]
async fn an_export_request_and_a_deletion_each_put_one_job_on_the_privacy_queue() {
    if std::env::var(tests::privacy_queue::PRIVACY_QUEUE_VAR).is_err() {
        eprintln!("\n!!!! SKIPPED here: no unconsumed privacy queue is named; the local host consumes it (see after_sale)\n");
        return;
    }
    let api = Api::new();
    let user = api.new_user("queued").await;
    assert_eq!(api.call(Method::POST, "/me/export", Some(&user.access), None).await.status, 202);
    assert_eq!(privacy_jobs_of(&user.id, 1).await, ["privacy.export"], "the export request's job is not on the privacy queue");
    assert_eq!(api.call(Method::POST, "/me/export", Some(&user.access), None).await.status, 202);
    assert_eq!(api.call(Method::DELETE, "/me", Some(&user.access), None).await.status, 202);
    // Exactly one export job (asking again while one is pending enqueues nothing) and one erasure job.
    assert_eq!(privacy_jobs_of(&user.id, 2).await, ["privacy.erase", "privacy.export"], "the privacy queue holds the wrong jobs");
}
