//! The payments port: how the checkout charges a card and the cancel refunds it, whatever the provider (the
//! built-in sandbox, Stripe).
//!
//! Every call carries an idempotency key that the caller derives from the order, so a retry after a timeout,
//! a second request with the same `Idempotency-Key`, or the checkout sweep asking again can never charge or
//! refund twice. The trait is object-safe (boxed futures) because the provider is chosen by configuration at
//! start, as the publisher is.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::domain::money::Money;

/// A future a [`Payments`] method returns.
pub type PaymentFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PaymentError>> + Send + 'a>>;

/// A charge to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The order it pays for.
    pub order_id: String,
    /// The provider's idempotency key, derived from the order: the same on every attempt for the order.
    pub idempotency_key: String,
    /// What to charge.
    pub amount: Money,
    /// The client's payment token (a test token for the sandbox, a payment method for Stripe).
    pub payment_token: String,
}

/// Where a charge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// The money was taken.
    Captured,
    /// The money was given back.
    Refunded,
}

/// A charge the provider made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The provider's name (`sandbox`, `stripe`).
    pub provider: String,
    /// The provider's id of the charge.
    pub charge_id: String,
    /// The order it paid for.
    pub order_id: String,
    /// The amount charged.
    pub amount: Money,
    /// Where it stands.
    pub status: ChargeStatus,
}

/// What can go wrong with a payment.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider refused the payment (card declined, unusable token); retrying will not help.
    #[error("payment declined: {reason}")]
    Declined {
        /// The provider's reason, safe to show the customer (never card details).
        reason: String,
    },
    /// No answer in time: the charge may or may not have happened. Retry with the same idempotency key.
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// Anything else (the provider answered with an error, or the call could not be made).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A payment provider.
///
/// Contract (checked by `contract::payments`), which every adapter MUST keep:
/// - `charge` with an idempotency key already used for a charge returns that charge and takes no more money;
/// - a declined charge takes no money and returns [`PaymentError::Declined`];
/// - `find_charge` tells whether a charge was made under the order's key (the sweep's question after a crash);
/// - `refund` gives the whole charge back once: repeating it returns the refunded charge and moves no money;
/// - no method logs or returns a secret key or a card number.
pub trait Payments: Send + Sync {
    /// The provider's name, as orders record it.
    fn name(&self) -> &'static str;

    /// Charges a payment token.
    ///
    /// # Errors
    /// [`PaymentError::Declined`], [`PaymentError::Timeout`] (outcome unknown), [`PaymentError::Internal`].
    fn charge(&self, request: ChargeRequest) -> PaymentFuture<'_, Charge>;

    /// The charge made for the order under `idempotency_key`, if one was made.
    ///
    /// # Errors
    /// [`PaymentError::Timeout`] or [`PaymentError::Internal`] when the provider cannot say.
    fn find_charge(&self, order_id: &str, idempotency_key: &str) -> PaymentFuture<'_, Option<Charge>>;

    /// Refunds a charge in full, once, under `idempotency_key`.
    ///
    /// # Errors
    /// [`PaymentError::Timeout`] or [`PaymentError::Internal`]; refunding an unknown charge is `Internal`.
    fn refund(&self, charge: &Charge, idempotency_key: &str) -> PaymentFuture<'_, Charge>;
}
