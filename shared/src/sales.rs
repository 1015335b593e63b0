//! The daily sales counters and reports on the item store.
//!
//! Layout (one partition per UTC day, so a day's report is one partition's read):
//!
//! | item | partition key | sort key | counter | document |
//! | --- | --- | --- | --- | --- |
//! | day figure | `SALES#<day>` | `T#<currency>#<figure>` | the figure | — |
//! | product figure | `SALES#<day>` | `P#<currency>#<product id>#units` or `#revenue` | the figure | SKU and name |
//! | event applied | `SALES#<day>` | `E#<event id>#<part>` | — | when |
//! | closed report | `REPORT#<day>` | `REPORT` | — | the report |
//!
//! Exactly once per event (invariant 3): an event's additions are applied in transactions that each also put
//! the event's own marker with a not-exists condition, so a redelivered event fails on its marker and adds
//! nothing. An order's additions can outgrow one transaction (100 writes; an order has up to 50 lines and two
//! counters each), so they are cut into parts of [`PART_WRITES`], each with its own marker: every part is
//! applied exactly once, hence the whole. Counters are created on first use: a counter write fails as a
//! condition when its item is absent, and the missing items are then created at zero and the part tried again.

use serde_json::json;

use crate::domain::money::Currency;
use crate::domain::product::ProductId;
use crate::domain::sales::{Counter, Day, Figure, ReportStatus, SalesDelta, SalesReport};
use crate::ports::Timestamp;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, Query, StoreError, Write};

/// The most counter writes per transaction (plus the part's marker).
pub const PART_WRITES: usize = 90;
/// How often one part is tried when counters are missing or the store reports contention.
const PART_ATTEMPTS: usize = 5;
const PAGE: usize = 1000;

fn day_pk(day: Day) -> String {
    format!("SALES#{day}")
}

fn report_key(day: Day) -> ItemKey {
    ItemKey::new(format!("REPORT#{day}"), "REPORT")
}

/// One counter addition: its key, what to add, and the document a new counter item gets.
struct Addition {
    key: ItemKey,
    delta: i64,
    document: serde_json::Value,
}

fn additions(delta: &SalesDelta) -> Vec<Addition> {
    let pk = day_pk(delta.day);
    let mut out: Vec<Addition> = delta
        .figures
        .iter()
        .map(|(figure, value)| Addition {
            key: ItemKey::new(pk.clone(), format!("T#{}#{}", delta.currency, figure.as_str())),
            delta: *value,
            document: json!({}),
        })
        .collect();
    for product in &delta.products {
        for (suffix, value) in [("units", product.units), ("revenue", product.revenue)] {
            if value == 0 {
                continue;
            }
            let key = ItemKey::new(pk.clone(), format!("P#{}#{}#{suffix}", product.currency, product.product_id));
            // One order has each product once, but merge defensively: a transaction addresses a key once.
            if let Some(existing) = out.iter_mut().find(|addition| addition.key == key) {
                existing.delta += value;
            } else {
                out.push(Addition { key, delta: value, document: json!({ "sku": product.sku, "name": product.name }) });
            }
        }
    }
    out
}

fn counter_of(item: &Item) -> Option<Counter> {
    let value = item.counter?;
    let mut parts = item.key.sk.split('#');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("T"), Some(currency), Some(figure), None, None) => {
            Some(Counter::Day { currency: Currency::parse(currency).ok()?, figure: Figure::parse(figure)?, value })
        }
        (Some("P"), Some(currency), Some(product), Some(which), None) => Some(Counter::Product {
            product_id: ProductId::parse(product).ok()?,
            sku: item.data.get("sku").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned(),
            name: item.data.get("name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned(),
            currency: Currency::parse(currency).ok()?,
            units: which == "units",
            value,
        }),
        _ => None,
    }
}

/// The sales figures' repository.
#[derive(Debug, Clone)]
pub struct Sales<S> {
    store: S,
}

impl<S: ItemStore> Sales<S> {
    /// Sales figures on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Adds what event `event_id` moves, exactly once however often it is called for that event. Returns
    /// whether anything was added now (`false`: the event had been applied before).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or keeps reporting contention; a retry later is safe.
    pub async fn record(&self, event_id: &str, delta: &SalesDelta, now: Timestamp) -> Result<bool, StoreError> {
        let all = additions(delta);
        let mut applied_now = false;
        let parts: Vec<&[Addition]> = if all.is_empty() { vec![&[]] } else { all.chunks(PART_WRITES).collect() };
        for (index, part) in parts.into_iter().enumerate() {
            applied_now |= self.apply_part(delta.day, event_id, index, part, now).await?;
        }
        Ok(applied_now)
    }

    async fn apply_part(&self, day: Day, event_id: &str, index: usize, part: &[Addition], now: Timestamp) -> Result<bool, StoreError> {
        let marker = Item::new(ItemKey::new(day_pk(day), format!("E#{event_id}#{index}")), 1, json!({ "at": now.as_millis() }));
        for _ in 0..PART_ATTEMPTS {
            let mut writes = vec![Write::Put { item: marker.clone(), condition: Condition::NotExists }];
            writes.extend(part.iter().map(|addition| Write::Add { key: addition.key.clone(), delta: addition.delta, floor: None, ceiling: None }));
            match self.store.transact(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { index: 0, .. }) => return Ok(false),
                Err(StoreError::ConditionFailed { .. }) => self.create_counters(part).await?,
                Err(StoreError::Contention) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contention)
    }

