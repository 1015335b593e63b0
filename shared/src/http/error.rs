//! `ApiError`: every failure an endpoint can answer, mapped once to a status and a stable machine `code`,
//! and written as an `application/problem+json` document (RFC 9457).
//!
//! A 5xx body never says anything specific; its cause chain is logged once, here, and nowhere else.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::auth::{AuthError, LoginError, RegisterError};
use crate::catalog::CatalogError;
use crate::commerce::{CartError, CheckoutError, DiscountError, OrderError};
use crate::domain::commerce::CommerceError;
use crate::ports::StoreError;
use crate::domain::account::AccountError;
use crate::domain::product::ProductError;
use crate::domain::search::SearchError;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is malformed (400 `invalid_parameter`).
    #[error("invalid parameter {param}: {detail}")]
    InvalidParameter {
        /// The parameter's name.
        param: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The cursor was not made by this API for this search, or was altered (400 `invalid_cursor`).
    #[error("invalid cursor")]
    InvalidCursor,
    /// The body is not JSON or not of the expected shape (400 `invalid_body`).
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// The body is not declared as JSON (415 `unsupported_media_type`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is over the size limit (413 `payload_too_large`).
    #[error("payload too large")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No such resource (404 `not_found`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The route exists but not for this method (405 `method_not_allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The resource changed since the version the client holds (412 `precondition_failed`).
    #[error("precondition failed")]
    PreconditionFailed,
    /// The request conflicts with the current state, such as a taken SKU (409 `conflict`).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A field of the body breaks a rule (422 `validation_failed`).
    #[error("validation failed on {field}: {detail}")]
    Validation {
        /// The field's name.
        field: String,
        /// The rule it breaks.
        detail: String,
    },
    /// No valid bearer token: missing, malformed, expired, revoked, or its account is closed
    /// (401 `unauthorized`, with `WWW-Authenticate: Bearer`). The detail never says which.
    #[error("unauthorized")]
    Unauthorized,
    /// A login's e-mail and password do not match an open account; the same answer for an unknown e-mail
    /// and a wrong password (401 `invalid_credentials`).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Signed in, but the role does not allow this (403 `forbidden`).
    #[error("forbidden")]
    Forbidden,
    /// A conditional write was sent without `If-Match` (428 `precondition_required`).
    #[error("precondition required")]
    PreconditionRequired,
    /// Too many attempts (429 `rate_limited`, with `Retry-After`).
    #[error("rate limited")]
    RateLimited {
        /// Seconds until an attempt may succeed.
        retry_after_secs: u64,
    },
    /// A product has fewer units in stock than asked (409 `insufficient_stock`, naming `product_id`).
    #[error("insufficient stock")]
    InsufficientStock {
        /// The product.
        product_id: String,
    },
    /// The cart holds the most lines it may (422 `cart_full`).
    #[error("cart full")]
    CartFull,
    /// The cart has no lines to check out (422 `cart_empty`).
    #[error("cart empty")]
    CartEmpty,
    /// A discount code does not apply (422 `discount_invalid`, with its `reason`).
    #[error("discount invalid: {reason}")]
    DiscountInvalid {
        /// Why: `unknown`, `not_started`, `expired`, `used_up` or `min_subtotal_not_met`.
        reason: &'static str,
    },
    /// The request needs an `Idempotency-Key` header (400 `idempotency_key_missing`).
    #[error("idempotency key missing")]
    IdempotencyKeyMissing,
    /// The `Idempotency-Key` header is malformed (400 `idempotency_key_invalid`).
    #[error("idempotency key invalid")]
    IdempotencyKeyInvalid,
    /// The key was used with another request body (422 `idempotency_key_reused`).
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// The first request with the key is still running (409 `idempotency_key_in_use`, with `Retry-After`).
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// The payment provider declined (402 `payment_declined`).
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// The payment provider is not answering or its breaker is open (503 `payment_unavailable`, with
    /// `Retry-After`).
    #[error("payment unavailable")]
    PaymentUnavailable {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// The checkout this key started was abandoned and released (409 `checkout_abandoned`).
    #[error("checkout abandoned")]
    CheckoutAbandoned,
    /// Concurrent requests on the same data kept winning (409 `contention`, with `Retry-After`); nothing changed.
    #[error("contention")]
    Contention,
    /// A dependency such as the store is not answering (503 `unavailable`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything the client cannot fix (500 `internal`).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A problem document (RFC 9457), the body of every 4xx and 5xx answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(title = "Problem")]
pub struct Problem<'a> {
    /// `urn:storefront:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// What went wrong, for people; never quotes a refused value or anything secret.
    detail: String,
    /// The stable machine code, such as `not_found` or `insufficient_stock`; each response of each operation
    /// names the codes it may carry.
    code: &'a str,
    /// The query or path parameter (`invalid_parameter`) or body field (`validation_failed`) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    /// The product short of stock (`insufficient_stock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<&'a str>,
    /// Why a discount code does not apply (`discount_invalid`): `unknown`, `not_started`, `expired`,
    /// `used_up` or `min_subtotal_not_met`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl ApiError {
    /// The status and stable machine code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidParameter { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::InvalidCursor => (StatusCode::BAD_REQUEST, "invalid_cursor"),
            ApiError::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::PreconditionRequired => (StatusCode::PRECONDITION_REQUIRED, "precondition_required"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::InsufficientStock { .. } => (StatusCode::CONFLICT, "insufficient_stock"),
            ApiError::CartFull => (StatusCode::UNPROCESSABLE_ENTITY, "cart_full"),
            ApiError::CartEmpty => (StatusCode::UNPROCESSABLE_ENTITY, "cart_empty"),
            ApiError::DiscountInvalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "discount_invalid"),
            ApiError::IdempotencyKeyMissing => (StatusCode::BAD_REQUEST, "idempotency_key_missing"),
            ApiError::IdempotencyKeyInvalid => (StatusCode::BAD_REQUEST, "idempotency_key_invalid"),
            ApiError::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            ApiError::IdempotencyKeyInUse => (StatusCode::CONFLICT, "idempotency_key_in_use"),
            ApiError::PaymentDeclined(_) => (StatusCode::PAYMENT_REQUIRED, "payment_declined"),
            ApiError::PaymentUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "payment_unavailable"),
            ApiError::CheckoutAbandoned => (StatusCode::CONFLICT, "checkout_abandoned"),
            ApiError::Contention => (StatusCode::CONFLICT, "contention"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InvalidParameter { param, detail } => format!("query parameter '{param}': {detail}"),
            ApiError::InvalidCursor => {
                "the cursor is not one this API issued for this search, or it was altered".to_owned()
            }
            ApiError::InvalidBody(detail) => detail.clone(),
            ApiError::UnsupportedMediaType => "send the body as application/json".to_owned(),
            ApiError::PayloadTooLarge { limit } => format!("the body is larger than {limit} bytes"),
            ApiError::NotFound(what) => format!("{what} was not found"),
            ApiError::MethodNotAllowed => "this route does not accept this method".to_owned(),
            ApiError::PreconditionFailed => "the resource has changed; fetch it again for its current ETag".to_owned(),
            ApiError::Conflict(detail) => detail.clone(),
            ApiError::Validation { field, detail } => format!("{field}: {detail}"),
            ApiError::Unauthorized => "sign in and send the access token as 'Authorization: Bearer <token>'".to_owned(),
            ApiError::InvalidCredentials => "invalid e-mail or password".to_owned(),
            ApiError::Forbidden => "your account's role does not allow this".to_owned(),
            ApiError::PreconditionRequired => {
                "send If-Match with the ETag of the version you mean to change".to_owned()
            }
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many attempts; try again in {retry_after_secs} seconds")
            }
            ApiError::InsufficientStock { .. } => "there are not enough units of the product in stock".to_owned(),
            ApiError::CartFull => format!("a cart holds at most {} lines", crate::domain::commerce::MAX_CART_LINES),
            ApiError::CartEmpty => "the cart is empty; add a product before checking out".to_owned(),
            ApiError::DiscountInvalid { reason } => format!("the discount code does not apply ({reason})"),
            ApiError::IdempotencyKeyMissing => "send an Idempotency-Key header with a key unique to this checkout".to_owned(),
            ApiError::IdempotencyKeyInvalid => crate::idempotency::InvalidKey.to_string(),
            ApiError::IdempotencyKeyReused => "this Idempotency-Key was used with another request body".to_owned(),
            ApiError::IdempotencyKeyInUse => "a request with this Idempotency-Key is still running; retry shortly".to_owned(),
            ApiError::PaymentDeclined(reason) => format!("the payment was declined: {reason}"),
            ApiError::PaymentUnavailable { .. } => {
                "the payment provider is not answering; retry with the same Idempotency-Key later".to_owned()
            }
            ApiError::CheckoutAbandoned => {
                "the checkout started with this Idempotency-Key was abandoned; check out again with a new key".to_owned()
            }
            ApiError::Contention => "too many concurrent changes to the same data; retry shortly".to_owned(),
            ApiError::Unavailable(what) => format!("{what} is not answering; try again later"),
            ApiError::Internal(_) => "the server failed to handle the request; it has been logged".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(error) = &self {
            tracing::error!(error = ?error, code, "request failed");
        }
        let param = match &self {
            ApiError::InvalidParameter { param, .. } => Some(param.as_str()),
            ApiError::Validation { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let problem = Problem {
            kind: format!("urn:storefront:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            code,
            param,
            product_id: match &self {
                ApiError::InsufficientStock { product_id } => Some(product_id.as_str()),
                _ => None,
            },
            reason: match &self {
                ApiError::DiscountInvalid { reason } => Some(reason),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{\"code\":\"internal\"}".to_vec());
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response.extensions_mut().insert(crate::http::context::ProblemCode(code));
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } | ApiError::PaymentUnavailable { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
            }
            ApiError::IdempotencyKeyInUse | ApiError::Contention => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1_u64));
            }
            _ => {}
        }
        response
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid { field, reason } => {
                ApiError::Validation { field: field.to_owned(), detail: reason.to_owned() }
            }
        }
    }
}

