//! The item store on Amazon DynamoDB (feature `aws`): one table for every aggregate, as the port's model asks.
//!
//! Table layout: string partition key `pk`, string sort key `sk`, numeric `version`, optional numeric
//! `expires_at` (the table's time-to-live attribute, in seconds), optional numeric `counter` (what
//! [`Write::Add`] changes, with `SET counter = counter + :delta` under a condition on its bounds) and the
//! document in `data`, a string holding the JSON text. The document is a string rather than a native attribute
//! map because the port stores JSON, not DynamoDB values: a string round-trips every JSON document exactly
//! (number spelling and precision, `null`s, empty strings, large integers that DynamoDB's 38-digit decimals
//! would refuse or reshape), costs one `serde_json` call instead of a walk over nested `AttributeValue`s, and
//! matches the SQLite and D1 layouts byte for byte. Nothing queries inside documents (the port has no filter on
//! them), so nothing is lost.
//!
//! DynamoDB deletes expired items days late, and emulators not at all, so expiry is enforced here too: reads
//! drop expired items, and every condition treats an expired item as absent (`OR expires_at <= :now`). This
//! module turns DynamoDB records and errors into the port's types; no `AttributeValue` leaves it.
//!
//! DynamoDB cancels a transaction that meets another one on the same item (`TransactionConflict`), and refuses a
//! single write to an item a transaction holds (`TransactionConflictException`). Neither wrote anything, so both
//! are retried here with a fresh request, after a short randomised pause ([`CONTENTION_ATTEMPTS`] tries in all),
//! and reported as [`StoreError::Contention`] when they keep losing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
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
/// The counter attribute, a number that [`Write::Add`] changes; absent on items that are not counters.
pub const COUNTER: &str = "counter";

/// How many times one port call is tried while concurrent transactions keep cancelling it.
pub const CONTENTION_ATTEMPTS: u32 = 8;
/// The longest pause before the first retry after contention; it doubles with each retry up to the cap.
const CONTENTION_BASE: Duration = Duration::from_millis(20);
/// The longest pause before any retry after contention. With [`CONTENTION_ATTEMPTS`] tries the pauses add up to
/// at most 1.42 s (0.71 s on average), so a call that keeps losing gives up after about two seconds.
const CONTENTION_CAP: Duration = Duration::from_millis(400);

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
        ("#counter".to_owned(), COUNTER.to_owned()),
    ])
}

/// The condition that an item is stored under the key and not expired at `:now`.
const LIVE: &str = "attribute_exists(#pk) AND (attribute_not_exists(#expires) OR #expires > :now)";

/// A condition as a DynamoDB condition expression, with its values; `None` for [`Condition::None`].
/// An item expired at `now_secs` counts as absent.
struct ConditionExpression {
    expression: String,
    values: HashMap<String, AttributeValue>,
}

fn condition_expression(condition: Condition, now_secs: i64) -> Option<ConditionExpression> {
    let now = (":now".to_owned(), AttributeValue::N(now_secs.to_string()));
    let (expression, values) = match condition {
        Condition::None => return None,
        Condition::Exists => (LIVE.to_owned(), HashMap::from([now])),
        Condition::NotExists => {
            ("attribute_not_exists(#pk) OR #expires <= :now".to_owned(), HashMap::from([now]))
        }
        Condition::VersionEquals(version) => (
            format!("{LIVE} AND #version = :expected"),
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

/// A [`Write::Add`] as an update and its condition, with their values.
struct AddExpression {
    update: String,
    condition: String,
    values: HashMap<String, AttributeValue>,
}

/// Adds `delta` to the counter and 1 to the version of a live item whose counter lands within the bounds.
/// A condition sees the counter before the update, so the bounds are shifted by `delta`; that is done in `i128`,
/// where no shift overflows, and DynamoDB's 38-digit numbers carry the result. A missing bound stands for the
/// end of `i64`'s range, so the sum always fits the port's counter, as [`item_store::add_holds`] requires.
fn add_expression(delta: i64, floor: Option<i64>, ceiling: Option<i64>, now_secs: i64) -> AddExpression {
    let lowest = i128::from(floor.unwrap_or(i64::MIN)) - i128::from(delta);
    let highest = i128::from(ceiling.unwrap_or(i64::MAX)) - i128::from(delta);
    let number = |value: String| AttributeValue::N(value);
    AddExpression {
        update: "SET #counter = #counter + :delta, #version = #version + :one".to_owned(),
        condition: format!("{LIVE} AND #counter >= :lowest AND #counter <= :highest"),
        values: HashMap::from([
            (":now".to_owned(), number(now_secs.to_string())),
            (":delta".to_owned(), number(delta.to_string())),
            (":one".to_owned(), number("1".to_owned())),
            (":lowest".to_owned(), number(lowest.to_string())),
            (":highest".to_owned(), number(highest.to_string())),
        ]),
    }
}

/// How long to pause before retry number `retry` (0 for the first) after contention, given 32 random bits
/// ([`crate::ports::clock::full_jitter`] between [`CONTENTION_BASE`] and [`CONTENTION_CAP`]).
fn contention_backoff(retry: u32, random: u32) -> Duration {
    crate::ports::clock::full_jitter(CONTENTION_BASE, CONTENTION_CAP, retry, random)
}

/// 32 random bits: the last four bytes of a UUIDv7 are random (its counter and timestamp sit before them).
fn random_bits() -> u32 {
    let bytes = uuid::Uuid::now_v7().into_bytes();
    u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]])
}

