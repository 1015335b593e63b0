//! The order repository: each order's own item, the two lists people read (a user's orders and, for admins,
//! every order, both newest first) and the list of unsettled orders the checkout sweep reads.
//!
//! Every change of an order's state is one transaction that moves the order item by version and rewrites its
//! list entries, so the lists never disagree with the order. The order item is written when the checkout
//! reserves, the list entries only once it is paid: reservations and released orders are never listed.

use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::domain::commerce::{OrderStatus, Totals};
use crate::ports::item_store::{Condition, Cursor, Item, ItemKey, ItemStore, Query, StoreError, Write};
use crate::ports::payments::ChargeStatus;
use crate::ports::Timestamp;

use super::{decode, document, newest_first};

const ALL_ORDERS_PK: &str = "ORDERS";
const PENDING_PK: &str = "PENDING_ORDERS";

/// The payment of an order, as the provider reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    /// The provider's name.
    pub provider: String,
    /// The provider's charge id.
    pub charge_id: String,
    /// Captured or refunded.
    pub status: ChargeStatus,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id (also the idempotency record's reference, so a retried request finds it).
    pub id: String,
    /// Whose it is.
    pub user_id: UserId,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// What was bought, at the prices of the moment of checkout.
    pub totals: Totals,
    /// The payment, once made.
    pub payment: Option<OrderPayment>,
    /// When it was placed.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The W3C `traceparent` of the checkout that placed it, carried by every event of the order so that the
    /// jobs it starts log the same trace id (`crate::telemetry`); absent on orders placed before traces existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The item's version (not stored in the document; read from the item).
    #[serde(skip)]
    pub version: u64,
}

impl Order {
    /// The idempotency key the payment provider sees for this order's charge: the same on every attempt,
    /// whichever request or sweep makes it.
    pub fn charge_key(&self) -> String {
        format!("order-{}-charge", self.id)
    }

    /// The idempotency key of this order's refund.
    pub fn refund_key(&self) -> String {
        format!("order-{}-refund", self.id)
    }
}

fn order_key(id: &str) -> ItemKey {
    ItemKey::new(format!("ORDER#{id}"), "ORDER")
}

fn user_orders_pk(user: &UserId) -> String {
    format!("USER_ORDERS#{user}")
}

fn pending_key(order: &Order) -> ItemKey {
    ItemKey::new(PENDING_PK, format!("{:020}#{}", order.created_at.as_millis().max(0), order.id))
}

fn from_item(item: Item) -> Result<Order, StoreError> {
    let version = item.version;
    let mut order: Order = decode(item)?;
    order.version = version;
    Ok(order)
}

/// One page of orders.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPage {
    /// The orders, newest first.
    pub orders: Vec<Order>,
    /// Where the next page starts.
    pub next: Option<Cursor>,
}

/// The orders' repository.
#[derive(Debug, Clone)]
pub struct Orders<S> {
    store: S,
}

impl<S: ItemStore> Orders<S> {
    /// Orders on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The order with this id, whatever its state.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        self.store.get(&order_key(id)).await?.map(from_item).transpose()
    }

    /// One page of a user's orders (or, with `None`, everybody's), newest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the cursor is not one.
    pub async fn list(&self, user: Option<&UserId>, limit: usize, after: Option<Cursor>) -> Result<OrderPage, StoreError> {
        let pk = user.map_or_else(|| ALL_ORDERS_PK.to_owned(), user_orders_pk);
        let page = self.store.query(&Query::new(pk, "", limit).after(after)).await?;
        let orders = page.items.into_iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(OrderPage { orders, next: page.next })
    }

    /// Up to `max` unsettled orders placed before `before`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn unsettled(&self, before: Timestamp, max: usize) -> Result<Vec<String>, StoreError> {
        let page = self.store.query(&Query::new(PENDING_PK, "", max)).await?;
        let cutoff = format!("{:020}", before.as_millis().max(0));
        Ok(page
            .items
            .into_iter()
            .filter(|item| item.key.sk < cutoff)
            .filter_map(|item| item.data.as_str().map(str::to_owned))
            .collect())
    }

    /// The writes that record a new reservation: the order item and its unsettled entry.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when the order cannot be encoded.
    pub fn reserve_writes(order: &Order) -> Result<Vec<Write>, StoreError> {
        Ok(vec![
            Write::Put { item: document(order_key(&order.id), 1, order)?, condition: Condition::NotExists },
            Write::Put {
                item: Item::new(pending_key(order), 1, serde_json::Value::String(order.id.clone())),
                condition: Condition::None,
            },
        ])
    }

    /// The writes that hand a listed order, as read, to `anonymous` (an erased account's orders, kept for the
    /// books): the order item by version, its entry in everybody's list rewritten, its entry in the user's
    /// list removed.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when the order cannot be encoded.
    pub fn anonymise_writes(order: &Order, anonymous: &UserId) -> Result<Vec<Write>, StoreError> {
        let next = Order { user_id: anonymous.clone(), ..order.clone() };
        let sort_key = newest_first(order.created_at, &order.id);
        let mut writes = vec![Write::Put {
            item: document(order_key(&order.id), order.version + 1, &next)?,
            condition: Condition::VersionEquals(order.version),
        }];
        if order.status.is_visible() {
            writes.push(Write::Put { item: document(ItemKey::new(ALL_ORDERS_PK, sort_key.clone()), 1, &next)?, condition: Condition::None });
        }
        writes.push(Write::Delete { key: ItemKey::new(user_orders_pk(&order.user_id), sort_key), condition: Condition::None });
        Ok(writes)
    }

    /// The writes that move `order` (as read, at its version) to `next`: the order item by version, its list
    /// entries once it is visible, and its unsettled entry removed once it is settled.
    ///
    /// # Errors
    /// [`StoreError::Internal`] when the order cannot be encoded.
    pub fn transition_writes(order: &Order, next: &Order) -> Result<Vec<Write>, StoreError> {
        let mut writes = vec![Write::Put {
            item: document(order_key(&next.id), order.version + 1, next)?,
            condition: Condition::VersionEquals(order.version),
        }];
        if next.status.is_visible() {
            let sort_key = newest_first(next.created_at, &next.id);
            writes.push(Write::Put {
                item: document(ItemKey::new(user_orders_pk(&next.user_id), sort_key.clone()), 1, next)?,
                condition: Condition::None,
            });
            writes.push(Write::Put { item: document(ItemKey::new(ALL_ORDERS_PK, sort_key), 1, next)?, condition: Condition::None });
        }
        if order.status == crate::domain::commerce::OrderStatus::Reserved {
            writes.push(Write::Delete { key: pending_key(order), condition: Condition::None });
        }
        Ok(writes)
    }
}
