//! The payment gateway: how the checkout and the cancel call a provider. It retries a timeout with
//! exponential backoff and jitter under the same idempotency key, inside a time budget that fits API Gateway's
//! 29-second limit, and keeps a per-instance circuit breaker: after [`BreakerSettings::failure_threshold`]
//! calls in a row that ended without an answer, it stops calling the provider and answers at once for
//! [`BreakerSettings::open_for`], then lets one probe call through; its success closes the breaker.
//!
//! A declined payment is an answer, not a failure: it never counts against the breaker and is never retried.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::ports::payments::{Charge, ChargeRequest, PaymentError, Payments};
use crate::ports::random::random_bytes;
use crate::ports::{Clock, Random, Sleep, Timestamp};

/// How a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts per call.
    pub max_attempts: u32,
    /// The first backoff's upper bound; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    /// The largest backoff.
    pub max_delay: Duration,
    /// No attempt starts after this much time has passed since the first (with a provider timeout of 8 s per
    /// attempt, a call then ends within about 23 s, inside API Gateway's 29 s).
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failures), given 0..=1 of jitter: "equal jitter",
    /// half the exponential step plus a random part of the other half, so concurrent callers spread out but
    /// never retry at once.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self.base_delay.saturating_mul(1_u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX)).min(self.max_delay);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Calls in a row that ended without an answer (after their retries) before the breaker opens.
    pub failure_threshold: u32,
    /// How long it stays open before letting a probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failure_threshold: 3, open_for: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed { failures: u32 },
    Open { until: Timestamp },
    /// A probe is out; everyone else is refused until it answers.
    Probing,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Normal,
    Probe,
}

/// A circuit breaker, shared by every request one instance (process, Lambda sandbox, Worker isolate) serves.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<BreakerState>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, state: Mutex::new(BreakerState::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the breaker is open (refusing calls) at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        match *self.lock() {
            BreakerState::Open { until } => now < until,
            BreakerState::Probing => true,
            BreakerState::Closed { .. } => false,
        }
    }

    fn admit(&self, now: Timestamp) -> Result<Admission, u64> {
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(Admission::Normal),
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::Probing;
                Ok(Admission::Probe)
            }
            BreakerState::Open { until } => Err(seconds_until(now, until)),
            // A probe is out: wait for it, about as long as one attempt may take.
            BreakerState::Probing => Err(1),
        }
    }

    fn answered(&self) {
        *self.lock() = BreakerState::Closed { failures: 0 };
    }

    fn failed(&self, admission: Admission, now: Timestamp) {
        let mut state = self.lock();
        let open = BreakerState::Open { until: now.plus_millis(i64::try_from(self.settings.open_for.as_millis()).unwrap_or(i64::MAX)) };
        *state = match (*state, admission) {
            (_, Admission::Probe) => open,
            (BreakerState::Closed { failures }, Admission::Normal) if failures + 1 >= self.settings.failure_threshold => open,
            (BreakerState::Closed { failures }, Admission::Normal) => BreakerState::Closed { failures: failures + 1 },
            // Opened meanwhile by other calls: stays as it is.
            (other, Admission::Normal) => other,
        };
    }
}

fn seconds_until(now: Timestamp, until: Timestamp) -> u64 {
    let millis = until.as_millis().saturating_sub(now.as_millis()).max(0);
    u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1)
}

/// Why a gateway call gave no result.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused the payment.
    #[error("payment declined: {reason}")]
    Declined {
        /// Its reason.
        reason: String,
    },
    /// The provider kept failing to answer, or the breaker is open; try again after this many seconds.
    #[error("the payment provider is unavailable")]
    Unavailable {
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
}

/// How long a caller is told to wait after the retries ran out with the breaker still closed.
const RETRY_AFTER_EXHAUSTED_SECS: u64 = 5;

/// Calls a provider with retries and a breaker.
#[derive(Clone)]
pub struct PaymentGateway {
    payments: Arc<dyn Payments>,
    breaker: Arc<Breaker>,
    sleep: Arc<dyn Sleep>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for PaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentGateway").field("provider", &self.payments.name()).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl PaymentGateway {
    /// A gateway to `payments`, waiting with `sleep`, timing with `clock`, drawing jitter from `random`.
    pub fn new(
        payments: Arc<dyn Payments>,
        breaker: Arc<Breaker>,
        sleep: Arc<dyn Sleep>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        policy: RetryPolicy,
    ) -> Self {
        Self { payments, breaker, sleep, clock, random, policy }
    }

