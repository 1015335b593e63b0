//! The account functions' Lambda wiring (feature `aws`): their authentication configuration (first admin,
//! login allowance, Argon2id costs), read once per cold start from the environment ([`AuthEnv`]), and the layer that tells the routers who the client is
//! ([`with_client_address`]), taken from API Gateway's request context.
//!
//! It holds wiring only: the rules (what the first admin may do, how the login limit counts) live in
//! `shared::auth` and `shared::rate_limit`. It never reads a request header for the client's address: on
//! Lambda, `X-Forwarded-For` reaches the function as the client wrote it, prefixed to API Gateway's own entry,
//! while `sourceIp` is the address API Gateway's connection came from.

use std::net::IpAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;

use shared::adapters::argon2::{ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, Argon2Settings};
use shared::adapters::dynamodb::DynamoItemStore;
use shared::auth::AuthSettings;
use shared::domain::Email;
use shared::http::{AppState, ClientAddress};
use shared::rate_limit::BucketSettings;

/// The e-mail address whose registration gets the admin role (the first admin); unset or empty for none.
/// `template.yaml` sets it from the `FirstAdminEmail` parameter.
pub const STOREFRONT_ADMIN_EMAIL: &str = "STOREFRONT_ADMIN_EMAIL";
/// Login attempts allowed per client address in a burst, a whole number above 0; unset or empty for
/// `BucketSettings::LOGIN_PER_CLIENT`. `template.yaml` sets it from the `LoginAttemptsPerClient` parameter.
pub const STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT: &str = "STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT";

// Argon2id's costs are read under the names every host shares, `adapters::argon2::ARGON2_MEMORY_KIB`
// (`STOREFRONT_ARGON2_MEMORY_KIB`), `ARGON2_ITERATIONS` (`STOREFRONT_ARGON2_ITERATIONS`) and `ARGON2_PARALLELISM`
// (`STOREFRONT_ARGON2_PARALLELISM`); unset or empty keeps OWASP's m = 19456 KiB, t = 2, p = 1. `template.yaml`
// sets them from the `Argon2MemoryKiB`, `Argon2Iterations` and `Argon2Parallelism` parameters.

/// The account functions' authentication configuration, read once per cold start.
#[derive(Debug, Clone)]
pub struct AuthEnv {
    /// The address whose registration becomes an admin, if configured.
    pub first_admin: Option<Email>,
    /// Login attempts per client address in a burst.
    pub login_attempts_per_client: u32,
    /// Argon2id's costs for new password hashes (checked against OWASP's minimums and Argon2's limits).
    pub password: Argon2Settings,
}

impl AuthEnv {
    /// Reads the configuration.
    ///
    /// # Errors
    /// Names the variable that is invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        let first_admin = match optional(STOREFRONT_ADMIN_EMAIL) {
            // The address is configuration, not a request's personal data; still, say only what is wrong.
            Some(text) => Some(Email::parse(text.trim()).map_err(|error| anyhow::anyhow!("{STOREFRONT_ADMIN_EMAIL}: {error}"))?),
            None => None,
        };
        let login_attempts_per_client = match optional(STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT) {
            Some(text) => parse_attempts(&text)
                .with_context(|| format!("{STOREFRONT_LOGIN_ATTEMPTS_PER_CLIENT} must be a whole number above 0"))?,
            None => BucketSettings::LOGIN_PER_CLIENT.capacity,
        };
        let password = password_settings(
            optional(ARGON2_MEMORY_KIB).as_deref(),
            optional(ARGON2_ITERATIONS).as_deref(),
            optional(ARGON2_PARALLELISM).as_deref(),
        )?;
        Ok(Self { first_admin, login_attempts_per_client, password })
    }

    /// The authentication settings: the defaults with this first admin and per-client allowance.
    pub fn settings(&self) -> AuthSettings {
        AuthSettings::for_host(self.first_admin.clone(), self.login_attempts_per_client)
    }
}

/// Runs an account function: reads [`AuthEnv`] once per cold start, then serves `router` as
/// [`crate::run_http`] does, on a state built with those settings, with the client address of every
/// request taken from its Lambda request context.
///
/// # Errors
/// When a variable is missing or invalid, or as [`crate::run_http`].
pub fn run_account_http<F>(router: F) -> Result<(), crate::Error>
where
    F: FnOnce(AppState<DynamoItemStore>) -> Router,
{
    let auth = AuthEnv::from_env()?;
    crate::run_http_with(auth.settings(), auth.password, move |state| with_client_address(router(state)))
}

/// Argon2id's costs from the three variables' texts, through the parser every host shares. The error always
/// names the variables: the parser names one when it is not a number, but not when the costs are too low.
fn password_settings(memory_kib: Option<&str>, iterations: Option<&str>, parallelism: Option<&str>) -> anyhow::Result<Argon2Settings> {
    Argon2Settings::configured(memory_kib, iterations, parallelism).map_err(|error| {
        let text = error.to_string();
        let names = [ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM];
        if names.iter().any(|name| text.contains(name)) {
            anyhow::anyhow!(text)
        } else {
            anyhow::anyhow!("{}: {text}", names.join(", "))
        }
    })
}