impl From<ProductError> for ApiError {
    fn from(error: ProductError) -> Self {
        match error {
            ProductError::InvalidId => ApiError::Validation { field: "id".to_owned(), detail: "not a product id".to_owned() },
            ProductError::Invalid { field, reason } => ApiError::Validation { field, detail: reason },
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::EmailTaken => ApiError::Conflict("an account with this e-mail address exists".to_owned()),
            RegisterError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => ApiError::InvalidCredentials,
            LoginError::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            LoginError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated => ApiError::Unauthorized,
            AuthError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::Invalid { param, reason } => ApiError::InvalidParameter { param, detail: reason },
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::NotFound => ApiError::NotFound("the product".to_owned()),
            CatalogError::InvalidCursor => ApiError::InvalidCursor,
            CatalogError::VersionMismatch { .. } => ApiError::PreconditionFailed,
            CatalogError::SkuTaken => ApiError::Conflict("another product has this SKU".to_owned()),
            // A write that kept losing the search index head to concurrent writes may simply be retried.
            CatalogError::Internal(error) => internal(error),
        }
    }
}

/// The answer to a request no route matched: a 404 problem document.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("the route".to_owned())
}

/// The answer to a request whose route exists for other methods: a 405 problem document.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// An internal error, unless the store gave up on contention (which the client may simply retry).
fn internal(error: anyhow::Error) -> ApiError {
    if matches!(error.downcast_ref::<StoreError>(), Some(StoreError::Contention)) { ApiError::Contention } else { ApiError::Internal(error) }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => ApiError::InvalidCursor,
            StoreError::Contention => ApiError::Contention,
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<CommerceError> for ApiError {
    fn from(error: CommerceError) -> Self {
        match error {
            CommerceError::Invalid { field, reason } => ApiError::Validation { field: field.to_owned(), detail: reason.to_owned() },
            CommerceError::CartFull => ApiError::CartFull,
            CommerceError::Money(error) => ApiError::Validation { field: "amount".to_owned(), detail: error.to_string() },
        }
    }
}

impl From<CartError> for ApiError {
    fn from(error: CartError) -> Self {
        match error {
            CartError::ProductNotFound => ApiError::NotFound("the product".to_owned()),
            CartError::InsufficientStock { product_id } => ApiError::InsufficientStock { product_id: product_id.to_string() },
            CartError::Rule(rule) => rule.into(),
            CartError::DiscountInvalid(reason) => ApiError::DiscountInvalid { reason: reason.as_str() },
            CartError::Internal(error) => internal(error),
        }
    }
}

impl From<DiscountError> for ApiError {
    fn from(error: DiscountError) -> Self {
        match error {
            DiscountError::Rule(rule) => rule.into(),
            DiscountError::CodeTaken => ApiError::Conflict("a discount with this code exists".to_owned()),
            DiscountError::Internal(error) => internal(error),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::CartEmpty => ApiError::CartEmpty,
            CheckoutError::InsufficientStock { product_id } => ApiError::InsufficientStock { product_id: product_id.to_string() },
            CheckoutError::DiscountInvalid(reason) => ApiError::DiscountInvalid { reason: reason.as_str() },
            CheckoutError::Declined { reason } => ApiError::PaymentDeclined(reason),
            CheckoutError::PaymentUnavailable { retry_after_secs } => ApiError::PaymentUnavailable { retry_after_secs },
            CheckoutError::Abandoned => ApiError::CheckoutAbandoned,
            CheckoutError::Internal(error) => internal(error),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::NotFound => ApiError::NotFound("the order".to_owned()),
            OrderError::PaymentUnavailable { retry_after_secs } => ApiError::PaymentUnavailable { retry_after_secs },
            OrderError::Internal(error) => internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_write_that_lost_to_contention_is_a_409_not_a_500() {
        let lost = ApiError::from(CatalogError::from(StoreError::Contention));
        assert!(matches!(lost, ApiError::Contention), "{lost:?}");
        let broken = ApiError::from(CatalogError::from(StoreError::Internal(anyhow::anyhow!("the disk is full"))));
        assert!(matches!(broken, ApiError::Internal(_)), "{broken:?}");
    }
}
