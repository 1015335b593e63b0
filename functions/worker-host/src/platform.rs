//! The Workers runtime's clock, id generator and timer: JavaScript's `Date.now()`, `crypto.getRandomValues`
//! and `setTimeout`.
//!
//! `SystemTime::now()` panics on wasm32-unknown-unknown and there is no tokio here, so these are the only
//! time, randomness and waiting this host uses. None may panic: a failed random read falls back to the
//! monotonic counter, which keeps ids unique within the isolate, and is logged.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use shared::ports::{Clock, IdGen, Random, RandomError, Sleep, SleepFuture, Timestamp};
use shared::ports::mailer::{Mail, MailError, MailFuture, Mailer};
use worker::send::SendFuture;

/// `Date.now()`, never going backwards within an isolate.
///
/// Workers advance `Date.now()` only across I/O, so several calls in one burst of computation agree.
#[derive(Debug, Default)]
pub(crate) struct JsClock {
    last: AtomicI64,
}

impl Clock for JsClock {
    fn now(&self) -> Timestamp {
        // Milliseconds since the epoch fit an i64 with room to spare; a NaN becomes 0 and is then clamped.
        #[allow(clippy::cast_possible_truncation)]
        let now = worker::js_sys::Date::now() as i64;
        let previous = self.last.fetch_max(now, Ordering::Relaxed);
        Timestamp::from_millis(now.max(previous))
    }
}

/// 32 lowercase hex digits: 48 bits of milliseconds, then 80 random bits, made monotonic within the isolate
/// (an id made in the same or an earlier millisecond than the previous one is the previous one plus one), so
/// ids sort in the order they were made, as the `IdGen` contract requires.
#[derive(Debug, Default)]
pub(crate) struct CryptoIds {
    clock: JsClock,
    last: Mutex<(i64, u128)>,
}

const RANDOM_BITS: u32 = 80;

impl IdGen for CryptoIds {
    fn new_id(&self) -> String {
        let millis = self.clock.now().as_millis().clamp(0, (1 << 48) - 1);
        let mut random = [0_u8; 16];
        let fresh = match getrandom::getrandom(&mut random[6..]) {
            Ok(()) => Some(u128::from_be_bytes(random)),
            Err(error) => {
                tracing::error!(error = %error, "crypto.getRandomValues failed; using the counter");
                None
            }
        };
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last_millis, last_random) = *last;
        let mask = (1_u128 << RANDOM_BITS) - 1;
        let next = match fresh {
            Some(random) if millis > last_millis => (millis, random & mask),
            _ if last_random < mask => (last_millis.max(millis), last_random + 1),
            // The 80-bit counter of this millisecond is exhausted (not reachable in practice): borrow the next one.
            _ => (last_millis.max(millis) + 1, 0),
        };
        *last = next;
        format!("{:012x}{:020x}", next.0, next.1)
    }
}

/// Secret random bytes from `crypto.getRandomValues` (through `getrandom`'s `js` backend). Unlike ids, a failure
/// here is an error: a salt or a refresh token must never fall back to something guessable.
impl Random for CryptoIds {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        getrandom::getrandom(buffer)
            .map_err(|error| RandomError::Internal(anyhow::anyhow!("crypto.getRandomValues failed: {error}")))
    }
}

/// The JavaScript timer (`setTimeout`, through `worker::Delay`): what the payment retries' backoff waits on.
///
/// `Delay` holds JavaScript objects and is not `Send`; the `Sleep` port asks for a `Send` future because native
/// hosts run on threads. A Worker isolate runs one thread, so `SendFuture` states that without changing
/// anything. `Date.now()` moves across the timer, so [`JsClock`] sees at least `duration` pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsTimer;

/// `setTimeout` takes a signed 32-bit number of milliseconds (about 24.8 days); longer waits are cut to it.
const LONGEST_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

impl Sleep for JsTimer {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(SendFuture::new(worker::Delay::from(duration.min(LONGEST_TIMEOUT))))
    }
}

/// The mailer on the Workers `send_email` binding: the mail's RFC 5322 rendering sent once per recipient (the
/// binding takes one envelope recipient per message), `From` equal to the envelope sender as the binding
/// requires. `wrangler dev` simulates the binding by writing each message to an `.eml` file and logging its path
/// (and gives it a `Message-ID` of its own).
pub(crate) struct BindingMailer {
    binding: worker::send::SendWrapper<worker::SendEmail>,
}

impl BindingMailer {
    /// The mailer on `binding`.
    pub(crate) fn new(binding: worker::SendEmail) -> Self {
        Self { binding: worker::send::SendWrapper::new(binding) }
    }

    async fn send_now(&self, mail: &Mail) -> Result<(), MailError> {
        let raw = mail.to_rfc5322()?;
        for to in mail.to() {
            let message = worker::EmailMessage::new(mail.from().as_ref(), to.as_ref(), &raw)
                .map_err(|error| MailError::Invalid(format!("the binding refused the message: {:?}", error.message())))?;
            self.binding
                .send(&message)
                .await
                .map_err(|error| MailError::Unavailable(format!("send_email failed: {}", String::from(error.message()))))?;
        }
        Ok(())
    }
}

impl Mailer for BindingMailer {
    fn name(&self) -> &'static str {
        "send_email"
    }

    fn send<'a>(&'a self, mail: &'a Mail) -> MailFuture<'a> {
        Box::pin(SendFuture::new(self.send_now(mail)))
    }
}
