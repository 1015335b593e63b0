//! The Cloudflare Workers item store on D1 (SQLite at the edge), the Workers host's source of truth.
//!
//! It owns the table layout, the SQL and the mapping of D1 rows and errors to the port's types; it must not
//! hold business rules, and nothing shaped like D1 leaves it.
//!
//! Conditions are made atomic with D1's batch, which runs its statements in one transaction and rolls the whole
//! batch back when any statement fails. Each conditional write gets a guard statement that inserts the write's
//! index into `storefront_tx_guard` only when its condition does *not* hold. That table has one named CHECK
//! constraint per index (`write_0` .. `write_99`) that no index can pass, so a failed condition raises
//! `CHECK constraint failed: write_<index>`: the batch fails as a whole and its error names the failed write.
//! The guards come first in the batch, so the error names the first write whose condition failed, judged
//! against the state before any write of the batch. The table never holds a row.
//!
//! A counter ([`Write::Add`]) lives in its own `counter` column, so one guard checks its bounds and one
//! `UPDATE` adds to it inside the same batch; JavaScript numbers carry it, so it is kept within ±(2^53 - 1).
//!
//! D1 has no time-to-live: every read filters out items whose `expires_at` has passed, by the injected clock,
//! and [`D1ItemStore::sweep_expired`] (run from the cron trigger) deletes them later.
//! Sort keys compare byte-wise: SQLite's BINARY collation compares UTF-8 bytes.

use std::sync::Arc;

use anyhow::anyhow;
use serde::Deserialize;
use worker::send::SendFuture;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::ports::item_store::{
    self, Condition, Item, ItemKey, ItemStore, MAX_TRANSACTION_WRITES, Page, Query, StoreError, Write,
};
use crate::ports::Clock;

/// The name of the D1 binding in `wrangler.toml`.
pub const D1_BINDING: &str = "DB";

/// The guard table's constraint names are this prefix followed by the write's index.
const GUARD_PREFIX: &str = "write_";

/// The largest integer a JavaScript number (which D1 binds and returns) holds exactly.
const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

fn schema() -> String {
    let mut guard_checks = String::new();
    for index in 0..MAX_TRANSACTION_WRITES {
        guard_checks.push_str(&format!(",\n    CONSTRAINT {GUARD_PREFIX}{index} CHECK (idx <> {index})"));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    data TEXT NOT NULL,
    counter INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS storefront_tx_guard (
    idx INTEGER NOT NULL{guard_checks}
);"
    )
}

/// Adds the `counter` column to an items table created before counters existed (`CREATE TABLE IF NOT EXISTS`
/// leaves such a table as it is). It runs on its own because a D1 batch fails as a whole: on a table that has
/// the column already it fails with "duplicate column name", which is the expected outcome.
const ADD_COUNTER_COLUMN: &str = "ALTER TABLE items ADD COLUMN counter INTEGER";

fn d1_error(error: worker::Error, what: &'static str) -> anyhow::Error {
    anyhow!("{what}: {error}")
}

