//! The local host's embedded store: the item store and durable job queues in one SQLite file.
//!
//! Every call runs synchronously under one connection mutex, inside a SQLite transaction where it writes, so
//! conditions and transactions are atomic and durable (WAL journal). That serialises the local host's store
//! calls, which is fine for one developer's machine and is the price of being one file with no server.
//! Sort keys compare byte-wise (SQLite's BINARY collation over UTF-8), as on DynamoDB.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use crate::adapters::{QueueSettings, millis};
use crate::ports::item_store::{self, Condition, Cursor, Item, ItemKey, ItemStore, Page, Query, StoreError, Write};
use crate::ports::job_queue::{Delivery, JobInbox, JobQueue, NewJob, Outcome, QueueError};
use crate::ports::Clock;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    data TEXT NOT NULL,
    counter INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER NOT NULL,
    receipt TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_visibility ON jobs (queue, dead, visible_at, id);
CREATE TABLE IF NOT EXISTS job_dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
";

fn internal(error: impl Into<anyhow::Error>, what: &'static str) -> anyhow::Error {
    error.into().context(what)
}

/// Adds the `counter` column to an items table made before counters existed. `CREATE TABLE IF NOT EXISTS`
/// leaves such a table as it is, and data files outlive the binaries that made them.
fn add_counter_column(connection: &Connection) -> anyhow::Result<()> {
    let present: bool = connection
        .query_row("SELECT EXISTS (SELECT 1 FROM pragma_table_info('items') WHERE name = 'counter')", [], |row| row.get(0))
        .context("failed to read the items table's columns")?;
    if !present {
        connection
            .execute_batch("ALTER TABLE items ADD COLUMN counter INTEGER")
            .context("failed to add the counter column to the items table")?;
    }
    Ok(())
}

/// One SQLite file holding the item store and the job queues.
#[derive(Clone)]
pub struct SqliteDb {
    connection: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file and its tables.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be created.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let connection = Connection::open(path).with_context(|| format!("failed to open {}", path.display()))?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .context("failed to configure sqlite")?;
        connection.execute_batch(SCHEMA).context("failed to create the schema")?;
        add_counter_column(&connection)?;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), clock })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // rusqlite rolls back an open transaction when it is dropped during a panic, so the connection is
        // consistent even if the lock was poisoned.
        self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The item store in this file.
    pub fn item_store(&self) -> SqliteItemStore {
        SqliteItemStore { db: self.clone() }
    }

    /// The queue named `name` in this file.
    pub fn job_queue(&self, name: &str, settings: QueueSettings) -> SqliteJobQueue {
        SqliteJobQueue { db: self.clone(), name: name.to_owned(), settings }
    }
}

/// The item store in a SQLite file.
#[derive(Clone)]
pub struct SqliteItemStore {
    db: SqliteDb,
}

/// An item row as the reads select it: pk, sk, version, expires_at, data, counter.
type ItemRow = (String, String, i64, Option<i64>, String, Option<i64>);

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn to_item((pk, sk, version, expires_at, data, counter): ItemRow) -> Result<Item, StoreError> {
    let data = serde_json::from_str(&data).map_err(|error| internal(error, "stored item is not JSON"))?;
    let version = u64::try_from(version).map_err(|error| internal(error, "stored version is negative"))?;
    Ok(Item { key: ItemKey { pk, sk }, version, expires_at, data, counter })
}

fn version_sql(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::Invalid("a version is at most 2^63 - 1".to_owned()))
}

impl SqliteItemStore {
    /// Every live item in the file, in key order: for operators and for tests that check what the store holds
    /// (that an erased account's address is nowhere, say). Not part of the port: DynamoDB's `Scan` reads a whole
    /// table, so nothing in the domain may rely on it.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when the file cannot be read.
    pub fn scan(&self) -> Result<Vec<Item>, StoreError> {
        let now = self.db.clock.now().as_secs();
        let connection = self.db.lock();
        let mut statement = connection
            .prepare("SELECT pk, sk, version, expires_at, data, counter FROM items WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY pk, sk")
            .map_err(|error| StoreError::Internal(internal(error, "failed to prepare a scan")))?;
        let rows = statement.query_map(params![now], read_item).map_err(|error| StoreError::Internal(internal(error, "failed to scan items")))?;
        rows.map(|row| row.map_err(|error| StoreError::Internal(internal(error, "failed to read an item"))).and_then(to_item)).collect()
    }

