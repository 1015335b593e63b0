//! The cart repository: one item per user, changed with optimistic concurrency so two tabs adding at once
//! both land. A cart expires [`CART_TTL_DAYS`] days after its last change.

use crate::domain::account::UserId;
use crate::domain::commerce::Cart;
use crate::ports::item_store::{Condition, ItemKey, ItemStore, StoreError, Write};
use crate::ports::Timestamp;

use super::{decode, document};

/// How long an untouched cart is kept.
pub const CART_TTL_DAYS: i64 = 30;
/// How often a change retries when another writer changed the cart in between.
const UPDATE_ATTEMPTS: usize = 8;

fn cart_key(user: &UserId) -> ItemKey {
    ItemKey::new(format!("CART#{user}"), "CART")
}

/// Why a cart change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CartChangeError<E> {
    /// The change itself refused (a rule).
    #[error("{0}")]
    Refused(E),
    /// The store failed, or other writers kept winning.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The carts' repository.
#[derive(Debug, Clone)]
pub struct Carts<S> {
    store: S,
}

impl<S: ItemStore> Carts<S> {
    /// Carts on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The user's cart (empty if none is stored) and its version (`None` if none is stored).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn get(&self, user: &UserId) -> Result<(Cart, Option<u64>), StoreError> {
        match self.store.get(&cart_key(user)).await? {
            Some(item) => {
                let version = item.version;
                Ok((decode(item)?, Some(version)))
            }
            None => Ok((Cart::default(), None)),
        }
    }

    /// Applies `change` to the user's cart and stores the result, retrying from a fresh read when another
    /// writer got in first.
    ///
    /// # Errors
    /// [`CartChangeError::Refused`] with the change's own error; [`CartChangeError::Store`] when the store fails.
    pub async fn update<E>(
        &self,
        user: &UserId,
        now: Timestamp,
        change: impl Fn(&mut Cart) -> Result<(), E>,
    ) -> Result<Cart, CartChangeError<E>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let (mut cart, version) = self.get(user).await?;
            change(&mut cart).map_err(CartChangeError::Refused)?;
            let (next, condition) = match version {
                Some(version) => (version + 1, Condition::VersionEquals(version)),
                None => (1, Condition::NotExists),
            };
            let mut item = document(cart_key(user), next, &cart)?;
            item.expires_at = Some(now.as_secs() + CART_TTL_DAYS * 86_400);
            match self.store.put(item, condition).await {
                Ok(()) => return Ok(cart),
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Contention.into())
    }

    /// The write that empties the user's cart, for the transaction that pays an order.
    pub fn clear_write(user: &UserId) -> Write {
        Write::Delete { key: cart_key(user), condition: Condition::None }
    }
}
