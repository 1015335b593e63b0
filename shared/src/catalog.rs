//! The product repository and its search index, written once on top of the [`ItemStore`] port.
//!
//! Layout in the store (one table, as on DynamoDB):
//!
//! | item | partition key | sort key | document |
//! | --- | --- | --- | --- |
//! | product | `PRODUCT#<id>` | `PRODUCT` | the product (its stock is the item's counter) |
//! | SKU claim | `SKU#<sku>` | `SKU` | the owning product id |
//! | index shard | `SEARCH` | `SHARD#00` to `SHARD#63` | the [`Record`]s of the products whose id hashes to it |
//! | index head | `SEARCH` | `META` | the index format and every shard's version; its version counts writes |
//!
//! The search index is the set of [`Record`]s (words with their fields, price, category, creation time: about
//! 150 bytes a product), split over [`SHARDS`] items by a hash of the product id. Every product write updates
//! the product, its SKU claim, its shard and the head in one transaction, so the index never disagrees with
//! the products and a search sees every write acknowledged before it (no staleness). The head is the one item
//! all catalog writes touch, so concurrent writes are serialised by its version: a write that lost the head to
//! another tries again after a jittered, exponentially growing pause ([`Catalog::with_backoff`]), a bounded
//! number of times. (No in-process lock makes an instance's own writes take turns: on Workers, a request woken
//! by another request's release would do its I/O in that other request's context, which the runtime refuses.)
//!
//! A search reads the head (one small item). Each instance keeps the index in memory and re-reads only the
//! shards whose versions changed since it last looked, so after the first search of an instance a search
//! reads the head and the products of its page (at most `limit` items), whatever the query or the catalog's
//! size. It never reads the whole catalog, but for an instance's first search or an index rebuild (a store
//! written before the index existed, or by an older index format, is rebuilt once from its products).
//! Stock is the counter of the product's own item, which checkouts and cancellations change atomically
//! ([`Catalog::stock_write`]) without touching the index; listings read the products of the page, so they
//! show it live. This module owns no HTTP and no clock; time and ids come in as arguments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::domain::product::{NewProduct, Product, ProductId};
use crate::domain::search::SearchRequest;
use crate::domain::search::index::{RankKey, Record, SearchIndex};
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, Query, StoreError, Write};
use crate::ports::random::random_bytes;
use crate::ports::{Clock, IdGen, Random, Sleep};

/// How many items the search index is split over.
pub const SHARDS: usize = 64;
/// The index's format: raised whenever the word rules or the record's shape change, so stores indexed by an
/// older build are rebuilt once.
pub const INDEX_FORMAT: u64 = 1;
/// The largest shard document, in bytes of JSON (DynamoDB's item limit is 400 KB): with about 150 bytes a
/// product the index holds some 140,000 products before a write is refused.
pub const MAX_SHARD_BYTES: usize = 380_000;
/// How many products [`Catalog::import`] writes in one transaction (two items each; DynamoDB allows 100).
pub const IMPORT_BATCH: usize = 40;
/// How many times a write tries when other catalog writes keep moving the index head first.
const WRITE_ATTEMPTS: usize = 32;
/// The longest pause before the first retry of a write that lost the index head; it doubles with each retry.
const RETRY_BASE: Duration = Duration::from_millis(10);
/// The longest pause before any retry. With [`WRITE_ATTEMPTS`] tries the pauses add up to at most 6.8 s (half
/// that on average), so a burst of concurrent writes spreads out instead of colliding again in step, and a
/// write that keeps losing outlasts the burst rather than giving up inside it: the head commits about one
/// write per store round trip, and sixteen writers drained a burst of 48 in 1.2 to 2.6 s on DynamoDB Local
/// (`adapters::dynamodb::tests::a_burst_of_concurrent_product_writes_all_land_in_the_index` prints it). It stays
/// well inside API Gateway's 29 seconds.
const RETRY_CAP: Duration = Duration::from_millis(250);
const STORE_PAGE: usize = 1000;
const PRODUCT_SK: &str = "PRODUCT";
const SKU_SK: &str = "SKU";
const SEARCH_PK: &str = "SEARCH";
const HEAD_SK: &str = "META";
const SHARD_PREFIX: &str = "SHARD#";
/// The partition of the catalog listing of the layout before the index (one entry per product).
const OLD_CATALOG_PK: &str = "CATALOG";

/// Where the order-events job records that a product's stock has crossed its low-stock threshold and the
/// admins were alerted; removed when the product is restocked above it, so each crossing alerts once.
pub fn low_stock_key(id: &ProductId) -> ItemKey {
    ItemKey::new(format!("LOW_STOCK#{id}"), "ALERT")
}

fn product_key(id: &ProductId) -> ItemKey {
    ItemKey::new(format!("PRODUCT#{id}"), PRODUCT_SK)
}

fn sku_key(product: &Product) -> ItemKey {
    ItemKey::new(format!("SKU#{}", product.sku.as_ref()), SKU_SK)
}

fn head_key() -> ItemKey {
    ItemKey::new(SEARCH_PK, HEAD_SK)
}

/// The shard a product's record lives in: FNV-1a of its id, so every host and build agrees.
fn shard_of(id: &ProductId) -> usize {
    let hash = id.as_ref().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    // The remainder is below SHARDS, so it fits.
    usize::try_from(hash % SHARDS as u64).unwrap_or(0)
}

fn shard_key(shard: usize) -> ItemKey {
    ItemKey::new(SEARCH_PK, format!("{SHARD_PREFIX}{shard:02}"))
}

/// The index head's document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    format: u64,
    /// Every shard's version (0: no shard item yet).
    shards: Vec<u64>,
}

/// A shard's document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Shard {
    /// In ascending id order.
    records: Vec<Record>,
}

