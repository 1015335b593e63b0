//! In-memory adapters: an item store, a job queue, a settable clock and predictable ids.
//!
//! They keep the same contracts as the real backends (the contract suites run against them), so endpoint
//! tests can run in-process with no sockets. State lives in a mutex; nothing here is durable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::adapters::{QueueSettings, millis};
use crate::ports::item_store::{self, Condition, Item, ItemKey, ItemStore, Page, Query, StoreError, Write};
use crate::ports::job_queue::{Delivery, JobInbox, JobQueue, NewJob, Outcome, QueueError};
use crate::ports::mailer::{Mail, MailError, MailFuture, Mailer};
use crate::ports::{Clock, IdGen, Random, RandomError, Timestamp};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-written (every write is one insert or
    // remove), so a poisoned lock is safe to reuse.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A clock that stands still until moved.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self { millis: AtomicI64::new(start.as_millis()) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, duration: std::time::Duration) {
        self.millis.fetch_add(millis(duration), Ordering::SeqCst);
    }
}

/// Sleeping on a manual clock moves it forward at once: a test sees the backoff in the clock, not in its
/// running time.
impl crate::ports::Sleep for ManualClock {
    fn sleep(&self, duration: std::time::Duration) -> crate::ports::SleepFuture {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// Ids `<prefix>000001`, `<prefix>000002`, …: unique, ordered and predictable. Its random bytes are
/// predictable too (a [`PredictableRandom`] seeded from the prefix): for tests only.
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
    random: PredictableRandom,
}

impl SequentialIds {
    /// Ids starting at 1 with this prefix.
    pub fn new(prefix: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(prefix.as_bytes());
        let mut seed = [0_u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Self { prefix: prefix.to_owned(), next: AtomicU64::new(1), random: PredictableRandom::new(u64::from_be_bytes(seed)) }
    }
}

impl Random for SequentialIds {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        self.random.fill(buffer)
    }
}

impl IdGen for SequentialIds {
    fn new_id(&self) -> String {
        format!("{}{:012}", self.prefix, self.next.fetch_add(1, Ordering::SeqCst))
    }
}

/// An item store in a sorted map.
#[derive(Clone)]
pub struct MemoryItemStore {
    items: Arc<Mutex<BTreeMap<ItemKey, Item>>>,
    clock: Arc<dyn Clock>,
}

impl MemoryItemStore {
    /// An empty store that judges expiry by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { items: Arc::default(), clock }
    }

