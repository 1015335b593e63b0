//! The operating system's clock and random ids, for native hosts (Lambda and local). Not for wasm32, where
//! `SystemTime::now()` panics: the Workers host brings its own.
//! Secret random bytes come from the operating system's generator through `getrandom`.

use crate::ports::{Clock, IdGen, Random, RandomError, Timestamp};

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// UUIDv7 ids in simple (hyphen-free) form: time-ordered, random in their low bits.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidIds;

impl IdGen for UuidIds {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
}

/// The id generator's secret random bytes come from the operating system, like [`OsRandom`]'s.
impl Random for UuidIds {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        OsRandom.fill(buffer)
    }
}

/// Secret random bytes from the operating system's generator (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        getrandom::getrandom(buffer)
            .map_err(|error| RandomError::Internal(anyhow::anyhow!("the operating system's random source failed: {error}")))
    }
}
