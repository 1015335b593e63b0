//! The local host's checkout sweep and its timer: every `--sweep-interval-secs`, the orders a killed process or
//! an abandoned retry left reserved past the grace period are settled (`Commerce::sweep`). The timer is the
//! host's [`Sleep`] for the payment retries' backoff, too.

use std::time::Duration;

use shared::commerce::Commerce;
use shared::ports::{ItemStore, Sleep, SleepFuture};
use tokio::sync::watch;

/// The most orders one run settles.
const MAX_PER_RUN: usize = 100;

/// Tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Sweeps every `interval` until `stop` turns true.
pub async fn run<S: ItemStore + Clone>(commerce: Commerce<S>, interval: Duration, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(error) = commerce.sweep(MAX_PER_RUN).await {
            tracing::error!(error = ?error, "the checkout sweep failed to read the unsettled orders");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
