//! The privacy endpoints' shapes: a data export (`GET /me/export`) and the answer while it is being built.

use serde::{Deserialize, Serialize};

use crate::http::views::commerce::OrderView;
use crate::http::views::AccountView;

/// `GET /me/export` while the privacy job builds the export (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportPendingView {
    /// Always `pending`.
    pub status: String,
    /// When the export was asked for (RFC 3339).
    pub requested_at: String,
}

/// A cart line as exported: the product and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedCartLine {
    /// The product.
    pub product_id: String,
    /// How many units.
    pub quantity: u32,
}

/// The cart as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedCart {
    /// Its lines.
    pub items: Vec<ExportedCartLine>,
    /// The discount code entered, if any.
    pub discount_code: Option<String>,
}

/// The privacy requests on the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedRequests {
    /// When an export was last asked for and not yet delivered.
    pub export_requested_at: Option<String>,
    /// When erasure was asked for.
    pub erasure_requested_at: Option<String>,
}

/// Everything the shop holds about a user (`GET /me/export` once ready, 200), kept seven days.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    /// When the document was made (RFC 3339).
    pub exported_at: String,
    /// The account.
    pub account: AccountView,
    /// Every order, newest first.
    pub orders: Vec<OrderView>,
    /// The cart.
    pub cart: ExportedCart,
    /// The privacy requests.
    pub requests: ExportedRequests,
}
