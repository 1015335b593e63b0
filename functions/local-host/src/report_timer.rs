//! The local host's timer for the daily sales-report job: runs it at start and then every interval; each run
//! closes yesterday's report (UTC) once, so runs after the first of a day change nothing.

use std::time::Duration;

use shared::jobs::Jobs;
use shared::ports::ItemStore;
use tokio::sync::watch;

/// Runs the report job every `interval` until `stop` turns true.
pub async fn run<S: ItemStore + Clone>(jobs: Jobs<S>, interval: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(error) = jobs.sales_report().await {
            tracing::warn!(error = %error, "the sales report job failed; its next run tries again");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