    fn apply(&self, writes: &[Write]) -> Result<(), StoreError> {
        let now_secs = self.db.clock.now().as_secs();
        let mut connection = self.db.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| internal(error, "failed to begin a transaction"))?;
        // Every condition is judged against the state before the transaction, inside it, so nothing can change
        // between the check and the writes.
        for (index, write) in writes.iter().enumerate() {
            let key = write.key();
            let current: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT version, counter FROM items
                     WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                    params![key.pk, key.sk, now_secs],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(|error| internal(error, "failed to read a condition"))?;
            let holds = match write {
                Write::Add { delta, floor, ceiling, .. } => {
                    item_store::add_holds(current.and_then(|(_, counter)| counter), *delta, *floor, *ceiling)
                }
                other => other.condition().holds(current.and_then(|(version, _)| u64::try_from(version).ok())),
            };
            if !holds {
                return Err(StoreError::ConditionFailed { index, key: key.clone() });
            }
        }
        for write in writes {
            match write {
                Write::Put { item, .. } => {
                    let data = serde_json::to_string(&item.data).map_err(|error| internal(error, "failed to encode an item"))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO items (pk, sk, version, expires_at, data, counter)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![item.key.pk, item.key.sk, version_sql(item.version)?, item.expires_at, data, item.counter],
                    )
                    .map_err(|error| internal(error, "failed to write an item"))?;
                }
                Write::Delete { key, .. } => {
                    tx.execute("DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk])
                        .map_err(|error| internal(error, "failed to delete an item"))?;
                }
                Write::Check { .. } => {}
                Write::Add { key, delta, .. } => {
                    // The check above proved the new value in bounds (so no overflow) and the item live.
                    tx.execute(
                        "UPDATE items SET counter = counter + ?3, version = version + 1 WHERE pk = ?1 AND sk = ?2",
                        params![key.pk, key.sk, delta],
                    )
                    .map_err(|error| internal(error, "failed to add to a counter"))?;
                }
            }
        }
        tx.commit().map_err(|error| internal(error, "failed to commit"))?;
        Ok(())
    }

    fn get_now(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        item_store::validate_key(key)?;
        let now_secs = self.db.clock.now().as_secs();
        let row = self
            .db
            .lock()
            .query_row(
                "SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                params![key.pk, key.sk, now_secs],
                read_item,
            )
            .optional()
            .map_err(|error| internal(error, "failed to read an item"))?;
        row.map(to_item).transpose()
    }

    fn query_now(&self, query: &Query) -> Result<Page, StoreError> {
        query.validate()?;
        let now_secs = self.db.clock.now().as_secs();
        let after = query.after.as_ref().map(Cursor::after_sort_key);
        let limit = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
        let connection = self.db.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT pk, sk, version, expires_at, data, counter FROM items
                 WHERE pk = ?1 AND sk >= ?2 AND substr(sk, 1, length(?2)) = ?2
                   AND (?3 IS NULL OR sk > ?3)
                   AND (expires_at IS NULL OR expires_at > ?4)
                 ORDER BY sk LIMIT ?5",
            )
            .map_err(|error| internal(error, "failed to prepare a query"))?;
        let rows = statement
            .query_map(params![query.pk, query.sk_prefix, after, now_secs, limit], read_item)
            .map_err(|error| internal(error, "failed to run a query"))?;
        let mut items = Vec::with_capacity(query.limit + 1);
        for row in rows {
            items.push(to_item(row.map_err(|error| internal(error, "failed to read a row"))?)?);
        }
        Ok(Page::from_overfetch(items, query.limit))
    }
}

impl ItemStore for SqliteItemStore {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        std::future::ready(self.get_now(key))
    }

    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let write = Write::Put { item, condition };
        std::future::ready(item_store::validate_key(write.key()).and_then(|()| self.apply(&[write])))
    }

    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let write = Write::Delete { key: key.clone(), condition };
        std::future::ready(item_store::validate_key(key).and_then(|()| self.apply(&[write])))
    }

    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send {
        std::future::ready(self.query_now(query))
    }

    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(item_store::validate_transaction(&writes).and_then(|()| self.apply(&writes)))
    }
}

