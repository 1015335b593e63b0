//! Stored data exports: the JSON document the privacy job builds for a user who asked (`POST /me/export`),
//! kept [`EXPORT_TTL_DAYS`] days for its owner to fetch (`GET /me/export`).
//!
//! Layout: partition `EXPORT#<user id>`, the document's text cut into parts (`PART#0000`, ...) of at most
//! [`PART_BYTES`] (an item holds at most 400 KB on DynamoDB) and a `MANIFEST` naming the parts, the request and
//! the expiry. The parts are written first and the manifest last, in one transaction with the account's
//! "export done" (`accounts::Accounts::finish_export`), so a document is visible only whole. Every item
//! expires with the document.

use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::ports::Timestamp;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, Query, StoreError, Write};

/// How long an export is kept.
pub const EXPORT_TTL_DAYS: i64 = 7;
/// The largest part of a document's text, in bytes.
pub const PART_BYTES: usize = 128 * 1024;

fn pk(user: &UserId) -> String {
    format!("EXPORT#{user}")
}

fn manifest_key(user: &UserId) -> ItemKey {
    ItemKey::new(pk(user), "MANIFEST")
}

/// What the manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The request it answers.
    pub requested_at: Timestamp,
    /// When it was built.
    pub created_at: Timestamp,
    /// When it is deleted.
    pub expires_at: Timestamp,
    /// How many parts.
    pub parts: usize,
}

/// The exports' repository.
#[derive(Debug, Clone)]
pub struct Exports<S> {
    store: S,
}

impl<S: ItemStore> Exports<S> {
    /// Exports on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Stores the parts of `document` and returns its manifest and the write that publishes it (for the
    /// transaction that marks the request done).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn store_parts(&self, user: &UserId, requested_at: Timestamp, document: &str, now: Timestamp) -> Result<(Manifest, Write), StoreError> {
        let expires_at = now.plus_millis(EXPORT_TTL_DAYS * 86_400_000);
        let mut parts = 0;
        let mut rest = document;
        while !rest.is_empty() || parts == 0 {
            let mut end = rest.len().min(PART_BYTES);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (part, tail) = rest.split_at(end);
            let mut item = Item::new(ItemKey::new(pk(user), format!("PART#{parts:04}")), 1, serde_json::Value::String(part.to_owned()));
            item.expires_at = Some(expires_at.as_secs());
            self.store.put(item, Condition::None).await?;
            parts += 1;
            rest = tail;
        }
        let manifest = Manifest { requested_at, created_at: now, expires_at, parts };
        let data = serde_json::to_value(&manifest).map_err(|error| StoreError::Internal(error.into()))?;
        let mut item = Item::new(manifest_key(user), 1, data);
        item.expires_at = Some(expires_at.as_secs());
        Ok((manifest, Write::Put { item, condition: Condition::None }))
    }

    /// The user's export, if one is stored and whole: its manifest and its document's text.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the stored export is damaged.
    pub async fn get(&self, user: &UserId) -> Result<Option<(Manifest, String)>, StoreError> {
        let Some(item) = self.store.get(&manifest_key(user)).await? else { return Ok(None) };
        let manifest: Manifest = serde_json::from_value(item.data).map_err(|error| StoreError::Internal(error.into()))?;
        let mut text = String::new();
        let mut cursor = None;
        let mut found = 0;
        loop {
            let page = self.store.query(&Query::new(pk(user), "PART#", 100).after(cursor.take())).await?;
            for part in page.items {
                if found < manifest.parts {
                    text.push_str(part.data.as_str().unwrap_or_default());
                    found += 1;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if found != manifest.parts {
            return Err(StoreError::Internal(anyhow::anyhow!("an export is missing parts")));
        }
        Ok(Some((manifest, text)))
    }

    /// Removes every item of the user's exports.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn delete_all(&self, user: &UserId) -> Result<(), StoreError> {
        clear_partition(&self.store, &pk(user)).await
    }
}

/// Deletes every item of a partition.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn clear_partition<S: ItemStore>(store: &S, pk: &str) -> Result<(), StoreError> {
    loop {
        let page = store.query(&Query::new(pk, "", 100)).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        for item in page.items {
            store.delete(&item.key, Condition::None).await?;
        }
    }
}
