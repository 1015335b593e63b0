//! Everything a host's store holds, for the scenarios that check what an erasure left behind.
//!
//! The in-process host's SQLite file is known; a host at a base URL names its store in `STOREFRONT_STORE_SCAN`:
//! - `sqlite:<data file>`: the local host binary's SQLite file (read beside the running host; SQLite's WAL lets
//!   both open it);
//! - `dynamodb:<endpoint>#<table>`: a DynamoDB table (DynamoDB Local in the AWS tier), read with `Scan`, with
//!   credentials and region from the usual `AWS_*` variables;
//! - `http:<URL>`: a test build's listing `{"items": [{"pk", "sk", "data"}]}` (the Worker's `/__test/items`).

use std::path::PathBuf;
use std::sync::Arc;

use shared::adapters::sqlite::SqliteDb;
use shared::adapters::system::SystemClock;

/// The variable naming a host's store.
pub const STORE_SCAN_VAR: &str = "STOREFRONT_STORE_SCAN";

/// A host's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreScan {
    /// A local host's SQLite file.
    Sqlite(PathBuf),
    /// A test endpoint listing every item.
    Http(String),
    /// A DynamoDB endpoint and table.
    Dynamodb {
        /// The endpoint (`http://127.0.0.1:<port>`).
        endpoint: String,
        /// The table.
        table: String,
    },
}

/// One item as text: its keys and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedItem {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// The JSON document.
    pub data: String,
}

impl StoreScan {
    /// Reads the `scheme:location` form of [`STORE_SCAN_VAR`].
    ///
    /// # Errors
    /// When the scheme is not `sqlite`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.trim().split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            Some(("http", url)) if url.starts_with("http://127.0.0.1:") => Ok(Self::Http(url.to_owned())),
            Some(("dynamodb", rest)) => match rest.split_once('#') {
                Some((endpoint, table)) if endpoint.starts_with("http://127.0.0.1:") && !table.is_empty() => {
                    Ok(Self::Dynamodb { endpoint: endpoint.to_owned(), table: table.to_owned() })
                }
                _ => anyhow::bail!("{STORE_SCAN_VAR} must be dynamodb:http://127.0.0.1:<port>#<table>, not {text:?}"),
            },
            _ => anyhow::bail!("{STORE_SCAN_VAR} must be sqlite:<data file> or dynamodb:<endpoint>#<table>, not {text:?}"),
        }
    }

    /// Every live item now.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn items(&self) -> anyhow::Result<Vec<ScannedItem>> {
        match self {
            Self::Sqlite(path) => {
                let db = SqliteDb::open(path, Arc::new(SystemClock))?;
                let items = db.item_store().scan()?;
                Ok(items.into_iter().map(|item| ScannedItem { pk: item.key.pk, sk: item.key.sk, data: item.data.to_string() }).collect())
            }
            Self::Dynamodb { endpoint, table } => dynamodb_items(endpoint, table).await,
            Self::Http(url) => {
                use anyhow::Context as _;
                let answer = reqwest::get(url).await.with_context(|| format!("GET {url}"))?;
                anyhow::ensure!(answer.status().is_success(), "GET {url} answered {}", answer.status());
                let listing: serde_json::Value = answer.json().await.with_context(|| format!("GET {url} is not JSON"))?;
                let items = listing.get("items").and_then(serde_json::Value::as_array).context("no `items` array")?;
                let text = |item: &serde_json::Value, field: &str| item.get(field).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
                Ok(items.iter().map(|item| ScannedItem { pk: text(item, "pk"), sk: text(item, "sk"), data: text(item, "data") }).collect())
            }
        }
    }

    /// The items whose keys or document contain `needle` (case-insensitive).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn containing(&self, needle: &str) -> anyhow::Result<Vec<ScannedItem>> {
        let needle = needle.to_lowercase();
        Ok(self
            .items()
            .await?
            .into_iter()
            .filter(|item| [&item.pk, &item.sk, &item.data].iter().any(|text| text.to_lowercase().contains(&needle)))
            .collect())
    }
}

/// Every item of a DynamoDB table (every attribute, not only the adapter's own), each attribute map as text.
async fn dynamodb_items(endpoint: &str, table: &str) -> anyhow::Result<Vec<ScannedItem>> {
    use anyhow::Context as _;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::types::AttributeValue;
    let variable = |name: &str| std::env::var(name).with_context(|| format!("{name} must be set to scan {table}"));
    let region = variable("AWS_REGION").or_else(|_| variable("AWS_DEFAULT_REGION"))?;
    let credentials = Credentials::new(variable("AWS_ACCESS_KEY_ID")?, variable("AWS_SECRET_ACCESS_KEY")?, None, None, "scenarios");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .http_client(shared::adapters::emulator_http_client()?)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let text = |value: Option<&AttributeValue>| value.and_then(|value| value.as_s().ok()).cloned().unwrap_or_default();
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client.scan().table_name(table).consistent_read(true).set_exclusive_start_key(start.take()).send().await.with_context(|| format!("scan {table}"))?;
        for item in page.items.unwrap_or_default() {
            items.push(ScannedItem { pk: text(item.get("pk")), sk: text(item.get("sk")), data: format!("{item:?}") });
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}
