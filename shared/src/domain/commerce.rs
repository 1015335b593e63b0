//! The rules of buying: cart lines and their limits, discount codes and when they apply, how a cart is priced
//! (line totals, subtotal, discount, total) and the states an order moves through.
//!
//! Pure: time comes in as an argument, prices come from the products the caller read. All amounts are integer
//! minor units; the one rounding rule (percentages) is [`percent_of`].

use serde::{Deserialize, Serialize};

use crate::domain::money::{Money, MoneyError};
use crate::domain::product::{Product, ProductId, Sku};
use crate::ports::Timestamp;

/// The most units of one product a cart line holds.
pub const MAX_QUANTITY: u32 = 99;
/// The most lines (distinct products) a cart holds.
pub const MAX_CART_LINES: usize = 50;
/// The longest discount code, in characters.
pub const MAX_CODE_CHARS: usize = 32;

/// What breaks a commerce rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommerceError {
    /// A field breaks a rule.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule.
        reason: &'static str,
    },
    /// The cart already holds [`MAX_CART_LINES`] lines.
    #[error("a cart holds at most {MAX_CART_LINES} lines")]
    CartFull,
    /// Amounts do not add up (another currency, or past `i64`).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

fn invalid(field: &'static str, reason: &'static str) -> CommerceError {
    CommerceError::Invalid { field, reason }
}

/// How many units of a product a line holds: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// A quantity.
    ///
    /// # Errors
    /// [`CommerceError::Invalid`] naming `quantity` outside 1 to [`MAX_QUANTITY`].
    pub fn new(units: u32) -> Result<Self, CommerceError> {
        if (1..=MAX_QUANTITY).contains(&units) { Ok(Self(units)) } else { Err(invalid("quantity", "1 to 99")) }
    }

    /// The number of units.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = CommerceError;
    fn try_from(units: u32) -> Result<Self, Self::Error> {
        Self::new(units)
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> Self {
        quantity.0
    }
}

/// One line of a cart as stored: which product and how many. Prices are not stored: a cart is always priced at
/// the catalog's current prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The product.
    pub product_id: ProductId,
    /// How many.
    pub quantity: Quantity,
}

/// A user's cart as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Its lines, in the order they were first added.
    pub lines: Vec<CartLine>,
    /// The discount code applied to it, if any.
    pub discount: Option<DiscountCode>,
}

impl Cart {
    /// Sets the quantity of a product's line, adding the line at the end if it is new.
    ///
    /// # Errors
    /// [`CommerceError::CartFull`] when the line is new and the cart already holds [`MAX_CART_LINES`] lines.
    pub fn set(&mut self, product_id: ProductId, quantity: Quantity) -> Result<(), CommerceError> {
        if let Some(line) = self.lines.iter_mut().find(|line| line.product_id == product_id) {
            line.quantity = quantity;
            return Ok(());
        }
        if self.lines.len() >= MAX_CART_LINES {
            return Err(CommerceError::CartFull);
        }
        self.lines.push(CartLine { product_id, quantity });
        Ok(())
    }

    /// Removes a product's line; removing an absent line changes nothing.
    pub fn remove(&mut self, product_id: &ProductId) {
        self.lines.retain(|line| &line.product_id != product_id);
    }

    /// Whether the cart has no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// A discount code: 1 to 32 letters, digits, `-` and `_`, compared case-insensitively (stored upper-case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DiscountCode(String);

impl DiscountCode {
    /// Parses a code, upper-casing it.
    ///
    /// # Errors
    /// [`CommerceError::Invalid`] naming `code`.
    pub fn parse(text: &str) -> Result<Self, CommerceError> {
        let code = text.trim();
        let valid = !code.is_empty()
            && code.len() <= MAX_CODE_CHARS
            && code.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid {
            Ok(Self(code.to_ascii_uppercase()))
        } else {
            Err(invalid("code", "1 to 32 letters, digits, '-' and '_'"))
        }
    }
}

crate::domain::text_newtype!(DiscountCode, CommerceError);

/// A whole percentage from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Percent(u8);

impl Percent {
    /// A percentage.
    ///
    /// # Errors
    /// [`CommerceError::Invalid`] naming `percent_off` outside 1 to 100.
    pub fn new(value: u8) -> Result<Self, CommerceError> {
        if (1..=100).contains(&value) { Ok(Self(value)) } else { Err(invalid("percent_off", "1 to 100")) }
    }

