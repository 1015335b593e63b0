//! Sales figures: the calendar day a sale counts on, what one order event adds to a day's counters, and the
//! day's report built from those counters. Pure: the counters come in as numbers, the time as an argument.
//!
//! Days are UTC calendar days: an order paid at 23:59:59 UTC counts on that day, one a second later on the next,
//! whatever the shop's or the buyer's time zone. Amounts are summed per currency, since an order has one
//! currency but the catalog may price products in several.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::domain::commerce::Totals;
use crate::domain::money::{Currency, Money};
use crate::domain::product::ProductId;
use crate::ports::Timestamp;

/// How many products a report lists, best sellers first.
pub const TOP_PRODUCTS: usize = 10;

/// What is wrong with a day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayError {
    /// Not a `YYYY-MM-DD` calendar date.
    #[error("a date is written YYYY-MM-DD and names a real calendar day")]
    Invalid,
}

/// A UTC calendar day, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(time::Date);

impl Day {
    /// Parses `YYYY-MM-DD`.
    ///
    /// # Errors
    /// [`DayError::Invalid`] for anything else, or a day that does not exist (`2026-02-30`).
    pub fn parse(text: &str) -> Result<Self, DayError> {
        if text.len() != 10 {
            return Err(DayError::Invalid);
        }
        time::Date::parse(text, format_description!("[year]-[month]-[day]")).map(Self).map_err(|_| DayError::Invalid)
    }

    /// The UTC day `at` falls on.
    pub fn of(at: Timestamp) -> Self {
        let date = time::OffsetDateTime::from_unix_timestamp(at.as_secs())
            .map_or(time::Date::MIN, time::OffsetDateTime::date);
        Self(date)
    }

    /// The day before.
    pub fn previous(self) -> Self {
        Self(self.0.previous_day().unwrap_or(self.0))
    }

    /// The first millisecond of the day.
    pub fn start(self) -> Timestamp {
        Timestamp::from_secs(self.0.midnight().assume_utc().unix_timestamp())
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (year, month, day) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl TryFrom<String> for Day {
    type Error = DayError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Day> for String {
    fn from(day: Day) -> Self {
        day.to_string()
    }
}

/// One counter of a day's figures for one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    /// Orders paid.
    Orders,
    /// Units sold.
    Units,
    /// Money taken: the orders' totals, after discounts.
    Revenue,
    /// Money taken off by discount codes.
    Discounts,
    /// Orders cancelled.
    Cancellations,
    /// Money given back by cancellations.
    Refunds,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 6] =
        [Figure::Orders, Figure::Units, Figure::Revenue, Figure::Discounts, Figure::Cancellations, Figure::Refunds];

    /// The figure's stable name (store keys use it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Figure::Orders => "orders",
            Figure::Units => "units",
            Figure::Revenue => "revenue",
            Figure::Discounts => "discounts",
            Figure::Cancellations => "cancellations",
            Figure::Refunds => "refunds",
        }
    }

    /// The figure with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|figure| figure.as_str() == name)
    }
}

/// What happened to an order, as far as sales figures go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleKind {
    /// It was paid (`order.created`).
    Sold,
    /// It was cancelled and refunded (`order.cancelled`).
    Cancelled,
}

/// What one product adds to a day in one event: units and line revenue (positive for a sale, negative for a
/// cancellation, so a product's figures are net of refunds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDelta {
    /// The product.
    pub product_id: ProductId,
    /// Its SKU when sold.
    pub sku: String,
    /// Its name when sold.
    pub name: String,
    /// The currency of its line.
    pub currency: Currency,
    /// Units added (negative: given back).
    pub units: i64,
    /// Line revenue added, in minor units (negative: refunded).
    pub revenue: i64,
}

/// What one order event adds to its day's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesDelta {
    /// The day it counts on.
    pub day: Day,
    /// The order's currency.
    pub currency: Currency,
    /// Additions to the day's figures (only the non-zero ones).
    pub figures: Vec<(Figure, i64)>,
    /// Additions per product.
    pub products: Vec<ProductDelta>,
}

impl SalesDelta {
    /// The counters an order event moves: a sale adds an order, its units, its total as revenue and its
    /// discount; a cancellation adds a cancellation and its total as a refund, and takes its units and line
    /// revenue off its products, so per-product figures are net.
    pub fn of(kind: SaleKind, totals: &Totals, at: Timestamp) -> Self {
        let currency = totals.total.currency;
        let units: i64 = totals.lines.iter().map(|line| i64::from(line.quantity.get())).sum();
        let discount = totals.discount.as_ref().map_or(0, |applied| applied.amount.amount);
        let (figures, sign) = match kind {
            SaleKind::Sold => (
                vec![(Figure::Orders, 1), (Figure::Units, units), (Figure::Revenue, totals.total.amount), (Figure::Discounts, discount)],
                1,
            ),
            SaleKind::Cancelled => (vec![(Figure::Cancellations, 1), (Figure::Refunds, totals.total.amount)], -1),
        };
        let products = totals
            .lines
            .iter()
            .map(|line| ProductDelta {
                product_id: line.product_id.clone(),
                sku: line.sku.to_string(),
                name: line.name.clone(),
                currency: line.line_total.currency,
                units: sign * i64::from(line.quantity.get()),
                revenue: sign * line.line_total.amount,
            })
            .collect();
        Self { day: Day::of(at), currency, figures: figures.into_iter().filter(|(_, value)| *value != 0).collect(), products }
    }
}

