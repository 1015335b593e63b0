//! The item store port, shaped like DynamoDB's item model: the strictest common ground of the three hosts.
//!
//! Items are addressed by a partition key and a sort key, carry a version and an optional expiry, and hold a
//! JSON document. Typed repositories (`catalog`) are written once on top of this trait, so each host needs one
//! storage adapter, not one per aggregate. This module defines the contract only; it performs no IO.

use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The largest number of writes one [`ItemStore::transact`] call may hold (DynamoDB's limit).
pub const MAX_TRANSACTION_WRITES: usize = 100;
/// The most keys one [`ItemStore::get_many`] call may ask for (DynamoDB's `BatchGetItem` limit).
pub const MAX_GET_MANY: usize = 100;
/// The largest page one [`ItemStore::query`] call may ask for.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// The longest partition or sort key, in bytes (DynamoDB allows 2048 and 1024; we keep the smaller one).
pub const MAX_KEY_BYTES: usize = 1024;

/// The address of an item: partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    /// The partition key: items are only ever queried within one partition.
    pub pk: String,
    /// The sort key: items of one partition are returned in byte-wise ascending order of it.
    pub sk: String,
}

impl ItemKey {
    /// A key from its two parts.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }

    fn check(&self) -> Result<(), StoreError> {
        for (name, part) in [("partition key", &self.pk), ("sort key", &self.sk)] {
            if part.is_empty() || part.len() > MAX_KEY_BYTES {
                return Err(StoreError::Invalid(format!("the {name} must be 1 to {MAX_KEY_BYTES} bytes")));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.pk, self.sk)
    }
}

/// One stored item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Where it is stored.
    pub key: ItemKey,
    /// The version the writer gives it; [`Condition::VersionEquals`] compares against it.
    pub version: u64,
    /// When it expires, in seconds since the Unix epoch (DynamoDB's TTL unit).
    /// From that second on it is invisible to every read and counts as absent for every condition.
    pub expires_at: Option<i64>,
    /// The document.
    pub data: Value,
    /// A whole number kept beside the document that [`Write::Add`] changes atomically (stock, a usage count);
    /// `None` for items that are not counters. Stored as the backend's own number, so the backend can check a
    /// bound and add in one step, which it cannot do inside the JSON document.
    pub counter: Option<i64>,
}

impl Item {
    /// An item with no expiry and no counter.
    pub fn new(key: ItemKey, version: u64, data: Value) -> Self {
        Self { key, version, expires_at: None, data, counter: None }
    }

    /// This item with a counter.
    #[must_use]
    pub fn with_counter(mut self, counter: i64) -> Self {
        self.counter = Some(counter);
        self
    }

    /// Whether the item is expired at `now_secs` (seconds since the Unix epoch).
    pub fn is_expired_at(&self, now_secs: i64) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now_secs)
    }
}

/// The condition a write must meet against the item currently stored under its key.
/// An expired item counts as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No condition.
    None,
    /// An item must be stored under the key.
    Exists,
    /// No item may be stored under the key.
    NotExists,
    /// An item must be stored under the key, with this version.
    VersionEquals(u64),
}

impl Condition {
    /// Whether the condition holds given the version of the live item under the key, if any.
    pub fn holds(self, current_version: Option<u64>) -> bool {
        match self {
            Condition::None => true,
            Condition::Exists => current_version.is_some(),
            Condition::NotExists => current_version.is_none(),
            Condition::VersionEquals(expected) => current_version == Some(expected),
        }
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Store an item (replacing any item under its key) if the condition holds.
    Put {
        /// The item to store.
        item: Item,
        /// The condition on the item currently under its key.
        condition: Condition,
    },
    /// Remove the item under the key if the condition holds.
    Delete {
        /// The key.
        key: ItemKey,
        /// The condition on the item currently under the key.
        condition: Condition,
    },
    /// Write nothing, but fail the transaction unless the condition holds.
    Check {
        /// The key.
        key: ItemKey,
        /// The condition on the item currently under the key.
        condition: Condition,
    },
    /// Add `delta` (which may be negative) to the counter of the live item under `key`, and 1 to its version,
    /// leaving its document and expiry as they are. Its condition: the item exists, has a counter, and the new
    /// value is at least `floor` and at most `ceiling` where they are given. This is the atomic "take 3 if at
    /// least 3 are left" that stock and usage limits need, without reading first: DynamoDB (`SET n = n + :d`
    /// with a condition on `n`), SQLite and D1 (`UPDATE .. SET counter = counter + ?`) do it natively.
    Add {
        /// The counter's item.
        key: ItemKey,
        /// What to add.
        delta: i64,
        /// The smallest value the counter may take, if any.
        floor: Option<i64>,
        /// The largest value the counter may take, if any.
        ceiling: Option<i64>,
    },
}

/// Whether an [`Write::Add`] may apply to a counter currently at `current` (`None`: no live item, or no counter).
pub fn add_holds(current: Option<i64>, delta: i64, floor: Option<i64>, ceiling: Option<i64>) -> bool {
    let Some(value) = current.and_then(|current| current.checked_add(delta)) else { return false };
    floor.is_none_or(|floor| value >= floor) && ceiling.is_none_or(|ceiling| value <= ceiling)
}

impl Write {
    /// The key this write addresses.
    pub fn key(&self) -> &ItemKey {
        match self {
            Write::Put { item, .. } => &item.key,
            Write::Delete { key, .. } | Write::Check { key, .. } | Write::Add { key, .. } => key,
        }
    }

