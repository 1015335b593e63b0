//! Reports: `GET /reports/sales?date=YYYY-MM-DD` (admins), the day's sales report.
//!
//! A day the daily sales-report job has closed answers its closed report (`"status": "closed"`, never
//! changing); any other day up to today answers the live counters (`"status": "live"`), which move as the
//! order-events job handles each sale and cancellation. Days are UTC; `date` defaults to today.
//!
//! Responses:
//! - 200 `{"date", "status": "live" | "closed", "closed_at": string | null, "totals": [{"currency", "orders",
//!   "units", "revenue", "discounts", "cancellations", "refunds", "net"}], "top_products": [{"product_id",
//!   "sku", "name", "units", "revenue"}]}` (money as `{"amount", "currency"}`);
//! - 400 `invalid_parameter` for a `date` that is not `YYYY-MM-DD`, or is after today;
//! - 401 `unauthorized` without a valid bearer token; 403 `forbidden` for a customer.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::domain::sales::{Day, ReportStatus, SalesReport};
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::MoneyView;
use shared::http::views::rfc3339;
use shared::http::{Admin, ApiError, AppState};
use shared::ports::ItemStore;
use shared::sales::Sales;

/// The function's name in logs.
pub const FUNCTION: &str = "reports";

/// One currency's figures on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotalsView {
    /// The currency.
    pub currency: String,
    /// Orders paid.
    pub orders: i64,
    /// Units sold.
    pub units: i64,
    /// Money taken, after discounts.
    pub revenue: MoneyView,
    /// Money taken off by discount codes.
    pub discounts: MoneyView,
    /// Orders cancelled.
    pub cancellations: i64,
    /// Money refunded.
    pub refunds: MoneyView,
    /// Revenue less refunds.
    pub net: MoneyView,
}

/// One product's figures on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductSalesView {
    /// The product.
    pub product_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Units sold, net of cancellations.
    pub units: i64,
    /// Line revenue, net of cancellations.
    pub revenue: MoneyView,
}

/// A sales report on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// `live` or `closed`.
    pub status: &'static str,
    /// When it was closed (RFC 3339), for a closed report.
    pub closed_at: Option<String>,
    /// Figures per currency.
    pub totals: Vec<TotalsView>,
    /// The best sellers, at most ten.
    pub top_products: Vec<ProductSalesView>,
}

impl From<SalesReport> for ReportView {
    fn from(report: SalesReport) -> Self {
        Self {
            date: report.date.to_string(),
            status: match report.status {
                ReportStatus::Live => "live",
                ReportStatus::Closed => "closed",
            },
            closed_at: report.closed_at.map(rfc3339),
            totals: report
                .totals
                .into_iter()
                .map(|totals| TotalsView {
                    currency: totals.currency.to_string(),
                    orders: totals.orders,
                    units: totals.units,
                    revenue: totals.revenue.into(),
                    discounts: totals.discounts.into(),
                    cancellations: totals.cancellations,
                    refunds: totals.refunds.into(),
                    net: totals.net.into(),
                })
                .collect(),
            top_products: report
                .top_products
                .into_iter()
                .map(|product| ProductSalesView {
                    product_id: product.product_id.to_string(),
                    sku: product.sku,
                    name: product.name,
                    units: product.units,
                    revenue: product.revenue.into(),
                })
                .collect(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/reports/sales",
    operation_id = "sales_report",
    tag = "reports",
    summary = "A day's sales report (admins): closed, or the live counters",
    params(
        ("date" = Option<String>, Query, format = Date, description = "The UTC day, `YYYY-MM-DD` (default today)")
    ),
    responses(
        (status = 200, description = "The report", body = ReportView),
        (status = 400, description = "`invalid_parameter`: `date` is not `YYYY-MM-DD`, or is after today", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden)
    ),
    security(("bearer" = []))
)]
async fn sales<S: ItemStore + Clone>(State(state): State<AppState<S>>, _admin: Admin, mut params: Params) -> Result<Json<ReportView>, ApiError> {
    let date = params.text("date")?;
    params.finish()?;
    let today = Day::of(state.clock.now());
    let day = match date {
        Some(text) => Day::parse(&text).map_err(|error| ApiError::InvalidParameter { param: "date".to_owned(), detail: error.to_string() })?,
        None => today,
    };
    if day > today {
        return Err(ApiError::InvalidParameter { param: "date".to_owned(), detail: "a day that has not begun has no sales".to_owned() });
    }
    let report = Sales::new(state.store.clone()).report(day).await.map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("read a sales report")))?;
    Ok(Json(report.into()))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/reports/sales", get(sales::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(sales))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