/// One currency's figures of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    /// The currency.
    pub currency: Currency,
    /// Orders paid.
    pub orders: i64,
    /// Units sold.
    pub units: i64,
    /// Money taken, after discounts.
    pub revenue: Money,
    /// Money taken off by discounts.
    pub discounts: Money,
    /// Orders cancelled.
    pub cancellations: i64,
    /// Money refunded.
    pub refunds: Money,
    /// Revenue less refunds.
    pub net: Money,
}

/// One product's figures of a day, net of cancellations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSales {
    /// The product.
    pub product_id: ProductId,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Units sold, net.
    pub units: i64,
    /// Line revenue, net (before order discounts).
    pub revenue: Money,
}

/// Whether a report is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Read from the counters now; may still change.
    Live,
    /// Closed by the daily report job; never changes.
    Closed,
}

/// A day's sales report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesReport {
    /// The day.
    pub date: Day,
    /// Live or closed.
    pub status: ReportStatus,
    /// When it was closed, for a closed report.
    pub closed_at: Option<Timestamp>,
    /// The figures per currency, by currency code.
    pub totals: Vec<CurrencyTotals>,
    /// The best sellers (by units, then revenue, then id), at most [`TOP_PRODUCTS`].
    pub top_products: Vec<ProductSales>,
}

/// One counter as read from the store: a day figure or a product figure, with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// A figure of the day for one currency.
    Day {
        /// The currency.
        currency: Currency,
        /// Which figure.
        figure: Figure,
        /// Its value.
        value: i64,
    },
    /// A product's units or revenue.
    Product {
        /// The product.
        product_id: ProductId,
        /// Its SKU.
        sku: String,
        /// Its name.
        name: String,
        /// The currency.
        currency: Currency,
        /// Units (`true`) or revenue (`false`).
        units: bool,
        /// Its value.
        value: i64,
    },
}

impl SalesReport {
    /// The report of `date` from its counters.
    pub fn from_counters(date: Day, counters: impl IntoIterator<Item = Counter>, status: ReportStatus, closed_at: Option<Timestamp>) -> Self {
        let mut days: BTreeMap<String, (Currency, BTreeMap<Figure, i64>)> = BTreeMap::new();
        let mut products: BTreeMap<(String, String), ProductSales> = BTreeMap::new();
        for counter in counters {
            match counter {
                Counter::Day { currency, figure, value } => {
                    *days.entry(currency.to_string()).or_insert_with(|| (currency, BTreeMap::new())).1.entry(figure).or_insert(0) += value;
                }
                Counter::Product { product_id, sku, name, currency, units, value } => {
                    let entry = products.entry((product_id.to_string(), currency.to_string())).or_insert_with(|| ProductSales {
                        product_id,
                        sku,
                        name,
                        units: 0,
                        revenue: Money::new(0, currency),
                    });
                    if units {
                        entry.units += value;
                    } else {
                        entry.revenue.amount += value;
                    }
                }
            }
        }
        let totals = days
            .into_values()
            .map(|(currency, figures)| {
                let get = |figure| figures.get(&figure).copied().unwrap_or(0);
                let money = |figure| Money::new(get(figure), currency);
                CurrencyTotals {
                    currency,
                    orders: get(Figure::Orders),
                    units: get(Figure::Units),
                    revenue: money(Figure::Revenue),
                    discounts: money(Figure::Discounts),
                    cancellations: get(Figure::Cancellations),
                    refunds: money(Figure::Refunds),
                    net: Money::new(get(Figure::Revenue) - get(Figure::Refunds), currency),
                }
            })
            .collect();
        let mut top: Vec<ProductSales> = products.into_values().filter(|product| product.units != 0 || product.revenue.amount != 0).collect();
        top.sort_by(|a, b| {
            b.units.cmp(&a.units).then(b.revenue.amount.cmp(&a.revenue.amount)).then_with(|| a.product_id.as_ref().cmp(b.product_id.as_ref()))
        });
        top.truncate(TOP_PRODUCTS);
        Self { date, status, closed_at, totals, top_products: top }
    }

