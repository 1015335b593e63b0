//! Wire views shared by several functions. Domain types are never the wire format: these are.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::domain::Product;
use crate::ports::Timestamp;

/// An amount of money on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyView {
    /// Integer minor units (cents for EUR).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A product on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    /// Its id.
    pub id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its category slug.
    pub category: String,
    /// Its unit price.
    pub price: MoneyView,
    /// Units in stock.
    pub stock: u32,
    /// Its version (the `ETag` is `"<version>"`).
    pub version: u64,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: String,
}

/// RFC 3339 text of a timestamp, in UTC with milliseconds.
pub fn rfc3339(timestamp: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp.as_millis()) * 1_000_000)
        .ok()
        .and_then(|moment| moment.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id.to_string(),
            sku: product.sku.as_ref().to_owned(),
            name: product.name.clone(),
            description: product.description.clone(),
            category: product.category.to_string(),
            price: MoneyView { amount: product.price.amount, currency: product.price.currency.to_string() },
            stock: product.stock,
            version: product.version,
            created_at: rfc3339(product.created_at),
            updated_at: rfc3339(product.updated_at),
        }
    }
}

/// The strong entity tag of a version: `"<version>"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_rfc3339_utc() {
        assert_eq!(rfc3339(Timestamp::from_millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Timestamp::from_millis(1_763_700_000_123)), "2025-11-21T04:40:00.123Z");
    }
}
