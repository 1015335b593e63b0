//! Buying: carts, discount codes, orders and the checkout, written once on top of the [`ItemStore`] port and
//! the [`Payments`](crate::ports::Payments) port.
//!
//! Layout in the store (one table, as on DynamoDB):
//!
//! | item | partition key | sort key | document | counter |
//! | --- | --- | --- | --- | --- |
//! | cart | `CART#<user id>` | `CART` | lines and discount code | |
//! | discount | `DISCOUNTS` | `<CODE>` | the definition | times used |
//! | order | `ORDER#<order id>` | `ORDER` | the order | |
//! | a user's order list | `USER_ORDERS#<user id>` | `<newest first>#<order id>` | the order | |
//! | every order (admins) | `ORDERS` | `<newest first>#<order id>` | the order | |
//! | unsettled order | `PENDING_ORDERS` | `<created>#<order id>` | the order id | |
//!
//! Stock is the counter of the product's own item (`catalog`), so a checkout takes it with a bounded
//! [`Write::Add`](crate::ports::Write::Add) in the same transaction as the order: no read-modify-write race,
//! whatever the concurrency. Orders enter the lists only once paid, so people never see a reservation.
//! This module owns no HTTP; time and ids come in through the ports.

pub mod carts;
pub mod checkout;
pub mod discounts;
pub mod orders;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::item_store::{Item, ItemKey, StoreError};

pub use checkout::{CartError, CheckoutError, Commerce, CommerceParts, DiscountError, NoDelay, OrderError, PricedCart, SweepReport};

/// An item holding `document` as its JSON.
fn document(key: ItemKey, version: u64, document: &impl Serialize) -> Result<Item, StoreError> {
    let data = serde_json::to_value(document)
        .map_err(|error| StoreError::Internal(anyhow::Error::new(error).context(format!("encode {key}"))))?;
    Ok(Item::new(key, version, data))
}

/// The document of a stored item.
fn decode<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let key = item.key;
    serde_json::from_value(item.data)
        .map_err(|error| StoreError::Internal(anyhow::Error::new(error).context(format!("decode {key}"))))
}

/// A sort key that lists newer items first: the time counted down from the largest timestamp, zero-padded.
fn newest_first(at: crate::ports::Timestamp, id: &str) -> String {
    format!("{:020}#{id}", i64::MAX - at.as_millis().max(0))
}
