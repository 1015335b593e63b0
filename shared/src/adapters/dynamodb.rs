//! The item store on Amazon DynamoDB (feature `aws`): one table for every aggregate, as the port's model asks.
//!
//! Table layout: string partition key `pk`, string sort key `sk`, numeric `version`, optional numeric
//! `expires_at` (the table's time-to-live attribute, in seconds) and the document in `data`, a string holding
//! the JSON text. The document is a string rather than a native attribute map because the port stores JSON,
//! not DynamoDB values: a string round-trips every JSON document exactly (number spelling and precision,
//! `null`s, empty strings, large integers that DynamoDB's 38-digit decimals would refuse or reshape), costs one
//! `serde_json` call instead of a walk over nested `AttributeValue`s, and matches the SQLite and D1 layouts byte
//! for byte. Nothing queries inside documents (the port has no filter on them), so nothing is lost.
//!
//! DynamoDB deletes expired items days late, and emulators not at all, so expiry is enforced here too: reads
//! drop expired items, and every condition treats an expired item as absent (`OR expires_at <= :now`). This
//! module turns DynamoDB records and errors into the port's types; no `AttributeValue` leaves it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};

use crate::ports::item_store::{self, Condition, Cursor, Item, ItemKey, ItemStore, Page, Query, StoreError, Write};
use crate::ports::Clock;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The version attribute.
pub const VERSION: &str = "version";
/// The time-to-live attribute (seconds since the Unix epoch), configured as the table's TTL attribute.
pub const EXPIRES_AT: &str = "expires_at";
/// The document attribute (JSON text).
pub const DATA: &str = "data";

/// How many DynamoDB `Query` calls one port query makes at most while filling a page past expired items.
const MAX_QUERY_ROUNDS: usize = 8;

/// Expression attribute names shared by every expression (`version` is not reserved today, but names keep
/// expressions safe from future reserved words).
fn expression_names() -> HashMap<String, String> {
    HashMap::from([
        ("#pk".to_owned(), PK.to_owned()),
        ("#sk".to_owned(), SK.to_owned()),
        ("#version".to_owned(), VERSION.to_owned()),
        ("#expires".to_owned(), EXPIRES_AT.to_owned()),
    ])
}

/// A condition as a DynamoDB condition expression, with its values; `None` for [`Condition::None`].
/// An item expired at `now_secs` counts as absent.
struct ConditionExpression {
    expression: String,
    values: HashMap<String, AttributeValue>,
}

fn condition_expression(condition: Condition, now_secs: i64) -> Option<ConditionExpression> {
    let now = (":now".to_owned(), AttributeValue::N(now_secs.to_string()));
    let live = "attribute_exists(#pk) AND (attribute_not_exists(#expires) OR #expires > :now)";
    let (expression, values) = match condition {
        Condition::None => return None,
        Condition::Exists => (live.to_owned(), HashMap::from([now])),
        Condition::NotExists => {
            ("attribute_not_exists(#pk) OR #expires <= :now".to_owned(), HashMap::from([now]))
        }
        Condition::VersionEquals(version) => (
            format!("{live} AND #version = :expected"),
            HashMap::from([now, (":expected".to_owned(), AttributeValue::N(version.to_string()))]),
        ),
    };
    Some(ConditionExpression { expression, values })
}

/// The expression a transaction's `ConditionCheck` needs even when the port's condition is [`Condition::None`].
fn check_expression(condition: Condition, now_secs: i64) -> ConditionExpression {
    condition_expression(condition, now_secs).unwrap_or_else(|| ConditionExpression {
        expression: "attribute_exists(#pk) OR attribute_not_exists(#pk)".to_owned(),
        values: HashMap::new(),
    })
}

/// Only the names an expression uses may be sent (DynamoDB refuses unused ones).
fn names_used_by(expression: &str) -> HashMap<String, String> {
    expression_names().into_iter().filter(|(name, _)| expression.contains(name.as_str())).collect()
}

