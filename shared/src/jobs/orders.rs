//! The order-events job: what follows `order.created` and `order.cancelled` on the orders queue.
//!
//! For each event, and exactly once however often it is delivered (invariant 3):
//! - the day's sales counters move (`sales`: the additions and the event's marker in one transaction each,
//!   so a redelivery adds nothing);
//! - the customer gets the confirmation or the cancellation e-mail (`mail::Outgoing`: sent once per
//!   `Message-ID`, derived from the event id);
//! - on a sale, each product whose stock is now at or below its threshold and was not already alerted gets one
//!   low-stock alert to the admins: the crossing is recorded with a not-exists condition
//!   (`catalog::low_stock_key`), naming the event that recorded it, and only that event's deliveries send its
//!   alert (again once per `Message-ID`). Restocking above the threshold (a cancellation seen here, or a
//!   product write) removes the record, so the next fall is a new crossing.
//!
//! The steps run in that order and each is idempotent on its own, so a delivery that fails half-way is simply
//! delivered again.

use std::sync::Arc;

use serde::Deserialize;

use crate::accounts::{Accounts, AccountsError};
use crate::catalog::{Catalog, CatalogError, low_stock_key};
use crate::domain::account::UserId;
use crate::domain::commerce::{AppliedDiscount, PricedLine, Totals};
use crate::domain::money::Money;
use crate::domain::sales::{SaleKind, SalesDelta};
use crate::jobs::JobError;
use crate::mail::{MailSettings, Outgoing, letters};
use crate::ports::item_store::{Condition, Item, ItemStore, StoreError};
use crate::ports::{Clock, Timestamp};
use crate::sales::Sales;
use crate::telemetry::TraceParent;
use tracing::Instrument as _;

/// The body of an order event, as the checkout writes it (`commerce::checkout`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderEvent {
    /// `order.created` or `order.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's id, the same on every delivery.
    pub event_id: String,
    /// The order.
    pub order_id: String,
    /// Whose order.
    pub user_id: UserId,
    /// Its lines.
    pub lines: Vec<PricedLine>,
    /// Its subtotal.
    pub subtotal: Money,
    /// Its discount.
    pub discount: Option<AppliedDiscount>,
    /// Its total.
    pub total: Money,
    /// When it was paid or cancelled.
    pub at: Timestamp,
    /// The W3C `traceparent` of the checkout that placed the order, when it had one.
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl OrderEvent {
    /// Reads an event.
    ///
    /// # Errors
    /// [`JobError::Permanent`] for a body that is not an order event, or whose ids cannot be store keys.
    pub fn parse(body: &str) -> Result<(Self, SaleKind), JobError> {
        let event: OrderEvent = serde_json::from_str(body).map_err(|error| JobError::Permanent(format!("not an order event: {error}")))?;
        let kind = match event.kind.as_str() {
            "order.created" => SaleKind::Sold,
            "order.cancelled" => SaleKind::Cancelled,
            _ => return Err(JobError::Permanent("not an order event type".to_owned())),
        };
        let printable = |text: &str| !text.is_empty() && text.len() <= 128 && text.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'#');
        if !printable(&event.event_id) || !printable(&event.order_id) {
            return Err(JobError::Permanent("an order event's ids are 1 to 128 printable characters".to_owned()));
        }
        Ok((event, kind))
    }

    /// The order's totals as the event carries them.
    pub fn totals(&self) -> Totals {
        Totals { lines: self.lines.clone(), subtotal: self.subtotal, discount: self.discount.clone(), total: self.total }
    }
}

/// The order-events use case.
#[derive(Clone)]
pub struct OrderEvents<S> {
    store: S,
    accounts: Accounts<S>,
    catalog: Catalog<S>,
    sales: Sales<S>,
    outgoing: Outgoing<S>,
    settings: MailSettings,
    clock: Arc<dyn Clock>,
    poison_prefix: Option<String>,
}

