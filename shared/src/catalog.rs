//! The product repository and its search index, written once on top of the [`ItemStore`] port.
//!
//! Layout in the store (one table, as on DynamoDB):
//!
//! | item | partition key | sort key | document |
//! | --- | --- | --- | --- |
//! | product | `PRODUCT#<id>` | `PRODUCT` | the product |
//! | SKU claim | `SKU#<sku>` | `SKU` | the owning product id |
//! | catalog entry | `CATALOG` | `<id>` | the product and its tokens |
//! | category entry | `CATEGORY#<category>` | `<id>` | the product and its tokens |
//! | token entry | `TOKEN#<token>` | `<id>` | the product and its tokens |
//!
//! Every product write updates the product, its SKU claim and all its entries in one transaction, so the
//! index never disagrees with the products. Stock is the exception: it is the counter of the product's own
//! item, which checkouts and cancellations change atomically ([`Catalog::stock_write`]) without rewriting the
//! index, so listings show the stock of the last catalog write while `GET /products/{id}` and carts see it live. A search walks one list (see `SearchRequest::source`), filters
//! each entry by the full request, and examines at most [`MAX_EXAMINED`] entries per call: a search never
//! reads the whole catalog, and a sparse result comes back as a short page with a cursor.
//! This module owns no HTTP and no clock; time and ids come in as arguments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::product::{NewProduct, Product, ProductId};
use crate::domain::search::{SearchRequest, SearchSource, Tokens};
use crate::ports::item_store::{Condition, Cursor, Item, ItemKey, ItemStore, Query, StoreError, Write};
use crate::ports::{Clock, IdGen};

/// The most index entries one search call examines.
pub const MAX_EXAMINED: usize = 500;
const STORE_PAGE: usize = 100;
const PRODUCT_SK: &str = "PRODUCT";
const SKU_SK: &str = "SKU";
const CATALOG_PK: &str = "CATALOG";

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

fn source_pk(source: &SearchSource) -> String {
    match source {
        SearchSource::Token(token) => format!("TOKEN#{token}"),
        SearchSource::Category(category) => format!("CATEGORY#{category}"),
        SearchSource::Catalog => CATALOG_PK.to_owned(),
    }
}

/// The partitions a product is listed in.
fn entry_pks(product: &Product, tokens: &Tokens) -> Vec<String> {
    let mut pks = vec![CATALOG_PK.to_owned(), format!("CATEGORY#{}", product.category)];
    pks.extend(tokens.as_slice().iter().map(|token| format!("TOKEN#{token}")));
    pks
}

/// An index entry's document: the product as listed, with the tokens it is indexed under.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    product: Product,
    tokens: Vec<String>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Matching products in ascending id order.
    pub products: Vec<Product>,
    /// Where the next page starts; `None` when the search is complete.
    pub next: Option<Cursor>,
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

/// The catalog's repository: products, their SKU claims and their search index.
#[derive(Debug, Clone)]
pub struct Catalog<S> {
    store: S,
}

