//! What every function's part of the OpenAPI document shares: the bearer security scheme, the problem
//! responses that mean the same on every operation, and the assembly of the parts into one document.
//!
//! Each function describes its own operations beside its handlers (`#[utoipa::path]` on each handler, and a
//! `pub fn openapi()` listing them); the `openapi` function assembles the parts with [`assemble`]. The wire
//! types describe themselves with `utoipa::ToSchema`, so a field added to a view is in the document at once.
//! Nothing here runs while a request is served, except in the `openapi` function itself.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, LicenseBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, RefOr,
    Response, Type,
};
use utoipa::{PartialSchema as _, ToSchema as _};

use crate::http::error::{PROBLEM_JSON, Problem};

/// The name of the security scheme the operations that need a signed-in user list: an access token from
/// `POST /auth/login`, sent as `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";

/// A problem-document response with its description, and optionally one header.
fn problem(description: &str, header: Option<(&str, &str)>) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name(Problem::name()))).build();
    let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, content);
    if let Some((name, about)) = header {
        let schema = ObjectBuilder::new().schema_type(Type::String).build();
        response = response.header(name, HeaderBuilder::new().schema(Some(schema)).description(Some(about)).build());
    }
    RefOr::T(response.build())
}

/// 401 `unauthorized`: no valid bearer token.
pub struct Unauthorized;

impl<'r> utoipa::ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "Unauthorized",
            problem(
                "`unauthorized`: no valid bearer token (missing, malformed, expired, revoked, or its account closed)",
                Some(("WWW-Authenticate", "`Bearer`")),
            ),
        )
    }
}

/// 403 `forbidden`: signed in as a customer where an admin is needed.
pub struct Forbidden;

impl<'r> utoipa::ToResponse<'r> for Forbidden {
    fn response() -> (&'r str, RefOr<Response>) {
        ("Forbidden", problem("`forbidden`: the account's role does not allow this (an admin is needed)", None))
    }
}

/// 413 `payload_too_large`: the body is over the limit.
pub struct PayloadTooLarge;

impl<'r> utoipa::ToResponse<'r> for PayloadTooLarge {
    fn response() -> (&'r str, RefOr<Response>) {
        ("PayloadTooLarge", problem("`payload_too_large`: the body is over 64 KiB", None))
    }
}

/// 415 `unsupported_media_type`: the body is not declared as JSON.
pub struct UnsupportedMediaType;

impl<'r> utoipa::ToResponse<'r> for UnsupportedMediaType {
    fn response() -> (&'r str, RefOr<Response>) {
        ("UnsupportedMediaType", problem("`unsupported_media_type`: send the body as `application/json`", None))
    }
}

/// 429 `rate_limited`, with `Retry-After`.
pub struct RateLimited;

impl<'r> utoipa::ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "RateLimited",
            problem("`rate_limited`: too many attempts", Some(("Retry-After", "Seconds until an attempt may succeed"))),
        )
    }
}

/// The API's title in the document.
pub const TITLE: &str = "Storefront";

/// One document from the functions' parts: the API's info, every part's paths and schemas, the bearer scheme.
/// Parts must not describe the same operation twice (the `openapi` function's tests check the result against
/// the mounted routes).
pub fn assemble(version: &str, parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let info = InfoBuilder::new()
        .title(TITLE)
        .version(version)
        .description(Some(
            "The shop's HTTP API: catalog, accounts, cart, discounts, checkout, orders and reports. Errors are \
             `application/problem+json` documents (RFC 9457) whose `code` is stable; each response names the codes \
             it may carry. Operations that act for a user take `Authorization: Bearer <access token>` from \
             `POST /auth/login`.",
        ))
        .license(Some(LicenseBuilder::new().name("MIT OR Apache-2.0").identifier(Some("MIT OR Apache-2.0")).build()))
        .build();
    let bearer = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("An access token from `POST /auth/login` or `POST /auth/refresh`"))
            .build(),
    );
    let components = ComponentsBuilder::new()
        .schema(Problem::name(), Problem::schema())
        .security_scheme(BEARER, bearer)
        .response_from::<Unauthorized>()
        .response_from::<Forbidden>()
        .response_from::<PayloadTooLarge>()
        .response_from::<UnsupportedMediaType>()
        .response_from::<RateLimited>()
        .build();
    let mut document = OpenApiBuilder::new().info(info).components(Some(components)).build();
    for part in parts {
        document.merge(part);
    }
    document
}
