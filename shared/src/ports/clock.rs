//! The clock port: the only way the domain learns the time.
//!
//! `SystemTime::now()` panics on `wasm32-unknown-unknown`, so time always comes in through this trait.

use std::fmt;

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// A timestamp from whole seconds since the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down (the unit of DynamoDB's time-to-live).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This timestamp moved forward by `millis` milliseconds.
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Tells the current time.
///
/// Contract: successive calls on one clock never go backwards.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// A future a [`Sleep`] returns.
pub type SleepFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Waits, for retries with backoff (a payment provider that timed out). Each host brings its own timer: tokio's
/// on native hosts, the JavaScript timer on Workers; tests move a manual clock instead of waiting.
///
/// Contract: the future completes no earlier than `duration` from now, as the host's [`Clock`] sees it.
pub trait Sleep: Send + Sync + 'static {
    /// Waits for `duration`.
    fn sleep(&self, duration: std::time::Duration) -> SleepFuture;
}

/// The pause before retry number `retry` (0 for the first), given 32 random bits: "full jitter", uniform between
/// zero and `base` doubled `retry` times, capped at `cap`. Spreading the retries of writers that collided keeps
/// them from colliding again in step; the store adapters and the catalog retry on it.
pub fn full_jitter(base: std::time::Duration, cap: std::time::Duration, retry: u32, random: u32) -> std::time::Duration {
    let ceiling = base.saturating_mul(2_u32.saturating_pow(retry)).min(cap);
    let ceiling_micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    std::time::Duration::from_micros(u64::from(random) % (ceiling_micros + 1))
}