/// The index of the write a guard statement refused, read from a failed batch's error.
fn failed_guard_index(error: &worker::Error) -> Option<usize> {
    let text = error.to_string();
    let at = text.find("CHECK constraint failed: ")? + "CHECK constraint failed: ".len();
    let rest = text.get(at..)?.strip_prefix(GUARD_PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn exact_number(value: u64, what: &str) -> Result<JsValue, StoreError> {
    if value > MAX_EXACT_INTEGER {
        return Err(StoreError::Invalid(format!("a {what} is at most 2^53 - 1 on D1")));
    }
    // Exact: the value has at most 53 significant bits.
    #[allow(clippy::cast_precision_loss)]
    Ok(JsValue::from_f64(value as f64))
}

/// A signed whole number as a JavaScript number, refused unless it is exact there.
fn exact_signed(value: i64, what: &str) -> Result<JsValue, StoreError> {
    if value.unsigned_abs() > MAX_EXACT_INTEGER {
        return Err(StoreError::Invalid(format!("a {what} is within ±(2^53 - 1) on D1")));
    }
    // Exact: the magnitude has at most 53 significant bits.
    #[allow(clippy::cast_precision_loss)]
    Ok(JsValue::from_f64(value as f64))
}

/// The bounds of a [`Write::Add`] as D1 compares them, lowest and highest allowed value. A counter on D1 never
/// leaves ±(2^53 - 1) (puts refuse other values and these bounds keep adds inside), so a bound beyond that range
/// is brought to its edge; one that no counter there can meet becomes ±2^53, which still no sum in range meets.
fn add_bounds(floor: Option<i64>, ceiling: Option<i64>) -> (JsValue, JsValue) {
    const LIMIT: i64 = (1 << 53) - 1;
    let lowest = floor.unwrap_or(i64::MIN).clamp(-LIMIT, LIMIT + 1);
    let highest = ceiling.unwrap_or(i64::MAX).clamp(-LIMIT - 1, LIMIT);
    // Exact: both are within ±2^53.
    #[allow(clippy::cast_precision_loss)]
    (JsValue::from_f64(lowest as f64), JsValue::from_f64(highest as f64))
}

fn seconds(value: i64) -> JsValue {
    // Expiry times are seconds since the epoch, far inside a JavaScript number's exact range.
    #[allow(clippy::cast_precision_loss)]
    JsValue::from_f64(value as f64)
}

#[derive(Deserialize)]
struct Row {
    pk: String,
    sk: String,
    version: f64,
    expires_at: Option<f64>,
    data: String,
    counter: Option<f64>,
}

fn to_item(row: Row) -> Result<Item, StoreError> {
    let data = serde_json::from_str(&row.data).map_err(|error| anyhow!("stored item is not JSON: {error}"))?;
    if !(row.version >= 0.0 && row.version.fract() == 0.0 && row.version <= MAX_EXACT_INTEGER as f64) {
        return Err(StoreError::Internal(anyhow!("stored version is not a whole number")));
    }
    // Checked above: a whole number in 0..=2^53 - 1.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let version = row.version as u64;
    #[allow(clippy::cast_possible_truncation)]
    let expires_at = row.expires_at.map(|secs| secs as i64);
    let counter = match row.counter {
        None => None,
        Some(value) if value.fract() == 0.0 && value.abs() <= MAX_EXACT_INTEGER as f64 => {
            // Checked: a whole number within ±(2^53 - 1).
            #[allow(clippy::cast_possible_truncation)]
            Some(value as i64)
        }
        Some(_) => return Err(StoreError::Internal(anyhow!("stored counter is not a whole number within ±(2^53 - 1)"))),
    };
    Ok(Item { key: ItemKey { pk: row.pk, sk: row.sk }, version, expires_at, data, counter })
}

/// The item store on a D1 database.
///
/// Cloning is cheap and shares the binding. The binding is a JavaScript object; Workers run one thread per
/// isolate, so every future is wrapped in [`SendFuture`] to meet the port's `Send` bound.
#[derive(Clone)]
pub struct D1ItemStore {
    db: Arc<D1Database>,
    clock: Arc<dyn Clock>,
}

impl D1ItemStore {
    /// A store on the database, judging expiry by `clock`.
    pub fn new(db: D1Database, clock: Arc<dyn Clock>) -> Self {
        Self { db: Arc::new(db), clock }
    }

    /// Creates the tables if they are missing. Idempotent; a host runs it once per isolate before the first
    /// store call.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when D1 refuses the schema.
    pub async fn ensure_schema(&self) -> Result<(), StoreError> {
        let db = Arc::clone(&self.db);
        SendFuture::new(async move {
            let statements: Vec<D1PreparedStatement> =
                schema().split(";\n").map(str::trim).filter(|sql| !sql.is_empty()).map(|sql| db.prepare(sql)).collect();
            db.batch(statements).await.map_err(|error| d1_error(error, "failed to create the D1 schema"))?;
            match db.prepare(ADD_COUNTER_COLUMN).run().await {
                Ok(_) => Ok(()),
                Err(error) if error.to_string().contains("duplicate column name") => Ok(()),
                Err(error) => Err(StoreError::Internal(d1_error(error, "failed to add the counter column"))),
            }
        })
        .await
    }

    /// Deletes items whose expiry has passed (reads already ignore them). Returns how many went.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when D1 fails.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        let db = Arc::clone(&self.db);
        let now = self.clock.now().as_secs();
        SendFuture::new(async move {
            let statement = db
                .prepare("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1")
                .bind(&[seconds(now)])
                .map_err(|error| d1_error(error, "failed to bind the sweep"))?;
            let result = statement.run().await.map_err(|error| d1_error(error, "failed to sweep expired items"))?;
            let deleted = result.meta().ok().flatten().and_then(|meta| meta.changes).unwrap_or(0);
            Ok(deleted)
        })
        .await
    }

    /// Every live item, in key order: for operators and for test builds that check what the store holds. Not
    /// part of the port (it reads the whole table).
    ///
    /// # Errors
    /// [`StoreError::Internal`] when D1 fails.
    pub async fn scan(&self) -> Result<Vec<Item>, StoreError> {
        let db = Arc::clone(&self.db);
        let now = self.clock.now().as_secs();
        SendFuture::new(async move {
            let statement = db
                .prepare("SELECT pk, sk, version, expires_at, data, counter FROM items WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY pk, sk")
                .bind(&[seconds(now)])
                .map_err(|error| d1_error(error, "failed to bind a scan"))?;
            let result = statement.all().await.map_err(|error| d1_error(error, "failed to scan items"))?;
            let rows: Vec<Row> = result.results().map_err(|error| d1_error(error, "failed to read scanned rows"))?;
            rows.into_iter().map(to_item).collect()
        })
        .await
    }

    fn guard(&self, index: usize, write: &Write, now_secs: i64) -> Result<Option<D1PreparedStatement>, StoreError> {
        let live = "pk = ?2 AND sk = ?3 AND (expires_at IS NULL OR expires_at > ?4)";
        let (failure, extra) = match (write, write.condition()) {
            (Write::Add { delta, floor, ceiling, .. }, _) => {
                // The bounds are compared with the sum, so the guard holds exactly when `add_holds` does.
                let in_bounds = "counter IS NOT NULL AND counter + ?5 >= ?6 AND counter + ?5 <= ?7";
                let (lowest, highest) = add_bounds(*floor, *ceiling);
                let values = vec![exact_signed(*delta, "counter delta")?, lowest, highest];
                (format!("NOT EXISTS (SELECT 1 FROM items WHERE {live} AND {in_bounds})"), values)
            }
            (_, Condition::None) => return Ok(None),
            (_, Condition::Exists) => (format!("NOT EXISTS (SELECT 1 FROM items WHERE {live})"), Vec::new()),
            (_, Condition::NotExists) => (format!("EXISTS (SELECT 1 FROM items WHERE {live})"), Vec::new()),
            (_, Condition::VersionEquals(expected)) => (
                format!("NOT EXISTS (SELECT 1 FROM items WHERE {live} AND version = ?5)"),
                vec![exact_number(expected, "version")?],
            ),
        };
        let key = write.key();
        let mut values = vec![
            exact_number(index as u64, "write index")?,
            JsValue::from_str(&key.pk),
            JsValue::from_str(&key.sk),
            seconds(now_secs),
        ];
        values.extend(extra);
        let sql = format!("INSERT INTO storefront_tx_guard (idx) SELECT ?1 WHERE {failure}");
        let statement =
            self.db.prepare(sql).bind(&values).map_err(|error| d1_error(error, "failed to bind a condition"))?;
        Ok(Some(statement))
    }

    fn statement(&self, write: &Write) -> Result<Option<D1PreparedStatement>, StoreError> {
        let statement = match write {
            Write::Put { item, .. } => {
                let data = serde_json::to_string(&item.data).map_err(|error| anyhow!("failed to encode an item: {error}"))?;
                let expires_at = item.expires_at.map_or(JsValue::NULL, seconds);
                let counter = match item.counter {
                    Some(counter) => exact_signed(counter, "counter")?,
                    None => JsValue::NULL,
                };
                self.db
                    .prepare(
                        "INSERT OR REPLACE INTO items (pk, sk, version, expires_at, data, counter)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .bind(&[
                        JsValue::from_str(&item.key.pk),
                        JsValue::from_str(&item.key.sk),
                        exact_number(item.version, "version")?,
                        expires_at,
                        JsValue::from_str(&data),
                        counter,
                    ])
            }
            Write::Delete { key, .. } => self
                .db
                .prepare("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                .bind(&[JsValue::from_str(&key.pk), JsValue::from_str(&key.sk)]),
            Write::Check { .. } => return Ok(None),
            // Its guard, earlier in the same batch, has checked that the item is live and the sum in bounds.
            Write::Add { key, delta, .. } => self
                .db
                .prepare("UPDATE items SET counter = counter + ?3, version = version + 1 WHERE pk = ?1 AND sk = ?2")
                .bind(&[JsValue::from_str(&key.pk), JsValue::from_str(&key.sk), exact_signed(*delta, "counter delta")?]),
        };
        statement.map(Some).map_err(|error| StoreError::Internal(d1_error(error, "failed to bind a write")))
    }

    /// Runs the writes as one D1 batch: every guard first, then every write.
    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let now_secs = self.clock.now().as_secs();
        let mut statements = Vec::with_capacity(writes.len() * 2);
        for (index, write) in writes.iter().enumerate() {
            statements.extend(self.guard(index, write, now_secs)?);
        }
        for write in &writes {
            statements.extend(self.statement(write)?);
        }
        if statements.is_empty() {
            // Only unconditional checks: nothing to verify and nothing to write.
            return Ok(());
        }
        let db = Arc::clone(&self.db);
        SendFuture::new(async move {
            match db.batch(statements).await {
                Ok(_) => Ok(()),
                Err(error) => match failed_guard_index(&error).and_then(|index| writes.get(index).map(|w| (index, w))) {
                    Some((index, write)) => Err(StoreError::ConditionFailed { index, key: write.key().clone() }),
                    None => Err(StoreError::Internal(d1_error(error, "D1 batch failed"))),
                },
            }
        })
        .await
    }

    async fn get_now(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        item_store::validate_key(key)?;
        let now_secs = self.clock.now().as_secs();
        let statement = self
            .db
            .prepare(
                "SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
            )
            .bind(&[JsValue::from_str(&key.pk), JsValue::from_str(&key.sk), seconds(now_secs)])
            .map_err(|error| d1_error(error, "failed to bind a read"))?;
        let row: Option<Row> =
            SendFuture::new(statement.first(None)).await.map_err(|error| d1_error(error, "failed to read an item"))?;
        row.map(to_item).transpose()
    }

    /// One statement for all the keys: they travel as one JSON parameter (D1 allows 100 bound parameters,
    /// fewer than two per key), unpacked by SQLite's `json_each`; the rows come back in `keys`' order.
    async fn get_many_now(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        item_store::validate_keys(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now_secs = self.clock.now().as_secs();
        let pairs: Vec<[&str; 2]> = keys.iter().map(|key| [key.pk.as_str(), key.sk.as_str()]).collect();
        let wanted = serde_json::to_string(&pairs).map_err(|error| StoreError::Internal(error.into()))?;
        let statement = self
            .db
            .prepare(
                "SELECT items.pk, items.sk, items.version, items.expires_at, items.data, items.counter
                 FROM json_each(?1) AS wanted
                 JOIN items ON items.pk = json_extract(wanted.value, '$[0]') AND items.sk = json_extract(wanted.value, '$[1]')
                 WHERE items.expires_at IS NULL OR items.expires_at > ?2
                 ORDER BY wanted.key",
            )
            .bind(&[JsValue::from_str(&wanted), seconds(now_secs)])
            .map_err(|error| d1_error(error, "failed to bind a read of many items"))?;
        let result = SendFuture::new(statement.all()).await.map_err(|error| d1_error(error, "failed to read many items"))?;
        let rows: Vec<Row> = result.results().map_err(|error| d1_error(error, "failed to read the rows of many items"))?;
        rows.into_iter().map(to_item).collect()
    }

    async fn query_now(&self, query: &Query) -> Result<Page, StoreError> {
        query.validate()?;
        let now_secs = self.clock.now().as_secs();
        let after = query.after.as_ref().map_or(JsValue::NULL, |cursor| JsValue::from_str(cursor.after_sort_key()));
        let statement = self
            .db
            .prepare(
                "SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk >= ?2 AND substr(sk, 1, length(?2)) = ?2
                   AND (?3 IS NULL OR sk > ?3)
                   AND (expires_at IS NULL OR expires_at > ?4)
                 ORDER BY sk LIMIT ?5",
            )
            .bind(&[
                JsValue::from_str(&query.pk),
                JsValue::from_str(&query.sk_prefix),
                after,
                seconds(now_secs),
                exact_number(query.limit as u64 + 1, "query limit")?,
            ])
            .map_err(|error| d1_error(error, "failed to bind a query"))?;
        let result = SendFuture::new(statement.all()).await.map_err(|error| d1_error(error, "failed to run a query"))?;
        let rows: Vec<Row> = result.results().map_err(|error| d1_error(error, "failed to read query rows"))?;
        let items = rows.into_iter().map(to_item).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, query.limit))
    }
}

