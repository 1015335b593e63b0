//! The privacy queue's jobs: a user's request for an export of their data, and for its erasure.
//!
//! The `me` function writes them into the outbox in the same transaction that records the request on the
//! account (`accounts::Accounts::request_export`, `request_erasure`); the privacy job consumes them. Each job
//! names the account and the time of the request, never any personal data, so the message itself can be
//! logged and dead-lettered without leaking anything.

use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::outbox::{Event, EventError, Topic};
use crate::ports::Timestamp;

/// A job on the privacy queue, as `{"type": "privacy.export" | "privacy.erase", "user_id": .., "requested_at": ..}`
/// (`requested_at` in milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PrivacyJob {
    /// Build a JSON document of the account's data that the user can fetch.
    #[serde(rename = "privacy.export")]
    Export {
        /// Whose data.
        user_id: UserId,
        /// When the user asked.
        requested_at: Timestamp,
    },
    /// Remove the account's personal data, keeping its orders anonymised.
    #[serde(rename = "privacy.erase")]
    Erase {
        /// Whose data.
        user_id: UserId,
        /// When the user asked.
        requested_at: Timestamp,
    },
}

impl PrivacyJob {
    /// The outbox event that carries this job. Its id is unique per request: an account is erased once, and
    /// each export request is told apart by its time.
    ///
    /// # Errors
    /// [`EventError`] only if the job could not be encoded (user ids are always valid deduplication ids).
    pub fn event(&self) -> Result<Event, EventError> {
        let (id, requested_at) = match self {
            PrivacyJob::Export { user_id, requested_at } => {
                (format!("privacy.export.{user_id}.{}", requested_at.as_millis()), *requested_at)
            }
            PrivacyJob::Erase { user_id, requested_at } => (format!("privacy.erase.{user_id}"), *requested_at),
        };
        Event::new(Topic::Privacy, id, self, requested_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privacy_job_names_the_account_and_the_time_and_nothing_else() {
        let user_id = UserId::parse("u-123").unwrap_or_else(|e| panic!("{e}"));
        let job = PrivacyJob::Erase { user_id: user_id.clone(), requested_at: Timestamp::from_millis(1_700_000_000_000) };
        let event = job.event().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.id, "privacy.erase.u-123");
        assert_eq!(event.topic, Topic::Privacy);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body, serde_json::json!({"type": "privacy.erase", "user_id": "u-123", "requested_at": 1_700_000_000_000_i64}));
        assert_eq!(serde_json::from_str::<PrivacyJob>(&event.body).ok(), Some(job));
        let export = PrivacyJob::Export { user_id, requested_at: Timestamp::from_millis(5) }.event().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(export.id, "privacy.export.u-123.5");
    }
}
