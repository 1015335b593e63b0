//! The commerce use cases: the cart, discount codes, the checkout, cancellation and the checkout sweep.
//!
//! The checkout, step by step:
//! 1. one store transaction takes the stock of every line (never below zero), counts the discount use against
//!    its limit, and writes the order as `reserved` with an entry in the unsettled list: all of it or none;
//! 2. the payment gateway charges under a provider idempotency key derived from the order
//!    ([`Order::charge_key`]), retrying a timeout with backoff, behind a circuit breaker;
//! 3. a charge makes the order `paid` in one transaction with its list entries, the emptied cart and its
//!    `order.created` event in the outbox; a decline releases it in one transaction that gives the stock and
//!    the discount use back; no answer leaves it reserved, for a retry with the same `Idempotency-Key` (which
//!    resumes the same order) or for the sweep;
//! 4. the sweep ([`Commerce::sweep`]) settles orders left reserved longer than [`CommerceSettings::sweep_grace`]
//!    (a killed process, a client that never retried): it asks the provider under the same key whether the
//!    charge happened and completes or releases the order accordingly.
//!
//! Any two of a request, its retry and the sweep may race on one order: every state change is conditional on
//! the order's version, so exactly one wins, and a charge that lands on an order released meanwhile is refunded.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::commerce::carts::{CartChangeError, Carts};
use crate::commerce::discounts::{CountedDiscount, Discounts};
use crate::commerce::orders::{Order, OrderPage, OrderPayment, Orders};
use crate::domain::account::UserId;
use crate::domain::commerce::{
    Cart, CommerceError, Discount, DiscountCode, DiscountRejection, OrderStatus, PricedLine, Quantity, Totals,
};
use crate::domain::money::Currency;
use crate::domain::product::ProductId;
use crate::outbox::{Event, Outbox, Publisher, Topic};
use crate::payments::gateway::{Breaker, BreakerSettings, GatewayError, PaymentGateway, RetryPolicy};
use crate::ports::item_store::{Cursor, ItemStore, StoreError, Write};
use crate::ports::payments::{Charge, ChargeRequest, ChargeStatus, Payments};
use crate::ports::{Clock, IdGen, Random, Sleep, SleepFuture, Timestamp};
use crate::telemetry::TraceParent;

/// The currency of an empty cart's zero totals (the demo catalog's).
const DEFAULT_CURRENCY: Currency = Currency::EUR;
/// How often a transaction is tried again when the store reports contention or a write it can drop.
const TRANSACTION_ATTEMPTS: usize = 6;

/// Timing of the checkout's recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommerceSettings {
    /// How long an order may stay reserved before the sweep settles it: longer than any request runs, so the
    /// sweep never races a live checkout.
    pub sweep_grace: Duration,
}

impl Default for CommerceSettings {
    fn default() -> Self {
        Self { sweep_grace: Duration::from_secs(120) }
    }
}

/// Waits for nothing: the default [`Sleep`] until a host gives its timer, so the payment retries' backoff is
/// skipped. Every host gives a real one; in-process tests may keep this.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDelay;

impl Sleep for NoDelay {
    fn sleep(&self, _duration: Duration) -> SleepFuture {
        Box::pin(std::future::ready(()))
    }
}

/// What [`Commerce`] is built from besides its store, clock and ids: the provider and how it is called, the
/// sweep's timing and the publisher of order events. `AppState` keeps one to rebuild the use cases when a part
/// changes; a function that needs only the use cases (the scheduled sweep) builds them from one directly.
#[derive(Clone)]
pub struct CommerceParts {
    /// The payment provider.
    pub payments: Arc<dyn Payments>,
    /// The timer the retries wait on.
    pub sleep: Arc<dyn Sleep>,
    /// The circuit breaker (shared by every `Commerce` built from these parts).
    pub breaker: Arc<Breaker>,
    /// How a provider call is retried.
    pub retry: RetryPolicy,
    /// The sweep's timing.
    pub settings: CommerceSettings,
    /// Where committed order events are published right away, if anywhere.
    pub publisher: Option<Publisher>,
}

impl CommerceParts {
    /// Parts with `payments`, waiting for nothing ([`NoDelay`]), a closed breaker and the default timings.
    pub fn new(payments: Arc<dyn Payments>) -> Self {
        Self {
            payments,
            sleep: Arc::new(NoDelay),
            breaker: Arc::new(Breaker::new(BreakerSettings::default())),
            retry: RetryPolicy::default(),
            settings: CommerceSettings::default(),
            publisher: None,
        }
    }

    /// The use cases on `store`, timed by `clock`, drawing the retries' jitter from `ids` (the id generator is
    /// the random source).
    pub fn build<S: ItemStore + Clone>(&self, store: &S, clock: &Arc<dyn Clock>, ids: &Arc<dyn IdGen>) -> Commerce<S> {
        let random: Arc<dyn Random> = Arc::new(Arc::clone(ids));
        let gateway = PaymentGateway::new(
            Arc::clone(&self.payments),
            Arc::clone(&self.breaker),
            Arc::clone(&self.sleep),
            Arc::clone(clock),
            random,
            self.retry,
        );
        Commerce::new(store.clone(), gateway, Arc::clone(clock), self.settings).with_publisher(self.publisher.clone())
    }
}

/// A cart priced at the catalog's current prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedCart {
    /// Lines and totals; the discount only while it applies.
    pub totals: Totals,
}