/// A durable job queue (with its dead-letter queue) in a SQLite file.
#[derive(Clone)]
pub struct SqliteJobQueue {
    db: SqliteDb,
    name: String,
    settings: QueueSettings,
}

fn queue_internal(error: rusqlite::Error, what: &'static str) -> QueueError {
    QueueError::Internal(internal(error, what))
}

impl SqliteJobQueue {
    fn send_now(&self, job: NewJob) -> Result<(), QueueError> {
        job.validate()?;
        let now = self.db.clock.now().as_millis();
        let mut connection = self.db.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| queue_internal(error, "failed to begin a transaction"))?;
        tx.execute(
            "DELETE FROM job_dedup WHERE queue = ?1 AND sent_at <= ?2",
            params![self.name, now.saturating_sub(millis(self.settings.dedup_window))],
        )
        .map_err(|error| queue_internal(error, "failed to expire deduplication ids"))?;
        if let Some(dedup_id) = &job.dedup_id {
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO job_dedup (queue, dedup_id, sent_at) VALUES (?1, ?2, ?3)",
                    params![self.name, dedup_id, now],
                )
                .map_err(|error| queue_internal(error, "failed to record a deduplication id"))?;
            if inserted == 0 {
                return tx.commit().map_err(|error| queue_internal(error, "failed to commit"));
            }
        }
        tx.execute(
            "INSERT INTO jobs (queue, body, visible_at) VALUES (?1, ?2, ?3)",
            params![self.name, job.body, now],
        )
        .map_err(|error| queue_internal(error, "failed to enqueue"))?;
        tx.commit().map_err(|error| queue_internal(error, "failed to commit"))
    }

    fn receive_now(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let now = self.db.clock.now().as_millis();
        let mut connection = self.db.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| queue_internal(error, "failed to begin a transaction"))?;
        // Jobs that have had all their deliveries go to the dead-letter queue instead of being delivered again.
        tx.execute(
            "UPDATE jobs SET dead = 1, receipt = NULL, dead_reason = 'max attempts reached'
             WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2 AND attempts >= ?3",
            params![self.name, now, self.settings.max_attempts],
        )
        .map_err(|error| queue_internal(error, "failed to dead-letter exhausted jobs"))?;
        let picked: Vec<(i64, String, u32)> = {
            let mut statement = tx
                .prepare_cached(
                    "SELECT id, body, attempts FROM jobs WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2
                     ORDER BY visible_at, id LIMIT ?3",
                )
                .map_err(|error| queue_internal(error, "failed to prepare a receive"))?;
            let rows = statement
                .query_map(params![self.name, now, i64::try_from(max).unwrap_or(i64::MAX)], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(|error| queue_internal(error, "failed to receive"))?;
            rows.collect::<Result<_, _>>().map_err(|error| queue_internal(error, "failed to read a job"))?
        };
        let mut deliveries = Vec::with_capacity(picked.len());
        for (id, body, attempts) in picked {
            let attempt = attempts + 1;
            let receipt = format!("{id}:{attempt}:{now}");
            tx.execute(
                "UPDATE jobs SET attempts = ?2, visible_at = ?3, receipt = ?4 WHERE id = ?1",
                params![id, attempt, now.saturating_add(millis(self.settings.visibility_timeout)), receipt],
            )
            .map_err(|error| queue_internal(error, "failed to hide a received job"))?;
            deliveries.push(Delivery { message_id: id.to_string(), body, attempt, receipt });
        }
        tx.commit().map_err(|error| queue_internal(error, "failed to commit"))?;
        Ok(deliveries)
    }

    fn settle_now(&self, delivery: &Delivery, outcome: Outcome) -> Result<(), QueueError> {
        let now = self.db.clock.now().as_millis();
        let connection = self.db.lock();
        let changed = match outcome {
            Outcome::Ack => connection.execute(
                "DELETE FROM jobs WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
                params![self.name, delivery.receipt],
            ),
            Outcome::Retry { delay } => connection.execute(
                "UPDATE jobs SET visible_at = ?3, receipt = NULL WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
                params![self.name, delivery.receipt, now.saturating_add(millis(delay))],
            ),
            Outcome::DeadLetter { reason } => connection.execute(
                "UPDATE jobs SET dead = 1, receipt = NULL, dead_reason = ?3 WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
                params![self.name, delivery.receipt, reason],
            ),
        }
        .map_err(|error| queue_internal(error, "failed to settle a job"))?;
        if changed == 0 { Err(QueueError::StaleReceipt) } else { Ok(()) }
    }

    fn dead_now(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.read_jobs(true, max)
    }

    /// Up to `max` jobs still waiting in the queue (not dead-lettered, whether or not one is being delivered
    /// now), oldest first, without receiving them: for operators and tests looking at a queue that has no
    /// consumer yet. `receipt` is empty.
    ///
    /// # Errors
    /// [`QueueError::Internal`] when the file cannot be read.
    pub fn waiting(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        self.read_jobs(false, max)
    }

    fn read_jobs(&self, dead: bool, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let connection = self.db.lock();
        let mut statement = connection
            .prepare_cached("SELECT id, body, attempts FROM jobs WHERE queue = ?1 AND dead = ?3 ORDER BY id LIMIT ?2")
            .map_err(|error| queue_internal(error, "failed to prepare a job read"))?;
        let rows = statement
            .query_map(params![self.name, i64::try_from(max).unwrap_or(i64::MAX), dead], |row| {
                Ok(Delivery {
                    message_id: row.get::<_, i64>(0)?.to_string(),
                    body: row.get(1)?,
                    attempt: row.get(2)?,
                    receipt: String::new(),
                })
            })
            .map_err(|error| queue_internal(error, "failed to read jobs"))?;
        rows.collect::<Result<_, _>>().map_err(|error| queue_internal(error, "failed to read a job"))
    }
}

