//! Discount codes, for admins: `POST /discounts` creates one, `GET /discounts` lists them with how many orders
//! used each.
//!
//! `POST /discounts` takes `{"code", "percent_off": 1..=100}` or `{"code", "amount_off": money}` (exactly one),
//! and optionally `"min_subtotal": money`, `"starts_at"` and `"ends_at"` (RFC 3339; the end is exclusive) and
//! `"usage_limit": n` (at least 1). Codes are 1 to 32 letters, digits, `-` and `_`, case-insensitive (stored
//! upper-case). Responses:
//! - 201 `DiscountView` with `"used": 0` and `Location: /discounts`;
//! - 401 `unauthorized`, 403 `forbidden` for a customer;
//! - 400, 413, 415 for a malformed request; 422 `validation_failed` naming the field;
//! - 409 `conflict` when the code exists (in any case).
//!
//! `GET /discounts?limit=&cursor=` answers 200 `{"items": [DiscountView], "next_cursor"}` in code order.

use shared::http::error::Problem;
use shared::http::openapi as doc;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use shared::domain::{Discount, DiscountCode, DiscountKind, Percent};
use shared::http::context::observed;
use shared::http::extract::Params;
use shared::http::views::commerce::{DiscountView, PageView};
use shared::http::views::{MoneyBody, parse_rfc3339};
use shared::http::{Admin, ApiError, AppState};
use shared::ports::ItemStore;

/// The function's name in logs.
pub const FUNCTION: &str = "discounts";
/// The scope the list's cursors are bound to.
const LIST_SCOPE: &str = "discounts";

/// A discount as an admin sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountBody {
    /// The code.
    pub code: String,
    /// A percentage to take off.
    #[serde(default)]
    pub percent_off: Option<i64>,
    /// An amount to take off.
    #[serde(default)]
    pub amount_off: Option<MoneyBody>,
    /// The smallest subtotal it applies to.
    #[serde(default)]
    pub min_subtotal: Option<MoneyBody>,
    /// From when it applies.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Until when it applies (exclusive).
    #[serde(default)]
    pub ends_at: Option<String>,
    /// How many orders may use it.
    #[serde(default)]
    pub usage_limit: Option<i64>,
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::Validation { field: field.to_owned(), detail: detail.to_owned() }
}

impl DiscountBody {
    fn into_discount(self, now: shared::ports::Timestamp) -> Result<Discount, ApiError> {
        let code = DiscountCode::parse(&self.code)?;
        let kind = match (self.percent_off, self.amount_off) {
            (Some(percent), None) => {
                let percent = u8::try_from(percent).map_err(|_| invalid("percent_off", "1 to 100"))?;
                DiscountKind::PercentOff(Percent::new(percent)?)
            }
            (None, Some(amount)) => DiscountKind::AmountOff(amount.into_money("amount_off")?),
            _ => return Err(invalid("percent_off", "give exactly one of percent_off and amount_off")),
        };
        let usage_limit = self
            .usage_limit
            .map(|limit| u32::try_from(limit).ok().filter(|limit| *limit >= 1).ok_or_else(|| invalid("usage_limit", "a whole number from 1")))
            .transpose()?;
        Ok(Discount {
            code,
            kind,
            min_subtotal: self.min_subtotal.map(|min| min.into_money("min_subtotal")).transpose()?,
            starts_at: self.starts_at.map(|text| parse_rfc3339("starts_at", &text)).transpose()?,
            ends_at: self.ends_at.map(|text| parse_rfc3339("ends_at", &text)).transpose()?,
            usage_limit,
            created_at: now,
        })
    }
}

#[utoipa::path(
    post,
    path = "/discounts",
    operation_id = "create_discount",
    tag = "discounts",
    summary = "Create a discount code (admins)",
    request_body(content = DiscountBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The discount", body = DiscountView, headers(("Location" = String, description = "`/discounts`"))),
        (status = 400, description = "`invalid_body`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, description = "`conflict`: the code exists (in any case)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, naming the field in `param`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
async fn create<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(admin): Admin,
    shared::http::Json(body): shared::http::Json<DiscountBody>,
) -> Result<Response, ApiError> {
    let discount = body.into_discount(state.clock.now())?;
    let created = state.commerce.create_discount(discount).await?;
    tracing::info!(code = %created.discount.code, admin = %admin.user.id, "discount created");
    let mut response = (StatusCode::CREATED, Json(DiscountView::from(&created))).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/discounts"));
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/discounts",
    operation_id = "list_discounts",
    tag = "discounts",
    summary = "Every discount code with its use count, in code order (admins)",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1 to 100 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`")
    ),
    responses(
        (status = 200, description = "One page", body = PageView<DiscountView>),
        (status = 400, description = "`invalid_parameter` (naming `param`) or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden)
    ),
    security(("bearer" = []))
)]
async fn list<S: ItemStore + Clone>(
    State(state): State<AppState<S>>,
    Admin(_): Admin,
    mut params: Params,
) -> Result<Json<PageView<DiscountView>>, ApiError> {
    let limit = params.number::<usize>("limit")?.unwrap_or(100);
    let cursor = params.text("cursor")?;
    params.finish()?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::InvalidParameter { param: "limit".to_owned(), detail: "1 to 100".to_owned() });
    }
    let after = cursor.map(|text| state.keys.cursors.open(LIST_SCOPE, &text)).transpose()?;
    let (discounts, next) = state.commerce.discounts(limit, after).await?;
    Ok(Json(PageView {
        items: discounts.iter().map(DiscountView::from).collect(),
        next_cursor: next.map(|next| state.keys.cursors.seal(LIST_SCOPE, &next)),
    }))
}

/// The function's routes.
pub fn router<S: ItemStore + Clone>(state: AppState<S>) -> Router {
    let clock = state.clock.clone();
    let ids = state.ids.clone();
    let routes = Router::new().route("/discounts", get(list::<S>).post(create::<S>)).with_state(state);
    observed(routes, FUNCTION, clock, ids)
}

/// The function's part of the OpenAPI document: its operations and the schemas they use.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list))]
struct Api;

/// The function's operations, for the `openapi` function's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <Api as utoipa::OpenApi>::openapi()
}