fn key_attributes(key: &ItemKey) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), AttributeValue::S(key.pk.clone())), (SK.to_owned(), AttributeValue::S(key.sk.clone()))])
}

fn item_attributes(item: &Item) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let data = serde_json::to_string(&item.data).context("failed to encode an item's document")?;
    let mut attributes = key_attributes(&item.key);
    attributes.insert(VERSION.to_owned(), AttributeValue::N(item.version.to_string()));
    attributes.insert(DATA.to_owned(), AttributeValue::S(data));
    if let Some(expires_at) = item.expires_at {
        attributes.insert(EXPIRES_AT.to_owned(), AttributeValue::N(expires_at.to_string()));
    }
    Ok(attributes)
}

fn string_attribute(attributes: &HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<String> {
    match attributes.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(anyhow!("stored item has no string attribute {name}")),
    }
}

fn number_attribute<'a>(attributes: &'a HashMap<String, AttributeValue>, name: &str) -> anyhow::Result<Option<&'a str>> {
    match attributes.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(value)) => Ok(Some(value.as_str())),
        Some(_) => Err(anyhow!("stored attribute {name} is not a number")),
    }
}

/// A stored record as an item; `Ok(None)` when it is expired at `now_secs`.
fn to_item(attributes: &HashMap<String, AttributeValue>, now_secs: i64) -> Result<Option<Item>, StoreError> {
    let pk = string_attribute(attributes, PK)?;
    let sk = string_attribute(attributes, SK)?;
    let version = number_attribute(attributes, VERSION)?
        .ok_or_else(|| anyhow!("stored item {pk} / {sk} has no version"))?
        .parse::<u64>()
        .with_context(|| format!("stored item {pk} / {sk} has a version that is not a u64"))?;
    let expires_at = number_attribute(attributes, EXPIRES_AT)?
        .map(str::parse::<i64>)
        .transpose()
        .with_context(|| format!("stored item {pk} / {sk} has an expiry that is not whole seconds"))?;
    let data = serde_json::from_str(&string_attribute(attributes, DATA)?)
        .with_context(|| format!("stored item {pk} / {sk} holds a document that is not JSON"))?;
    let item = Item { key: ItemKey { pk, sk }, version, expires_at, data };
    Ok(if item.is_expired_at(now_secs) { None } else { Some(item) })
}

fn backend_error<E>(error: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>, what: &'static str) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Internal(anyhow::Error::new(error).context(what))
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Internal(anyhow::Error::new(error).context("failed to build a DynamoDB request"))
}