    /// The provider behind the gateway.
    pub fn provider(&self) -> &dyn Payments {
        self.payments.as_ref()
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn jitter(&self) -> f64 {
        // A failed random source only loses the spread, never the retry.
        let bytes = random_bytes::<4>(self.random.as_ref()).unwrap_or([0x80, 0, 0, 0]);
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    }

    /// Runs `call` with the retry policy and the breaker.
    async fn call<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PaymentError>>,
    {
        let admission = self
            .breaker
            .admit(self.clock.now())
            .map_err(|retry_after_secs| GatewayError::Unavailable { retry_after_secs })?;
        let started = self.clock.now();
        let attempts = if admission == Admission::Probe { 1 } else { self.policy.max_attempts.max(1) };
        let budget_millis = i64::try_from(self.policy.budget.as_millis()).unwrap_or(i64::MAX);
        for attempt in 1..=attempts {
            match call().await {
                Ok(value) => {
                    self.breaker.answered();
                    return Ok(value);
                }
                Err(PaymentError::Declined { reason }) => {
                    self.breaker.answered();
                    return Err(GatewayError::Declined { reason });
                }
                Err(error) => {
                    tracing::warn!(attempt, provider = self.payments.name(), error = %error, "{what} attempt failed");
                    if attempt == attempts {
                        break;
                    }
                    let delay = self.policy.backoff(attempt, self.jitter());
                    let elapsed = self.clock.now().as_millis() - started.as_millis();
                    if elapsed.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)) > budget_millis {
                        break;
                    }
                    self.sleep.sleep(delay).await;
                }
            }
        }
        let now = self.clock.now();
        self.breaker.failed(admission, now);
        let retry_after_secs = match *self.breaker.lock() {
            BreakerState::Open { until } => seconds_until(now, until),
            _ => RETRY_AFTER_EXHAUSTED_SECS,
        };
        Err(GatewayError::Unavailable { retry_after_secs })
    }

    /// Charges, retrying timeouts under the request's idempotency key.
    ///
    /// # Errors
    /// [`GatewayError::Declined`], or [`GatewayError::Unavailable`] when no attempt got an answer.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<Charge, GatewayError> {
        self.call("charge", || self.payments.charge(request.clone())).await
    }

    /// Refunds, retrying timeouts under the same key.
    ///
    /// # Errors
    /// [`GatewayError::Unavailable`] when no attempt got an answer (a refusal to refund counts as one too).
    pub async fn refund(&self, charge: &Charge, idempotency_key: &str) -> Result<Charge, GatewayError> {
        self.call("refund", || self.payments.refund(charge, idempotency_key)).await
    }

    /// Asks once, through the breaker, whether a charge was made under the key.
    ///
    /// # Errors
    /// [`GatewayError::Unavailable`] when the provider cannot say.
    pub async fn find_charge(&self, order_id: &str, idempotency_key: &str) -> Result<Option<Charge>, GatewayError> {
        self.call("charge lookup", || self.payments.find_charge(order_id, idempotency_key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_half_of_it_jittered() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(2, 0.5), Duration::from_millis(300));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(policy.backoff(10, 1.0), Duration::from_secs(2), "capped at max_delay");
        assert_eq!(policy.backoff(40, 0.0), Duration::from_secs(1), "no overflow far out");
    }

    #[test]
    fn the_default_policy_fits_api_gateways_limit() {
        let policy = RetryPolicy::default();
        let provider_timeout = Duration::from_secs(8);
        // The last attempt starts within the budget and may take a whole provider timeout.
        assert!(policy.budget + provider_timeout < Duration::from_secs(29));
        let waits: Duration = (1..policy.max_attempts).map(|attempt| policy.backoff(attempt, 1.0)).sum();
        assert!(waits < policy.budget);
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_lets_one_probe_through_later() {
        let breaker = Breaker::new(BreakerSettings { failure_threshold: 2, open_for: Duration::from_secs(30) });
        let t0 = Timestamp::from_secs(1_000);
        assert_eq!(breaker.admit(t0), Ok(Admission::Normal));
        breaker.failed(Admission::Normal, t0);
        assert!(!breaker.is_open(t0));
        breaker.failed(Admission::Normal, t0);
        assert!(breaker.is_open(t0));
        assert_eq!(breaker.admit(t0.plus_millis(29_001)), Err(1));
        assert_eq!(breaker.admit(t0.plus_millis(1)), Err(30));
        let later = t0.plus_millis(30_000);
        assert_eq!(breaker.admit(later), Ok(Admission::Probe));
        assert_eq!(breaker.admit(later), Err(1), "only one probe at a time");
        breaker.failed(Admission::Probe, later);
        assert_eq!(breaker.admit(later), Err(30), "a failed probe opens it again");
        let again = later.plus_millis(30_000);
        assert_eq!(breaker.admit(again), Ok(Admission::Probe));
        breaker.answered();
        assert_eq!(breaker.admit(again), Ok(Admission::Normal));
        assert!(!breaker.is_open(again));
    }
}