impl ItemStore for D1ItemStore {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        let store = self.clone();
        let key = key.clone();
        SendFuture::new(async move { store.get_now(&key).await })
    }

    fn get_many(&self, keys: &[ItemKey]) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        let store = self.clone();
        let keys = keys.to_vec();
        SendFuture::new(async move { store.get_many_now(&keys).await })
    }

    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let store = self.clone();
        SendFuture::new(async move {
            item_store::validate_key(&item.key)?;
            store.apply(vec![Write::Put { item, condition }]).await
        })
    }

    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let store = self.clone();
        let key = key.clone();
        SendFuture::new(async move {
            item_store::validate_key(&key)?;
            store.apply(vec![Write::Delete { key, condition }]).await
        })
    }

    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send {
        let store = self.clone();
        let query = query.clone();
        SendFuture::new(async move { store.query_now(&query).await })
    }

    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send {
        let store = self.clone();
        SendFuture::new(async move {
            item_store::validate_transaction(&writes)?;
            store.apply(writes).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_table_names_one_constraint_per_possible_write() {
        let sql = schema();
        assert!(sql.contains("CONSTRAINT write_0 CHECK (idx <> 0)"));
        assert!(sql.contains(&format!("CONSTRAINT write_{0} CHECK (idx <> {0})", MAX_TRANSACTION_WRITES - 1)));
        assert!(!sql.contains(&format!("write_{MAX_TRANSACTION_WRITES} ")));
    }
}
