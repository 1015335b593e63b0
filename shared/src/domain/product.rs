//! Products: validated identifiers and fields, and the rules for creating one.


use serde::{Deserialize, Serialize};

use crate::domain::money::Money;
use crate::ports::Timestamp;

/// The longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
/// The longest SKU or id.
pub const MAX_ID_CHARS: usize = 64;
/// The longest category slug.
pub const MAX_CATEGORY_CHARS: usize = 40;

fn is_id_text(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID_CHARS
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// A product's id: 1 to 64 characters of `[0-9A-Za-z_-]`, given by the id generator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    /// Parses an id.
    ///
    /// # Errors
    /// [`ProductError::InvalidId`] when the text is not an id.
    pub fn parse(text: &str) -> Result<Self, ProductError> {
        if is_id_text(text) { Ok(Self(text.to_owned())) } else { Err(ProductError::InvalidId) }
    }
}

/// A stock-keeping unit: 1 to 64 characters of `[0-9A-Za-z_-]`, stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU, upper-casing it.
    ///
    /// # Errors
    /// [`ProductError::Invalid`] naming `sku`.
    pub fn parse(text: &str) -> Result<Self, ProductError> {
        let text = text.trim();
        if is_id_text(text) {
            Ok(Self(text.to_ascii_uppercase()))
        } else {
            Err(ProductError::invalid("sku", "1 to 64 characters of letters, digits, '-' and '_'"))
        }
    }
}

/// A category slug: lower-case ASCII letters, digits and single hyphens, such as `home-office`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Parses a category, lower-casing it.
    ///
    /// # Errors
    /// [`ProductError::Invalid`] naming `category`.
    pub fn parse(text: &str) -> Result<Self, ProductError> {
        let slug = text.trim().to_ascii_lowercase();
        let valid = !slug.is_empty()
            && slug.len() <= MAX_CATEGORY_CHARS
            && slug.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-')
            && !slug.contains("--");
        if valid {
            Ok(Self(slug))
        } else {
            Err(ProductError::invalid("category", "1 to 40 lower-case letters, digits and single hyphens"))
        }
    }
}

crate::domain::text_newtype!(ProductId, ProductError);
crate::domain::text_newtype!(Sku, ProductError);
crate::domain::text_newtype!(Category, ProductError);

/// A product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Its stock-keeping unit.
    pub sku: Sku,
    /// Its display name.
    pub name: String,
    /// Its description (plain text).
    pub description: String,
    /// Its category.
    pub category: Category,
    /// Its unit price.
    pub price: Money,
    /// Units in stock, never below zero.
    pub stock: u32,
    /// The stock at or below which the admins are alerted, once each time the stock falls to it.
    #[serde(default = "default_low_stock_threshold")]
    pub low_stock_threshold: u32,
    /// Incremented on every write; the `ETag` is made from it.
    pub version: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

/// The validated fields of a product to create or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Its stock-keeping unit.
    pub sku: Sku,
    /// Its display name (trimmed, 1 to 200 characters).
    pub name: String,
    /// Its description (trimmed, at most 5000 characters).
    pub description: String,
    /// Its category.
    pub category: Category,
    /// Its unit price (not negative).
    pub price: Money,
    /// Units in stock.
    pub stock: u32,
    /// The low-stock alert's threshold ([`DEFAULT_LOW_STOCK_THRESHOLD`] unless set).
    pub low_stock_threshold: u32,
}

/// The low-stock threshold of a product that names none: a few days of sales for a small shop.
pub const DEFAULT_LOW_STOCK_THRESHOLD: u32 = 5;

const fn default_low_stock_threshold() -> u32 {
    DEFAULT_LOW_STOCK_THRESHOLD
}

impl NewProduct {
    /// Validates the fields of a product.
    ///
    /// # Errors
    /// [`ProductError::Invalid`] naming the first field that breaks a rule.
    pub fn new(
        sku: &str,
        name: &str,
        description: &str,
        category: &str,
        price: Money,
        stock: u32,
    ) -> Result<Self, ProductError> {
        let sku = Sku::parse(sku)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(ProductError::invalid("name", "1 to 200 characters, no control characters"));
        }
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(ProductError::invalid("description", "at most 5000 characters"));
        }
        let category = Category::parse(category)?;
        if price.amount < 0 {
            return Err(ProductError::invalid("price", "not negative"));
        }
        Ok(Self {
            sku,
            name: name.to_owned(),
            description: description.to_owned(),
            category,
            price,
            stock,
            low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
        })
    }

    /// These fields with a low-stock threshold.
    #[must_use]
    pub fn with_low_stock_threshold(mut self, threshold: u32) -> Self {
        self.low_stock_threshold = threshold;
        self
    }

    /// The product this becomes when created with `id` at `now`.
    pub fn into_product(self, id: ProductId, now: Timestamp) -> Product {
        Product {
            id,
            sku: self.sku,
            name: self.name,
            description: self.description,
            category: self.category,
            price: self.price,
            stock: self.stock,
            low_stock_threshold: self.low_stock_threshold,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What is wrong with a product or a product id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// Not a product id.
    #[error("not a product id")]
    InvalidId,
    /// A field breaks a rule.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's name as the API spells it.
        field: String,
        /// The rule it breaks.
        reason: String,
    },
}

impl ProductError {
    fn invalid(field: &str, reason: &str) -> Self {
        Self::Invalid { field: field.to_owned(), reason: reason.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;

    #[test]
    fn product_ids_are_short_url_safe_words() {
        assert!(ProductId::parse("01J9Z-abc_d").is_ok());
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert_eq!(ProductId::parse(bad), Err(ProductError::InvalidId), "{bad}");
        }
    }

    #[test]
    fn categories_are_normalised_slugs() {
        assert_eq!(Category::parse(" Home-Office ").map(String::from), Ok("home-office".to_owned()));
        for bad in ["", "-a", "a-", "a--b", "a b", "a_b"] {
            assert!(Category::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_product_names_the_field_it_refuses() {
        let price = Money::new(100, Currency::EUR);
        let field_of = |result: Result<NewProduct, ProductError>| match result {
            Err(ProductError::Invalid { field, .. }) => field,
            other => format!("{other:?}"),
        };
        assert_eq!(field_of(NewProduct::new("", "n", "", "c", price, 1)), "sku");
        assert_eq!(field_of(NewProduct::new("s", "  ", "", "c", price, 1)), "name");
        assert_eq!(field_of(NewProduct::new("s", "n", &"d".repeat(5001), "c", price, 1)), "description");
        assert_eq!(field_of(NewProduct::new("s", "n", "", "C D", price, 1)), "category");
        assert_eq!(field_of(NewProduct::new("s", "n", "", "c", Money::new(-1, Currency::EUR), 1)), "price");
        let product = NewProduct::new(" ab-1 ", " Lamp ", "", "Lighting", price, 3);
        assert_eq!(product.map(|p| (String::from(p.sku), p.name)), Ok(("AB-1".to_owned(), "Lamp".to_owned())));
    }
}
