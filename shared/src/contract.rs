//! The contract suites: one per port, run against every adapter of that port, on every host.
//!
//! Each suite runs its cases one after another and reports each by name, so a host that cannot use Rust's test
//! harness (a Worker inside workerd) can run the very same cases and print the same report. Cases use their
//! own partitions (or a fresh queue each), so one backend can serve the whole suite.

use std::future::Future;
use std::time::Duration;

use crate::ports::Timestamp;

pub mod item_store;
pub mod job_queue;
#[cfg(not(target_arch = "wasm32"))]
pub mod mailer;
pub mod payments;

/// How the suite sees and moves time on the backend under test.
pub trait Harness: Send + Sync {
    /// The time the adapter judges expiry and visibility by.
    fn now(&self) -> Timestamp;
    /// Lets `duration` pass for the adapter: moves a manual clock, or sleeps on a real backend.
    fn advance(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The case's name, a sentence.
    pub name: &'static str,
    /// `Err` with what went wrong.
    pub outcome: Result<(), String>,
}

/// The failed cases of a report, one per line, for an assertion message.
pub fn failures(reports: &[CaseReport]) -> String {
    reports
        .iter()
        .filter_map(|report| report.outcome.as_ref().err().map(|error| format!("{}: {error}", report.name)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails the case with a message unless the condition holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}
pub(crate) use ensure;

/// A harness over a [`ManualClock`](crate::adapters::memory::ManualClock): time passes only when told.
pub struct ManualHarness(pub std::sync::Arc<crate::adapters::memory::ManualClock>);

impl Harness for ManualHarness {
    fn now(&self) -> Timestamp {
        use crate::ports::Clock as _;
        self.0.now()
    }

    fn advance(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        self.0.advance(duration);
        std::future::ready(())
    }
}

/// Queue settings short enough for suites that wait in real time.
pub const CONTRACT_QUEUE_SETTINGS: crate::adapters::QueueSettings = crate::adapters::QueueSettings {
    visibility_timeout: Duration::from_secs(2),
    max_attempts: 3,
    dedup_window: Duration::from_secs(300),
};