impl<S: ItemStore + Clone> OrderEvents<S> {
    /// The job on `store`, mailing through `outgoing`.
    pub fn new(store: S, outgoing: Outgoing<S>, settings: MailSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            accounts: Accounts::new(store.clone()),
            catalog: Catalog::new(store.clone()),
            sales: Sales::new(store.clone()),
            store,
            outgoing,
            settings,
            clock,
            poison_prefix: None,
        }
    }

    /// A test-only fault: events of orders whose id starts with `prefix` fail as if the store were down, every
    /// time, so a test can watch a message that keeps failing reach the dead-letter queue. Hosts set it only in
    /// test builds.
    #[must_use]
    pub fn with_poison_prefix(mut self, prefix: Option<String>) -> Self {
        self.poison_prefix = prefix.filter(|prefix| !prefix.is_empty());
        self
    }

    /// Handles one event.
    ///
    /// # Errors
    /// [`JobError::Permanent`] for a malformed event or a mail the carrier refuses for good;
    /// [`JobError::Transient`] when the store or the carrier fails now.
    pub async fn handle(&self, body: &str) -> Result<(), JobError> {
        let (event, kind) = OrderEvent::parse(body)?;
        // The checkout's trace id on every line this event writes (`crate::telemetry`); none for a malformed one.
        let trace_id = event.traceparent.as_deref().and_then(TraceParent::parse).map(|trace| trace.trace_id());
        let span = tracing::info_span!("order_event", event_id = %event.event_id, trace_id = trace_id.as_deref().unwrap_or(""));
        self.apply(event, kind).instrument(span).await
    }

    async fn apply(&self, event: OrderEvent, kind: SaleKind) -> Result<(), JobError> {
        if self.poison_prefix.as_deref().is_some_and(|prefix| event.order_id.starts_with(prefix)) {
            return Err(JobError::Transient(anyhow::anyhow!("test fault: this order's events always fail")));
        }
        let totals = event.totals();
        let now = self.clock.now();
        let delta = SalesDelta::of(kind, &totals, event.at);
        self.sales.record(&event.event_id, &delta, now).await.map_err(JobError::store)?;
        self.mail_customer(&event, kind, &totals).await?;
        for line in &event.lines {
            self.check_stock(&event, kind, line).await?;
        }
        tracing::info!(order_id = %event.order_id, kind = %event.kind, "order event handled");
        Ok(())
    }

    async fn mail_customer(&self, event: &OrderEvent, kind: SaleKind, totals: &Totals) -> Result<(), JobError> {
        let user = match self.accounts.get(&event.user_id).await {
            Ok(user) if user.is_active() => user,
            // A closed or erased account gets no mail: its address is on its way out of the store.
            Ok(_) | Err(AccountsError::NotFound) => return Ok(()),
            Err(error) => return Err(JobError::Transient(anyhow::Error::new(error))),
        };
        let letter = match kind {
            SaleKind::Sold => letters::order_confirmation,
            SaleKind::Cancelled => letters::order_cancellation,
        };
        let mail = letter(&self.settings, user.email, &event.event_id, &event.order_id, totals, event.at).map_err(JobError::mail)?;
        self.outgoing.send_once(&mail).await.map_err(JobError::outgoing)?;
        Ok(())
    }

    async fn check_stock(&self, event: &OrderEvent, kind: SaleKind, line: &PricedLine) -> Result<(), JobError> {
        let product = match self.catalog.get(&line.product_id).await {
            Ok(product) => product,
            Err(CatalogError::NotFound) => return Ok(()),
            Err(error) => return Err(JobError::Transient(anyhow::Error::new(error))),
        };
        let key = low_stock_key(&product.id);
        if product.stock > product.low_stock_threshold {
            if self.store.get(&key).await.map_err(JobError::store)?.is_some() {
                self.store.delete(&key, Condition::None).await.map_err(JobError::store)?;
            }
            return Ok(());
        }
        if kind == SaleKind::Cancelled {
            return Ok(());
        }
        let record = Item::new(key.clone(), 1, serde_json::json!({ "event_id": event.event_id, "stock": product.stock, "at": event.at.as_millis() }));
        let ours = match self.store.put(record, Condition::NotExists).await {
            Ok(()) => true,
            Err(StoreError::ConditionFailed { .. }) => {
                let recorded = self.store.get(&key).await.map_err(JobError::store)?;
                recorded.is_some_and(|item| item.data.get("event_id").and_then(serde_json::Value::as_str) == Some(event.event_id.as_str()))
            }
            Err(error) => return Err(JobError::store(error)),
        };
        if !ours {
            return Ok(());
        }
        tracing::info!(product_id = %product.id, stock = product.stock, threshold = product.low_stock_threshold, event_id = %event.event_id, "low stock");
        if self.settings.admins.is_empty() {
            tracing::warn!(product_id = %product.id, "no admin address is configured; the low-stock alert is recorded but not mailed");
            return Ok(());
        }
        let crossing = format!("low-stock.{}.{}", product.id, event.event_id);
        let mail = letters::low_stock(&self.settings, &crossing, &product, event.at).map_err(JobError::mail)?;
        self.outgoing.send_once(&mail).await.map_err(JobError::outgoing)?;
        Ok(())
    }
}