    /// The percentage.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Percent {
    type Error = CommerceError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Percent> for u8 {
    fn from(percent: Percent) -> Self {
        percent.0
    }
}

/// `percent` of `amount` minor units, rounded to the nearest minor unit with halves rounded up, in the
/// customer's favour: 15 % of 1999 is 299.85, so 300; 10 % of 1995 is 199.5, so 200. This is the one place
/// a fraction of a minor unit is rounded. `amount` is never negative where it is used (a subtotal).
pub fn percent_of(amount: i64, percent: Percent) -> i64 {
    let amount = i128::from(amount.max(0));
    let rounded = (amount * i128::from(percent.get()) + 50) / 100;
    // At most `amount`, which fits in i64.
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// What a discount takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// A percentage of the subtotal ([`percent_of`]).
    PercentOff(Percent),
    /// A fixed amount, never more than the subtotal.
    AmountOff(Money),
}

/// A discount code's definition. How often it has been used is kept beside it, as a counter the store
/// changes atomically at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// The code.
    pub code: DiscountCode,
    /// What it takes off.
    pub kind: DiscountKind,
    /// The smallest subtotal it applies to, if any.
    pub min_subtotal: Option<Money>,
    /// From when it applies, if limited.
    pub starts_at: Option<Timestamp>,
    /// Until when it applies (exclusive), if limited.
    pub ends_at: Option<Timestamp>,
    /// How many orders may use it in all, if limited.
    pub usage_limit: Option<u32>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// Why a discount does not apply to a cart now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountRejection {
    /// No discount has this code.
    Unknown,
    /// Its validity window has not begun.
    NotStarted,
    /// Its validity window has ended.
    Expired,
    /// Its usage limit is reached.
    UsedUp,
    /// The subtotal is below its minimum (or in another currency).
    MinSubtotalNotMet,
}

impl DiscountRejection {
    /// The reason's stable name, as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DiscountRejection::Unknown => "unknown",
            DiscountRejection::NotStarted => "not_started",
            DiscountRejection::Expired => "expired",
            DiscountRejection::UsedUp => "used_up",
            DiscountRejection::MinSubtotalNotMet => "min_subtotal_not_met",
        }
    }
}

impl Discount {
    /// Checks a new discount's fields together.
    ///
    /// # Errors
    /// [`CommerceError::Invalid`] naming the field: a window that ends before it starts, a usage limit of 0, a
    /// negative or zero fixed amount, or a negative minimum subtotal.
    pub fn validate(&self) -> Result<(), CommerceError> {
        if let (Some(starts), Some(ends)) = (self.starts_at, self.ends_at)
            && ends <= starts
        {
            return Err(invalid("ends_at", "must be after starts_at"));
        }
        if self.usage_limit == Some(0) {
            return Err(invalid("usage_limit", "at least 1"));
        }
        if let DiscountKind::AmountOff(amount) = self.kind
            && amount.amount <= 0
        {
            return Err(invalid("amount_off", "more than zero"));
        }
        if self.min_subtotal.is_some_and(|min| min.amount < 0) {
            return Err(invalid("min_subtotal", "not negative"));
        }
        Ok(())
    }