impl<S: ItemStore> Catalog<S> {
    /// A catalog on a store.
    pub fn new(store: S) -> Self {
        Self { store }
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

    fn writes_for(product: &Product, tokens: &Tokens) -> Result<Vec<Write>, CatalogError> {
        let entry = Entry { product: product.clone(), tokens: tokens.as_slice().to_vec() };
        let mut writes = Vec::with_capacity(tokens.as_slice().len() + 4);
        for pk in entry_pks(product, tokens) {
            let item = to_item(ItemKey::new(pk, product.id.as_ref()), product.version, &entry)?;
            writes.push(Write::Put { item, condition: Condition::None });
        }
        Ok(writes)
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
        let tokens = Tokens::of_product(&product);
        let mut writes = vec![
            Write::Put {
                item: to_item(product_key(&product.id), product.version, &product)?.with_counter(i64::from(product.stock)),
                condition: Condition::NotExists,
            },
            Write::Put {
                item: to_item(sku_key(&product), product.version, &Value::String(product.id.to_string()))?,
                condition: Condition::NotExists,
            },
        ];
        writes.extend(Self::writes_for(&product, &tokens)?);
        match self.store.transact(writes).await {
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
        let old_tokens = Tokens::of_product(&old);
        let tokens = Tokens::of_product(&product);
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
        let new_pks = entry_pks(&product, &tokens);
        for stale_pk in entry_pks(&old, &old_tokens).into_iter().filter(|pk| !new_pks.contains(pk)) {
            writes.push(Write::Delete { key: ItemKey::new(stale_pk, id.as_ref()), condition: Condition::None });
        }
        writes.extend(Self::writes_for(&product, &tokens)?);
        if product.stock > product.low_stock_threshold {
            // Restocked above the threshold: the next fall to it is a new crossing, alerted again.
            writes.push(Write::Delete { key: low_stock_key(id), condition: Condition::None });
        }
        match self.store.transact(writes).await {
            Ok(()) => Ok(product),
            Err(StoreError::ConditionFailed { index: 0, .. }) => match self.store.get(&product_key(id)).await? {
                Some(item) => Err(CatalogError::VersionMismatch { current: item.version }),
                None => Err(CatalogError::NotFound),
            },
            Err(StoreError::ConditionFailed { .. }) => Err(CatalogError::SkuTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a product if it is still at `expected_version`, with its SKU claim and index entries.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`], [`CatalogError::VersionMismatch`], or [`CatalogError::Internal`].
    pub async fn delete(&self, id: &ProductId, expected_version: u64) -> Result<(), CatalogError> {
        let old = self.get(id).await?;
        if old.version != expected_version {
            return Err(CatalogError::VersionMismatch { current: old.version });
        }
        let mut writes = vec![
            Write::Delete { key: product_key(id), condition: Condition::VersionEquals(old.version) },
            Write::Delete { key: sku_key(&old), condition: Condition::None },
        ];
        for pk in entry_pks(&old, &Tokens::of_product(&old)) {
            writes.push(Write::Delete { key: ItemKey::new(pk, id.as_ref()), condition: Condition::None });
        }
        match self.store.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => match self.store.get(&product_key(id)).await? {
                Some(item) => Err(CatalogError::VersionMismatch { current: item.version }),
                None => Err(CatalogError::NotFound),
            },
            Err(error) => Err(error.into()),
        }
    }

    /// One page of the products matching a search, in ascending id order, resuming after `after`.
    ///
    /// # Errors
    /// [`CatalogError::InvalidCursor`], or [`CatalogError::Internal`] when the store fails.
    pub async fn search(&self, request: &SearchRequest, after: Option<Cursor>) -> Result<SearchPage, CatalogError> {
        let pk = source_pk(&request.source());
        let mut products = Vec::with_capacity(request.limit);
        let mut cursor = after;
        let mut examined = 0;
        loop {
            let query = Query::new(pk.clone(), "", STORE_PAGE.min(MAX_EXAMINED - examined)).after(cursor.take());
            let page = self.store.query(&query).await?;
            let store_next = page.next;
            let page_len = page.items.len();
            for (position, item) in page.items.into_iter().enumerate() {
                examined += 1;
                let item_cursor = Cursor::after(&item);
                let entry: Entry = from_item(item)?;
                if request.matches(&entry.product, &entry.tokens) {
                    products.push(entry.product);
                }
                if products.len() == request.limit || examined == MAX_EXAMINED {
                    // Stop at the entry just examined. The search is complete only when it was the last entry of
                    // the store's last page; otherwise the next page resumes right after it.
                    let complete = position + 1 == page_len && store_next.is_none();
                    let next = if complete { None } else { Some(item_cursor) };
                    return Ok(SearchPage { products, next });
                }
            }
            match store_next {
                Some(next) => cursor = Some(next),
                None => return Ok(SearchPage { products, next: None }),
            }
        }
    }

    /// Writes the demo catalog unless a previous run finished doing so. Safe to run concurrently and to re-run
    /// after a crash: products whose SKU is already claimed are skipped, and a marker item written last makes
    /// later runs return at once. Returns how many products it created.
    ///
    /// # Errors
    /// [`CatalogError::Internal`] when the store fails or the demo data breaks a rule.
    pub async fn seed_demo_if_empty(&self, id_gen: &impl IdGen, clock: &impl Clock) -> Result<usize, CatalogError> {
        let marker = ItemKey::new("META", "DEMO_SEEDED");
        if self.store.get(&marker).await?.is_some() {
            return Ok(0);
        }
        let products = crate::demo::demo_catalog().map_err(|error| anyhow::anyhow!("demo catalog: {error}"))?;
        let mut created = 0;
        for product in products {
            match self.create(product, id_gen, clock).await {
                Ok(_) => created += 1,
                Err(CatalogError::SkuTaken) => {}
                Err(error) => return Err(error),
            }
        }
        let done = to_item(marker, 1, &serde_json::json!({ "products": created }))?;
        self.store.put(done, Condition::None).await?;
        Ok(created)
    }
}