/// Waits for `duration` without blocking the caller's executor. This crate ties the `aws` feature to no async
/// runtime (the SDK brings its own), so a short-lived thread keeps the time; it runs only under contention. If
/// no thread can be started, the retry goes ahead at once, still bounded by [`CONTENTION_ATTEMPTS`].
async fn pause(duration: Duration) {
    let (done, finished) = futures::channel::oneshot::channel::<()>();
    let timer = std::thread::Builder::new().name("dynamodb-backoff".to_owned()).spawn(move || {
        std::thread::sleep(duration);
        // The waiting call may have been dropped meanwhile; then nobody needs the signal.
        let _ = done.send(());
    });
    if timer.is_ok() {
        let _ = finished.await;
    }
}

/// Runs `attempt` until it ends in anything but [`StoreError::Contention`], at most [`CONTENTION_ATTEMPTS`]
/// times, pausing between tries. Each try must build a fresh request (a transaction, a fresh token).
async fn retry_on_contention<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Err(StoreError::Contention) if retry + 1 < CONTENTION_ATTEMPTS => {
                pause(contention_backoff(retry, random_bits())).await;
                retry += 1;
            }
            outcome => return outcome,
        }
    }
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
    if let Some(counter) = item.counter {
        attributes.insert(COUNTER.to_owned(), AttributeValue::N(counter.to_string()));
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
    let counter = number_attribute(attributes, COUNTER)?
        .map(str::parse::<i64>)
        .transpose()
        .with_context(|| format!("stored item {pk} / {sk} has a counter that is not an i64"))?;
    let data = serde_json::from_str(&string_attribute(attributes, DATA)?)
        .with_context(|| format!("stored item {pk} / {sk} holds a document that is not JSON"))?;
    let item = Item { key: ItemKey { pk, sk }, version, expires_at, data, counter };
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

    /// One `BatchGetItem` (strongly consistent) for up to 100 keys (none for no keys); the keys DynamoDB leaves unprocessed (it
    /// may, under throttling or past 16 MB) are asked again after a pause, at most [`CONTENTION_ATTEMPTS`] times.
    /// DynamoDB answers in no particular order, so the items are put back in the order of `keys`.
    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        item_store::validate_keys(keys)?;
        let mut found: HashMap<ItemKey, Item> = HashMap::with_capacity(keys.len());
        let mut pending: Vec<HashMap<String, AttributeValue>> = keys.iter().map(key_attributes).collect();
        let mut retry = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .context("failed to build a batch read")?;
            let output = self
                .client
                .batch_get_item()
                .request_items(self.table.as_ref(), request)
                .send()
                .await
                .map_err(|error| backend_error(error, "failed to get items"))?;
            for attributes in output.responses().and_then(|tables| tables.get(self.table.as_ref())).into_iter().flatten() {
                if let Some(item) = to_item(attributes, self.now_secs())? {
                    found.insert(item.key.clone(), item);
                }
            }
            if let Some(unprocessed) = output.unprocessed_keys().and_then(|tables| tables.get(self.table.as_ref())) {
                pending = unprocessed.keys().to_vec();
            }
            if !pending.is_empty() {
                retry += 1;
                if retry >= CONTENTION_ATTEMPTS {
                    return Err(StoreError::Internal(anyhow!("DynamoDB left {} keys of a batch read unprocessed", pending.len())));
                }
                pause(contention_backoff(retry - 1, random_bits())).await;
            }
        }
        Ok(keys.iter().filter_map(|key| found.remove(key)).collect())
    }

    async fn put_item(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item_store::validate_key(&item.key)?;
        retry_on_contention(|| self.put_once(&item, condition)).await
    }

    async fn put_once(&self, item: &Item, condition: Condition) -> Result<(), StoreError> {
        let mut request =
            self.client.put_item().table_name(self.table.as_ref()).set_item(Some(item_attributes(item)?));
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
                Err(StoreError::ConditionFailed { index: 0, key: item.key.clone() })
            }
            Err(error) if error.as_service_error().is_some_and(|service| service.is_transaction_conflict_exception()) => {
                Err(StoreError::Contention)
            }
            Err(error) => Err(backend_error(error, "failed to put an item")),
        }
    }

    async fn delete_item(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        item_store::validate_key(key)?;
        retry_on_contention(|| self.delete_once(key, condition)).await
    }

    async fn delete_once(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
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
            Err(error) if error.as_service_error().is_some_and(|service| service.is_transaction_conflict_exception()) => {
                Err(StoreError::Contention)
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
            Write::Add { key, delta, floor, ceiling } => {
                let AddExpression { update, condition, values } = add_expression(*delta, *floor, *ceiling, now_secs);
                let update = Update::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key_attributes(key)))
                    .set_expression_attribute_names(Some(names_used_by(&format!("{update} {condition}"))))
                    .set_expression_attribute_values(Some(values))
                    .update_expression(update)
                    .condition_expression(condition);
                TransactWriteItem::builder().update(update.build().map_err(build_error)?)
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
        retry_on_contention(|| self.transact_once(&writes)).await
    }

    async fn transact_once(&self, writes: &[Write]) -> Result<(), StoreError> {
        let now_secs = self.now_secs();
        let items = writes.iter().map(|write| self.transact_item(write, now_secs)).collect::<Result<Vec<_>, _>>()?;
        // The token makes the SDK's own retries idempotent: a retried, already applied transaction succeeds
        // instead of failing its conditions against its own writes. A retry after contention is a new
        // transaction (the cancelled one wrote nothing), so each try has its own token.
        let token = uuid::Uuid::now_v7().simple().to_string();
        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).client_request_token(token).send().await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let reasons = match error.as_service_error() {
            Some(
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                    canceled,
                ),
            ) => canceled.cancellation_reasons(),
            _ => &[],
        };
        // A failed condition is the caller's answer whatever else happened; contention alone is worth a retry.
        let failed_index = reasons.iter().position(|reason| reason.code() == Some("ConditionalCheckFailed"));
        if let Some((index, write)) = failed_index.and_then(|index| writes.get(index).map(|write| (index, write))) {
            return Err(StoreError::ConditionFailed { index, key: write.key().clone() });
        }
        if reasons.iter().any(|reason| reason.code() == Some("TransactionConflict")) {
            return Err(StoreError::Contention);
        }
        Err(backend_error(error, "failed to apply a transaction"))
    }
}

