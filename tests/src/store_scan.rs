//! Everything a host's store holds, for the scenarios that check what an erasure left behind.
//!
//! The in-process host's SQLite file is known; a host at a base URL names its store in `STOREFRONT_STORE_SCAN`:
//! - `sqlite:<data file>`: the local host binary's SQLite file (read beside the running host; SQLite's WAL lets
//!   both open it).

use std::path::PathBuf;
use std::sync::Arc;

use shared::adapters::sqlite::SqliteDb;
use shared::adapters::system::SystemClock;

/// The variable naming a host's store.
pub const STORE_SCAN_VAR: &str = "STOREFRONT_STORE_SCAN";

/// A host's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreScan {
    /// A local host's SQLite file.
    Sqlite(PathBuf),
}

/// One item as text: its keys and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The JSON document.
    pub data: String,
}

impl StoreScan {
    /// Reads the `scheme:location` form of [`STORE_SCAN_VAR`].
    ///
    /// # Errors
    /// When the scheme is not `sqlite`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.trim().split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ => anyhow::bail!("{STORE_SCAN_VAR} must be sqlite:<data file>, not {text:?}"),
        }
    }

    /// Every live item now.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn items(&self) -> anyhow::Result<Vec<ScannedItem>> {
        match self {
            Self::Sqlite(path) => {
                let db = SqliteDb::open(path, Arc::new(SystemClock))?;
                let items = db.item_store().scan()?;
                Ok(items.into_iter().map(|item| ScannedItem { pk: item.key.pk, sk: item.key.sk, data: item.data.to_string() }).collect())
            }
        }
    }

    /// The items whose keys or document contain `needle` (case-insensitive).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn containing(&self, needle: &str) -> anyhow::Result<Vec<ScannedItem>> {
        let needle = needle.to_lowercase();
        Ok(self
            .items()?
            .into_iter()
            .filter(|item| [&item.pk, &item.sk, &item.data].iter().any(|text| text.to_lowercase().contains(&needle)))
            .collect())
    }
}