/// The item store on one DynamoDB table. Cheap to clone: clones share the client and its connections.
#[derive(Clone)]
pub struct DynamoItemStore {
    client: Client,
    table: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoItemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoItemStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoItemStore {
    /// The store on `table`, judging expiry by `clock`. Makes no request.
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self { client, table: Arc::from(table.into()), clock }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with this layout (on-demand billing, TTL on [`EXPIRES_AT`]) unless it exists.
    /// For local runs and tests: on AWS the SAM template owns the table.
    ///
    /// # Errors
    /// When DynamoDB refuses to create the table or to turn on its TTL.
    pub async fn create_table_if_missing(&self) -> anyhow::Result<()> {
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let key = |name: &str, key_type| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build();
        let created = self
            .client
            .create_table()
            .table_name(self.table.as_ref())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|service| service.is_resource_in_use_exception()) => {
                return Ok(());
            }
            Err(error) => return Err(anyhow::Error::new(error).context("failed to create the table")),
        }
        self.client
            .update_time_to_live()
            .table_name(self.table.as_ref())
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(EXPIRES_AT).enabled(true).build()?)
            .send()
            .await
            .context("failed to turn on the table's time to live")?;
        Ok(())
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().as_secs()
    }

    async fn get_item(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        item_store::validate_key(key)?;
        let output = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| backend_error(error, "failed to get an item"))?;
        match output.item() {
            Some(attributes) => to_item(attributes, self.now_secs()),
            None => Ok(None),
        }
    }

    async fn put_item(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item_store::validate_key(&item.key)?;
        let mut request =
            self.client.put_item().table_name(self.table.as_ref()).set_item(Some(item_attributes(&item)?));
        if let Some(ConditionExpression { expression, values }) = condition_expression(condition, self.now_secs()) {
            request = request
                .set_expression_attribute_names(Some(names_used_by(&expression)))
                .set_expression_attribute_values(Some(values))
                .condition_expression(expression);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::ConditionFailed { index: 0, key: item.key })
            }
            Err(error) => Err(backend_error(error, "failed to put an item")),
        }
    }

    async fn delete_item(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        item_store::validate_key(key)?;
        let mut request = self.client.delete_item().table_name(self.table.as_ref()).set_key(Some(key_attributes(key)));
        if let Some(ConditionExpression { expression, values }) = condition_expression(condition, self.now_secs()) {
            request = request
                .set_expression_attribute_names(Some(names_used_by(&expression)))
                .set_expression_attribute_values(Some(values))
                .condition_expression(expression);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_service_error().is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::ConditionFailed { index: 0, key: key.clone() })
            }
            Err(error) => Err(backend_error(error, "failed to delete an item")),
        }
    }

    async fn query_items(&self, query: &Query) -> Result<Page, StoreError> {
        query.validate()?;
        let now_secs = self.now_secs();
        let mut start = match &query.after {
            None => None,
            // A cursor before the prefix's range means "from the start"; one after it means "nothing left".
            // DynamoDB refuses an exclusive start key outside the key condition, so those are settled here.
            Some(cursor) if cursor.after_sort_key() < query.sk_prefix.as_str() => None,
            Some(cursor) if !cursor.after_sort_key().starts_with(&query.sk_prefix) => {
                return Ok(Page::default());
            }
            Some(cursor) => Some(cursor.after_sort_key().to_owned()),
        };
        let key_condition = if query.sk_prefix.is_empty() {
            "#pk = :pk"
        } else {
            "#pk = :pk AND begins_with(#sk, :prefix)"
        };
        let filter = "attribute_not_exists(#expires) OR #expires > :now";
        let mut values = HashMap::from([
            (":pk".to_owned(), AttributeValue::S(query.pk.clone())),
            (":now".to_owned(), AttributeValue::N(now_secs.to_string())),
        ]);
        if !query.sk_prefix.is_empty() {
            values.insert(":prefix".to_owned(), AttributeValue::S(query.sk_prefix.clone()));
        }
        let names = names_used_by(&format!("{key_condition} {filter}"));
        let mut items = Vec::with_capacity(query.limit);
        // DynamoDB applies `Limit` before the filter, so expired items can shorten a page: ask again for the
        // rest, a bounded number of times, and hand back a short page with a cursor if that is not enough.
        for _ in 0..MAX_QUERY_ROUNDS {
            let wanted = i32::try_from(query.limit - items.len()).unwrap_or(i32::MAX);
            let exclusive_start = start.as_ref().map(|sk| key_attributes(&ItemKey::new(query.pk.clone(), sk.clone())));
            let output = self
                .client
                .query()
                .table_name(self.table.as_ref())
                .consistent_read(true)
                .key_condition_expression(key_condition)
                .filter_expression(filter)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(exclusive_start)
                .limit(wanted)
                .send()
                .await
                .map_err(|error| backend_error(error, "failed to query a partition"))?;
            for attributes in output.items() {
                if let Some(item) = to_item(attributes, now_secs)? {
                    items.push(item);
                }
            }
            start = match output.last_evaluated_key() {
                Some(last) => Some(string_attribute(last, SK)?),
                None => return Ok(Page { items, next: None }),
            };
            if items.len() >= query.limit {
                break;
            }
        }
        // DynamoDB said there may be more: resume after the last key it evaluated (which may be an expired item
        // that is not in the page, so the cursor comes from the key, not from the page).
        Ok(Page { items, next: start.map(Cursor::after_sort_key_of) })
    }

    fn transact_item(&self, write: &Write, now_secs: i64) -> Result<TransactWriteItem, StoreError> {
        let item = match write {
            Write::Put { item, condition } => {
                let mut put = Put::builder().table_name(self.table.as_ref()).set_item(Some(item_attributes(item)?));
                if let Some(ConditionExpression { expression, values }) = condition_expression(*condition, now_secs) {
                    put = put
                        .set_expression_attribute_names(Some(names_used_by(&expression)))
                        .set_expression_attribute_values(Some(values))
                        .condition_expression(expression);
                }
                TransactWriteItem::builder().put(put.build().map_err(build_error)?)
            }
            Write::Delete { key, condition } => {
                let mut delete = Delete::builder().table_name(self.table.as_ref()).set_key(Some(key_attributes(key)));
                if let Some(ConditionExpression { expression, values }) = condition_expression(*condition, now_secs) {
                    delete = delete
                        .set_expression_attribute_names(Some(names_used_by(&expression)))
                        .set_expression_attribute_values(Some(values))
                        .condition_expression(expression);
                }
                TransactWriteItem::builder().delete(delete.build().map_err(build_error)?)
            }
            Write::Check { key, condition } => {
                let ConditionExpression { expression, values } = check_expression(*condition, now_secs);
                let check = ConditionCheck::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key_attributes(key)))
                    .set_expression_attribute_names(Some(names_used_by(&expression)))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .condition_expression(expression);
                TransactWriteItem::builder().condition_check(check.build().map_err(build_error)?)
            }
        };
        Ok(item.build())
    }

    async fn transact_items(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        item_store::validate_transaction(&writes)?;
        let now_secs = self.now_secs();
        let items = writes.iter().map(|write| self.transact_item(write, now_secs)).collect::<Result<Vec<_>, _>>()?;
        // The token makes the SDK's own retries idempotent: a retried, already applied transaction succeeds
        // instead of failing its conditions against its own writes.
        let token = uuid::Uuid::now_v7().simple().to_string();
        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).client_request_token(token).send().await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let failed_index = error.as_service_error().and_then(|service| match service {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                canceled,
            ) => canceled.cancellation_reasons().iter().position(|reason| reason.code() == Some("ConditionalCheckFailed")),
            _ => None,
        });
        match failed_index.and_then(|index| writes.get(index).map(|write| (index, write.key().clone()))) {
            Some((index, key)) => Err(StoreError::ConditionFailed { index, key }),
            None => Err(backend_error(error, "failed to apply a transaction")),
        }
    }
}

