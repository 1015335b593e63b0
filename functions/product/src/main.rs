//! The `product` function on AWS Lambda: `GET /products/{id}` behind API Gateway (HTTP API payload v2 or REST
//! payload v1) through `lambda_http`, storing in DynamoDB. Wiring only: it reads the configuration, builds
//! the adapters once per cold start and hands `product::router` to the runtime; no rule lives here.

use std::sync::Arc;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use shared::adapters::dynamodb::DynamoItemStore;
use shared::adapters::system::{SystemClock, UuidIds};
use shared::http::{AppState, Keys};

/// The DynamoDB table's name (`template.yaml` sets it from the table resource).
const TABLE_NAME: &str = "TABLE_NAME";
/// The master secret every key is derived from, at least 32 bytes.
const STOREFRONT_SECRET: &str = "STOREFRONT_SECRET";
/// `"true"` to create the table and write the demo catalog at cold start: for local runs on an empty
/// DynamoDB Local only; `template.yaml` never sets it.
const DEMO_SEED: &str = "DEMO_SEED";

/// The function's configuration, read once per cold start.
struct Config {
    table: String,
    keys: Keys,
    demo_seed: bool,
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let table = std::env::var(TABLE_NAME).with_context(|| format!("{TABLE_NAME} must be set"))?;
        let secret = std::env::var(STOREFRONT_SECRET).with_context(|| format!("{STOREFRONT_SECRET} must be set"))?;
        let keys = Keys::derive(secret.as_bytes()).with_context(|| format!("{STOREFRONT_SECRET} is too short"))?;
        let demo_seed = std::env::var(DEMO_SEED).is_ok_and(|value| value == "true");
        Ok(Self { table, keys, demo_seed })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let store = DynamoItemStore::from_sdk_config(&sdk_config, config.table, Arc::new(SystemClock));
    let state = AppState::new(store, Arc::new(SystemClock), Arc::new(UuidIds), config.keys);
    if config.demo_seed {
        state.store.create_table_if_missing().await?;
        let created = state.catalog.seed_demo_if_empty(&UuidIds, &SystemClock).await.context("failed to seed")?;
        tracing::info!(created, "demo catalog seeded");
    }
    // Paths API Gateway routes here that the function does not serve get the same problem document as on every host.
    lambda_http::run(product::router(state).fallback(shared::http::error::not_found)).await
}
