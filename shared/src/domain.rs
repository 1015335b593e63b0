//! Entities, validated newtypes and the rules the shop owns. Pure: no IO, no clock, no randomness.

/// The conversions every validated text newtype shares: parsed from a `String` (for serde) through its `parse`,
/// turned back into one, and read as `&str`.
macro_rules! text_newtype {
    ($name:ident, $error:ty) => {
        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use text_newtype;

pub mod account;
pub mod commerce;
pub mod money;
pub mod product;
pub mod sales;
pub mod search;

pub use account::{AccountError, Email, Password, PasswordHash, Role, SessionId, User, UserId};
pub use commerce::{
    AppliedDiscount, Cart, CartLine, CommerceError, Discount, DiscountCode, DiscountKind, DiscountRejection, OrderStatus, Percent,
    PricedLine, Quantity, Totals,
};
pub use money::{Currency, Money, MoneyError};
pub use product::{Category, NewProduct, Product, ProductError, ProductId, Sku};
pub use search::{SearchError, SearchParams, SearchRequest, Sort};