    /// The condition this write carries on the item's existence and version. A [`Write::Add`] needs the item
    /// to exist ([`Condition::Exists`]); its bounds are checked with [`add_holds`].
    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } | Write::Check { condition, .. } => {
                *condition
            }
            Write::Add { .. } => Condition::Exists,
        }
    }
}

/// Checks what every adapter must refuse before touching its backend: an empty or oversized transaction,
/// two writes to one key (DynamoDB refuses that too), or a malformed key.
///
/// # Errors
/// [`StoreError::Invalid`] naming the problem.
pub fn validate_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for write in writes {
        write.key().check()?;
        if !seen.insert(write.key()) {
            return Err(StoreError::Invalid(format!("the transaction writes {} twice", write.key())));
        }
    }
    Ok(())
}

/// Checks the keys of a [`ItemStore::get_many`] before an adapter reads them.
///
/// # Errors
/// [`StoreError::Invalid`] for more than [`MAX_GET_MANY`] keys, a repeated key, or a malformed one.
pub fn validate_keys(keys: &[ItemKey]) -> Result<(), StoreError> {
    if keys.len() > MAX_GET_MANY {
        return Err(StoreError::Invalid(format!("at most {MAX_GET_MANY} keys in one read, not {}", keys.len())));
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for key in keys {
        validate_key(key)?;
        if !seen.insert(key) {
            return Err(StoreError::Invalid(format!("the read asks for {key} twice")));
        }
    }
    Ok(())
}

/// Checks a single key before an adapter uses it.
///
/// # Errors
/// [`StoreError::Invalid`] when a key part is empty or too long.
pub fn validate_key(key: &ItemKey) -> Result<(), StoreError> {
    key.check()
}

/// Where a query resumes: after the item with this sort key.
///
/// The port owns the encoding, so a cursor made by one adapter means the same to every other and survives
/// deletion of the item it points after. Callers treat [`Cursor::encode`] as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    after_sk: String,
}

impl Cursor {
    /// The cursor that resumes after `item`.
    pub fn after(item: &Item) -> Self {
        Self { after_sk: item.key.sk.clone() }
    }

    /// The sort key the query resumes after (for adapters).
    pub fn after_sort_key(&self) -> &str {
        &self.after_sk
    }

    /// A cursor resuming after the given sort key (for adapters that get the last key from their backend).
    pub fn after_sort_key_of(sk: impl Into<String>) -> Self {
        Self { after_sk: sk.into() }
    }

    /// The opaque text form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.after_sk.as_bytes())
    }

    /// Reads the text form made by [`Cursor::encode`].
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] when the text is not a cursor.
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| StoreError::InvalidCursor)?;
        let after_sk = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
        if after_sk.is_empty() || after_sk.len() > MAX_KEY_BYTES {
            return Err(StoreError::InvalidCursor);
        }
        Ok(Self { after_sk })
    }
}

/// A query over one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The partition.
    pub pk: String,
    /// Only items whose sort key starts with this (empty: all).
    pub sk_prefix: String,
    /// The most items to return, 1 to [`MAX_QUERY_LIMIT`].
    pub limit: usize,
    /// Resume after this point (from a previous [`Page::next`]).
    pub after: Option<Cursor>,
}

impl Query {
    /// The first page of a partition, restricted to a sort-key prefix.
    pub fn new(pk: impl Into<String>, sk_prefix: impl Into<String>, limit: usize) -> Self {
        Self { pk: pk.into(), sk_prefix: sk_prefix.into(), limit, after: None }
    }