impl ItemStore for DynamoItemStore {
    fn get(&self, key: &ItemKey) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        self.get_item(key)
    }

    fn get_many(&self, keys: &[ItemKey]) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        self.batch_get(keys)
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
            .http_client(crate::adapters::emulator_http_client().unwrap_or_else(|error| panic!("{error}")))
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

    #[test]
    fn contention_pauses_grow_from_the_base_to_the_cap_and_stay_bounded() {
        let ceilings_ms = [(0, 20), (1, 40), (2, 80), (3, 160), (4, 320), (5, 400), (6, 400), (u32::MAX, 400)];
        for (retry, ceiling_ms) in ceilings_ms {
            let ceiling = Duration::from_millis(ceiling_ms);
            let top_draw = u32::try_from(ceiling.as_micros()).unwrap_or(u32::MAX);
            assert_eq!(contention_backoff(retry, top_draw), ceiling, "retry {retry}: the ceiling can be drawn");
            assert_eq!(contention_backoff(retry, top_draw + 1), Duration::ZERO, "retry {retry}: draws wrap below it");
            assert!(contention_backoff(retry, u32::MAX) <= ceiling, "retry {retry}: no draw passes the ceiling");
            assert_eq!(contention_backoff(retry, 0), Duration::ZERO);
        }
        // A call pauses before each of its CONTENTION_ATTEMPTS - 1 retries; at worst that is every ceiling.
        let longest: u64 = ceilings_ms.iter().filter(|(retry, _)| *retry < CONTENTION_ATTEMPTS - 1).map(|(_, ms)| ms).sum();
        assert_eq!(ceilings_ms.iter().filter(|(retry, _)| *retry < CONTENTION_ATTEMPTS - 1).count(), 7);
        assert_eq!(longest, 1_420, "the pauses of one call that keeps losing add up to at most 1.42 s");
        // The jitter is not a constant.
        let draws: std::collections::HashSet<u32> = (0..16).map(|_| random_bits()).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn an_add_shifts_its_bounds_by_the_delta_and_requires_a_live_counter() {
        let add = add_expression(-3, Some(0), None, 100);
        assert_eq!(add.update, "SET #counter = #counter + :delta, #version = #version + :one");
        assert!(add.condition.starts_with(LIVE) && add.condition.ends_with("#counter >= :lowest AND #counter <= :highest"));
        let number = |name: &str| match add.values.get(name) {
            Some(AttributeValue::N(value)) => value.clone(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!((number(":delta"), number(":lowest"), number(":one"), number(":now")), ("-3".into(), "3".into(), "1".into(), "100".into()));
        assert_eq!(number(":highest"), (i128::from(i64::MAX) + 3).to_string(), "no ceiling: the sum stays an i64");
        let extreme = add_expression(i64::MAX, Some(i64::MIN), Some(i64::MAX), 0);
        let lowest = match extreme.values.get(":lowest") {
            Some(AttributeValue::N(value)) => value.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(lowest, (i128::from(i64::MIN) - i128::from(i64::MAX)).to_string(), "shifting never overflows");
        let names = names_used_by(&format!("{} {}", add.update, add.condition));
        let mut used: Vec<&str> = names.values().map(String::as_str).collect();
        used.sort_unstable();
        assert_eq!(used, [COUNTER, EXPIRES_AT, PK, VERSION]);
    }

    #[test]
    fn a_counter_is_written_and_read_as_a_number() {
        let item = Item::new(ItemKey::new("p", "s"), 2, serde_json::json!({})).with_counter(-7);
        let attributes = item_attributes(&item).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(attributes.get(COUNTER), Some(&AttributeValue::N("-7".to_owned())));
        assert_eq!(to_item(&attributes, 0).unwrap_or_else(|error| panic!("{error:?}")), Some(item.clone()));
        let plain = item_attributes(&Item { counter: None, ..item }).unwrap_or_else(|error| panic!("{error:?}"));
        assert!(!plain.contains_key(COUNTER));
    }

    /// A stand-in DynamoDB endpoint on 127.0.0.1 that answers each connection with the next canned response and
    /// records each request's operation and body: emulators never report contention, so this is where the
    /// adapter's handling of it is checked.
    struct CannedDynamo {
        endpoint: String,
        requests: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
    }

    /// One canned answer: HTTP status, error type (for a failure) and JSON body.
    type Canned = (u16, Option<&'static str>, String);

    fn canned_dynamo(responses: Vec<Canned>) -> CannedDynamo {
        use std::io::{BufRead as _, Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("{error}"));
        let endpoint = format!("http://{}", listener.local_addr().unwrap_or_else(|error| panic!("{error}")));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for (status, error_type, body) in responses {
                let Ok((stream, _)) = listener.accept() else { return };
                let mut reader = std::io::BufReader::new(stream);
                let (mut target, mut length) = (String::new(), 0);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let (name, value) = line.split_once(':').unwrap_or_default();
                    match name.to_ascii_lowercase().as_str() {
                        "x-amz-target" => target = value.trim().to_owned(),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
                let mut request = vec![0; length];
                reader.read_exact(&mut request).unwrap_or_else(|error| panic!("{error}"));
                let request = serde_json::from_slice(&request).unwrap_or(serde_json::Value::Null);
                recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((target, request));
                let error_header = error_type.map(|kind| format!("x-amzn-ErrorType: {kind}\r\n")).unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 {status} Canned\r\nContent-Type: application/x-amz-json-1.0\r\n{error_header}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = reader.into_inner();
                stream.write_all(answer.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
            }
        });
        CannedDynamo { endpoint, requests }
    }

    impl CannedDynamo {
        /// A store whose client makes exactly one request per call (no SDK retries), so requests can be counted.
        fn store(&self) -> DynamoItemStore {
            let config = emulator_client(&self.endpoint)
                .config()
                .to_builder()
                .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                .build();
            DynamoItemStore::new(Client::from_conf(config), "canned", Arc::new(SystemClock))
        }

        fn requests(&self) -> Vec<(String, serde_json::Value)> {
            self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        }
    }

    fn cancelled(reasons: &[&str]) -> Canned {
        let reasons: Vec<serde_json::Value> = reasons.iter().map(|code| serde_json::json!({ "Code": code })).collect();
        let body = serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            "CancellationReasons": reasons,
        });
        (400, Some("TransactionCanceledException"), body.to_string())
    }

    fn succeeded() -> Canned {
        (200, None, "{}".to_owned())
    }

    fn two_adds() -> Vec<Write> {
        let add = |sk: &str| Write::Add { key: ItemKey::new("p", sk), delta: -1, floor: Some(0), ceiling: None };
        vec![add("a"), add("b")]
    }

    #[tokio::test]
    async fn a_transaction_cancelled_by_contention_is_retried_with_a_fresh_token() {
        let conflict = || cancelled(&["None", "TransactionConflict"]);
        let dynamo = canned_dynamo(vec![conflict(), conflict(), succeeded()]);
        let result = dynamo.store().transact(two_adds()).await;
        assert!(result.is_ok(), "{result:?}");
        let requests = dynamo.requests();
        assert!(requests.iter().all(|(target, _)| target == "DynamoDB_20120810.TransactWriteItems"), "{requests:?}");
        let tokens: std::collections::HashSet<&str> =
            requests.iter().filter_map(|(_, body)| body["ClientRequestToken"].as_str()).collect();
        assert_eq!((requests.len(), tokens.len()), (3, 3), "three tries, each with its own token");
        let update = &requests[0].1["TransactItems"][0]["Update"];
        assert_eq!(update["UpdateExpression"], "SET #counter = #counter + :delta, #version = #version + :one");
        assert_eq!(update["ExpressionAttributeValues"][":lowest"], serde_json::json!({ "N": "1" }));
    }

    #[tokio::test]
    async fn a_transaction_that_keeps_losing_reports_contention_after_its_tries() {
        let tries = usize::try_from(CONTENTION_ATTEMPTS).unwrap_or(usize::MAX);
        let dynamo = canned_dynamo(vec![cancelled(&["TransactionConflict", "None"]); tries]);
        let started = std::time::Instant::now();
        let result = dynamo.store().transact(two_adds()).await;
        assert!(matches!(result, Err(StoreError::Contention)), "{result:?}");
        assert_eq!(dynamo.requests().len(), tries);
        assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_failed_condition_beside_contention_is_reported_at_once() {
        let dynamo = canned_dynamo(vec![cancelled(&["TransactionConflict", "ConditionalCheckFailed"]), succeeded()]);
        let result = dynamo.store().transact(two_adds()).await;
        assert!(
            matches!(&result, Err(StoreError::ConditionFailed { index: 1, key }) if key == &ItemKey::new("p", "b")),
            "{result:?}"
        );
        assert_eq!(dynamo.requests().len(), 1, "a failed condition is not retried");
    }

    #[tokio::test]
    async fn a_single_write_refused_by_a_transaction_in_progress_is_retried() {
        let refused = || {
            let body = serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                "message": "Transaction is ongoing for the item",
            });
            (400, Some("TransactionConflictException"), body.to_string())
        };
        let dynamo = canned_dynamo(vec![refused(), succeeded(), refused(), succeeded()]);
        let store = dynamo.store();
        let item = Item::new(ItemKey::new("p", "s"), 1, serde_json::json!({})).with_counter(3);
        store.put(item, Condition::None).await.unwrap_or_else(|error| panic!("{error:?}"));
        store.delete(&ItemKey::new("p", "s"), Condition::Exists).await.unwrap_or_else(|error| panic!("{error:?}"));
        let targets: Vec<String> = dynamo.requests().into_iter().map(|(target, _)| target).collect();
        assert_eq!(targets, ["PutItem", "PutItem", "DeleteItem", "DeleteItem"].map(|op| format!("DynamoDB_20120810.{op}")));
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
        assert!(reports.len() >= 15, "the suite ran {} cases", reports.len());
        assert_eq!(contract::failures(&reports), "");
    }

    /// The host timer the native hosts give the catalog: tokio's.
    struct TokioTimer;

    impl crate::ports::Sleep for TokioTimer {
        fn sleep(&self, duration: Duration) -> crate::ports::SleepFuture {
            Box::pin(tokio::time::sleep(duration))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_concurrent_product_writes_all_land_in_the_index() {
        // As an admin's script creating products sixteen at a time, served by eight instances: every write moves
        // the index head, so most tries lose to another write; the backoff must spread them out before they run
        // out. Without the backoff 5 to 7 of the 48 ran out of tries in each of three runs on this machine. With
        // it and 16 tries, 1 of 48 ran out in one CI run and in one of six runs here (run beside the other store
        // tests, as the test command does); with 32 tries and the head and shard read together, none in ten.
        let Ok(endpoint) = std::env::var(DYNAMODB_ENDPOINT) else {
            eprintln!("\n!!!! SKIPPED: {DYNAMODB_ENDPOINT} is not set, so concurrent catalog writes were NOT tested.\n");
            return;
        };
        let run = uuid::Uuid::now_v7().simple().to_string();
        let store = DynamoItemStore::new(emulator_client(&endpoint), format!("burst-{run}"), Arc::new(SystemClock));
        store.create_table_if_missing().await.unwrap_or_else(|error| panic!("{error:#}"));
        let instances: Vec<_> = (0..8)
            .map(|_| crate::catalog::Catalog::new(store.clone()).with_backoff(Arc::new(TokioTimer), Arc::new(crate::adapters::system::OsRandom)))
            .collect();
        let ids = Arc::new(crate::adapters::system::UuidIds);
        let writes = (0..48).map(|number| {
            let (catalog, ids) = (instances[number % instances.len()].clone(), ids.clone());
            async move {
                let fields = crate::domain::product::NewProduct::new(
                    &format!("BURST-{number}"),
                    "Burst Lamp",
                    "Written in a burst.",
                    "lamps",
                    crate::domain::Money::new(100, crate::domain::Currency::EUR),
                    2,
                )
                .unwrap_or_else(|error| panic!("{error}"));
                catalog.create(fields, ids.as_ref(), &SystemClock).await
            }
        });
        let started = std::time::Instant::now();
        let outcomes: Vec<_> = futures::StreamExt::collect(futures::StreamExt::buffer_unordered(futures::stream::iter(writes), 16)).await;
        eprintln!("a burst of 48 product writes, 16 at a time, took {:?}", started.elapsed());
        let failed: Vec<String> = outcomes.iter().filter_map(|outcome| outcome.as_ref().err().map(|error| format!("{error:#}"))).collect();
        assert!(failed.is_empty(), "{} of 48 writes failed: {failed:?}", failed.len());
        let request = crate::domain::search::SearchRequest::new(crate::domain::SearchParams {
            text: Some("burst"),
            limit: Some(100),
            ..crate::domain::SearchParams::default()
        })
        .unwrap_or_else(|error| panic!("{error}"));
        let found = instances[0].search(&request, None).await.unwrap_or_else(|error| panic!("{error:#}"));
        assert_eq!(found.total, 48, "every acknowledged write is in the index");
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
