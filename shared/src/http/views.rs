//! Wire types shared by several functions. Domain types are never the wire format: these are.
//!
//! Tokens leave the server only inside [`TokensView`], whose secret fields are serialised by
//! [`serialize_secret`] and stay out of `Debug` output.

pub mod commerce;
pub mod privacy;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;

use crate::auth::SignedIn;
use crate::domain::account::User;
use crate::domain::{Currency, Money, NewProduct, Product};
use crate::http::error::ApiError;
use crate::ports::Timestamp;

/// An amount of money on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MoneyView {
    /// Integer minor units (cents for EUR).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A product on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// The stock at or below which the admins are alerted.
    pub low_stock_threshold: u32,
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

/// Reads an RFC 3339 time (`2026-12-02T10:00:00Z`, any offset).
///
/// # Errors
/// [`ApiError::Validation`] naming `field` when the text is not one.
pub fn parse_rfc3339(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    let refused = || ApiError::Validation { field: field.to_owned(), detail: "an RFC 3339 time such as 2026-12-02T10:00:00Z".to_owned() };
    let moment = time::OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| refused())?;
    let millis = i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).map_err(|_| refused())?;
    Ok(Timestamp::from_millis(millis))
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
            low_stock_threshold: product.low_stock_threshold,
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

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// These versions (from strong tags); weak or foreign tags never match (RFC 9110 §13.1.1).
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Reads every `If-Match` header; `None` when there is none.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(http::header::IF_MATCH).iter().peekable();
        values.peek()?;
        let mut versions = Vec::new();
        for value in values {
            // A header that is not text matches nothing, which answers 412 rather than acting unconditionally.
            let Ok(text) = value.to_str() else { continue };
            for tag in text.split(',').map(str::trim) {
                if tag == "*" {
                    return Some(IfMatch::Any);
                }
                let version = tag.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).and_then(|n| n.parse::<u64>().ok());
                versions.extend(version);
            }
        }
        Some(IfMatch::Versions(versions))
    }

    /// Whether `current` satisfies the condition.
    pub fn matches(&self, current: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&current),
        }
    }
}

/// An amount of money as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    /// Integer minor units.
    pub amount: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

/// A product as an admin sends it to `POST /products` or `PUT /products/{id}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its description (may be left out).
    #[serde(default)]
    pub description: String,
    /// Its category slug.
    pub category: String,
    /// Its unit price.
    pub price: MoneyBody,
    /// Units in stock.
    pub stock: u32,
    /// The stock at or below which the admins are alerted (default 5).
    #[serde(default)]
    pub low_stock_threshold: Option<u32>,
}

impl ProductBody {
    /// The validated fields.
    ///
    /// # Errors
    /// [`ApiError::Validation`] naming the first field that breaks a rule (`price.currency` for the currency).
    pub fn into_new_product(self) -> Result<NewProduct, ApiError> {
        let currency = Currency::parse(&self.price.currency).map_err(|_| ApiError::Validation {
            field: "price.currency".to_owned(),
            detail: "an ISO 4217 code of three upper-case letters".to_owned(),
        })?;
        let price = Money::new(self.price.amount, currency);
        let fields = NewProduct::new(&self.sku, &self.name, &self.description, &self.category, price, self.stock)?;
        Ok(match self.low_stock_threshold {
            Some(threshold) => fields.with_low_stock_threshold(threshold),
            None => fields,
        })
    }
}

/// An account on the wire (`POST /auth/register`, `GET /me`). The password hash is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// Its id.
    pub id: String,
    /// Its normalised e-mail address.
    pub email: String,
    /// `customer` or `admin`.
    pub role: String,
    /// When it registered (RFC 3339).
    pub created_at: String,
    /// When the user asked for an export of their data, if they did.
    pub export_requested_at: Option<String>,
    /// When the user asked for their data to be erased, if they did.
    pub erasure_requested_at: Option<String>,
    /// When the account was closed, if it was.
    pub deleted_at: Option<String>,
}

impl From<&User> for AccountView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str().to_owned(),
            created_at: rfc3339(user.created_at),
            export_requested_at: user.export_requested_at.map(rfc3339),
            erasure_requested_at: user.erasure_requested_at.map(rfc3339),
            deleted_at: user.deleted_at.map(rfc3339),
        }
    }
}

/// Serialises a secret as its plain text: for the one place a token is handed to its owner.
///
/// # Errors
/// As the serializer's.
pub fn serialize_secret<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// The tokens of a sign-in or a refresh (`POST /auth/login`, `POST /auth/refresh`), in the shape of an
/// OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokensView {
    /// The access token, for `Authorization: Bearer`.
    #[serde(serialize_with = "serialize_secret")]
    #[schema(value_type = String)]
    pub access_token: SecretString,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, for `POST /auth/refresh`; it works once.
    #[serde(serialize_with = "serialize_secret")]
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The signed-in account.
    pub account: AccountView,
}

impl std::fmt::Debug for TokensView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokensView").field("account", &self.account).finish_non_exhaustive()
    }
}

impl TokensView {
    /// The view of `signed_in`, with lifetimes counted from `now`.
    pub fn new(signed_in: &SignedIn, now: Timestamp) -> Self {
        let seconds_until = |at: Timestamp| (at.as_millis().saturating_sub(now.as_millis()) / 1000).max(0);
        Self {
            access_token: signed_in.access.token.clone(),
            token_type: "Bearer",
            expires_in: seconds_until(signed_in.access.expires_at),
            refresh_token: SecretString::from(signed_in.refresh.refresh_token.expose_secret().to_owned()),
            refresh_expires_in: seconds_until(signed_in.refresh.expires_at),
            account: AccountView::from(&signed_in.user),
        }
    }

    /// The 200 response carrying the tokens of `signed_in`, marked `Cache-Control: no-store` (RFC 6749 §5.1).
    pub fn response(signed_in: &SignedIn, now: Timestamp) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        let mut response = axum::Json(Self::new(signed_in, now)).into_response();
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        response
    }
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
