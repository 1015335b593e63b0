//! Idempotency keys (`Idempotency-Key`, as Stripe defines it), written once for any endpoint that must not
//! act twice: the record of what a key did, kept per user for [`RECORD_TTL_HOURS`] hours.
//!
//! A request [`Idempotency::begin`]s with its key and a fingerprint of what it asks. The first one takes the
//! key ([`Begun::Fresh`], with a new `reference` the endpoint may use as the id of what it creates) and
//! holds it "in progress" for a lease of [`Idempotency::lease`]. Meanwhile a second request with the key is
//! told [`Begun::InUse`]; one with another fingerprint [`Begun::Mismatch`]. When the first ends it
//! [`Idempotency::finish`]es with its response, which later requests get as [`Begun::Replay`], or with
//! [`Finish::Retryable`] (the outcome was not final: a provider timeout, a server error), which lets the next
//! request run again with the same reference. A request whose process died leaves its lease to expire; the
//! next request then takes the key over ([`Begun::Resumed`]) with the same reference, so an endpoint that
//! keys what it creates by the reference never creates it twice.
//!
//! Layout: partition `IDEMPOTENCY#<user id>`, sort key the SHA-256 of the key (hex), expiring with the record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::account::UserId;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, StoreError};
use crate::ports::Timestamp;

/// How long a key's record is kept.
pub const RECORD_TTL_HOURS: i64 = 24;
/// How long a request holds its key before another may take it over (longer than any request runs: API
/// Gateway stops at 29 s).
pub const DEFAULT_LEASE_SECS: i64 = 60;
/// The longest key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// A validated idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Reads a header value: an RFC 8941 string (`"key"`, as the IETF draft writes it) or the bare key (as
    /// Stripe's clients send it); both name the same key.
    ///
    /// # Errors
    /// `InvalidKey` when the value is neither, or the key is empty, too long or not visible ASCII.
    pub fn parse(header: &str) -> Result<Self, InvalidKey> {
        let key = match header.strip_prefix('"') {
            Some(rest) => {
                let inner = rest.strip_suffix('"').ok_or(InvalidKey)?;
                // An sf-string may escape `"` and `\`; anything else after a backslash is malformed.
                let mut key = String::with_capacity(inner.len());
                let mut chars = inner.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => key.push(escaped),
                            _ => return Err(InvalidKey),
                        },
                        '"' => return Err(InvalidKey),
                        other => key.push(other),
                    }
                }
                key
            }
            None => header.to_owned(),
        };
        let visible = key.bytes().all(|byte| byte.is_ascii_graphic());
        if key.is_empty() || key.len() > MAX_KEY_CHARS || !visible { Err(InvalidKey) } else { Ok(Self(key)) }
    }
}

/// Why an `Idempotency-Key` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key is 1 to 255 visible ASCII characters, bare or as a quoted string")]
pub struct InvalidKey;

/// A response saved for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedResponse {
    /// The status code.
    pub status: u16,
    /// The body (JSON text).
    pub body: String,
    /// The `Location` header, if any.
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    InProgress { lease_until: Timestamp },
    Retryable,
    Done { response: SavedResponse },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    reference: String,
    created_at: Timestamp,
    #[serde(flatten)]
    state: State,
}

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key is new: run, with this reference; then finish.
    Fresh(Lease),
    /// An earlier request with the key did not finish (its lease expired, or it ended retryable): run again,
    /// with its reference; then finish.
    Resumed(Lease),
    /// The key was used for this very request, which ended with this response.
    Replay(SavedResponse),
    /// A request with the key is still running.
    InUse,
    /// The key was used for a different request.
    Mismatch,
}

/// A held key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The reference minted when the key was first used (the same across resumptions).
    pub reference: String,
    key: ItemKey,
    version: u64,
    record: Record,
}

/// How a request that held a key ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// With a final response, replayed to every later request with the key.
    Done(SavedResponse),
    /// Without a final outcome: the next request with the key runs again.
    Retryable,
}

/// The idempotency records in a store.
#[derive(Debug, Clone)]
pub struct Idempotency<S> {
    store: S,
    lease_secs: i64,
}

/// How often `begin` re-reads when other requests with the key change its record in between.
const BEGIN_ATTEMPTS: usize = 5;

impl<S: ItemStore> Idempotency<S> {
    /// Records in `store`, with the default lease.
    pub fn new(store: S) -> Self {
        Self { store, lease_secs: DEFAULT_LEASE_SECS }
    }