    /// What the discount takes off `subtotal` at `now`, having been used `used` times: never more than the
    /// subtotal, so a total never goes below zero.
    ///
    /// # Errors
    /// The [`DiscountRejection`] that stops it applying.
    pub fn amount_for(&self, subtotal: Money, now: Timestamp, used: u32) -> Result<Money, DiscountRejection> {
        if self.starts_at.is_some_and(|starts| now < starts) {
            return Err(DiscountRejection::NotStarted);
        }
        if self.ends_at.is_some_and(|ends| now >= ends) {
            return Err(DiscountRejection::Expired);
        }
        if self.usage_limit.is_some_and(|limit| used >= limit) {
            return Err(DiscountRejection::UsedUp);
        }
        if let Some(min) = self.min_subtotal
            && (min.currency != subtotal.currency || subtotal.amount < min.amount)
        {
            return Err(DiscountRejection::MinSubtotalNotMet);
        }
        let off = match self.kind {
            DiscountKind::PercentOff(percent) => percent_of(subtotal.amount, percent),
            DiscountKind::AmountOff(amount) if amount.currency == subtotal.currency => amount.amount,
            // A fixed amount in another currency cannot be taken off this cart.
            DiscountKind::AmountOff(_) => return Err(DiscountRejection::MinSubtotalNotMet),
        };
        Ok(Money::new(off.clamp(0, subtotal.amount.max(0)), subtotal.currency))
    }
}

/// One priced line: a product as the catalog describes it now, times a quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    /// The product.
    pub product_id: ProductId,
    /// Its SKU.
    pub sku: Sku,
    /// Its name.
    pub name: String,
    /// Its price per unit.
    pub unit_price: Money,
    /// How many.
    pub quantity: Quantity,
    /// `unit_price` × `quantity`.
    pub line_total: Money,
}

impl PricedLine {
    /// A line for `quantity` units of `product` at its current price.
    ///
    /// # Errors
    /// [`CommerceError::Money`] when the total overflows.
    pub fn new(product: &Product, quantity: Quantity) -> Result<Self, CommerceError> {
        Ok(Self {
            product_id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            unit_price: product.price,
            quantity,
            line_total: product.price.checked_mul(i64::from(quantity.get()))?,
        })
    }
}

/// A discount as applied to a cart or an order: its code and the amount it took off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDiscount {
    /// The code.
    pub code: DiscountCode,
    /// The amount taken off.
    pub amount: Money,
}

/// A priced cart or order: lines, subtotal, discount and total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// The lines.
    pub lines: Vec<PricedLine>,
    /// The sum of the line totals.
    pub subtotal: Money,
    /// The discount taken off, if any.
    pub discount: Option<AppliedDiscount>,
    /// `subtotal` − discount, never below zero.
    pub total: Money,
}

impl Totals {
    /// Prices lines (with `currency` for an empty cart) and takes off a discount that already applies.
    ///
    /// # Errors
    /// [`CommerceError::Money`] when lines are in different currencies or the sum overflows.
    pub fn new(
        lines: Vec<PricedLine>,
        currency: crate::domain::money::Currency,
        discount: Option<(DiscountCode, Money)>,
    ) -> Result<Self, CommerceError> {
        let mut subtotal = Money::new(0, lines.first().map_or(currency, |line| line.unit_price.currency));
        for line in &lines {
            subtotal = subtotal.checked_add(line.line_total)?;
        }
        let discount = discount.map(|(code, amount)| AppliedDiscount {
            code,
            amount: Money::new(amount.amount.clamp(0, subtotal.amount.max(0)), subtotal.currency),
        });
        let off = discount.as_ref().map_or(0, |applied| applied.amount.amount);
        let total = Money::new(subtotal.amount - off, subtotal.currency);
        Ok(Self { lines, subtotal, discount, total })
    }

    /// The units of each product, for reserving and restocking.
    pub fn units(&self) -> impl Iterator<Item = (&ProductId, u32)> {
        self.lines.iter().map(|line| (&line.product_id, line.quantity.get()))
    }
}

/// Where an order is in its life.
///
/// `Reserved` (stock and discount taken, payment not settled) → `Paid` or `Released` (payment declined or never
/// made: stock and discount given back); `Paid` → `Cancelled` (refunded and restocked). Only paid and cancelled
/// orders are shown to people; reserved and released ones exist for the checkout and its sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock and discount reserved; the payment is not settled.
    Reserved,
    /// Paid.
    Paid,
    /// The payment failed or never happened; the reservation was given back.
    Released,
    /// Cancelled after payment: refunded and restocked.
    Cancelled,
}