    /// Creates at zero every counter of `part` that does not exist yet (another writer may create one first).
    async fn create_counters(&self, part: &[Addition]) -> Result<(), StoreError> {
        for addition in part {
            let item = Item::new(addition.key.clone(), 1, addition.document.clone()).with_counter(0);
            match self.store.put(item, Condition::NotExists).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The day's report from its counters now, marked live.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn live(&self, day: Day) -> Result<SalesReport, StoreError> {
        let mut counters = Vec::new();
        for prefix in ["T#", "P#"] {
            let mut cursor = None;
            loop {
                let page = self.store.query(&Query::new(day_pk(day), prefix, PAGE).after(cursor.take())).await?;
                counters.extend(page.items.iter().filter_map(counter_of));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(SalesReport::from_counters(day, counters, ReportStatus::Live, None))
    }

    /// The day's closed report, if it was closed.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the stored report cannot be read.
    pub async fn closed(&self, day: Day) -> Result<Option<SalesReport>, StoreError> {
        let Some(item) = self.store.get(&report_key(day)).await? else { return Ok(None) };
        serde_json::from_value(item.data)
            .map(Some)
            .map_err(|error| StoreError::Internal(anyhow::Error::new(error).context("decode a closed sales report")))
    }

    /// The closed report of `day` if there is one, else the live one.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn report(&self, day: Day) -> Result<SalesReport, StoreError> {
        match self.closed(day).await? {
            Some(report) => Ok(report),
            None => self.live(day).await,
        }
    }

    /// Closes the day's report from its counters, once: returns the closed report and whether it was closed
    /// now (`false`: it had been closed before, and the stored one is returned unchanged).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn close(&self, day: Day, now: Timestamp) -> Result<(SalesReport, bool), StoreError> {
        if let Some(report) = self.closed(day).await? {
            return Ok((report, false));
        }
        let live = self.live(day).await?;
        let report = SalesReport { status: ReportStatus::Closed, closed_at: Some(now), ..live };
        let data = serde_json::to_value(&report)
            .map_err(|error| StoreError::Internal(anyhow::Error::new(error).context("encode a sales report")))?;
        match self.store.put(Item::new(report_key(day), 1, data), Condition::NotExists).await {
            Ok(()) => Ok((report, true)),
            Err(StoreError::ConditionFailed { .. }) => {
                let stored = self.closed(day).await?.ok_or_else(|| StoreError::Internal(anyhow::anyhow!("a closed report vanished")))?;
                Ok((stored, false))
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::ManualClock;
    use crate::domain::commerce::{PricedLine, Quantity, Totals};
    use crate::domain::money::Money;
    use crate::domain::product::Sku;
    use crate::domain::sales::SaleKind;
    use crate::ports::Clock as _;

    fn totals(lines: usize, quantity: u32) -> Totals {
        let lines = (0..lines)
            .map(|n| PricedLine {
                product_id: ProductId::parse(&format!("p{n:03}")).unwrap_or_else(|e| panic!("{e}")),
                sku: Sku::parse(&format!("SKU-{n}")).unwrap_or_else(|e| panic!("{e}")),
                name: format!("Product {n}"),
                unit_price: Money::new(100, Currency::EUR),
                quantity: Quantity::new(quantity).unwrap_or_else(|e| panic!("{e}")),
                line_total: Money::new(100 * i64::from(quantity), Currency::EUR),
            })
            .collect();
        Totals::new(lines, Currency::EUR, None).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn an_event_counts_once_however_often_it_is_recorded(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let sales = Sales::new(store);
        let big = totals(50, 2);
        let sold = SalesDelta::of(SaleKind::Sold, &big, clock.now());
        assert!(sales.record("order.created-o1", &sold, clock.now()).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(!sales.record("order.created-o1", &sold, clock.now()).await.unwrap_or_else(|e| panic!("{e}")), "a redelivery adds nothing");
        let small = totals(1, 3);
        sales.record("order.created-o2", &SalesDelta::of(SaleKind::Sold, &small, clock.now()), clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        sales.record("order.cancelled-o2", &SalesDelta::of(SaleKind::Cancelled, &small, clock.now()), clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let day = Day::of(clock.now());
        let report = sales.live(day).await.unwrap_or_else(|e| panic!("{e}"));
        let eur = &report.totals[0];
        assert_eq!((eur.orders, eur.units, eur.revenue.amount, eur.cancellations, eur.refunds.amount), (2, 103, 10_300, 1, 300));
        assert_eq!(report.top_products.len(), crate::domain::sales::TOP_PRODUCTS);
        assert_eq!(report.top_products[0].units, 2, "the cancelled order's product is net zero, the big order's lead");
        let (closed, now) = sales.close(day, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(now && closed.status == ReportStatus::Closed && closed.totals == report.totals);
        sales.record("order.created-o3", &SalesDelta::of(SaleKind::Sold, &small, clock.now()), clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let (again, now) = sales.close(day, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(!now && again == closed, "a closed report never changes");
        assert_eq!(sales.report(day).await.ok(), Some(closed));
        assert_eq!(sales.live(day).await.map(|live| live.totals[0].orders).ok(), Some(3), "the counters go on");
    }

    crate::test_stores::each_store!(an_event_counts_once_however_often_it_is_recorded);
}