/// A variable's text; `None` when it is unset or empty. (Kept here rather than shared with `lib.rs`, so that
/// this module does not depend on that file's private helpers.)
fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn parse_attempts(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|attempts| *attempts > 0)
}

/// The client's address as API Gateway saw the connection: `requestContext.http.sourceIp` of an HTTP API
/// (payload v2, also what function URLs and `cargo lambda watch` send) or `requestContext.identity.sourceIp`
/// of a REST API (payload v1), normalised; `None` for anything else or an address that does not parse.
pub fn source_ip(ctx: &RequestContext) -> Option<ClientAddress> {
    let text = match ctx {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
        _ => None,
    }?;
    let address: IpAddr = text.trim().parse().ok()?;
    Some(ClientAddress(address.to_string()))
}

/// Puts [`source_ip`] of the request's Lambda context into the request as the [`ClientAddress`]. Without one,
/// the address stays absent and login answers 500 instead of putting every client in one bucket.
async fn client_address(mut req: Request, next: Next) -> Response {
    let address = req.extensions().get::<RequestContext>().and_then(source_ip);
    match address {
        Some(address) => {
            req.extensions_mut().insert(address);
        }
        None => tracing::warn!("the Lambda request context names no client address"),
    }
    next.run(req).await
}

/// `router` with the client address of every request taken from its Lambda request context.
pub fn with_client_address(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(client_address))
}

#[cfg(test)]
mod tests {
    use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequestContext, ApiGatewayV2httpRequestContext};

    use super::*;

    fn http_api(source_ip: &str) -> RequestContext {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some(source_ip.to_owned());
        RequestContext::ApiGatewayV2(ctx)
    }

    #[test]
    fn the_address_comes_from_source_ip_of_either_payload() {
        assert_eq!(source_ip(&http_api("2001:DB8::1")), Some(ClientAddress("2001:db8::1".to_owned())));
        let mut ctx = ApiGatewayProxyRequestContext::default();
        ctx.identity.source_ip = Some("203.0.113.9".to_owned());
        assert_eq!(source_ip(&RequestContext::ApiGatewayV1(ctx)), Some(ClientAddress("203.0.113.9".to_owned())));
    }

    #[test]
    fn a_missing_or_malformed_source_ip_gives_no_address() {
        assert_eq!(source_ip(&http_api("1.2.3.4, 5.6.7.8")), None);
        assert_eq!(source_ip(&http_api("")), None);
        assert_eq!(source_ip(&RequestContext::ApiGatewayV2(ApiGatewayV2httpRequestContext::default())), None);
    }

    #[test]
    fn the_allowance_must_be_a_whole_number_above_zero() {
        assert_eq!(parse_attempts(" 1000 "), Some(1000));
        assert_eq!(parse_attempts("0"), None);
        assert_eq!(parse_attempts("-3"), None);
        assert_eq!(parse_attempts("many"), None);
    }

    #[test]
    fn the_settings_keep_the_defaults_but_the_first_admin_and_the_allowance() {
        let boss = Email::parse("boss@example.com").unwrap_or_else(|error| panic!("{error}"));
        let settings =
            AuthEnv { first_admin: Some(boss.clone()), login_attempts_per_client: 500, password: Argon2Settings::default() }
                .settings();
        assert_eq!(settings.first_admin, Some(boss));
        assert_eq!(settings.per_client.capacity, 500);
        assert_eq!(settings.per_client.refill_every, BucketSettings::LOGIN_PER_CLIENT.refill_every);
        assert_eq!(settings.per_account, AuthSettings::default().per_account);
    }

    #[test]
    fn argon2_costs_default_to_owasps_and_a_bad_value_names_its_variable() {
        assert_eq!(password_settings(None, None, None).ok(), Some(Argon2Settings::default()));
        let stronger = password_settings(Some(" 65536 "), Some("3"), Some("2")).ok();
        assert_eq!(stronger, Some(Argon2Settings { memory_kib: 65_536, iterations: 3, parallelism: 2 }));
        let not_a_number = password_settings(None, Some("two"), None).map_err(|error| error.to_string());
        assert!(not_a_number.as_ref().is_err_and(|text| text.contains(ARGON2_ITERATIONS)), "{not_a_number:?}");
        // Too cheap: the parser names no variable, so all three are named.
        let weak = password_settings(Some("1024"), Some("1"), None).map_err(|error| error.to_string());
        assert!(
            weak.as_ref().is_err_and(|text| text.contains(ARGON2_MEMORY_KIB) && text.contains(ARGON2_ITERATIONS) && text.contains("OWASP")),
            "{weak:?}"
        );
        let no_lanes = password_settings(None, None, Some("0")).map_err(|error| error.to_string());
        assert!(no_lanes.as_ref().is_err_and(|text| text.contains(ARGON2_PARALLELISM)), "{no_lanes:?}");
    }
}