impl OrderStatus {
    /// Whether an order may move from this state to `next`.
    pub fn may_become(self, next: OrderStatus) -> bool {
        matches!(
            (self, next),
            (OrderStatus::Reserved, OrderStatus::Paid | OrderStatus::Released) | (OrderStatus::Paid, OrderStatus::Cancelled)
        )
    }

    /// Whether people see the order (in lists and by id).
    pub fn is_visible(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Cancelled)
    }

    /// The state's stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Released => "released",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::product::NewProduct;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn percent(value: u8) -> Percent {
        Percent::new(value).unwrap_or_else(|error| panic!("{error}"))
    }

    fn product(id: &str, price: i64) -> Product {
        let fields = NewProduct::new(&format!("SKU-{id}"), "Lamp", "", "lighting", eur(price), 5)
            .unwrap_or_else(|error| panic!("{error}"));
        fields.into_product(ProductId::parse(id).unwrap_or_else(|error| panic!("{error}")), Timestamp::from_secs(1))
    }

    fn discount(kind: DiscountKind) -> Discount {
        Discount {
            code: DiscountCode::parse("save").unwrap_or_else(|error| panic!("{error}")),
            kind,
            min_subtotal: None,
            starts_at: None,
            ends_at: None,
            usage_limit: None,
            created_at: Timestamp::from_secs(0),
        }
    }

    #[test]
    fn percentages_round_halves_up_in_the_customers_favour() {
        assert_eq!(percent_of(1999, percent(15)), 300); // 299.85
        assert_eq!(percent_of(1995, percent(10)), 200); // 199.5, a half
        assert_eq!(percent_of(1994, percent(10)), 199); // 199.4
        assert_eq!(percent_of(1, percent(50)), 1); // 0.5, a half
        assert_eq!(percent_of(1, percent(49)), 0); // 0.49
        assert_eq!(percent_of(0, percent(100)), 0);
        assert_eq!(percent_of(12_345, percent(100)), 12_345);
        assert_eq!(percent_of(i64::MAX, percent(100)), i64::MAX);
        assert_eq!(percent_of(i64::MAX, percent(1)), 92_233_720_368_547_758); // 92233720368547758.07, no overflow
        assert_eq!(percent_of(-5, percent(10)), 0);
    }

    #[test]
    fn quantities_and_percentages_are_bounded() {
        assert!(Quantity::new(0).is_err() && Quantity::new(100).is_err());
        assert_eq!(Quantity::new(99).map(Quantity::get), Ok(99));
        assert!(Percent::new(0).is_err() && Percent::new(101).is_err());
        assert!(Percent::new(100).is_ok());
    }

    #[test]
    fn codes_are_case_insensitive_and_plain() {
        assert_eq!(DiscountCode::parse(" summer-10 ").map(String::from), Ok("SUMMER-10".to_owned()));
        for bad in ["", "has space", "ümlaut", &"X".repeat(33)] {
            assert!(DiscountCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cart_sets_lines_removes_them_and_holds_at_most_fifty() {
        let mut cart = Cart::default();
        let id = |n: usize| ProductId::parse(&format!("p{n}")).unwrap_or_else(|error| panic!("{error}"));
        let one = Quantity::new(1).unwrap_or_else(|error| panic!("{error}"));
        let three = Quantity::new(3).unwrap_or_else(|error| panic!("{error}"));
        cart.set(id(0), one).unwrap_or_else(|error| panic!("{error}"));
        cart.set(id(0), three).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(cart.lines, vec![CartLine { product_id: id(0), quantity: three }]);
        for n in 1..MAX_CART_LINES {
            cart.set(id(n), one).unwrap_or_else(|error| panic!("{error}"));
        }
        assert_eq!(cart.set(id(MAX_CART_LINES), one), Err(CommerceError::CartFull));
        assert!(cart.set(id(7), three).is_ok(), "changing an existing line of a full cart is allowed");
        cart.remove(&id(0));
        cart.remove(&id(0));
        assert_eq!(cart.lines.len(), MAX_CART_LINES - 1);
    }

    #[test]
    fn totals_sum_lines_and_take_off_the_discount() {
        let two = Quantity::new(2).unwrap_or_else(|error| panic!("{error}"));
        let lines = vec![
            PricedLine::new(&product("a", 1999), two).unwrap_or_else(|error| panic!("{error}")),
            PricedLine::new(&product("b", 500), Quantity::new(1).unwrap_or_else(|error| panic!("{error}"))).unwrap_or_else(|error| panic!("{error}")),
        ];
        assert_eq!(lines[0].line_total, eur(3998));
        let code = DiscountCode::parse("x").unwrap_or_else(|error| panic!("{error}"));
        let totals = Totals::new(lines.clone(), Currency::EUR, Some((code.clone(), eur(450)))).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((totals.subtotal, totals.total), (eur(4498), eur(4048)));
        let capped = Totals::new(lines, Currency::EUR, Some((code, eur(10_000)))).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(capped.total, eur(0), "a discount never takes a total below zero");
        let empty = Totals::new(Vec::new(), Currency::EUR, None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(empty.total, eur(0));
    }

    #[test]
    fn a_discount_applies_only_inside_its_window_limit_and_minimum() {
        let now = Timestamp::from_secs(1_000);
        let mut rule = discount(DiscountKind::PercentOff(percent(10)));
        assert_eq!(rule.amount_for(eur(1995), now, 0), Ok(eur(200)));
        rule.starts_at = Some(Timestamp::from_secs(1_001));
        assert_eq!(rule.amount_for(eur(1995), now, 0), Err(DiscountRejection::NotStarted));
        rule.starts_at = Some(now);
        rule.ends_at = Some(now);
        assert_eq!(rule.amount_for(eur(1995), now, 0), Err(DiscountRejection::Expired), "the end is exclusive");
        rule.ends_at = None;
        rule.usage_limit = Some(3);
        assert_eq!(rule.amount_for(eur(1995), now, 2), Ok(eur(200)));
        assert_eq!(rule.amount_for(eur(1995), now, 3), Err(DiscountRejection::UsedUp));
        rule.min_subtotal = Some(eur(2000));
        assert_eq!(rule.amount_for(eur(1999), now, 0), Err(DiscountRejection::MinSubtotalNotMet));
        assert_eq!(rule.amount_for(eur(2000), now, 0), Ok(eur(200)));
        let fixed = discount(DiscountKind::AmountOff(eur(2500)));
        assert_eq!(fixed.amount_for(eur(1000), now, 0), Ok(eur(1000)), "never more than the subtotal");
    }

    #[test]
    fn a_discount_with_contradictory_fields_is_refused() {
        let mut rule = discount(DiscountKind::AmountOff(eur(0)));
        assert_eq!(rule.validate(), Err(invalid("amount_off", "more than zero")));
        rule.kind = DiscountKind::PercentOff(percent(5));
        rule.starts_at = Some(Timestamp::from_secs(10));
        rule.ends_at = Some(Timestamp::from_secs(10));
        assert!(matches!(rule.validate(), Err(CommerceError::Invalid { field: "ends_at", .. })));
        rule.ends_at = None;
        rule.usage_limit = Some(0);
        assert!(matches!(rule.validate(), Err(CommerceError::Invalid { field: "usage_limit", .. })));
    }

    #[test]
    fn orders_move_only_forward() {
        use OrderStatus::*;
        assert!(Reserved.may_become(Paid) && Reserved.may_become(Released) && Paid.may_become(Cancelled));
        for (from, to) in [(Paid, Reserved), (Released, Paid), (Cancelled, Paid), (Reserved, Cancelled), (Paid, Paid)] {
            assert!(!from.may_become(to), "{from:?} -> {to:?}");
        }
        assert!(Paid.is_visible() && Cancelled.is_visible() && !Reserved.is_visible() && !Released.is_visible());
    }
}