/// The index as one instance last loaded it.
#[derive(Debug)]
struct LoadedIndex {
    /// The head's version it was loaded at.
    head_version: u64,
    /// The version of each shard as read.
    shard_versions: Vec<u64>,
    shards: Vec<Arc<Vec<Record>>>,
    index: Arc<SearchIndex>,
}

/// What a search reads and holds, for the logs and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchCost {
    /// Store items read by this search: the head, any changed shards, and the page's products.
    pub items_read: usize,
    /// Shards re-read because they changed since this instance last looked (all of them the first time).
    pub shards_loaded: usize,
    /// Products in the index.
    pub indexed_products: usize,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The page's products, in the search's order.
    pub products: Vec<Product>,
    /// Where the next page starts; `None` when the search is complete.
    pub next: Option<RankKey>,
    /// How many products match, over all pages.
    pub total: usize,
    /// Matching products per category, under every condition but the category filter.
    pub facets: BTreeMap<String, usize>,
    /// Query words dropped because no product matched them all.
    pub ignored_words: Vec<String>,
    /// What the search read.
    pub cost: SearchCost,
}

/// What can go wrong with the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No such product.
    #[error("product not found")]
    NotFound,
    /// The product changed since the version the caller holds.
    #[error("product version is {current}")]
    VersionMismatch {
        /// The current version.
        current: u64,
    },
    /// Another product has this SKU.
    #[error("the SKU belongs to another product")]
    SkuTaken,
    /// The cursor does not point into this search.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for CatalogError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => CatalogError::InvalidCursor,
            other => CatalogError::Internal(anyhow::Error::new(other).context("catalog store call failed")),
        }
    }
}

fn to_item(key: ItemKey, version: u64, document: &impl Serialize) -> Result<Item, CatalogError> {
    let data = serde_json::to_value(document).map_err(|error| anyhow::Error::new(error).context("encode item"))?;
    Ok(Item::new(key, version, data))
}

fn decode<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, anyhow::Error> {
    T::deserialize(&item.data).map_err(|error| anyhow::Error::new(error).context(format!("decode stored item {}", item.key)))
}

fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, CatalogError> {
    serde_json::from_value(item.data)
        .map_err(|error| CatalogError::Internal(anyhow::Error::new(error).context("decode stored item")))
}

/// A product from its own item: the stock is the item's counter (sales change it atomically, see
/// [`Catalog::stock_write`]) and the version the item's, so a sale changes the `ETag` too. Products written
/// before stock became a counter carry it only in their document.
fn product_from_item(item: Item) -> Result<Product, CatalogError> {
    let (version, counter) = (item.version, item.counter);
    let mut product: Product = from_item(item)?;
    product.version = version;
    if let Some(stock) = counter {
        product.stock = u32::try_from(stock.max(0)).unwrap_or(u32::MAX);
    }
    Ok(product)
}

/// The catalog's repository: products, their SKU claims and their search index. Clones share the index an
/// instance has loaded.
#[derive(Debug, Clone)]
pub struct Catalog<S> {
    store: S,
    loaded: Arc<Mutex<Option<Arc<LoadedIndex>>>>,
    backoff: Option<Backoff>,
}

/// How a write that lost the index head to another write waits before it tries again: the host's timer and a
/// random source for the jitter.
#[derive(Clone)]
struct Backoff {
    sleep: Arc<dyn Sleep>,
    random: Arc<dyn Random>,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff").finish_non_exhaustive()
    }
}

/// The pause before retry number `retry` (0 for the first), given 32 random bits
/// ([`crate::ports::clock::full_jitter`] between [`RETRY_BASE`] and [`RETRY_CAP`]).
fn retry_pause(retry: usize, random: u32) -> Duration {
    crate::ports::clock::full_jitter(RETRY_BASE, RETRY_CAP, u32::try_from(retry).unwrap_or(u32::MAX), random)
}

impl<S: ItemStore> Catalog<S> {
    /// A catalog on a store. Its writes retry at once when they lose the index head; a host gives it a timer
    /// with [`Catalog::with_backoff`].
    pub fn new(store: S) -> Self {
        Self { store, loaded: Arc::new(Mutex::new(None)), backoff: None }
    }

    /// The catalog, pausing with jittered exponential backoff (drawn from `random`, waited with `sleep`) before a
    /// write tries again after losing the index head: without it, concurrent writes that collided retry in step
    /// and collide again, and a burst of them runs out of attempts.
    #[must_use]
    pub fn with_backoff(mut self, sleep: Arc<dyn Sleep>, random: Arc<dyn Random>) -> Self {
        self.backoff = Some(Backoff { sleep, random });
        self
    }

    /// After try number `attempt` (0 for the first) of a write lost to another write: waits before the next
    /// try, when the catalog has a timer and a try is left.
    async fn before_retry(&self, attempt: usize) {
        if attempt + 1 >= WRITE_ATTEMPTS {
            return;
        }
        if let Some(backoff) = &self.backoff {
            // A failed random source only loses the spread, never the retry.
            let bits = random_bytes::<4>(backoff.random.as_ref()).map_or(u32::MAX / 2, u32::from_le_bytes);
            backoff.sleep.sleep(retry_pause(attempt, bits)).await;
        }
    }

    /// The product with this id.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`], or [`CatalogError::Internal`] when the store fails.
    pub async fn get(&self, id: &ProductId) -> Result<Product, CatalogError> {
        match self.store.get(&product_key(id)).await? {
            Some(item) => product_from_item(item),
            None => Err(CatalogError::NotFound),
        }
    }