impl JobQueue for SqliteJobQueue {
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send {
        std::future::ready(self.send_now(job))
    }
}

impl JobInbox for SqliteJobQueue {
    fn receive(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        std::future::ready(self.receive_now(max))
    }

    fn settle(&self, delivery: &Delivery, outcome: Outcome) -> impl Future<Output = Result<(), QueueError>> + Send {
        std::future::ready(self.settle_now(delivery, outcome))
    }

    fn dead_letters(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        std::future::ready(self.dead_now(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::ManualClock;
    use crate::contract::{self, CONTRACT_QUEUE_SETTINGS, ManualHarness};
    use crate::ports::Timestamp;

    fn open() -> (tempfile::TempDir, Arc<ManualClock>, SqliteDb) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let db = SqliteDb::open(&dir.path().join("store.db"), clock.clone()).unwrap_or_else(|e| panic!("{e:#}"));
        (dir, clock, db)
    }

    #[tokio::test]
    async fn sqlite_item_store_keeps_the_item_store_contract() {
        let (_dir, clock, db) = open();
        let reports = contract::item_store::run(&db.item_store(), &ManualHarness(clock), "contract").await;
        assert!(reports.len() >= 15, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn sqlite_job_queue_keeps_the_job_queue_contract() {
        let (_dir, clock, db) = open();
        let make = |name: &'static str| std::future::ready(db.job_queue(name, CONTRACT_QUEUE_SETTINGS));
        let reports = contract::job_queue::run(make, &ManualHarness(clock), CONTRACT_QUEUE_SETTINGS).await;
        assert!(reports.len() >= 7, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn items_and_jobs_survive_reopening_the_file() {
        let (dir, clock, db) = open();
        let key = ItemKey::new("P", "S");
        db.item_store().put(Item::new(key.clone(), 4, serde_json::json!({"kept": true})), Condition::None).await
            .unwrap_or_else(|e| panic!("{e}"));
        db.job_queue("q", CONTRACT_QUEUE_SETTINGS).send(NewJob { body: "{\"kept\":1}".to_owned(), dedup_id: None }).await
            .unwrap_or_else(|e| panic!("{e}"));
        drop(db);
        let reopened = SqliteDb::open(&dir.path().join("store.db"), clock).unwrap_or_else(|e| panic!("{e:#}"));
        let item = reopened.item_store().get(&key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(item.map(|found| found.version), Some(4));
        let jobs = reopened.job_queue("q", CONTRACT_QUEUE_SETTINGS).receive(10).await.unwrap_or_default();
        assert_eq!(jobs.iter().map(|job| job.body.as_str()).collect::<Vec<_>>(), ["{\"kept\":1}"]);
    }

    #[tokio::test]
    async fn a_data_file_from_before_counters_gains_the_column_and_keeps_its_items() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        {
            // The items table as earlier versions created it, with one item in it.
            let old = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            old.execute_batch(
                "CREATE TABLE items (
                    pk TEXT NOT NULL, sk TEXT NOT NULL, version INTEGER NOT NULL, expires_at INTEGER, data TEXT NOT NULL,
                    PRIMARY KEY (pk, sk)
                 ) WITHOUT ROWID;
                 INSERT INTO items (pk, sk, version, expires_at, data) VALUES ('P', 'old', 3, NULL, '{\"kept\":true}');",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let db = SqliteDb::open(&path, clock.clone()).unwrap_or_else(|e| panic!("{e:#}"));
        let store = db.item_store();
        let old = store.get(&ItemKey::new("P", "old")).await.unwrap_or_else(|e| panic!("{e}"));
        let expected = Item::new(ItemKey::new("P", "old"), 3, serde_json::json!({"kept": true}));
        assert_eq!(old, Some(expected));
        let columns: Vec<String> = {
            let connection = db.lock();
            let mut statement = connection.prepare("SELECT name FROM pragma_table_info('items')").unwrap_or_else(|e| panic!("{e}"));
            let names = statement.query_map([], |row| row.get(0)).unwrap_or_else(|e| panic!("{e}"));
            names.collect::<Result<_, _>>().unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(columns, ["pk", "sk", "version", "expires_at", "data", "counter"]);
        // The old item has no counter; a new one keeps its counter, and the file opens again unchanged.
        let refused = store.transact(vec![Write::Add { key: ItemKey::new("P", "old"), delta: 1, floor: None, ceiling: None }]).await;
        assert!(matches!(refused, Err(StoreError::ConditionFailed { index: 0, .. })), "{refused:?}");
        let counted = Item::new(ItemKey::new("P", "new"), 1, serde_json::json!({})).with_counter(5);
        store.put(counted.clone(), Condition::NotExists).await.unwrap_or_else(|e| panic!("{e}"));
        drop((store, db));
        let reopened = SqliteDb::open(&path, clock).unwrap_or_else(|e| panic!("{e:#}"));
        let found = reopened.item_store().get(&counted.key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found, Some(counted));
    }

    #[tokio::test]
    async fn waiting_lists_jobs_without_delivering_them_and_leaves_out_dead_letters() {
        let (_dir, _clock, db) = open();
        let queue = db.job_queue("q", CONTRACT_QUEUE_SETTINGS);
        let other = db.job_queue("other", CONTRACT_QUEUE_SETTINGS);
        for body in ["first", "second"] {
            queue.send(NewJob { body: body.to_owned(), dedup_id: None }).await.unwrap_or_else(|e| panic!("{e}"));
        }
        other.send(NewJob { body: "elsewhere".to_owned(), dedup_id: None }).await.unwrap_or_else(|e| panic!("{e}"));
        let bodies = |jobs: Vec<Delivery>| jobs.into_iter().map(|job| job.body).collect::<Vec<_>>();
        assert_eq!(bodies(queue.waiting(10).unwrap_or_else(|e| panic!("{e}"))), ["first", "second"]);
        assert_eq!(bodies(queue.waiting(10).unwrap_or_else(|e| panic!("{e}"))), ["first", "second"], "looking received nothing");
        let received = queue.receive(1).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bodies(received.clone()), ["first"], "looking did not use up a delivery");
        assert_eq!(received.first().map(|job| job.attempt), Some(1));
        queue.settle(&received[0], Outcome::DeadLetter { reason: "test".to_owned() }).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bodies(queue.waiting(10).unwrap_or_else(|e| panic!("{e}"))), ["second"]);
    }
}