    /// This query, resumed after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    /// Checks the query before an adapter runs it.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the limit is out of range or the partition key is empty.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.limit > MAX_QUERY_LIMIT {
            return Err(StoreError::Invalid(format!("a query limit is 1 to {MAX_QUERY_LIMIT}")));
        }
        if self.pk.is_empty() || self.pk.len() > MAX_KEY_BYTES {
            return Err(StoreError::Invalid(format!("the partition key must be 1 to {MAX_KEY_BYTES} bytes")));
        }
        Ok(())
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// Live items in ascending sort-key order.
    pub items: Vec<Item>,
    /// Where the next page starts; `None` when the partition (within the prefix) is exhausted.
    /// A page may be shorter than the limit and still have a next page (DynamoDB does that), so callers
    /// loop on `next`, never on the page length.
    pub next: Option<Cursor>,
}

impl Page {
    /// A page from up to `limit + 1` items read in order: the extra item, if present, only proves that a next
    /// page exists, so it is dropped and the cursor points after the last item kept.
    pub fn from_overfetch(mut items: Vec<Item>, limit: usize) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(Cursor::after)
        } else {
            None
        };
        Self { items, next }
    }
}

/// What can go wrong with the item store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's condition did not hold; nothing was written.
    /// `index` is the position of the failed write in the transaction (0 for a single write).
    #[error("condition failed on write {index} ({key})")]
    ConditionFailed {
        /// The position of the first write whose condition failed.
        index: usize,
        /// Its key.
        key: ItemKey,
    },
    /// The cursor was not made by [`Cursor::encode`].
    #[error("invalid cursor")]
    InvalidCursor,
    /// The request breaks a limit of the port (key size, transaction size, duplicate keys, query limit).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Concurrent transactions on the same items kept cancelling this one (DynamoDB's `TransactionConflict`)
    /// after the adapter's own retries; nothing was written, and the caller may try again shortly.
    #[error("the transaction lost to concurrent ones on the same items; nothing was written")]
    Contention,
    /// Anything else (backend unreachable, throttled past retries, corrupt data).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Items addressed by partition and sort key, with conditional writes, ordered queries, expiry and transactions.
///
/// Contract (checked by `contract::item_store`), which every adapter MUST keep:
/// - reads are strongly consistent: a read sees every write that returned before it started;
/// - an item whose `expires_at` is at or before the current second is invisible to `get` and `query` and
///   counts as absent for every [`Condition`], whether or not the backend has deleted it yet;
/// - a write whose condition fails MUST return [`StoreError::ConditionFailed`] and change nothing;
/// - `transact` applies all its writes or none; when a condition fails it MUST return
///   [`StoreError::ConditionFailed`] with the index of a write whose condition failed;
/// - a [`Write::Add`] changes only the counter (by exactly `delta`) and the version (by one), atomically with
///   the rest of its transaction, and fails as a condition when the item is absent, has no counter, or the new
///   value would leave its bounds; a `put` stores the item's counter as given (`None` removes it);
/// - a transaction cancelled by concurrent transactions (not by its own conditions) is retried by the adapter
///   for a bounded time, then reported as [`StoreError::Contention`], never as [`StoreError::Internal`];
/// - `query` returns live items of one partition whose sort key starts with the prefix, in ascending
///   byte-wise order of the sort key, resuming strictly after the cursor, so that following `next` visits
///   every item once.
pub trait ItemStore: Send + Sync + 'static {
    /// The live item under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a malformed key, [`StoreError::Internal`] when the backend fails.
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send;

    /// The live items under `keys` (at most [`MAX_GET_MANY`], each once), in the order of `keys`, leaving out
    /// the absent and expired ones. An adapter whose backend reads many keys in one call overrides this; the
    /// default sends the gets at once.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for too many keys, a repeated key or a malformed one; otherwise as `get`.
    fn get_many(&self, keys: &[ItemKey]) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        async move {
            validate_keys(keys)?;
            let items = futures::future::try_join_all(keys.iter().map(|key| self.get(key))).await?;
            Ok(items.into_iter().flatten().collect())
        }
    }

    /// Stores `item` if `condition` holds for the item currently under its key.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] (index 0) when the condition does not hold; otherwise as `get`.
    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the item under `key` if `condition` holds. Deleting an absent item with [`Condition::None`]
    /// succeeds.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] (index 0) when the condition does not hold; otherwise as `get`.
    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One page of the items of a partition, in sort-key order.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a limit out of range; otherwise as `get`.
    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Applies every write, or none of them.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] naming a failed write; [`StoreError::Invalid`] for an empty transaction,
    /// one over [`MAX_TRANSACTION_WRITES`] or one that addresses a key twice; otherwise as `get`.
    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<S: ItemStore> ItemStore for std::sync::Arc<S> {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        (**self).get(key)
    }
    fn get_many(&self, keys: &[ItemKey]) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        (**self).get_many(keys)
    }
    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put(item, condition)
    }
    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key, condition)
    }
    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send {
        (**self).query(query)
    }
    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).transact(writes)
    }
}