    /// The report as plain text, for the admins' e-mail.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut text = format!("Sales report for {} (UTC)\n\n", self.date);
        if self.totals.is_empty() {
            text.push_str("No sales.\n");
        }
        for totals in &self.totals {
            let _ = writeln!(
                text,
                "{}: {} orders, {} units, revenue {}, discounts {}, {} cancellations, refunds {}, net {}",
                totals.currency, totals.orders, totals.units, totals.revenue, totals.discounts, totals.cancellations, totals.refunds, totals.net
            );
        }
        if !self.top_products.is_empty() {
            text.push_str("\nTop products:\n");
            for (rank, product) in self.top_products.iter().enumerate() {
                let _ = writeln!(text, "{}. {} ({}): {} units, {}", rank + 1, product.name, product.sku, product.units, product.revenue);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commerce::{PricedLine, Quantity};
    use crate::domain::product::Sku;

    fn line(id: &str, unit: i64, quantity: u32) -> PricedLine {
        let price = Money::new(unit, Currency::EUR);
        PricedLine {
            product_id: ProductId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            sku: Sku::parse(&format!("SKU-{id}")).unwrap_or_else(|e| panic!("{e}")),
            name: format!("Product {id}"),
            unit_price: price,
            quantity: Quantity::new(quantity).unwrap_or_else(|e| panic!("{e}")),
            line_total: Money::new(unit * i64::from(quantity), Currency::EUR),
        }
    }

    #[test]
    fn days_are_utc_calendar_days_written_iso() {
        let day = Day::of(Timestamp::from_millis(1_767_225_599_999));
        assert_eq!(day.to_string(), "2025-12-31");
        assert_eq!(Day::of(Timestamp::from_millis(1_767_225_600_000)).to_string(), "2026-01-01");
        assert_eq!(Day::parse("2026-01-01").map(Day::previous).map(|day| day.to_string()), Ok("2025-12-31".to_owned()));
        assert_eq!(Day::parse("2026-01-01").map(Day::start), Ok(Timestamp::from_millis(1_767_225_600_000)));
        for bad in ["2026-02-30", "2026-1-01", "26-01-01", "2026-01-01T00:00:00Z", "", "yesterday"] {
            assert_eq!(Day::parse(bad), Err(DayError::Invalid), "{bad}");
        }
    }

    #[test]
    fn a_sale_and_its_cancellation_move_the_figures_they_name() {
        let totals = Totals::new(vec![line("p1", 1000, 2), line("p2", 250, 1)], Currency::EUR, None).unwrap_or_else(|e| panic!("{e}"));
        let at = Timestamp::from_millis(1_767_225_600_000);
        let sold = SalesDelta::of(SaleKind::Sold, &totals, at);
        assert_eq!(sold.figures, [(Figure::Orders, 1), (Figure::Units, 3), (Figure::Revenue, 2250)], "a zero discount moves nothing");
        assert_eq!(sold.products.iter().map(|p| (p.units, p.revenue)).collect::<Vec<_>>(), [(2, 2000), (1, 250)]);
        let cancelled = SalesDelta::of(SaleKind::Cancelled, &totals, at);
        assert_eq!(cancelled.figures, [(Figure::Cancellations, 1), (Figure::Refunds, 2250)]);
        assert_eq!(cancelled.products.iter().map(|p| (p.units, p.revenue)).collect::<Vec<_>>(), [(-2, -2000), (-1, -250)]);
    }

    #[test]
    fn a_report_sums_counters_per_currency_and_ranks_products() {
        let day = Day::parse("2026-12-02").unwrap_or_else(|e| panic!("{e}"));
        let product = |id: &str, units: bool, value| Counter::Product {
            product_id: ProductId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            sku: format!("SKU-{id}"),
            name: id.to_owned(),
            currency: Currency::EUR,
            units,
            value,
        };
        let counters = vec![
            Counter::Day { currency: Currency::EUR, figure: Figure::Orders, value: 3 },
            Counter::Day { currency: Currency::EUR, figure: Figure::Revenue, value: 9000 },
            Counter::Day { currency: Currency::EUR, figure: Figure::Refunds, value: 1000 },
            product("b", true, 2),
            product("b", false, 400),
            product("a", true, 2),
            product("a", false, 900),
            product("c", true, 0),
            product("c", false, 0),
        ];
        let report = SalesReport::from_counters(day, counters, ReportStatus::Live, None);
        assert_eq!(report.totals.len(), 1);
        assert_eq!((report.totals[0].orders, report.totals[0].net.amount, report.totals[0].units), (3, 8000, 0));
        let ranked: Vec<&str> = report.top_products.iter().map(|p| p.product_id.as_ref()).collect();
        assert_eq!(ranked, ["a", "b"], "ties on units go to revenue; a product netted to zero is left out");
        assert!(report.to_text().contains("1. a (SKU-a): 2 units"), "{}", report.to_text());
    }
}