    /// The product with this id, with a stock counter on its item: a product written before stock became a
    /// counter gets one now, from its document, so that [`Catalog::stock_write`] can apply to it.
    ///
    /// # Errors
    /// As [`Catalog::get`].
    pub async fn get_for_sale(&self, id: &ProductId) -> Result<Product, CatalogError> {
        for _ in 0..3 {
            let Some(item) = self.store.get(&product_key(id)).await? else { return Err(CatalogError::NotFound) };
            if item.counter.is_some() {
                return product_from_item(item);
            }
            let product = product_from_item(item.clone())?;
            let adopted = Item { version: item.version + 1, counter: Some(i64::from(product.stock)), ..item };
            match self.store.put(adopted, Condition::VersionEquals(product.version)).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(CatalogError::Internal(anyhow::anyhow!("the product {id} kept changing while getting its stock counter")))
    }

    /// The write that takes `units` out of a product's stock (never below zero) when `units` is positive, or
    /// puts them back when it is negative, for a checkout's or a cancellation's transaction. It fails as a
    /// condition when the stock is short (or the product is gone).
    pub fn stock_write(id: &ProductId, units: i64) -> Write {
        Write::Add { key: product_key(id), delta: -units, floor: Some(0), ceiling: None }
    }

    /// Applies a product's own writes together with its index change (`record`: its new record, or `None` to
    /// remove it), retrying when another catalog write moved the index first. A failed condition among the
    /// product's own writes is returned with its index in `writes`, for the caller to name.
    async fn write_with_index(&self, id: &ProductId, record: Option<Record>, writes: Vec<Write>) -> Result<(), StoreError> {
        let shard_number = shard_of(id);
        // The head and the shard in one read: the fewer round trips between reading the head and committing, the
        // fewer concurrent writes move it in between and make this try lose.
        let keys = [head_key(), shard_key(shard_number)];
        for attempt in 0..WRITE_ATTEMPTS {
            let (mut head_item, mut shard_item) = (None, None);
            for item in self.store.get_many(&keys).await? {
                if item.key == keys[0] {
                    head_item = Some(item);
                } else {
                    shard_item = Some(item);
                }
            }
            let Some(head_item) = head_item else {
                self.rebuild_index().await.map_err(|error| StoreError::Internal(anyhow::anyhow!("{error}")))?;
                continue;
            };
            let head: Head = decode(&head_item).map_err(StoreError::Internal)?;
            if head.format != INDEX_FORMAT || head.shards.len() != SHARDS {
                self.rebuild_index().await.map_err(|error| StoreError::Internal(anyhow::anyhow!("{error}")))?;
                continue;
            }
            let (shard_version, mut shard) = match &shard_item {
                Some(item) => (item.version, decode::<Shard>(item).map_err(StoreError::Internal)?),
                None => (0, Shard::default()),
            };
            shard.records.retain(|known| known.id != *id);
            if let Some(record) = &record {
                let at = shard.records.partition_point(|known| known.id < record.id);
                shard.records.insert(at, record.clone());
            }
            let shard_data = serde_json::to_value(&shard).map_err(|error| StoreError::Internal(error.into()))?;
            let shard_bytes = shard_data.to_string().len();
            if shard_bytes > MAX_SHARD_BYTES {
                return Err(StoreError::Internal(anyhow::anyhow!(
                    "search index shard {shard_number} would hold {shard_bytes} bytes, over {MAX_SHARD_BYTES}: the catalog outgrew the index's {SHARDS} shards"
                )));
            }
            let mut next_head = head;
            next_head.shards[shard_number] = shard_version + 1;
            let head_data = serde_json::to_value(&next_head).map_err(|error| StoreError::Internal(error.into()))?;
            let own = writes.len();
            let mut all = writes.clone();
            all.push(Write::Put {
                item: Item::new(shard_key(shard_number), shard_version + 1, shard_data),
                condition: if shard_item.is_some() { Condition::VersionEquals(shard_version) } else { Condition::NotExists },
            });
            all.push(Write::Put {
                item: Item::new(head_key(), head_item.version + 1, head_data),
                condition: Condition::VersionEquals(head_item.version),
            });
            match self.store.transact(all).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { index, .. }) if index >= own => self.before_retry(attempt).await,
                Err(StoreError::Contention) => self.before_retry(attempt).await,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contention)
    }