impl ItemStore for DynamoItemStore {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        self.get_item(key)
    }

    fn put(&self, item: Item, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.put_item(item, condition)
    }

    fn delete(&self, key: &ItemKey, condition: Condition) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.delete_item(key, condition)
    }

    fn query(&self, query: &Query) -> impl Future<Output = Result<Page, StoreError>> + Send {
        self.query_items(query)
    }

    fn transact(&self, writes: Vec<Write>) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.transact_items(writes)
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;
    use crate::adapters::system::SystemClock;
    use crate::contract::{self, Harness};
    use crate::ports::Timestamp;

    /// The variable naming DynamoDB Local's endpoint (`scripts/aws-emulators.sh env` sets it).
    pub(crate) const DYNAMODB_ENDPOINT: &str = "DYNAMODB_ENDPOINT";

    /// Time on a real backend: the system clock, and sleeping to let time pass.
    struct RealTime;

    impl Harness for RealTime {
        fn now(&self) -> Timestamp {
            SystemClock.now()
        }

        fn advance(&self, duration: std::time::Duration) -> impl Future<Output = ()> + Send {
            tokio::time::sleep(duration)
        }
    }

    /// A client for the emulator at `endpoint` with static dummy keys, so that the SDK never looks for
    /// credentials anywhere else (in particular never at the EC2 metadata service).
    pub(crate) fn emulator_client(endpoint: &str) -> Client {
        assert!(
            endpoint.starts_with("http://127.0.0.1:"),
            "{DYNAMODB_ENDPOINT} must be an http://127.0.0.1 address, not {endpoint}"
        );
        let credentials = aws_sdk_dynamodb::config::Credentials::new("storefrontlocal", "storefrontlocal", None, None, "static");
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(endpoint)
            .build();
        Client::from_conf(config)
    }

    #[test]
    fn conditions_treat_expired_items_as_absent() {
        let not_exists = condition_expression(Condition::NotExists, 100).map(|c| c.expression);
        assert_eq!(not_exists.as_deref(), Some("attribute_not_exists(#pk) OR #expires <= :now"));
        let version = condition_expression(Condition::VersionEquals(3), 100).map(|c| c.expression);
        assert!(version.is_some_and(|expression| expression.contains("#expires > :now") && expression.contains(":expected")));
        assert!(condition_expression(Condition::None, 100).is_none());
        let names = names_used_by("attribute_exists(#pk)");
        assert!(names.len() == 1 && names.get("#pk").map(String::as_str) == Some(PK), "names: {names:?}");
    }

    #[test]
    fn a_record_without_a_document_is_an_internal_error() {
        let mut attributes = key_attributes(&ItemKey::new("p", "s"));
        attributes.insert(VERSION.to_owned(), AttributeValue::N("1".to_owned()));
        assert!(matches!(to_item(&attributes, 0), Err(StoreError::Internal(_))));
        attributes.insert(DATA.to_owned(), AttributeValue::S("{\"a\":1}".to_owned()));
        attributes.insert(EXPIRES_AT.to_owned(), AttributeValue::N("50".to_owned()));
        assert!(matches!(to_item(&attributes, 49), Ok(Some(_))));
        assert!(matches!(to_item(&attributes, 50), Ok(None)));
    }

    #[tokio::test]
    async fn dynamo_item_store_keeps_the_item_store_contract() {
        let Ok(endpoint) = std::env::var(DYNAMODB_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {DYNAMODB_ENDPOINT} is not set, so the DynamoDB item store was NOT tested.");
            eprintln!("!!!! Run scripts/test-aws.sh (it starts DynamoDB Local) to test it.\n");
            return;
        };
        let run = uuid::Uuid::now_v7().simple().to_string();
        let store = DynamoItemStore::new(emulator_client(&endpoint), format!("contract-{run}"), Arc::new(SystemClock));
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        // A second call finds the table and succeeds.
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        let reports = contract::item_store::run(&store, &RealTime, &run).await;
        for report in &reports {
            eprintln!("dynamodb contract: {} ... {}", report.name, if report.outcome.is_ok() { "ok" } else { "FAILED" });
        }
        assert!(reports.len() >= 9, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    #[tokio::test]
    async fn a_query_page_skips_expired_items_and_resumes_after_them() {
        let Ok(endpoint) = std::env::var(DYNAMODB_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {DYNAMODB_ENDPOINT} is not set, so DynamoDB paging was NOT tested.\n");
            return;
        };
        let run = uuid::Uuid::now_v7().simple().to_string();
        let store = DynamoItemStore::new(emulator_client(&endpoint), format!("paging-{run}"), Arc::new(SystemClock));
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        let now = SystemClock.now().as_secs();
        // Forty expired items sit between the live ones, more than MAX_QUERY_ROUNDS pages of one can skip.
        for number in 0..44_u64 {
            let mut item = Item::new(ItemKey::new("p", format!("k{number:03}")), 1, serde_json::json!({ "n": number }));
            if (2..42).contains(&number) {
                item.expires_at = Some(now - 10);
            }
            store.put(item, Condition::None).await.unwrap_or_else(|error| panic!("{error:?}"));
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls < 100, "paging never ended");
            let page = store.query(&Query::new("p", "k", 1).after(cursor)).await.unwrap_or_else(|error| panic!("{error:?}"));
            seen.extend(page.items.into_iter().map(|item| item.key.sk));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["k000", "k001", "k042", "k043"]);
    }
}