    /// These records with another lease, in seconds (at least 1): how long a request holds its key before a
    /// retry may take it over. It must be longer than any request runs.
    #[must_use]
    pub fn with_lease(mut self, lease_secs: i64) -> Self {
        self.lease_secs = lease_secs.max(1);
        self
    }

    /// The lease a request holds its key for, in seconds.
    pub fn lease(&self) -> i64 {
        self.lease_secs
    }

    /// A fingerprint of a request: its method, its route and its body as canonical JSON (keys sorted).
    pub fn fingerprint(method: &str, route: &str, body: &serde_json::Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b"\n");
        hasher.update(route.as_bytes());
        hasher.update(b"\n");
        // serde_json's map is ordered by key (no `preserve_order`), so this text is canonical.
        hasher.update(body.to_string().as_bytes());
        hex(&hasher.finalize())
    }

    fn record_key(user: &UserId, key: &IdempotencyKey) -> ItemKey {
        ItemKey::new(user_partition(user), hex(&Sha256::digest(key.0.as_bytes())))
    }

    fn item(key: &ItemKey, version: u64, record: &Record) -> Result<Item, StoreError> {
        let data = serde_json::to_value(record).map_err(|error| StoreError::Internal(error.into()))?;
        let mut item = Item::new(key.clone(), version, data);
        item.expires_at = Some(record.created_at.as_secs() + RECORD_TTL_HOURS * 3600);
        Ok(item)
    }

    /// Takes the key for a request, or says why not.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or other requests keep changing the record.
    pub async fn begin(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
        new_reference: impl Fn() -> String,
    ) -> Result<Begun, StoreError> {
        let item_key = Self::record_key(user, key);
        let held = State::InProgress { lease_until: now.plus_millis(self.lease_secs * 1000) };
        for _ in 0..BEGIN_ATTEMPTS {
            let Some(item) = self.store.get(&item_key).await? else {
                let record = Record { fingerprint: fingerprint.to_owned(), reference: new_reference(), created_at: now, state: held.clone() };
                match self.store.put(Self::item(&item_key, 1, &record)?, Condition::NotExists).await {
                    Ok(()) => return Ok(Begun::Fresh(Lease { reference: record.reference.clone(), key: item_key, version: 1, record })),
                    Err(StoreError::ConditionFailed { .. }) => continue,
                    Err(error) => return Err(error),
                }
            };
            let version = item.version;
            let record: Record = serde_json::from_value(item.data)
                .map_err(|error| StoreError::Internal(anyhow::Error::new(error).context("decode an idempotency record")))?;
            if record.fingerprint != fingerprint {
                return Ok(Begun::Mismatch);
            }
            match &record.state {
                State::Done { response } => return Ok(Begun::Replay(response.clone())),
                State::InProgress { lease_until } if now < *lease_until => return Ok(Begun::InUse),
                State::InProgress { .. } | State::Retryable => {
                    let record = Record { state: held.clone(), ..record };
                    match self.store.put(Self::item(&item_key, version + 1, &record)?, Condition::VersionEquals(version)).await {
                        Ok(()) => {
                            return Ok(Begun::Resumed(Lease {
                                reference: record.reference.clone(),
                                key: item_key,
                                version: version + 1,
                                record,
                            }));
                        }
                        Err(StoreError::ConditionFailed { .. }) => continue,
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// Records how the request that holds `lease` ended. If its lease expired and another request took the key
    /// over meanwhile, that request's record stands and this call changes nothing.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn finish(&self, lease: Lease, finish: Finish) -> Result<(), StoreError> {
        let state = match finish {
            Finish::Done(response) => State::Done { response },
            Finish::Retryable => State::Retryable,
        };
        let record = Record { state, ..lease.record };
        match self.store.put(Self::item(&lease.key, lease.version + 1, &record)?, Condition::VersionEquals(lease.version)).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => {
                tracing::warn!("an idempotency record was taken over before its request finished");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// The partition of a user's idempotency records (an erasure removes it whole).
pub fn user_partition(user: &UserId) -> String {
    format!("IDEMPOTENCY#{user}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryItemStore};

    #[test]
    fn a_key_is_the_same_bare_or_quoted_and_must_be_visible_ascii() {
        assert_eq!(IdempotencyKey::parse("abc-123"), IdempotencyKey::parse("\"abc-123\""));
        assert_eq!(IdempotencyKey::parse(r#""a\"b\\c""#).map(|key| key.0), Ok(r#"a"b\c"#.to_owned()));
        let longest = "k".repeat(MAX_KEY_CHARS);
        assert!(IdempotencyKey::parse(&longest).is_ok());
        for bad in ["", "\"\"", "has space", "\"unterminated", "tab\there", "é", &format!("{longest}k"), r#""a\nb""#, r#""a"b""#] {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidKey), "{bad}");
        }
    }

    #[test]
    fn a_fingerprint_ignores_key_order_but_not_values() {
        let one = Idempotency::<MemoryItemStore>::fingerprint("POST", "/checkout", &serde_json::json!({"a": 1, "b": 2}));
        let same = Idempotency::<MemoryItemStore>::fingerprint("POST", "/checkout", &serde_json::json!({"b": 2, "a": 1}));
        let other = Idempotency::<MemoryItemStore>::fingerprint("POST", "/checkout", &serde_json::json!({"a": 1, "b": 3}));
        assert_eq!(one, same);
        assert_ne!(one, other);
    }

    #[tokio::test]
    async fn a_key_runs_once_replays_refuses_in_flight_and_is_taken_over_after_its_lease() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let records = Idempotency::new(MemoryItemStore::new(clock.clone()));
        let user = UserId::parse("u1").unwrap_or_else(|error| panic!("{error}"));
        let key = IdempotencyKey::parse("k1").unwrap_or_else(|error| panic!("{error}"));
        let now = || crate::ports::Clock::now(&clock);
        let begin = |fingerprint: &'static str| records.begin(&user, &key, fingerprint, now(), || "ref-1".to_owned());
        let Ok(Begun::Fresh(lease)) = begin("fp").await else { panic!("the first request did not take the key") };
        assert_eq!(lease.reference, "ref-1");
        assert_eq!(begin("fp").await.ok(), Some(Begun::InUse));
        assert_eq!(begin("other").await.ok(), Some(Begun::Mismatch));
        clock.advance(std::time::Duration::from_secs(61));
        let Ok(Begun::Resumed(resumed)) = records.begin(&user, &key, "fp", now(), || "ref-2".to_owned()).await else {
            panic!("an expired lease was not taken over")
        };
        assert_eq!(resumed.reference, "ref-1", "a takeover keeps the reference");
        // The first request finishing late changes nothing: the takeover holds the record.
        records.finish(lease, Finish::Done(SavedResponse { status: 500, body: String::new(), location: None })).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(begin("fp").await.ok(), Some(Begun::InUse));
        let saved = SavedResponse { status: 201, body: "{}".to_owned(), location: Some("/orders/ref-1".to_owned()) };
        records.finish(resumed, Finish::Done(saved.clone())).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(begin("fp").await.ok(), Some(Begun::Replay(saved)));
        let other_user = UserId::parse("u2").unwrap_or_else(|error| panic!("{error}"));
        let theirs = records.begin(&other_user, &key, "fp", now(), || "ref-3".to_owned()).await;
        assert!(matches!(theirs, Ok(Begun::Fresh(_))), "keys are per user: {theirs:?}");
        clock.advance(std::time::Duration::from_secs(24 * 3600));
        assert!(matches!(begin("other").await, Ok(Begun::Fresh(_))), "a record expires after 24 hours");
    }

    #[tokio::test]
    async fn a_retryable_outcome_lets_the_next_request_run_again_with_the_same_reference() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let records = Idempotency::new(MemoryItemStore::new(clock.clone()));
        let user = UserId::parse("u1").unwrap_or_else(|error| panic!("{error}"));
        let key = IdempotencyKey::parse("k1").unwrap_or_else(|error| panic!("{error}"));
        let now = crate::ports::Clock::now(&clock);
        let Ok(Begun::Fresh(lease)) = records.begin(&user, &key, "fp", now, || "ref-1".to_owned()).await else { panic!("not fresh") };
        records.finish(lease, Finish::Retryable).await.unwrap_or_else(|error| panic!("{error}"));
        let again = records.begin(&user, &key, "fp", now, || "ref-2".to_owned()).await;
        assert!(matches!(again, Ok(Begun::Resumed(Lease { ref reference, .. })) if reference == "ref-1"), "{again:?}");
    }
}
