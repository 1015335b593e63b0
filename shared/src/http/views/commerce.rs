//! The commerce wire contract's shapes (DESIGN.md, "Commerce wire contract"): carts, orders, discounts and
//! sandbox charges on the wire, and the bodies clients send. Field names are snake_case, money is
//! [`MoneyView`], times are RFC 3339 UTC.

use serde::{Deserialize, Serialize};

use crate::commerce::discounts::CountedDiscount;
use crate::commerce::orders::Order;
use crate::domain::commerce::{AppliedDiscount, DiscountKind, PricedLine, Totals};
use crate::domain::{Currency, Money};
use crate::http::error::ApiError;
use crate::http::views::{MoneyBody, MoneyView, rfc3339};
use crate::ports::payments::{Charge, ChargeStatus};

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        Self { amount: money.amount, currency: money.currency.to_string() }
    }
}

impl MoneyBody {
    /// The validated amount; `field` names it in the error.
    ///
    /// # Errors
    /// [`ApiError::Validation`] naming `<field>.currency` for a malformed currency.
    pub fn into_money(self, field: &str) -> Result<Money, ApiError> {
        let currency = Currency::parse(&self.currency).map_err(|_| ApiError::Validation {
            field: format!("{field}.currency"),
            detail: "an ISO 4217 code of three upper-case letters".to_owned(),
        })?;
        Ok(Money::new(self.amount, currency))
    }
}

/// A cart or order line on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineView {
    /// The product.
    pub product_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its price per unit.
    pub unit_price: MoneyView,
    /// How many.
    pub quantity: u32,
    /// `unit_price` × `quantity`.
    pub line_total: MoneyView,
}

impl From<&PricedLine> for LineView {
    fn from(line: &PricedLine) -> Self {
        Self {
            product_id: line.product_id.to_string(),
            sku: line.sku.to_string(),
            name: line.name.clone(),
            unit_price: line.unit_price.into(),
            quantity: line.quantity.get(),
            line_total: line.line_total.into(),
        }
    }
}

/// A discount as applied to a cart or an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AppliedDiscountView {
    /// The code.
    pub code: String,
    /// The amount taken off.
    pub amount: MoneyView,
}

impl From<&AppliedDiscount> for AppliedDiscountView {
    fn from(applied: &AppliedDiscount) -> Self {
        Self { code: applied.code.to_string(), amount: applied.amount.into() }
    }
}

/// A cart on the wire (`GET /cart` and every cart change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartView {
    /// Its lines, at the catalog's current prices.
    pub items: Vec<LineView>,
    /// The sum of the line totals.
    pub subtotal: MoneyView,
    /// The discount, while it applies.
    pub discount: Option<AppliedDiscountView>,
    /// What checking out would charge.
    pub total: MoneyView,
}

impl From<&Totals> for CartView {
    fn from(totals: &Totals) -> Self {
        Self {
            items: totals.lines.iter().map(LineView::from).collect(),
            subtotal: totals.subtotal.into(),
            discount: totals.discount.as_ref().map(AppliedDiscountView::from),
            total: totals.total.into(),
        }
    }
}

/// An order's payment on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// The provider.
    pub provider: String,
    /// The provider's charge id.
    pub charge_id: String,
    /// `captured` or `refunded`.
    pub status: ChargeStatus,
}

/// An order on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Its id.
    pub id: String,
    /// `paid` or `cancelled`.
    pub status: &'static str,
    /// What was bought.
    pub lines: Vec<LineView>,
    /// The sum of the line totals.
    pub subtotal: MoneyView,
    /// The discount taken off.
    pub discount: Option<AppliedDiscountView>,
    /// What was charged.
    pub total: MoneyView,
    /// The payment.
    pub payment: Option<PaymentView>,
    /// When it was placed.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            id: order.id.clone(),
            status: order.status.as_str(),
            lines: order.totals.lines.iter().map(LineView::from).collect(),
            subtotal: order.totals.subtotal.into(),
            discount: order.totals.discount.as_ref().map(AppliedDiscountView::from),
            total: order.totals.total.into(),
            payment: order.payment.as_ref().map(|payment| PaymentView {
                provider: payment.provider.clone(),
                charge_id: payment.charge_id.clone(),
                status: payment.status,
            }),
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

/// A discount on the wire (`POST /discounts`, `GET /discounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DiscountView {
    /// The code, upper-case.
    pub code: String,
    /// The percentage taken off, for a percentage discount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<u8>,
    /// The amount taken off, for a fixed discount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_off: Option<MoneyView>,
    /// The smallest subtotal it applies to.
    pub min_subtotal: Option<MoneyView>,
    /// From when it applies.
    pub starts_at: Option<String>,
    /// Until when it applies.
    pub ends_at: Option<String>,
    /// How many orders may use it.
    pub usage_limit: Option<u32>,
    /// How many orders used it.
    pub used: u32,
    /// When it was created.
    pub created_at: String,
}

impl From<&CountedDiscount> for DiscountView {
    fn from(counted: &CountedDiscount) -> Self {
        let discount = &counted.discount;
        let (percent_off, amount_off) = match discount.kind {
            DiscountKind::PercentOff(percent) => (Some(percent.get()), None),
            DiscountKind::AmountOff(amount) => (None, Some(amount.into())),
        };
        Self {
            code: discount.code.to_string(),
            percent_off,
            amount_off,
            min_subtotal: discount.min_subtotal.map(MoneyView::from),
            starts_at: discount.starts_at.map(rfc3339),
            ends_at: discount.ends_at.map(rfc3339),
            usage_limit: discount.usage_limit,
            used: counted.used,
            created_at: rfc3339(discount.created_at),
        }
    }
}

/// A sandbox charge on the wire (`GET /payments/sandbox/charges`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChargeView {
    /// The charge's id.
    pub charge_id: String,
    /// The order it paid for.
    pub order_id: String,
    /// The amount.
    pub amount: MoneyView,
    /// `captured` or `refunded`.
    pub status: ChargeStatus,
}

impl From<&Charge> for ChargeView {
    fn from(charge: &Charge) -> Self {
        Self { charge_id: charge.charge_id.clone(), order_id: charge.order_id.clone(), amount: charge.amount.into(), status: charge.status }
    }
}

/// A list with a cursor to its next page (`null` at the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageView<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` when there is none.
    pub next_cursor: Option<String>,
}

/// `PUT /cart/items/{product_id}`'s body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantityBody {
    /// How many units the line should hold, 1 to 99.
    pub quantity: i64,
}

/// `PUT /cart/discount`'s body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The discount code (any case).
    pub code: String,
}