    fn live_version(items: &BTreeMap<ItemKey, Item>, key: &ItemKey, now_secs: i64) -> Option<u64> {
        items.get(key).filter(|item| !item.is_expired_at(now_secs)).map(|item| item.version)
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let now_secs = self.clock.now().as_secs();
        let mut items = lock(&self.items);
        for (index, write) in writes.iter().enumerate() {
            let holds = match write {
                Write::Add { key, delta, floor, ceiling } => {
                    let current = items.get(key).filter(|item| !item.is_expired_at(now_secs)).and_then(|item| item.counter);
                    item_store::add_holds(current, *delta, *floor, *ceiling)
                }
                other => other.condition().holds(Self::live_version(&items, other.key(), now_secs)),
            };
            if !holds {
                return Err(StoreError::ConditionFailed { index, key: write.key().clone() });
            }
        }
        for write in writes {
            match write {
                Write::Put { item, .. } => {
                    items.insert(item.key.clone(), item);
                }
                Write::Delete { key, .. } => {
                    items.remove(&key);
                }
                Write::Check { .. } => {}
                Write::Add { key, delta, .. } => {
                    if let Some(item) = items.get_mut(&key) {
                        item.counter = item.counter.map(|counter| counter + delta);
                        item.version += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

impl ItemStore for MemoryItemStore {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        let result = item_store::validate_key(key).map(|()| {
            let now_secs = self.clock.now().as_secs();
            lock(&self.items).get(key).filter(|item| !item.is_expired_at(now_secs)).cloned()
        });
        std::future::ready(result)
    }

    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let result = item_store::validate_key(&item.key).and_then(|()| self.apply(vec![Write::Put { item, condition }]));
        std::future::ready(result)
    }

    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        let result = item_store::validate_key(key)
            .and_then(|()| self.apply(vec![Write::Delete { key: key.clone(), condition }]));
        std::future::ready(result)
    }

    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send {
        let result = query.validate().map(|()| {
            let now_secs = self.clock.now().as_secs();
            let items = lock(&self.items);
            let start = ItemKey::new(
                query.pk.clone(),
                match &query.after {
                    Some(cursor) if cursor.after_sort_key() >= query.sk_prefix.as_str() => cursor.after_sort_key(),
                    _ => query.sk_prefix.as_str(),
                },
            );
            let live = items
                .range(start..)
                .take_while(|(key, _)| key.pk == query.pk && key.sk.starts_with(&query.sk_prefix))
                .filter(|(key, item)| {
                    query.after.as_ref().is_none_or(|cursor| key.sk.as_str() > cursor.after_sort_key())
                        && !item.is_expired_at(now_secs)
                })
                .map(|(_, item)| item.clone())
                .take(query.limit + 1)
                .collect::<Vec<_>>();
            Page::from_overfetch(live, query.limit)
        });
        std::future::ready(result)
    }

    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send {
        let result = item_store::validate_transaction(&writes).and_then(|()| self.apply(writes));
        std::future::ready(result)
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    attempts: u32,
    visible_at: i64,
    receipt: Option<String>,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Message>,
    dead: Vec<Message>,
    dedup: HashMap<String, i64>,
    sequence: u64,
}

/// A job queue with a dead-letter queue, in memory.
#[derive(Clone)]
pub struct MemoryJobQueue {
    state: Arc<Mutex<QueueState>>,
    clock: Arc<dyn Clock>,
    settings: QueueSettings,
}

impl MemoryJobQueue {
    /// An empty queue.
    pub fn new(clock: Arc<dyn Clock>, settings: QueueSettings) -> Self {
        Self { state: Arc::default(), clock, settings }
    }

    fn send_now(&self, job: NewJob) -> Result<(), QueueError> {
        job.validate()?;
        let now = self.clock.now().as_millis();
        let mut state = lock(&self.state);
        let window = millis(self.settings.dedup_window);
        state.dedup.retain(|_, sent_at| now.saturating_sub(*sent_at) < window);
        if let Some(dedup_id) = job.dedup_id {
            if state.dedup.contains_key(&dedup_id) {
                return Ok(());
            }
            state.dedup.insert(dedup_id, now);
        }
        state.sequence += 1;
        let id = format!("m{:012}", state.sequence);
        state.ready.push_back(Message { id, body: job.body, attempts: 0, visible_at: now, receipt: None });
        Ok(())
    }

    fn receive_now(&self, max: usize) -> Vec<Delivery> {
        let now = self.clock.now().as_millis();
        let visibility = millis(self.settings.visibility_timeout);
        let mut state = lock(&self.state);
        let mut deliveries = Vec::new();
        let mut index = 0;
        while index < state.ready.len() && deliveries.len() < max {
            if state.ready[index].visible_at > now {
                index += 1;
                continue;
            }
            if state.ready[index].attempts >= self.settings.max_attempts {
                if let Some(mut message) = state.ready.remove(index) {
                    message.receipt = None;
                    state.dead.push(message);
                }
                continue;
            }
            state.sequence += 1;
            let receipt = format!("r{:012}", state.sequence);
            let message = &mut state.ready[index];
            message.attempts += 1;
            message.visible_at = now.saturating_add(visibility);
            message.receipt = Some(receipt.clone());
            deliveries.push(Delivery {
                message_id: message.id.clone(),
                body: message.body.clone(),
                attempt: message.attempts,
                receipt,
            });
            index += 1;
        }
        deliveries
    }

    fn settle_now(&self, delivery: &Delivery, outcome: Outcome) -> Result<(), QueueError> {
        let now = self.clock.now().as_millis();
        let mut state = lock(&self.state);
        let position = state
            .ready
            .iter()
            .position(|message| message.receipt.as_deref() == Some(delivery.receipt.as_str()))
            .ok_or(QueueError::StaleReceipt)?;
        match outcome {
            Outcome::Ack => {
                state.ready.remove(position);
            }
            Outcome::Retry { delay } => {
                let message = &mut state.ready[position];
                message.visible_at = now.saturating_add(millis(delay));
                message.receipt = None;
            }
            Outcome::DeadLetter { .. } => {
                if let Some(mut message) = state.ready.remove(position) {
                    message.receipt = None;
                    state.dead.push(message);
                }
            }
        }
        Ok(())
    }
}

impl JobQueue for MemoryJobQueue {
    fn send(&self, job: NewJob) -> impl Future<Output = Result<(), QueueError>> + Send {
        std::future::ready(self.send_now(job))
    }
}

impl JobInbox for MemoryJobQueue {
    fn receive(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        std::future::ready(Ok(self.receive_now(max)))
    }

    fn settle(&self, delivery: &Delivery, outcome: Outcome) -> impl Future<Output = Result<(), QueueError>> + Send {
        std::future::ready(self.settle_now(delivery, outcome))
    }

    fn dead_letters(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send {
        let dead = lock(&self.state)
            .dead
            .iter()
            .take(max)
            .map(|message| Delivery {
                message_id: message.id.clone(),
                body: message.body.clone(),
                attempt: message.attempts,
                receipt: String::new(),
            })
            .collect();
        std::future::ready(Ok(dead))
    }
}

/// Predictable "random" bytes for tests: a SHA-256 stream of a seed and a counter, so every call gives new
/// bytes and every run gives the same ones. Never for production: anyone who knows the seed knows the bytes.
#[derive(Debug)]
pub struct PredictableRandom {
    seed: u64,
    counter: AtomicU64,
}

impl PredictableRandom {
    /// A stream determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: AtomicU64::new(0) }
    }
}

impl Random for PredictableRandom {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        use sha2::Digest as _;
        for chunk in buffer.chunks_mut(32) {
            let counter = self.counter.fetch_add(1, Ordering::SeqCst);
            let block = sha2::Sha256::new().chain_update(self.seed.to_be_bytes()).chain_update(counter.to_be_bytes()).finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// A mailer that keeps what it sends, for tests: each mail with its RFC 5322 rendering.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<(Mail, String)>>,
    fail_next: Mutex<Option<MailError>>,
}

impl MemoryMailer {
    /// The mails sent so far, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        lock(&self.sent).iter().map(|(mail, _)| mail.clone()).collect()
    }

    /// The raw messages sent so far, oldest first.
    pub fn raw(&self) -> Vec<String> {
        lock(&self.sent).iter().map(|(_, raw)| raw.clone()).collect()
    }

    /// Makes the next `send` fail with `error` (and send nothing).
    pub fn fail_next(&self, error: MailError) {
        *lock(&self.fail_next) = Some(error);
    }
}

impl Mailer for MemoryMailer {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn send<'a>(&'a self, mail: &'a Mail) -> MailFuture<'a> {
        let result = match lock(&self.fail_next).take() {
            Some(error) => Err(error),
            None => mail.to_rfc5322().map(|raw| lock(&self.sent).push((mail.clone(), raw))),
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{self, CONTRACT_QUEUE_SETTINGS, ManualHarness};

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)))
    }

    #[tokio::test]
    async fn memory_item_store_keeps_the_item_store_contract() {
        let clock = clock();
        let store = MemoryItemStore::new(clock.clone());
        let reports = contract::item_store::run(&store, &ManualHarness(clock), "contract").await;
        assert!(reports.len() >= 15, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn memory_job_queue_keeps_the_job_queue_contract() {
        let clock = clock();
        let queue_clock = clock.clone();
        let make = move |_: &'static str| std::future::ready(MemoryJobQueue::new(queue_clock.clone(), CONTRACT_QUEUE_SETTINGS));
        let reports = contract::job_queue::run(make, &ManualHarness(clock), CONTRACT_QUEUE_SETTINGS).await;
        assert!(reports.len() >= 7, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn settling_with_a_superseded_receipt_is_refused() {
        let clock = clock();
        let queue = MemoryJobQueue::new(clock.clone(), CONTRACT_QUEUE_SETTINGS);
        queue.send(NewJob { body: "{}".to_owned(), dedup_id: None }).await.unwrap_or_else(|e| panic!("{e}"));
        let first = queue.receive(1).await.unwrap_or_default();
        clock.advance(CONTRACT_QUEUE_SETTINGS.visibility_timeout);
        let second = queue.receive(1).await.unwrap_or_default();
        assert_eq!(second.len(), 1);
        assert!(matches!(queue.settle(&first[0], Outcome::Ack).await, Err(QueueError::StaleReceipt)));
        assert!(queue.settle(&second[0], Outcome::Ack).await.is_ok());
    }
}
