//! `ApiError`: every failure an endpoint can answer, mapped once to a status and a stable machine `code`,
//! and written as an `application/problem+json` document (RFC 9457).
//!
//! A 5xx body never says anything specific; its cause chain is logged once, here, and nowhere else.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::auth::{AuthError, LoginError, RegisterError};
use crate::catalog::CatalogError;
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
    /// A dependency such as the store is not answering (503 `unavailable`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything the client cannot fix (500 `internal`).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
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
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{\"code\":\"internal\"}".to_vec());
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            ApiError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
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
            CatalogError::Internal(error) => ApiError::Internal(error),
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