/// Why a cart change or a cart read failed.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    /// No such product.
    #[error("product not found")]
    ProductNotFound,
    /// The product has fewer units in stock than asked.
    #[error("not enough stock of {product_id}")]
    InsufficientStock {
        /// The product.
        product_id: ProductId,
    },
    /// A rule refused the change (quantity, a full cart).
    #[error(transparent)]
    Rule(#[from] CommerceError),
    /// The discount code does not apply.
    #[error("discount code refused: {}", .0.as_str())]
    DiscountInvalid(DiscountRejection),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why creating a discount failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscountError {
    /// A field breaks a rule.
    #[error(transparent)]
    Rule(#[from] CommerceError),
    /// The code exists already (case-insensitively).
    #[error("the code is taken")]
    CodeTaken,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a checkout did not make a paid order.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The cart has no lines.
    #[error("the cart is empty")]
    CartEmpty,
    /// A product has fewer units in stock than the cart asks for (or is gone).
    #[error("not enough stock of {product_id}")]
    InsufficientStock {
        /// The product.
        product_id: ProductId,
    },
    /// The cart's discount code does not apply.
    #[error("discount code refused: {}", .0.as_str())]
    DiscountInvalid(DiscountRejection),
    /// The provider declined; nothing stays reserved.
    #[error("payment declined: {reason}")]
    Declined {
        /// The provider's reason.
        reason: String,
    },
    /// The provider did not answer (or its breaker is open); the order stays reserved for a retry or the sweep.
    #[error("payment provider unavailable")]
    PaymentUnavailable {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// The checkout this key started was abandoned and released by the sweep; a new key starts a new one.
    #[error("this checkout was abandoned and its reservation released")]
    Abandoned,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why an order read or cancellation failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order for this caller (someone else's is not found either).
    #[error("order not found")]
    NotFound,
    /// The refund could not be made now; nothing changed.
    #[error("payment provider unavailable")]
    PaymentUnavailable {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

macro_rules! from_store_error {
    ($($error:ident),+) => {$(
        impl From<StoreError> for $error {
            fn from(error: StoreError) -> Self {
                $error::Internal(anyhow::Error::new(error).context("commerce store call failed"))
            }
        }
    )+};
}
from_store_error!(CartError, CheckoutError, OrderError);

fn store(context: &'static str) -> impl Fn(StoreError) -> anyhow::Error {
    move |error| anyhow::Error::new(error).context(context)
}

fn catalog_internal(error: CatalogError) -> anyhow::Error {
    anyhow::Error::new(error).context("catalog call failed")
}

/// What one sweep run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Orders found charged and completed.
    pub paid: usize,
    /// Orders found uncharged and released.
    pub released: usize,
    /// Orders the provider could not tell about (left for the next run).
    pub failed: usize,
}

/// The body of `order.created` and `order.cancelled`: the order, its user, its lines and totals, and the
/// time; never an e-mail address or a token.
#[derive(Debug, Serialize)]
struct OrderEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event_id: String,
    order_id: &'a str,
    user_id: &'a UserId,
    lines: &'a [PricedLine],
    subtotal: crate::domain::money::Money,
    discount: Option<&'a crate::domain::commerce::AppliedDiscount>,
    total: crate::domain::money::Money,
    at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

fn order_event(kind: &'static str, order: &Order) -> Result<Event, anyhow::Error> {
    let event_id = format!("{kind}-{}", order.id);
    let body = OrderEvent {
        kind,
        event_id: event_id.clone(),
        order_id: &order.id,
        user_id: &order.user_id,
        lines: &order.totals.lines,
        subtotal: order.totals.subtotal,
        discount: order.totals.discount.as_ref(),
        total: order.totals.total,
        at: order.updated_at,
        traceparent: order.trace.as_deref(),
    };
    Ok(Event::new(Topic::Orders, event_id, &body, order.updated_at)?)
}

/// The commerce use cases on a store and a payment gateway.
#[derive(Clone)]
pub struct Commerce<S> {
    store: S,
    catalog: Catalog<S>,
    carts: Carts<S>,
    discounts: Discounts<S>,
    orders: Orders<S>,
    gateway: PaymentGateway,
    clock: Arc<dyn Clock>,
    settings: CommerceSettings,
    publisher: Option<Publisher>,
}

impl CheckoutError {
    /// The checkout outcome this error counts as in the checkout metric (`crate::telemetry::checkout`).
    pub fn outcome(&self) -> &'static str {
        match self {
            CheckoutError::Declined { .. } => "declined",
            CheckoutError::PaymentUnavailable { .. } => "payment_unavailable",
            CheckoutError::InsufficientStock { .. } => "insufficient_stock",
            CheckoutError::CartEmpty | CheckoutError::DiscountInvalid(_) | CheckoutError::Abandoned => "rejected",
            CheckoutError::Internal(_) => "failed",
        }
    }
}

impl<S> std::fmt::Debug for Commerce<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commerce").field("gateway", &self.gateway).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl<S: ItemStore + Clone> Commerce<S> {
    /// The use cases on `store`, paying through `gateway`.
    pub fn new(store: S, gateway: PaymentGateway, clock: Arc<dyn Clock>, settings: CommerceSettings) -> Self {
        Self {
            catalog: Catalog::new(store.clone()),
            carts: Carts::new(store.clone()),
            discounts: Discounts::new(store.clone()),
            orders: Orders::new(store.clone()),
            store,
            gateway,
            clock,
            settings,
            publisher: None,
        }
    }

    /// These use cases, publishing the order events they commit right after the commit (without a publisher,
    /// or when the queue is down, the host's outbox relay publishes them).
    #[must_use]
    pub fn with_publisher(mut self, publisher: Option<Publisher>) -> Self {
        self.publisher = publisher;
        self
    }

    async fn publish(&self, event: &Event) {
        let Some(publisher) = &self.publisher else { return };
        if let Err(error) = Outbox::new(self.store.clone()).publish(event, publisher.as_ref()).await {
            tracing::warn!(event_id = %event.id, error = ?error, "order event left in the outbox for the relay");
        }
    }

    /// The payment gateway (its provider and breaker).
    pub fn gateway(&self) -> &PaymentGateway {
        &self.gateway
    }

    /// The settings.
    pub fn settings(&self) -> CommerceSettings {
        self.settings
    }

    // ----- cart -----

    async fn price(&self, cart: &Cart) -> Result<(Totals, Option<DiscountRejection>), anyhow::Error> {
        let mut lines = Vec::with_capacity(cart.lines.len());
        for line in &cart.lines {
            match self.catalog.get(&line.product_id).await {
                Ok(product) => lines.push(PricedLine::new(&product, line.quantity)?),
                // A product deleted since it was added no longer counts; the checkout refuses it by name.
                Err(CatalogError::NotFound) => {}
                Err(error) => return Err(catalog_internal(error)),
            }
        }
        let plain = Totals::new(lines, DEFAULT_CURRENCY, None)?;
        let Some(code) = &cart.discount else { return Ok((plain, None)) };
        match self.discount_amount(code, plain.subtotal).await? {
            Ok(amount) => Ok((Totals::new(plain.lines, DEFAULT_CURRENCY, Some((code.clone(), amount)))?, None)),
            Err(rejection) => Ok((plain, Some(rejection))),
        }
    }

    async fn discount_amount(
        &self,
        code: &DiscountCode,
        subtotal: crate::domain::money::Money,
    ) -> Result<Result<crate::domain::money::Money, DiscountRejection>, anyhow::Error> {
        let Some(CountedDiscount { discount, used }) = self.discounts.get(code).await.map_err(store("read a discount"))? else {
            return Ok(Err(DiscountRejection::Unknown));
        };
        Ok(discount.amount_for(subtotal, self.clock.now(), used))
    }

    /// The user's cart, priced now; a stored code that no longer applies is shown without its discount.
    ///
    /// # Errors
    /// [`CartError::Internal`] when the store fails.
    pub async fn cart(&self, user: &UserId) -> Result<PricedCart, CartError> {
        let (cart, _) = self.carts.get(user).await.map_err(store("read a cart"))?;
        Ok(PricedCart { totals: self.price(&cart).await?.0 })
    }

    fn cart_change_error(error: CartChangeError<CommerceError>) -> CartError {
        match error {
            CartChangeError::Refused(rule) => CartError::Rule(rule),
            CartChangeError::Store(error) => CartError::Internal(store("change a cart")(error)),
        }
    }

    /// Sets how many units of a product the cart holds.
    ///
    /// # Errors
    /// [`CartError::ProductNotFound`], [`CartError::InsufficientStock`], [`CartError::Rule`] (a full cart).
    pub async fn set_line(&self, user: &UserId, product_id: ProductId, quantity: Quantity) -> Result<PricedCart, CartError> {
        let product = match self.catalog.get(&product_id).await {
            Ok(product) => product,
            Err(CatalogError::NotFound) => return Err(CartError::ProductNotFound),
            Err(error) => return Err(CartError::Internal(catalog_internal(error))),
        };
        if product.stock < quantity.get() {
            return Err(CartError::InsufficientStock { product_id });
        }
        let cart = self
            .carts
            .update(user, self.clock.now(), |cart| cart.set(product_id.clone(), quantity))
            .await
            .map_err(Self::cart_change_error)?;
        Ok(PricedCart { totals: self.price(&cart).await?.0 })
    }

    /// Removes a product's line (an absent line is not an error).
    ///
    /// # Errors
    /// [`CartError::Internal`] when the store fails.
    pub async fn remove_line(&self, user: &UserId, product_id: &ProductId) -> Result<PricedCart, CartError> {
        let cart = self
            .carts
            .update(user, self.clock.now(), |cart| {
                cart.remove(product_id);
                Ok::<(), CommerceError>(())
            })
            .await
            .map_err(Self::cart_change_error)?;
        Ok(PricedCart { totals: self.price(&cart).await?.0 })
    }

    /// Applies a discount code to the cart, if it applies to the cart now.
    ///
    /// # Errors
    /// [`CartError::DiscountInvalid`] with the reason it does not apply.
    pub async fn apply_discount(&self, user: &UserId, code: &str) -> Result<PricedCart, CartError> {
        let code = DiscountCode::parse(code).map_err(|_| CartError::DiscountInvalid(DiscountRejection::Unknown))?;
        let (current, _) = self.carts.get(user).await.map_err(store("read a cart"))?;
        let (plain, _) = self.price(&Cart { discount: None, ..current }).await?;
        if let Err(rejection) = self.discount_amount(&code, plain.subtotal).await? {
            return Err(CartError::DiscountInvalid(rejection));
        }
        let cart = self
            .carts
            .update(user, self.clock.now(), |cart| {
                cart.discount = Some(code.clone());
                Ok::<(), CommerceError>(())
            })
            .await
            .map_err(Self::cart_change_error)?;
        Ok(PricedCart { totals: self.price(&cart).await?.0 })
    }

    /// Removes the cart's discount code.
    ///
    /// # Errors
    /// [`CartError::Internal`] when the store fails.
    pub async fn remove_discount(&self, user: &UserId) -> Result<PricedCart, CartError> {
        let cart = self
            .carts
            .update(user, self.clock.now(), |cart| {
                cart.discount = None;
                Ok::<(), CommerceError>(())
            })
            .await
            .map_err(Self::cart_change_error)?;
        Ok(PricedCart { totals: self.price(&cart).await?.0 })
    }

    // ----- discounts -----

    /// Creates a discount code.
    ///
    /// # Errors
    /// [`DiscountError::Rule`] for contradictory fields, [`DiscountError::CodeTaken`].
    pub async fn create_discount(&self, discount: Discount) -> Result<CountedDiscount, DiscountError> {
        discount.validate()?;
        match self.discounts.create(&discount).await {
            Ok(()) => Ok(CountedDiscount { discount, used: 0 }),
            Err(StoreError::ConditionFailed { .. }) => Err(DiscountError::CodeTaken),
            Err(error) => Err(DiscountError::Internal(store("create a discount")(error))),
        }
    }

    /// One page of discounts with their use counts, in code order.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the cursor is not one.
    pub async fn discounts(&self, limit: usize, after: Option<Cursor>) -> Result<(Vec<CountedDiscount>, Option<Cursor>), StoreError> {
        self.discounts.list(limit, after).await
    }

    // ----- checkout -----

    /// Places the user's cart as order `order_id` and pays for it with `payment_token`. Called again with the
    /// same id (a retried request), it resumes that order instead of placing another. The order keeps `trace`,
    /// the request's trace context, for the events it starts.
    ///
    /// # Errors
    /// The [`CheckoutError`] that stopped it.
    pub async fn checkout(&self, user: &UserId, order_id: &str, payment_token: &str, trace: Option<&TraceParent>) -> Result<Order, CheckoutError> {
        let order = match self.orders.get(order_id).await.map_err(store("read an order"))? {
            Some(order) if &order.user_id == user => order,
            Some(_) => return Err(CheckoutError::Internal(anyhow::anyhow!("an order id was reused across users"))),
            None => match self.reserve(user, order_id, trace).await? {
                Some(order) => order,
                // A concurrent request with the same reference reserved it first.
                None => self
                    .orders
                    .get(order_id)
                    .await
                    .map_err(store("read an order"))?
                    .ok_or_else(|| anyhow::anyhow!("a reserved order vanished"))?,
            },
        };
        self.settle(order, payment_token).await
    }

    /// Takes stock and the discount use and writes the reserved order; `None` if the order exists already.
    async fn reserve(&self, user: &UserId, order_id: &str, trace: Option<&TraceParent>) -> Result<Option<Order>, CheckoutError> {
        let (cart, _) = self.carts.get(user).await.map_err(store("read a cart"))?;
        if cart.is_empty() {
            return Err(CheckoutError::CartEmpty);
        }
        let mut lines = Vec::with_capacity(cart.lines.len());
        for line in &cart.lines {
            let product = match self.catalog.get_for_sale(&line.product_id).await {
                Ok(product) => product,
                Err(CatalogError::NotFound) => return Err(CheckoutError::InsufficientStock { product_id: line.product_id.clone() }),
                Err(error) => return Err(CheckoutError::Internal(catalog_internal(error))),
            };
            if product.stock < line.quantity.get() {
                return Err(CheckoutError::InsufficientStock { product_id: product.id });
            }
            lines.push(PricedLine::new(&product, line.quantity).map_err(anyhow::Error::new)?);
        }
        let plain = Totals::new(lines, DEFAULT_CURRENCY, None).map_err(anyhow::Error::new)?;
        let mut discount = None;
        if let Some(code) = &cart.discount {
            let Some(counted) = self.discounts.get(code).await.map_err(store("read a discount"))? else {
                return Err(CheckoutError::DiscountInvalid(DiscountRejection::Unknown));
            };
            let amount = counted.discount.amount_for(plain.subtotal, self.clock.now(), counted.used).map_err(CheckoutError::DiscountInvalid)?;
            discount = Some((counted.discount, amount));
        }
        let totals = Totals::new(plain.lines, DEFAULT_CURRENCY, discount.as_ref().map(|(rule, amount)| (rule.code.clone(), *amount)))
            .map_err(anyhow::Error::new)?;
        let now = self.clock.now();
        let order = Order {
            id: order_id.to_owned(),
            user_id: user.clone(),
            status: OrderStatus::Reserved,
            totals,
            payment: None,
            created_at: now,
            updated_at: now,
            trace: trace.map(ToString::to_string),
            version: 1,
        };
        let mut writes: Vec<Write> = order.totals.units().map(|(id, units)| Catalog::<S>::stock_write(id, i64::from(units))).collect();
        if let Some((rule, _)) = &discount {
            writes.push(Discounts::<S>::use_write(rule));
        }
        let discount_index = discount.as_ref().map(|_| order.totals.lines.len());
        let order_index = writes.len();
        writes.extend(Orders::<S>::reserve_writes(&order)?);
        match self.transact(writes).await {
            Ok(()) => Ok(Some(order)),
            Err(StoreError::ConditionFailed { index, .. }) if Some(index) == discount_index => {
                Err(CheckoutError::DiscountInvalid(DiscountRejection::UsedUp))
            }
            Err(StoreError::ConditionFailed { index, .. }) if index < order.totals.lines.len() => {
                Err(CheckoutError::InsufficientStock { product_id: order.totals.lines[index].product_id.clone() })
            }
            Err(StoreError::ConditionFailed { index, .. }) if index == order_index => Ok(None),
            Err(error) => Err(CheckoutError::Internal(store("reserve an order")(error))),
        }
    }

    /// Retries a transaction while the store reports contention.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        for _ in 1..TRANSACTION_ATTEMPTS {
            match self.store.transact(writes.clone()).await {
                Err(StoreError::Contention) => continue,
                other => return other,
            }
        }
        self.store.transact(writes).await
    }

    /// Pays for a reserved order, or tells what became of it.
    async fn settle(&self, order: Order, payment_token: &str) -> Result<Order, CheckoutError> {
        match order.status {
            OrderStatus::Paid | OrderStatus::Cancelled => return Ok(order),
            OrderStatus::Released => return Err(CheckoutError::Abandoned),
            OrderStatus::Reserved => {}
        }
        let request = ChargeRequest {
            order_id: order.id.clone(),
            idempotency_key: order.charge_key(),
            amount: order.totals.total,
            payment_token: payment_token.to_owned(),
        };
        match self.gateway.charge(&request).await {
            Ok(charge) => self.complete(order, charge).await,
            Err(GatewayError::Declined { reason }) => {
                self.release(order).await?;
                Err(CheckoutError::Declined { reason })
            }
            Err(GatewayError::Unavailable { retry_after_secs }) => Err(CheckoutError::PaymentUnavailable { retry_after_secs }),
        }
    }

    /// Marks a reserved order paid by `charge`, with its list entries, the emptied cart and `order.created`.
    async fn complete(&self, mut order: Order, charge: Charge) -> Result<Order, CheckoutError> {
        for _ in 0..TRANSACTION_ATTEMPTS {
            if order.status != OrderStatus::Reserved {
                break;
            }
            let next = Order {
                status: OrderStatus::Paid,
                payment: Some(OrderPayment { provider: charge.provider.clone(), charge_id: charge.charge_id.clone(), status: ChargeStatus::Captured }),
                updated_at: self.clock.now(),
                version: order.version + 1,
                ..order.clone()
            };
            let event = order_event("order.created", &next)?;
            let mut writes = Orders::<S>::transition_writes(&order, &next)?;
            writes.push(Carts::<S>::clear_write(&order.user_id));
            writes.push(event.write()?);
            match self.transact(writes).await {
                Ok(()) => {
                    tracing::info!(order_id = %next.id, total = next.totals.total.amount, "order paid");
                    self.publish(&event).await;
                    return Ok(next);
                }
                Err(StoreError::ConditionFailed { .. }) => {
                    order = self.orders.get(&order.id).await.map_err(store("read an order"))?.ok_or_else(|| anyhow::anyhow!("an order vanished"))?;
                }
                Err(error) => return Err(CheckoutError::Internal(store("mark an order paid")(error))),
            }
        }
        match order.status {
            OrderStatus::Paid | OrderStatus::Cancelled => Ok(order),
            OrderStatus::Released => {
                // The sweep released the order while this charge was being made: give the money back.
                tracing::warn!(order_id = %order.id, "a charge landed on a released order; refunding it");
                let refund_key = order.refund_key();
                self.gateway.refund(&charge, &refund_key).await.map_err(|_| anyhow::anyhow!("refund of a charge on a released order failed"))?;
                Err(CheckoutError::Abandoned)
            }
            OrderStatus::Reserved => Err(CheckoutError::Internal(anyhow::anyhow!("an order kept changing while being marked paid"))),
        }
    }

    /// Releases a reserved order: the stock and the discount use go back, in one transaction with the order.
    async fn release(&self, mut order: Order) -> Result<(), CheckoutError> {
        let mut skipped: Vec<usize> = Vec::new();
        for _ in 0..TRANSACTION_ATTEMPTS {
            if order.status != OrderStatus::Reserved {
                return Ok(());
            }
            let next = Order { status: OrderStatus::Released, updated_at: self.clock.now(), version: order.version + 1, ..order.clone() };
            let mut writes = Orders::<S>::transition_writes(&order, &next)?;
            let order_writes = writes.len();
            writes.extend(order.totals.units().map(|(id, units)| Catalog::<S>::stock_write(id, -i64::from(units))));
            if let Some(applied) = &order.totals.discount {
                writes.push(Discounts::<S>::release_write(&applied.code));
            }
            let writes: Vec<Write> = writes.into_iter().enumerate().filter(|(index, _)| !skipped.contains(index)).map(|(_, write)| write).collect();
            let kept: Vec<usize> = (0..writes.len() + skipped.len()).filter(|index| !skipped.contains(index)).collect();
            match self.transact(writes).await {
                Ok(()) => {
                    tracing::info!(order_id = %order.id, "order released");
                    return Ok(());
                }
                Err(StoreError::ConditionFailed { index, key }) => match kept.get(index) {
                    Some(&original) if original >= order_writes => {
                        // A product or code deleted since: nothing to give back to it.
                        tracing::warn!(order_id = %order.id, %key, "nothing to give back to a deleted item");
                        skipped.push(original);
                    }
                    _ => {
                        order = self.orders.get(&order.id).await.map_err(store("read an order"))?.ok_or_else(|| anyhow::anyhow!("an order vanished"))?;
                    }
                },
                Err(error) => return Err(CheckoutError::Internal(store("release an order")(error))),
            }
        }
        Err(CheckoutError::Internal(anyhow::anyhow!("an order kept changing while being released")))
    }

    // ----- orders -----

    /// The order, if the caller may see it: its owner, or an admin.
    ///
    /// # Errors
    /// [`OrderError::NotFound`] for an unknown id, someone else's order, or one not placed yet.
    pub async fn order(&self, caller: &UserId, is_admin: bool, order_id: &str) -> Result<Order, OrderError> {
        match self.orders.get(order_id).await.map_err(store("read an order"))? {
            Some(order) if order.status.is_visible() && (is_admin || &order.user_id == caller) => Ok(order),
            _ => Err(OrderError::NotFound),
        }
    }

    /// One page of the caller's orders, or of everyone's for an admin, newest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the cursor is not one.
    pub async fn orders(&self, caller: &UserId, is_admin: bool, limit: usize, after: Option<Cursor>) -> Result<OrderPage, StoreError> {
        self.orders.list((!is_admin).then_some(caller), limit, after).await
    }

    /// Cancels a paid order: refunds it and restocks its lines, exactly once; cancelling a cancelled order
    /// returns it unchanged.
    ///
    /// # Errors
    /// [`OrderError::NotFound`] as [`Commerce::order`]; [`OrderError::PaymentUnavailable`] when the refund
    /// cannot be made now (nothing changes).
    pub async fn cancel(&self, caller: &UserId, is_admin: bool, order_id: &str) -> Result<Order, OrderError> {
        let mut order = self.order(caller, is_admin, order_id).await?;
        let mut skipped: Vec<usize> = Vec::new();
        for _ in 0..TRANSACTION_ATTEMPTS {
            if order.status == OrderStatus::Cancelled {
                return Ok(order);
            }
            let payment = order.payment.clone().ok_or_else(|| anyhow::anyhow!("a paid order has no payment"))?;
            let charge = Charge {
                provider: payment.provider.clone(),
                charge_id: payment.charge_id.clone(),
                order_id: order.id.clone(),
                amount: order.totals.total,
                status: payment.status,
            };
            // The refund goes first, under a key of the order's own: if the cancellation below loses to a
            // concurrent one, that one's refund was this very refund.
            let refunded = self
                .gateway
                .refund(&charge, &order.refund_key())
                .await
                .map_err(|error| match error {
                    GatewayError::Unavailable { retry_after_secs } => OrderError::PaymentUnavailable { retry_after_secs },
                    GatewayError::Declined { reason } => OrderError::Internal(anyhow::anyhow!("the provider refused a refund: {reason}")),
                })?;
            let next = Order {
                status: OrderStatus::Cancelled,
                payment: Some(OrderPayment { status: refunded.status, ..payment }),
                updated_at: self.clock.now(),
                version: order.version + 1,
                ..order.clone()
            };
            let event = order_event("order.cancelled", &next)?;
            let mut writes = Orders::<S>::transition_writes(&order, &next)?;
            writes.push(event.write()?);
            let order_writes = writes.len();
            writes.extend(order.totals.units().map(|(id, units)| Catalog::<S>::stock_write(id, -i64::from(units))));
            let kept: Vec<usize> = (0..writes.len()).filter(|index| !skipped.contains(index)).collect();
            let writes: Vec<Write> = writes.into_iter().enumerate().filter(|(index, _)| !skipped.contains(index)).map(|(_, write)| write).collect();
            match self.transact(writes).await {
                Ok(()) => {
                    tracing::info!(order_id = %next.id, "order cancelled");
                    self.publish(&event).await;
                    return Ok(next);
                }
                Err(StoreError::ConditionFailed { index, .. }) => match kept.get(index) {
                    Some(&original) if original >= order_writes => skipped.push(original),
                    _ => order = self.order(caller, is_admin, order_id).await?,
                },
                Err(error) => return Err(OrderError::Internal(store("cancel an order")(error))),
            }
        }
        Err(OrderError::Internal(anyhow::anyhow!("an order kept changing while being cancelled")))
    }

    // ----- sweep -----

    /// Settles up to `max` orders left reserved for longer than the grace period: each is completed if the
    /// provider made its charge, and released if not.
    ///
    /// # Errors
    /// [`StoreError`] when the list of unsettled orders cannot be read.
    pub async fn sweep(&self, max: usize) -> Result<SweepReport, StoreError> {
        let grace = i64::try_from(self.settings.sweep_grace.as_millis()).unwrap_or(i64::MAX);
        let before = self.clock.now().plus_millis(-grace);
        let mut report = SweepReport::default();
        for order_id in self.orders.unsettled(before, max.clamp(1, 1000)).await? {
            let Some(order) = self.orders.get(&order_id).await? else { continue };
            if order.status != OrderStatus::Reserved {
                continue;
            }
            let outcome = match self.gateway.find_charge(&order.id, &order.charge_key()).await {
                Ok(Some(charge)) => self.complete(order, charge).await.map(|_| &mut report.paid),
                Ok(None) => self.release(order).await.map(|()| &mut report.released),
                Err(_) => Err(CheckoutError::PaymentUnavailable { retry_after_secs: 0 }),
            };
            match outcome {
                Ok(count) => *count += 1,
                Err(error) => {
                    tracing::warn!(order_id = %order_id, error = %error, "sweep left an order for its next run");
                    report.failed += 1;
                }
            }
        }
        if report != SweepReport::default() {
            tracing::info!(paid = report.paid, released = report.released, failed = report.failed, "checkout sweep");
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    //! The checkout's fault tests, in process: a payment call that never returns stands for a process killed
    //! between the reservation and the payment (the future is dropped there), and the manual clock stands for
    //! the time that passes before a retry or the sweep.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt as _;

    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryItemStore, SequentialIds};
    use crate::domain::{Money, NewProduct};
    use crate::http::idempotent::{Outcome, idempotent};
    use crate::http::{AppState, Keys};
    use crate::idempotency::IdempotencyKey;
    use crate::payments::SandboxPayments;
    use crate::ports::payments::{PaymentError, PaymentFuture, Payments};
    use crate::ports::IdGen;

    /// A provider that, like a process killed mid-call, never answers a charge; with `charge_first` it makes
    /// the charge in the sandbox before going silent (the charge happened, the answer was lost).
    struct Dying {
        sandbox: SandboxPayments<MemoryItemStore>,
        charge_first: bool,
    }

    impl Payments for Dying {
        fn name(&self) -> &'static str {
            "sandbox"
        }
        fn charge(&self, request: ChargeRequest) -> PaymentFuture<'_, Charge> {
            Box::pin(async move {
                if self.charge_first {
                    let _ = self.sandbox.charge(request).await;
                }
                std::future::pending::<()>().await;
                Err(PaymentError::Timeout)
            })
        }
        fn find_charge(&self, order_id: &str, idempotency_key: &str) -> PaymentFuture<'_, Option<Charge>> {
            self.sandbox.find_charge(order_id, idempotency_key)
        }
        fn refund(&self, charge: &Charge, idempotency_key: &str) -> PaymentFuture<'_, Charge> {
            self.sandbox.refund(charge, idempotency_key)
        }
    }

    /// The sandbox, counting the charge calls that reach it.
    struct Counting {
        sandbox: SandboxPayments<MemoryItemStore>,
        charges: AtomicUsize,
    }

    impl Payments for Counting {
        fn name(&self) -> &'static str {
            "sandbox"
        }
        fn charge(&self, request: ChargeRequest) -> PaymentFuture<'_, Charge> {
            self.charges.fetch_add(1, Ordering::SeqCst);
            self.sandbox.charge(request)
        }
        fn find_charge(&self, order_id: &str, idempotency_key: &str) -> PaymentFuture<'_, Option<Charge>> {
            self.sandbox.find_charge(order_id, idempotency_key)
        }
        fn refund(&self, charge: &Charge, idempotency_key: &str) -> PaymentFuture<'_, Charge> {
            self.sandbox.refund(charge, idempotency_key)
        }
    }

    struct Shop {
        clock: Arc<ManualClock>,
        state: AppState<MemoryItemStore>,
        sandbox: SandboxPayments<MemoryItemStore>,
        product: ProductId,
        user: UserId,
    }

    fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
        result.unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// A shop with one product of 5 in stock and a user with 2 of it in the cart.
    async fn shop() -> Shop {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let store = MemoryItemStore::new(clock.clone());
        let ids: Arc<dyn IdGen> = Arc::new(SequentialIds::new("t"));
        let state = AppState::new(store.clone(), clock.clone(), ids.clone(), ok(Keys::derive(&[7; 32]))).with_sleep(clock.clone());
        let fields = ok(NewProduct::new("LAMP-1", "Walnut lamp", "", "lighting", Money::new(2500, Currency::EUR), 5));
        let product = ok(state.catalog.create(fields, &ids, &clock).await).id;
        let user = ok(UserId::parse("u-1"));
        ok(state.commerce.set_line(&user, product.clone(), ok(Quantity::new(2))).await);
        let sandbox = SandboxPayments::new(store.clone(), ids.clone());
        Shop { clock, state, sandbox, product, user }
    }

    impl Shop {
        fn with_payments(&self, payments: Arc<dyn Payments>) -> AppState<MemoryItemStore> {
            self.state.clone().with_payments(payments)
        }

        async fn stock(&self) -> u32 {
            ok(self.state.catalog.get(&self.product).await).stock
        }

        async fn charges(&self) -> Vec<Charge> {
            ok(self.sandbox.ledger(None, 100, None).await).0
        }

        /// Runs a checkout through the idempotency layer, as the endpoint does.
        async fn checkout(&self, state: &AppState<MemoryItemStore>, key: &str, token: &str) -> Result<axum::response::Response, crate::http::ApiError> {
            let key = ok(IdempotencyKey::parse(key));
            let body = serde_json::json!({ "payment_token": token });
            let commerce = &state.commerce;
            let user = &self.user;
            idempotent(state, user, &key, ("POST", "/checkout", &body), |order_id| async move {
                let order = commerce.checkout(user, &order_id, token, None).await?;
                Ok(Outcome { status: http::StatusCode::CREATED, body: serde_json::json!({ "id": order.id }), location: None })
            })
            .await
        }

        /// Starts a checkout whose payment call never returns, and drops it there: the process "dies".
        async fn die_after_reserving(&self, charge_first: bool) {
            let dying = self.with_payments(Arc::new(Dying { sandbox: self.sandbox.clone(), charge_first }));
            assert!(self.checkout(&dying, "k-1", "tok_success").now_or_never().is_none(), "the checkout should hang in its payment");
            assert_eq!(self.stock().await, 3, "the dead checkout reserved its 2 units");
        }

        fn pass(&self, seconds: u64) {
            self.clock.advance(Duration::from_secs(seconds));
        }
    }

    #[tokio::test]
    async fn the_sweep_completes_an_order_whose_charge_happened_before_the_process_died() {
        let shop = shop().await;
        shop.die_after_reserving(true).await;
        assert_eq!(shop.state.commerce.sweep(10).await.ok(), Some(SweepReport::default()), "nothing is swept inside the grace period");
        shop.pass(121);
        assert_eq!(shop.state.commerce.sweep(10).await.ok(), Some(SweepReport { paid: 1, released: 0, failed: 0 }));
        let orders = ok(shop.state.commerce.orders(&shop.user, false, 10, None).await).orders;
        assert_eq!(orders.iter().map(|order| order.status).collect::<Vec<_>>(), [OrderStatus::Paid]);
        assert_eq!(shop.stock().await, 3, "the sold units stay sold");
        assert_eq!(shop.charges().await.len(), 1);
        assert!(ok(shop.state.commerce.cart(&shop.user).await).totals.lines.is_empty(), "a completed order empties the cart");
        let events = ok(shop.state.outbox().pending(10).await).0;
        assert_eq!(events.iter().map(|event| event.topic).collect::<Vec<_>>(), [Topic::Orders], "order.created is committed");
        assert_eq!(shop.state.commerce.sweep(10).await.ok(), Some(SweepReport::default()), "a settled order is not swept again");
    }

    #[tokio::test]
    async fn the_sweep_releases_an_order_whose_charge_never_happened() {
        let shop = shop().await;
        shop.die_after_reserving(false).await;
        shop.pass(121);
        assert_eq!(shop.state.commerce.sweep(10).await.ok(), Some(SweepReport { paid: 0, released: 1, failed: 0 }));
        assert_eq!(shop.stock().await, 5, "the reservation went back");
        assert!(ok(shop.state.commerce.orders(&shop.user, false, 10, None).await).orders.is_empty(), "a released order is never listed");
        assert!(shop.charges().await.is_empty());
        assert_eq!(ok(shop.state.commerce.cart(&shop.user).await).totals.lines.len(), 1, "the cart is kept");
    }

    #[tokio::test]
    async fn a_retry_after_the_dead_requests_lease_makes_one_order_and_one_charge() {
        for charge_first in [false, true] {
            let shop = shop().await;
            shop.die_after_reserving(charge_first).await;
            let counting = Arc::new(Counting { sandbox: shop.sandbox.clone(), charges: AtomicUsize::new(0) });
            let alive = shop.with_payments(counting.clone());
            let early = shop.checkout(&alive, "k-1", "tok_success").await;
            assert!(matches!(early, Err(crate::http::ApiError::IdempotencyKeyInUse)), "inside the lease: {early:?}");
            shop.pass(61);
            let retried = ok(shop.checkout(&alive, "k-1", "tok_success").await);
            assert_eq!(retried.status(), http::StatusCode::CREATED, "charge_first = {charge_first}");
            let orders = ok(alive.commerce.orders(&shop.user, false, 10, None).await).orders;
            assert_eq!(orders.len(), 1, "one order (charge_first = {charge_first})");
            assert_eq!(shop.charges().await.len(), 1, "one charge (charge_first = {charge_first})");
            assert_eq!(shop.stock().await, 3);
            let replay = ok(shop.checkout(&alive, "k-1", "tok_success").await);
            assert_eq!(replay.headers().get("idempotent-replayed").map(|value| value.as_bytes()), Some(&b"true"[..]));
            shop.pass(121);
            assert_eq!(alive.commerce.sweep(10).await.ok(), Some(SweepReport::default()), "nothing is left for the sweep");
        }
    }

    #[tokio::test]
    async fn the_breaker_opens_after_repeated_timeouts_and_closes_after_a_successful_probe() {
        let shop = shop().await;
        let counting = Arc::new(Counting { sandbox: shop.sandbox.clone(), charges: AtomicUsize::new(0) });
        let state = shop.with_payments(counting.clone());
        // One unit a checkout, so the timed-out checkouts' reservations (kept for a retry) leave stock for the probe.
        ok(state.commerce.set_line(&shop.user, shop.product.clone(), ok(Quantity::new(1))).await);
        let attempts = crate::payments::RetryPolicy::default().max_attempts as usize;
        let threshold = crate::payments::BreakerSettings::default().failure_threshold as usize;
        for round in 1..=threshold {
            let key = format!("timeout-{round}");
            let answer = shop.checkout(&state, &key, "tok_timeout").await;
            assert!(matches!(answer, Err(crate::http::ApiError::PaymentUnavailable { .. })), "{answer:?}");
        }
        assert_eq!(counting.charges.load(Ordering::SeqCst), threshold * attempts, "each checkout retried its timeouts");
        assert!(state.commerce.gateway().breaker().is_open(shop.clock.now()));
        let refused = shop.checkout(&state, "while-open", "tok_success").await;
        assert!(matches!(refused, Err(crate::http::ApiError::PaymentUnavailable { retry_after_secs }) if retry_after_secs >= 1), "{refused:?}");
        assert_eq!(counting.charges.load(Ordering::SeqCst), threshold * attempts, "an open breaker calls nobody");
        shop.pass(31);
        let probe = ok(shop.checkout(&state, "while-open", "tok_success").await);
        assert_eq!(probe.status(), http::StatusCode::CREATED, "the probe goes through and succeeds");
        assert!(!state.commerce.gateway().breaker().is_open(shop.clock.now()), "a successful probe closes the breaker");
    }

    #[tokio::test]
    async fn a_declined_payment_gives_the_reservation_and_the_discount_use_back() {
        let shop = shop().await;
        let code = ok(DiscountCode::parse("ten"));
        let discount = Discount {
            code: code.clone(),
            kind: crate::domain::DiscountKind::PercentOff(ok(crate::domain::Percent::new(10))),
            min_subtotal: None,
            starts_at: None,
            ends_at: None,
            usage_limit: Some(1),
            created_at: shop.clock.now(),
        };
        ok(shop.state.commerce.create_discount(discount).await);
        ok(shop.state.commerce.apply_discount(&shop.user, "TEN").await);
        let declined = shop.checkout(&shop.state, "d-1", "tok_decline").await;
        assert_eq!(ok(declined).status(), http::StatusCode::PAYMENT_REQUIRED);
        assert_eq!(shop.stock().await, 5);
        let (discounts, _) = ok(shop.state.commerce.discounts(10, None).await);
        assert_eq!(discounts.iter().map(|counted| counted.used).collect::<Vec<_>>(), [0]);
        let paid = ok(shop.checkout(&shop.state, "d-2", "tok_success").await);
        assert_eq!(paid.status(), http::StatusCode::CREATED, "the given-back use is usable again");
        let (discounts, _) = ok(shop.state.commerce.discounts(10, None).await);
        assert_eq!(discounts.iter().map(|counted| counted.used).collect::<Vec<_>>(), [1]);
    }
}