    /// Creates a product with a new id, claiming its SKU and indexing it, all in one transaction.
    ///
    /// # Errors
    /// [`CatalogError::SkuTaken`], or [`CatalogError::Internal`] when the store fails.
    pub async fn create(
        &self,
        new_product: NewProduct,
        id_gen: &impl IdGen,
        clock: &impl Clock,
    ) -> Result<Product, CatalogError> {
        let id = ProductId::parse(&id_gen.new_id())
            .map_err(|_| CatalogError::Internal(anyhow::anyhow!("the id generator made an invalid id")))?;
        let product = new_product.into_product(id, clock.now());
        let writes = Self::own_writes(&product)?;
        match self.write_with_index(&product.id, Some(Record::of(&product)), writes).await {
            Ok(()) => Ok(product),
            Err(StoreError::ConditionFailed { index: 1, .. }) => Err(CatalogError::SkuTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// Replaces a product's fields if it is still at `expected_version`, keeping its SKU claim and index in step.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`], [`CatalogError::VersionMismatch`], [`CatalogError::SkuTaken`], or
    /// [`CatalogError::Internal`] when the store fails.
    pub async fn replace(
        &self,
        id: &ProductId,
        fields: NewProduct,
        expected_version: u64,
        clock: &impl Clock,
    ) -> Result<Product, CatalogError> {
        let old = self.get(id).await?;
        if old.version != expected_version {
            return Err(CatalogError::VersionMismatch { current: old.version });
        }
        let mut product = fields.into_product(old.id.clone(), clock.now());
        product.created_at = old.created_at;
        product.version = old.version + 1;
        let mut writes = vec![Write::Put {
            item: to_item(product_key(id), product.version, &product)?.with_counter(i64::from(product.stock)),
            condition: Condition::VersionEquals(old.version),
        }];
        let sku_item = to_item(sku_key(&product), product.version, &Value::String(id.to_string()))?;
        if product.sku == old.sku {
            writes.push(Write::Put { item: sku_item, condition: Condition::Exists });
        } else {
            writes.push(Write::Put { item: sku_item, condition: Condition::NotExists });
            writes.push(Write::Delete { key: sku_key(&old), condition: Condition::None });
        }
        if product.stock > product.low_stock_threshold {
            // Restocked above the threshold: the next fall to it is a new crossing, alerted again.
            writes.push(Write::Delete { key: low_stock_key(id), condition: Condition::None });
        }
        match self.write_with_index(id, Some(Record::of(&product)), writes).await {
            Ok(()) => Ok(product),
            Err(StoreError::ConditionFailed { index: 0, .. }) => match self.store.get(&product_key(id)).await? {
                Some(item) => Err(CatalogError::VersionMismatch { current: item.version }),
                None => Err(CatalogError::NotFound),
            },
            Err(StoreError::ConditionFailed { .. }) => Err(CatalogError::SkuTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a product if it is still at `expected_version`, with its SKU claim and index record.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`], [`CatalogError::VersionMismatch`], or [`CatalogError::Internal`].
    pub async fn delete(&self, id: &ProductId, expected_version: u64) -> Result<(), CatalogError> {
        let old = self.get(id).await?;
        if old.version != expected_version {
            return Err(CatalogError::VersionMismatch { current: old.version });
        }
        let writes = vec![
            Write::Delete { key: product_key(id), condition: Condition::VersionEquals(old.version) },
            Write::Delete { key: sku_key(&old), condition: Condition::None },
        ];
        match self.write_with_index(id, None, writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => match self.store.get(&product_key(id)).await? {
                Some(item) => Err(CatalogError::VersionMismatch { current: item.version }),
                None => Err(CatalogError::NotFound),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// The index as of now: the instance's copy when the head says it is current, else the copy with every
    /// changed shard re-read (and the whole index rebuilt once when the store has none of this format).
    async fn current_index(&self, cost: &mut SearchCost) -> Result<Arc<LoadedIndex>, CatalogError> {
        for _ in 0..3 {
            cost.items_read += 1;
            let Some(head_item) = self.store.get(&head_key()).await? else {
                self.rebuild_index().await?;
                continue;
            };
            let head: Head = decode(&head_item)?;
            if head.format != INDEX_FORMAT || head.shards.len() != SHARDS {
                self.rebuild_index().await?;
                continue;
            }
            let previous = self.loaded.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(loaded) = &previous
                && loaded.head_version == head_item.version
            {
                return Ok(loaded.clone());
            }
            let mut shard_versions = vec![0; SHARDS];
            let mut shards: Vec<Arc<Vec<Record>>> = (0..SHARDS).map(|_| Arc::new(Vec::new())).collect();
            let mut stale = Vec::new();
            for (number, &version) in head.shards.iter().enumerate() {
                match &previous {
                    Some(loaded) if loaded.shard_versions[number] == version => {
                        shard_versions[number] = version;
                        shards[number] = loaded.shards[number].clone();
                    }
                    _ if version == 0 => {}
                    _ => stale.push(number),
                }
            }
            let keys: Vec<ItemKey> = stale.iter().map(|&number| shard_key(number)).collect();
            cost.items_read += keys.len();
            cost.shards_loaded += keys.len();
            for item in self.store.get_many(&keys).await? {
                let Some(number) = item.key.sk.strip_prefix(SHARD_PREFIX).and_then(|n| n.parse::<usize>().ok()) else { continue };
                if number >= SHARDS {
                    continue;
                }
                // Remembered under the head's claim unless older than it, so a shard the head lags behind
                // (a rebuild that lost a race) is not re-read at every search.
                shard_versions[number] = item.version.min(head.shards[number]);
                shards[number] = Arc::new(decode::<Shard>(&item)?.records);
            }
            let index = Arc::new(SearchIndex::build(shards.iter().flat_map(|records| records.iter().cloned())));
            let loaded = Arc::new(LoadedIndex { head_version: head_item.version, shard_versions, shards, index });
            *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = Some(loaded.clone());
            return Ok(loaded);
        }
        Err(CatalogError::Internal(anyhow::anyhow!("the search index kept changing while it was loaded")))
    }

    /// Rebuilds the search index from the products: those its shards list (any format) and those of the
    /// listing of the layout before the index. Run once when the store has no index or an older format; it
    /// reads every product, so it is never part of an ordinary search.
    ///
    /// Every shard and the head are written on the condition that they did not change since they were read,
    /// and the rebuild starts over when one did, so a product write that lands meanwhile is never overwritten:
    /// either it is read into the rebuild, or it moves the head and the rebuild reads it next time.
    async fn rebuild_index(&self) -> Result<(), CatalogError> {
        'attempt: for attempt in 0..WRITE_ATTEMPTS {
            let head_before = self.store.get(&head_key()).await?;
            if let Some(item) = &head_before
                && decode::<Head>(item).is_ok_and(|head| head.format == INDEX_FORMAT && head.shards.len() == SHARDS)
            {
                return Ok(()); // Another instance rebuilt it meanwhile.
            }
            let mut shard_versions = vec![0; SHARDS];
            let mut ids: BTreeSet<String> = BTreeSet::new();
            for (pk, prefix) in [(SEARCH_PK, SHARD_PREFIX), (OLD_CATALOG_PK, "")] {
                let mut query = Query::new(pk, prefix, STORE_PAGE);
                loop {
                    let page = self.store.query(&query).await?;
                    for item in &page.items {
                        if pk == OLD_CATALOG_PK {
                            ids.insert(item.key.sk.clone());
                            continue;
                        }
                        if let Some(number) = item.key.sk.strip_prefix(SHARD_PREFIX).and_then(|n| n.parse::<usize>().ok())
                            && number < SHARDS
                        {
                            shard_versions[number] = item.version;
                        }
                        if let Some(records) = item.data.get("records").and_then(Value::as_array) {
                            // Only the id, first in every format's record, is read: the rest may be of another format.
                            ids.extend(records.iter().filter_map(|record| record.get(0)?.as_str().map(str::to_owned)));
                        }
                    }
                    match page.next {
                        Some(next) => query = query.after(Some(next)),
                        None => break,
                    }
                }
            }
            let mut shards: Vec<Vec<Record>> = vec![Vec::new(); SHARDS];
            for id in ids {
                let Ok(id) = ProductId::parse(&id) else { continue };
                match self.get(&id).await {
                    Ok(product) => shards[shard_of(&id)].push(Record::of(&product)),
                    Err(CatalogError::NotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            let mut versions = Vec::with_capacity(SHARDS);
            for (number, mut records) in shards.into_iter().enumerate() {
                let old_version = shard_versions[number];
                if records.is_empty() && old_version == 0 {
                    versions.push(0);
                    continue;
                }
                records.sort_by(|left, right| left.id.cmp(&right.id));
                let condition = if old_version == 0 { Condition::NotExists } else { Condition::VersionEquals(old_version) };
                match self.store.put(to_item(shard_key(number), old_version + 1, &Shard { records })?, condition).await {
                    Ok(()) => versions.push(old_version + 1),
                    Err(StoreError::ConditionFailed { .. }) => {
                        self.before_retry(attempt).await;
                        continue 'attempt;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            let head = Head { format: INDEX_FORMAT, shards: versions };
            let (version, condition) = match &head_before {
                Some(item) => (item.version + 1, Condition::VersionEquals(item.version)),
                None => (1, Condition::NotExists),
            };
            match self.store.put(to_item(head_key(), version, &head)?, condition).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => self.before_retry(attempt).await,
                Err(error) => return Err(error.into()),
            }
        }
        Err(CatalogError::Internal(anyhow::anyhow!("the search index kept changing while it was rebuilt")))
    }

    /// One page of the products matching a search, in the search's order, resuming after `after` (the
    /// previous page's `next`).
    ///
    /// # Errors
    /// [`CatalogError::Internal`] when the store fails.
    pub async fn search(&self, request: &SearchRequest, after: Option<RankKey>) -> Result<SearchPage, CatalogError> {
        let mut cost = SearchCost::default();
        let loaded = self.current_index(&mut cost).await?;
        let hits = loaded.index.search(request, after.as_ref());
        cost.indexed_products = loaded.index.len();
        cost.items_read += hits.ids.len();
        let keys: Vec<ItemKey> = hits.ids.iter().map(product_key).collect();
        let mut products = Vec::with_capacity(hits.ids.len());
        // In one read; a product deleted since the index was read is left out of its page.
        for item in self.store.get_many(&keys).await? {
            products.push(product_from_item(item)?);
        }
        Ok(SearchPage {
            products,
            next: hits.next,
            total: hits.total,
            facets: hits.facets,
            ignored_words: hits.ignored_words,
            cost,
        })
    }

    /// Writes the demo catalog (its first `count` products: see [`crate::demo::generated_catalog`]; the demo
    /// itself is [`crate::demo::DEMO_PRODUCT_COUNT`]) unless a previous run finished doing so. Safe to run
    /// concurrently and to re-run after a crash: products whose SKU is already claimed are skipped (and indexed
    /// again), and a marker item written last makes later runs return at once, whatever `count` they ask for.
    /// Returns how many products it created.
    ///
    /// # Errors
    /// [`CatalogError::Internal`] when the store fails or the demo data breaks a rule.
    pub async fn seed_demo_if_empty(&self, count: usize, id_gen: &impl IdGen, clock: &impl Clock) -> Result<usize, CatalogError> {
        let marker = ItemKey::new("META", "DEMO_SEEDED");
        if self.store.get(&marker).await?.is_some() {
            return Ok(0);
        }
        let products = crate::demo::generated_catalog(count).map_err(|error| anyhow::anyhow!("demo catalog: {error}"))?;
        let created = self.import(products, id_gen, clock).await?;
        let done = to_item(marker, 1, &serde_json::json!({ "products": created }))?;
        self.store.put(done, Condition::None).await?;
        Ok(created)
    }

    /// Creates many products at once, for seeding: their items [`IMPORT_BATCH`] products to a transaction, then
    /// their index records one shard at a time (each shard with the head, in one transaction). A product whose SKU
    /// is claimed already is not created again, but the claiming product is indexed again, so re-running an
    /// import that crashed between the two steps indexes what it wrote. Returns how many products it created.
    ///
    /// # Errors
    /// [`CatalogError::Internal`] when the store fails.
    pub async fn import(&self, products: Vec<NewProduct>, id_gen: &impl IdGen, clock: &impl Clock) -> Result<usize, CatalogError> {
        let mut records: Vec<Record> = Vec::with_capacity(products.len());
        let mut created = 0;
        for chunk in products.chunks(IMPORT_BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for fields in chunk {
                let id = ProductId::parse(&id_gen.new_id())
                    .map_err(|_| CatalogError::Internal(anyhow::anyhow!("the id generator made an invalid id")))?;
                batch.push(fields.clone().into_product(id, clock.now()));
            }
            let mut writes = Vec::with_capacity(batch.len() * 2);
            for product in &batch {
                writes.extend(Self::own_writes(product)?);
            }
            match self.store.transact(writes).await {
                Ok(()) => {
                    created += batch.len();
                    records.extend(batch.iter().map(Record::of));
                    continue;
                }
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            // Some SKU is claimed already: product by product, indexing the claimant of each claimed SKU.
            for product in batch {
                match self.store.transact(Self::own_writes(&product)?).await {
                    Ok(()) => {
                        created += 1;
                        records.push(Record::of(&product));
                    }
                    Err(StoreError::ConditionFailed { .. }) => {
                        let Some(claim) = self.store.get(&sku_key(&product)).await? else { continue };
                        let Some(owner) = claim.data.as_str().and_then(|id| ProductId::parse(id).ok()) else { continue };
                        match self.get(&owner).await {
                            Ok(existing) => records.push(Record::of(&existing)),
                            Err(CatalogError::NotFound) => {}
                            Err(error) => return Err(error),
                        }
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let mut by_shard: Vec<Vec<Record>> = vec![Vec::new(); SHARDS];
        for record in records {
            by_shard[shard_of(&record.id)].push(record);
        }
        for (number, added) in by_shard.into_iter().enumerate() {
            if !added.is_empty() {
                self.merge_into_shard(number, added).await?;
            }
        }
        Ok(created)
    }

    /// The writes that create a product's own items: the product (with its stock counter) and its SKU claim.
    fn own_writes(product: &Product) -> Result<Vec<Write>, CatalogError> {
        Ok(vec![
            Write::Put {
                item: to_item(product_key(&product.id), product.version, product)?.with_counter(i64::from(product.stock)),
                condition: Condition::NotExists,
            },
            Write::Put {
                item: to_item(sku_key(product), product.version, &Value::String(product.id.to_string()))?,
                condition: Condition::NotExists,
            },
        ])
    }

    /// Adds records to one shard (replacing any of the same ids), in one transaction with the head.
    async fn merge_into_shard(&self, number: usize, added: Vec<Record>) -> Result<(), CatalogError> {
        for attempt in 0..WRITE_ATTEMPTS {
            let Some(head_item) = self.store.get(&head_key()).await? else {
                self.rebuild_index().await?;
                continue;
            };
            let mut head: Head = decode(&head_item)?;
            if head.format != INDEX_FORMAT || head.shards.len() != SHARDS {
                self.rebuild_index().await?;
                continue;
            }
            let shard_item = self.store.get(&shard_key(number)).await?;
            let (version, mut shard) = match &shard_item {
                Some(item) => (item.version, decode::<Shard>(item)?),
                None => (0, Shard::default()),
            };
            let mut merged: BTreeMap<ProductId, Record> =
                shard.records.drain(..).map(|record| (record.id.clone(), record)).collect();
            let mut changed = false;
            for record in &added {
                if merged.get(&record.id) != Some(record) {
                    merged.insert(record.id.clone(), record.clone());
                    changed = true;
                }
            }
            if !changed {
                // Already there (a concurrent seeding of the same catalog wrote it): nothing to move the head for.
                return Ok(());
            }
            shard.records = merged.into_values().collect();
            head.shards[number] = version + 1;
            let writes = vec![
                Write::Put {
                    item: to_item(shard_key(number), version + 1, &shard)?,
                    condition: if shard_item.is_some() { Condition::VersionEquals(version) } else { Condition::NotExists },
                },
                Write::Put { item: to_item(head_key(), head_item.version + 1, &head)?, condition: Condition::VersionEquals(head_item.version) },
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => self.before_retry(attempt).await,
                Err(error) => return Err(error.into()),
            }
        }
        Err(CatalogError::Internal(anyhow::anyhow!("the search index kept changing while shard {number} was merged")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::adapters::memory::{ManualClock, SequentialIds};
    use crate::domain::{Currency, Money, SearchParams};
    use crate::ports::item_store::Page;

    /// The store under test, counting the items every read returns (a get counts one, present or not), and
    /// reporting contention for its next `losses` transactions (as when other writers keep moving the head).
    #[derive(Clone)]
    struct Counted<S> {
        inner: S,
        reads: Arc<AtomicUsize>,
        losses: Arc<AtomicUsize>,
    }

    impl<S: ItemStore> ItemStore for Counted<S> {
        async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
            self.inner.put(item, condition).await
        }
        async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
            self.inner.delete(key, condition).await
        }
        async fn query(&self, query: &Query) -> Result<Page, StoreError> {
            let page = self.inner.query(query).await?;
            self.reads.fetch_add(page.items.len().max(1), Ordering::SeqCst);
            Ok(page)
        }
        async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
            if self.losses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok() {
                return Err(StoreError::Contention);
            }
            self.inner.transact(writes).await
        }
    }

    /// A timer that waits for nothing and writes down every pause it was asked for.
    #[derive(Default)]
    struct Pauses(Mutex<Vec<Duration>>);

    impl Sleep for Pauses {
        fn sleep(&self, duration: Duration) -> crate::ports::SleepFuture {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(duration);
            Box::pin(std::future::ready(()))
        }
    }

    /// A catalog whose index exists (one product written), whose next `losses` transactions then lose.
    async fn losing_catalog(losses: usize) -> (Catalog<Counted<crate::adapters::memory::MemoryItemStore>>, Arc<Pauses>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(crate::ports::Timestamp::from_secs(1_800_000_000)));
        let left = Arc::new(AtomicUsize::new(0));
        let store = Counted { inner: crate::adapters::memory::MemoryItemStore::new(clock.clone()), reads: Arc::default(), losses: left.clone() };
        let pauses = Arc::new(Pauses::default());
        let catalog = Catalog::new(store).with_backoff(pauses.clone(), Arc::new(crate::adapters::memory::PredictableRandom::new(7)));
        let first = catalog.create(fields("L-0", "Elm Stool", "misc", 100), &SequentialIds::new("first"), clock.as_ref()).await;
        assert!(first.is_ok(), "{first:?}");
        assert!(pauses.0.lock().unwrap_or_else(PoisonError::into_inner).is_empty(), "a write that lost nothing paused");
        left.store(losses, Ordering::SeqCst);
        (catalog, pauses, clock)
    }

    #[test]
    fn a_retry_pause_is_jittered_below_a_ceiling_that_doubles_up_to_its_cap() {
        for retry in 0..20 {
            let ceiling = RETRY_BASE.saturating_mul(1 << retry.min(16)).min(RETRY_CAP);
            let pauses: BTreeSet<Duration> = [0, 1, 977, 65_535, 1 << 20, u32::MAX / 3, u32::MAX].map(|bits| retry_pause(retry, bits)).into();
            assert!(pauses.iter().all(|pause| *pause <= ceiling), "retry {retry}: {pauses:?} above {ceiling:?}");
            assert!(pauses.len() >= 5, "retry {retry}: the random bits barely change the pause: {pauses:?}");
        }
        assert_eq!(retry_pause(0, 10_000), Duration::from_micros(10_000), "the first ceiling is the base");
        assert_eq!(retry_pause(30, 250_000), RETRY_CAP, "the cap holds however many retries came before");
    }

    #[tokio::test]
    async fn a_write_that_loses_the_head_pauses_before_each_retry_and_then_lands() {
        let (catalog, pauses, clock) = losing_catalog(5).await;
        let ids = SequentialIds::new("p");
        let created = catalog.create(fields("L-1", "Oak Bench", "misc", 100), &ids, clock.as_ref()).await;
        assert!(created.is_ok(), "{created:?}");
        let pauses = pauses.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(pauses.len(), 5, "one pause per lost try: {pauses:?}");
        for (retry, pause) in pauses.iter().enumerate() {
            assert!(*pause <= RETRY_BASE.saturating_mul(1 << retry), "retry {retry} paused {pause:?}");
        }
        assert!(pauses.iter().collect::<BTreeSet<_>>().len() > 1, "the pauses are jittered: {pauses:?}");
        assert_eq!(search(&catalog, "oak", 10).await.total, 1);
    }

    #[tokio::test]
    async fn a_write_that_always_loses_gives_up_as_contention_within_its_bounded_pauses() {
        let (catalog, pauses, clock) = losing_catalog(usize::MAX).await;
        let ids = SequentialIds::new("p");
        let created = catalog.create(fields("L-2", "Ash Bench", "misc", 100), &ids, clock.as_ref()).await;
        let gave_up = matches!(&created, Err(CatalogError::Internal(error)) if matches!(error.downcast_ref::<StoreError>(), Some(StoreError::Contention)));
        assert!(gave_up, "{created:?}");
        let pauses = pauses.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(pauses.len(), WRITE_ATTEMPTS - 1, "{pauses:?}");
        let total: Duration = pauses.iter().sum();
        assert!(total <= Duration::from_millis(6_810), "the pauses add up to {total:?}");
    }

    fn fields(sku: &str, name: &str, category: &str, price: i64) -> NewProduct {
        NewProduct::new(sku, name, "Made to last.", category, Money::new(price, Currency::EUR), 3)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    fn request(text: &str, limit: usize) -> SearchRequest {
        SearchRequest::new(SearchParams { text: Some(text), limit: Some(limit), ..SearchParams::default() })
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn search<S: ItemStore>(catalog: &Catalog<S>, text: &str, limit: usize) -> SearchPage {
        catalog.search(&request(text, limit), None).await.unwrap_or_else(|error| panic!("{error}"))
    }

    async fn a_search_reads_the_head_and_its_page_whatever_the_catalog_holds(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let catalog = Catalog::new(Counted { inner: store, reads: reads.clone(), losses: Arc::default() });
        let ids = SequentialIds::new("p");
        for number in 0..300 {
            let name = if number % 3 == 0 { format!("Walnut Lamp {number}") } else { format!("Oak Chair {number}") };
            catalog.create(fields(&format!("S-{number}"), &name, "misc", 100 + number), &ids, clock.as_ref()).await
                .unwrap_or_else(|error| panic!("{error}"));
        }
        let first = search(&catalog, "walnut", 10).await;
        assert_eq!((first.total, first.products.len(), first.cost.indexed_products), (100, 10, 300));
        assert!(first.cost.shards_loaded > 0 && first.cost.shards_loaded <= SHARDS, "{:?}", first.cost);
        for (text, limit, page) in [("walnut lamp", 5, 5), ("oak", 20, 20), ("wal", 1, 1), ("zeppelin ", 10, 0)] {
            reads.store(0, Ordering::SeqCst);
            let found = search(&catalog, text, limit).await;
            assert_eq!(found.products.len(), page, "{text}");
            assert_eq!(reads.load(Ordering::SeqCst), 1 + page, "{text}: the head and the page, nothing else");
            assert_eq!(found.cost.items_read, 1 + page, "{text}: the reported cost");
        }
    }

    async fn another_instance_sees_every_write_and_rereads_only_the_changed_shard(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = Catalog::new(Counted { inner: store.clone(), reads: reads.clone(), losses: Arc::default() });
        let writer = Catalog::new(store);
        let ids = SequentialIds::new("p");
        for number in 0..40 {
            writer.create(fields(&format!("S-{number}"), "Oak Chair", "misc", 100), &ids, clock.as_ref()).await
                .unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(search(&reader, "oak", 100).await.total, 40);
        let lamp = writer.create(fields("L-1", "Brass Lamp", "lighting", 900), &ids, clock.as_ref()).await
            .unwrap_or_else(|error| panic!("{error}"));
        reads.store(0, Ordering::SeqCst);
        let found = search(&reader, "brass", 10).await;
        assert_eq!(found.products.iter().map(|product| product.id.as_ref()).collect::<Vec<&str>>(), [lamp.id.as_ref()]);
        assert_eq!(found.cost.shards_loaded, 1);
        assert_eq!(reads.load(Ordering::SeqCst), 1 + 1 + 1, "the head, the changed shard, the page");
        let renamed = writer.replace(&lamp.id, fields("L-1", "Copper Lamp", "lighting", 900), lamp.version, clock.as_ref()).await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(search(&reader, "brass ", 10).await.total, 0);
        assert_eq!(search(&reader, "copper", 10).await.total, 1);
        writer.delete(&lamp.id, renamed.version).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(search(&reader, "copper", 10).await.total, 0);
        assert_eq!(search(&reader, "", 100).await.total, 40);
    }

    async fn concurrent_writes_all_reach_the_index(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let catalog = Catalog::new(store);
        let ids = Arc::new(SequentialIds::new("p"));
        let writers = (0..16).map(|number| {
            let (catalog, ids, clock) = (catalog.clone(), ids.clone(), clock.clone());
            tokio::spawn(async move {
                catalog.create(fields(&format!("C-{number}"), "Teak Stool", "misc", 100), ids.as_ref(), clock.as_ref()).await
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.unwrap_or_else(|error| panic!("{error}")).unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(search(&catalog, "teak", 100).await.total, 16);
    }

    async fn a_store_written_before_the_index_is_indexed_once(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        // The layout before the index: product items and a `CATALOG` listing entry per product.
        let ids = SequentialIds::new("old");
        for number in 0..5 {
            let id = ProductId::parse(&ids.new_id()).unwrap_or_else(|error| panic!("{error}"));
            let product = fields(&format!("O-{number}"), "Pine Shelf", "misc", 100).into_product(id, clock.now());
            let item = to_item(product_key(&product.id), product.version, &product).unwrap_or_else(|error| panic!("{error}"));
            store.put(item.with_counter(3), Condition::None).await.unwrap_or_else(|error| panic!("{error}"));
            let entry = Item::new(ItemKey::new(OLD_CATALOG_PK, product.id.as_ref()), 1, serde_json::json!({ "product": product }));
            store.put(entry, Condition::None).await.unwrap_or_else(|error| panic!("{error}"));
        }
        let catalog = Catalog::new(store.clone());
        assert_eq!(search(&catalog, "pine", 100).await.total, 5);
        let head = store.get(&head_key()).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(head.map(|item| item.data["format"].clone()), Some(serde_json::json!(INDEX_FORMAT)));
    }

    async fn an_import_indexes_what_it_wrote_and_heals_an_interrupted_one<S: ItemStore + Clone>(store: S, clock: Arc<ManualClock>) {
        let catalog = Catalog::new(store.clone());
        let ids = SequentialIds::new("p");
        let products = crate::demo::generated_catalog(300).unwrap_or_else(|error| panic!("{error}"));
        // An import that died after writing its first 50 products' items, before indexing them.
        for fields in &products[..50] {
            let id = ProductId::parse(&ids.new_id()).unwrap_or_else(|error| panic!("{error}"));
            let writes = Catalog::<S>::own_writes(&fields.clone().into_product(id, clock.now())).unwrap_or_else(|error| panic!("{error}"));
            store.transact(writes).await.unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(search(&catalog, "", 100).await.total, 0);
        let created = catalog.import(products, &ids, clock.as_ref()).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(created, 250);
        assert_eq!(search(&catalog, "", 100).await.total, 300);
        assert_eq!(search(&catalog, "walnut ", 100).await.total, crate::demo::generated_catalog(300)
            .unwrap_or_else(|error| panic!("{error}"))
            .iter()
            .filter(|fields| fields.name.contains("Walnut"))
            .count());
        assert_eq!(catalog.seed_demo_if_empty(300, &ids, clock.as_ref()).await.ok(), Some(0));
        assert_eq!(catalog.seed_demo_if_empty(300, &ids, clock.as_ref()).await.ok(), Some(0));
    }

    async fn concurrent_seedings_of_one_catalog_all_succeed_and_index_it_once(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        // As at a deploy's first cold starts: every function instance seeds the same empty store at once.
        let ids = Arc::new(SequentialIds::new("p"));
        let seeders = (0..8).map(|_| {
            let (catalog, ids, clock) = (Catalog::new(store.clone()), ids.clone(), clock.clone());
            tokio::spawn(async move { catalog.seed_demo_if_empty(60, ids.as_ref(), clock.as_ref()).await })
        });
        let mut created = 0;
        for seeder in futures::future::join_all(seeders).await {
            created += seeder.unwrap_or_else(|error| panic!("{error}")).unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(created, 60, "each product created once");
        let catalog = Catalog::new(store);
        assert_eq!(search(&catalog, "", 100).await.total, 60);
    }

    crate::test_stores::each_store!(
        concurrent_seedings_of_one_catalog_all_succeed_and_index_it_once,
        an_import_indexes_what_it_wrote_and_heals_an_interrupted_one,
        a_search_reads_the_head_and_its_page_whatever_the_catalog_holds,
        another_instance_sees_every_write_and_rereads_only_the_changed_shard,
        concurrent_writes_all_reach_the_index,
        a_store_written_before_the_index_is_indexed_once,
    );
}
