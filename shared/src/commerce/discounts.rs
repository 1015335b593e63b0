//! The discount repository: every code in one partition (`DISCOUNTS`, sort key the upper-case code), each
//! item carrying its usage count as the item's counter, so a checkout counts a use with a bounded
//! [`Write::Add`] (`ceiling` = the usage limit) in its own transaction and a declined payment gives it back.

use crate::domain::commerce::{Discount, DiscountCode};
use crate::ports::item_store::{Condition, Cursor, ItemKey, ItemStore, Query, StoreError, Write};

use super::{decode, document};

const DISCOUNTS_PK: &str = "DISCOUNTS";

fn discount_key(code: &DiscountCode) -> ItemKey {
    ItemKey::new(DISCOUNTS_PK, code.as_ref())
}

/// A discount with the number of orders that used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedDiscount {
    /// The definition.
    pub discount: Discount,
    /// How many orders used it.
    pub used: u32,
}

fn counted(item: crate::ports::Item) -> Result<CountedDiscount, StoreError> {
    let used = u32::try_from(item.counter.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
    Ok(CountedDiscount { discount: decode(item)?, used })
}

/// The discounts' repository.
#[derive(Debug, Clone)]
pub struct Discounts<S> {
    store: S,
}

impl<S: ItemStore> Discounts<S> {
    /// Discounts on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Stores a new discount with a usage count of zero.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] when the code is taken; otherwise as the store.
    pub async fn create(&self, discount: &Discount) -> Result<(), StoreError> {
        let item = document(discount_key(&discount.code), 1, discount)?.with_counter(0);
        self.store.put(item, Condition::NotExists).await
    }

    /// The discount with this code, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn get(&self, code: &DiscountCode) -> Result<Option<CountedDiscount>, StoreError> {
        self.store.get(&discount_key(code)).await?.map(counted).transpose()
    }

    /// One page of discounts in code order.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the cursor is not one.
    pub async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<(Vec<CountedDiscount>, Option<Cursor>), StoreError> {
        let page = self.store.query(&Query::new(DISCOUNTS_PK, "", limit).after(after)).await?;
        let discounts = page.items.into_iter().map(counted).collect::<Result<Vec<_>, _>>()?;
        Ok((discounts, page.next))
    }

    /// The write that counts one use, failing as a condition once the usage limit is reached.
    pub fn use_write(discount: &Discount) -> Write {
        Write::Add {
            key: discount_key(&discount.code),
            delta: 1,
            floor: None,
            ceiling: discount.usage_limit.map(i64::from),
        }
    }

    /// The write that gives one use back (a declined or abandoned payment).
    pub fn release_write(code: &DiscountCode) -> Write {
        Write::Add { key: discount_key(code), delta: -1, floor: Some(0), ceiling: None }
    }
}
