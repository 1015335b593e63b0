//! The item store contract (see `ports::item_store::ItemStore`), as named cases.

use serde_json::json;

use crate::contract::{CaseReport, Harness, ensure};
use crate::ports::item_store::{Condition, Cursor, Item, ItemKey, ItemStore, MAX_GET_MANY, Query, StoreError, Write};

fn item(pk: &str, sk: &str, version: u64, tag: &str) -> Item {
    Item::new(ItemKey::new(pk, sk), version, json!({ "tag": tag, "nested": { "n": version } }))
}

fn fmt_err<E: std::fmt::Debug>(error: E) -> String {
    format!("{error:?}")
}

fn is_condition_failed(result: &Result<(), StoreError>, expected_index: usize, expected_key: &ItemKey) -> bool {
    matches!(result, Err(StoreError::ConditionFailed { index, key }) if *index == expected_index && key == expected_key)
}

async fn tag_of<S: ItemStore>(store: &S, key: &ItemKey) -> Result<Option<String>, String> {
    let found = store.get(key).await.map_err(fmt_err)?;
    Ok(found.and_then(|item| item.data.get("tag").and_then(|tag| tag.as_str()).map(str::to_owned)))
}

async fn put_if_absent<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#absent");
    let first = item(&pk, "a", 1, "first");
    store.put(first.clone(), Condition::NotExists).await.map_err(fmt_err)?;
    let again = store.put(item(&pk, "a", 1, "second"), Condition::NotExists).await;
    ensure!(is_condition_failed(&again, 0, &first.key), "a second put-if-absent gave {again:?}");
    let stored = store.get(&first.key).await.map_err(fmt_err)?;
    ensure!(stored.as_ref() == Some(&first), "the stored item changed to {stored:?}");
    let on_absent = store.put(item(&pk, "b", 1, "x"), Condition::Exists).await;
    ensure!(is_condition_failed(&on_absent, 0, &ItemKey::new(&pk, "b")), "put-if-exists on nothing gave {on_absent:?}");
    ensure!(tag_of(store, &ItemKey::new(&pk, "b")).await?.is_none(), "put-if-exists on nothing wrote an item");
    Ok(())
}

async fn put_if_version_equals<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#version");
    store.put(item(&pk, "a", 1, "v1"), Condition::NotExists).await.map_err(fmt_err)?;
    store.put(item(&pk, "a", 2, "v2"), Condition::VersionEquals(1)).await.map_err(fmt_err)?;
    let stale = store.put(item(&pk, "a", 2, "stale"), Condition::VersionEquals(1)).await;
    ensure!(is_condition_failed(&stale, 0, &ItemKey::new(&pk, "a")), "a stale version gave {stale:?}");
    let stored = store.get(&ItemKey::new(&pk, "a")).await.map_err(fmt_err)?;
    ensure!(stored.as_ref().map(|i| (i.version, i.data.clone())) == Some((2, item(&pk, "a", 2, "v2").data)), "stored: {stored:?}");
    let on_absent = store.put(item(&pk, "b", 2, "x"), Condition::VersionEquals(1)).await;
    ensure!(is_condition_failed(&on_absent, 0, &ItemKey::new(&pk, "b")), "a version condition on nothing gave {on_absent:?}");
    Ok(())
}

async fn conditional_delete<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#delete");
    let key = ItemKey::new(&pk, "a");
    store.put(item(&pk, "a", 3, "v3"), Condition::None).await.map_err(fmt_err)?;
    let stale = store.delete(&key, Condition::VersionEquals(2)).await;
    ensure!(is_condition_failed(&stale, 0, &key), "a stale delete gave {stale:?}");
    ensure!(tag_of(store, &key).await?.as_deref() == Some("v3"), "a refused delete removed the item");
    store.delete(&key, Condition::VersionEquals(3)).await.map_err(fmt_err)?;
    ensure!(tag_of(store, &key).await?.is_none(), "a delete left the item");
    let absent = store.delete(&key, Condition::Exists).await;
    ensure!(is_condition_failed(&absent, 0, &key), "delete-if-exists on nothing gave {absent:?}");
    store.delete(&key, Condition::None).await.map_err(fmt_err)?;
    Ok(())
}

async fn query_pages_by_prefix<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#query");
    // Written out of order, with neighbours that must not show: another prefix and another partition.
    for number in (0..23).rev() {
        store.put(item(&pk, &format!("a#{number:03}"), 1, "a"), Condition::None).await.map_err(fmt_err)?;
    }
    for number in 0..4 {
        store.put(item(&pk, &format!("b#{number:03}"), 1, "b"), Condition::None).await.map_err(fmt_err)?;
    }
    store.put(item(&format!("{pk}x"), "a#000", 1, "other"), Condition::None).await.map_err(fmt_err)?;
    store.put(item(&pk, "a", 1, "shorter than the prefix"), Condition::None).await.map_err(fmt_err)?;
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..20 {
        let page = store.query(&Query::new(&pk, "a#", 5).after(cursor.take())).await.map_err(fmt_err)?;
        ensure!(page.items.len() <= 5, "a page of limit 5 held {} items", page.items.len());
        seen.extend(page.items.iter().map(|found| found.key.sk.clone()));
        // The cursor survives a round trip through its text form, as a client would carry it.
        match page.next {
            Some(next) => cursor = Some(Cursor::decode(&next.encode()).map_err(fmt_err)?),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|number| format!("a#{number:03}")).collect();
    ensure!(seen == expected, "paging saw {seen:?}");
    let all = store.query(&Query::new(&pk, "", 100)).await.map_err(fmt_err)?;
    ensure!(all.items.len() == 28 && all.next.is_none(), "the whole partition gave {} items", all.items.len());
    let sorted = all.items.windows(2).all(|pair| pair[0].key.sk.as_bytes() < pair[1].key.sk.as_bytes());
    ensure!(sorted, "the partition is not in byte-wise sort-key order");
    Ok(())
}

async fn query_resumes_after_a_deleted_item<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#resume");
    for sk in ["k1", "k2", "k3", "k4"] {
        store.put(item(&pk, sk, 1, sk), Condition::None).await.map_err(fmt_err)?;
    }
    let first = store.query(&Query::new(&pk, "k", 2)).await.map_err(fmt_err)?;
    let next = first.next.ok_or("the first page of four items by two had no cursor")?;
    store.delete(&ItemKey::new(&pk, "k2"), Condition::None).await.map_err(fmt_err)?;
    let rest = store.query(&Query::new(&pk, "k", 10).after(Some(next))).await.map_err(fmt_err)?;
    let sks: Vec<&str> = rest.items.iter().map(|found| found.key.sk.as_str()).collect();
    ensure!(sks == ["k3", "k4"] && rest.next.is_none(), "resumed to {sks:?}");
    Ok(())
}

async fn expired_items_are_invisible<S: ItemStore, H: Harness>(store: &S, harness: &H, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#ttl");
    let now = harness.now().as_secs();
    let mut expired = item(&pk, "expired", 1, "old");
    expired.expires_at = Some(now - 5);
    let mut live = item(&pk, "live", 1, "fresh");
    live.expires_at = Some(now + 3600);
    store.put(expired.clone(), Condition::None).await.map_err(fmt_err)?;
    store.put(live.clone(), Condition::None).await.map_err(fmt_err)?;
    ensure!(store.get(&expired.key).await.map_err(fmt_err)?.is_none(), "get returned an expired item");
    let listed = store.query(&Query::new(&pk, "", 10)).await.map_err(fmt_err)?;
    let sks: Vec<&str> = listed.items.iter().map(|found| found.key.sk.as_str()).collect();
    ensure!(sks == ["live"], "the query listed {sks:?}");
    let stored = store.get(&live.key).await.map_err(fmt_err)?;
    ensure!(stored.as_ref().and_then(|found| found.expires_at) == live.expires_at, "expiry not kept: {stored:?}");
    // An expired item counts as absent: put-if-absent succeeds over it and version conditions fail on it.
    let on_expired = store.put(item(&pk, "expired", 2, "reborn"), Condition::VersionEquals(1)).await;
    ensure!(is_condition_failed(&on_expired, 0, &expired.key), "a version condition held on an expired item");
    store.put(item(&pk, "expired", 1, "reborn"), Condition::NotExists).await.map_err(fmt_err)?;
    ensure!(tag_of(store, &expired.key).await?.as_deref() == Some("reborn"), "put-if-absent over an expired item lost");
    Ok(())
}

async fn a_failed_transaction_changes_nothing<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#tx");
    store.put(item(&pk, "held", 1, "held v1"), Condition::None).await.map_err(fmt_err)?;
    store.put(item(&pk, "doomed", 1, "doomed"), Condition::None).await.map_err(fmt_err)?;
    let writes = vec![
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::NotExists },
        Write::Delete { key: ItemKey::new(&pk, "doomed"), condition: Condition::Exists },
        Write::Put { item: item(&pk, "held", 2, "held v2"), condition: Condition::VersionEquals(7) },
    ];
    let result = store.transact(writes).await;
    ensure!(is_condition_failed(&result, 2, &ItemKey::new(&pk, "held")), "the transaction gave {result:?}");
    ensure!(tag_of(store, &ItemKey::new(&pk, "new")).await?.is_none(), "a failed transaction created an item");
    ensure!(tag_of(store, &ItemKey::new(&pk, "doomed")).await?.is_some(), "a failed transaction deleted an item");
    ensure!(tag_of(store, &ItemKey::new(&pk, "held")).await?.as_deref() == Some("held v1"), "a failed transaction updated");
    let check = vec![
        Write::Check { key: ItemKey::new(&pk, "missing"), condition: Condition::Exists },
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::None },
    ];
    let checked = store.transact(check).await;
    ensure!(is_condition_failed(&checked, 0, &ItemKey::new(&pk, "missing")), "a failed check gave {checked:?}");
    ensure!(tag_of(store, &ItemKey::new(&pk, "new")).await?.is_none(), "a failed check let a write through");
    Ok(())
}

async fn a_transaction_applies_every_write<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#tx-ok");
    store.put(item(&pk, "held", 1, "held v1"), Condition::None).await.map_err(fmt_err)?;
    store.put(item(&pk, "doomed", 1, "doomed"), Condition::None).await.map_err(fmt_err)?;
    let writes = vec![
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::NotExists },
        Write::Delete { key: ItemKey::new(&pk, "doomed"), condition: Condition::VersionEquals(1) },
        Write::Put { item: item(&pk, "held", 2, "held v2"), condition: Condition::VersionEquals(1) },
        Write::Check { key: ItemKey::new(&pk, "held"), condition: Condition::Exists },
    ];
    // Two writes to one key are refused before anything is written, as DynamoDB does.
    let duplicate = store.transact(writes.clone()).await;
    ensure!(matches!(duplicate, Err(StoreError::Invalid(_))), "a transaction naming a key twice gave {duplicate:?}");
    store.transact(writes[..3].to_vec()).await.map_err(fmt_err)?;
    ensure!(tag_of(store, &ItemKey::new(&pk, "new")).await?.as_deref() == Some("new"), "the put did not apply");
    ensure!(tag_of(store, &ItemKey::new(&pk, "doomed")).await?.is_none(), "the delete did not apply");
    ensure!(tag_of(store, &ItemKey::new(&pk, "held")).await?.as_deref() == Some("held v2"), "the update did not apply");
    Ok(())
}

/// The largest counter every backend holds exactly (D1 carries numbers as JavaScript numbers).
const LARGEST_COUNTER: i64 = (1 << 53) - 1;

fn add(key: &ItemKey, delta: i64, floor: Option<i64>, ceiling: Option<i64>) -> Write {
    Write::Add { key: key.clone(), delta, floor, ceiling }
}

/// The counter and version of the live item under `key`, or `None` when there is none.
async fn counter_of<S: ItemStore>(store: &S, key: &ItemKey) -> Result<Option<(Option<i64>, u64)>, String> {
    Ok(store.get(key).await.map_err(fmt_err)?.map(|found| (found.counter, found.version)))
}

async fn counters_are_stored_and_read_back<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#counter-read");
    let counted =
        [("a", Some(7)), ("b", None), ("c", Some(-12)), ("d", Some(0)), ("e", Some(LARGEST_COUNTER)), ("f", Some(-LARGEST_COUNTER))];
    for (sk, counter) in counted {
        let mut written = item(&pk, sk, 1, sk);
        written.counter = counter;
        store.put(written.clone(), Condition::NotExists).await.map_err(fmt_err)?;
        let stored = store.get(&written.key).await.map_err(fmt_err)?;
        ensure!(stored.as_ref() == Some(&written), "get gave {stored:?} for {written:?}");
    }
    let listed = store.query(&Query::new(&pk, "", 10)).await.map_err(fmt_err)?;
    let counters: Vec<(&str, Option<i64>)> = listed.items.iter().map(|found| (found.key.sk.as_str(), found.counter)).collect();
    ensure!(counters == counted, "the query read back {counters:?}");
    Ok(())
}

async fn an_add_within_bounds_applies<S: ItemStore, H: Harness>(store: &S, harness: &H, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#counter-add");
    let mut stock = item(&pk, "stock", 3, "stock").with_counter(10);
    stock.expires_at = Some(harness.now().as_secs() + 3600);
    store.put(stock.clone(), Condition::NotExists).await.map_err(fmt_err)?;
    store.put(item(&pk, "other", 1, "other"), Condition::None).await.map_err(fmt_err)?;
    store.transact(vec![add(&stock.key, -4, Some(0), Some(100))]).await.map_err(fmt_err)?;
    let stored = store.get(&stock.key).await.map_err(fmt_err)?.ok_or("the counter's item went away")?;
    let expected = Item { counter: Some(6), version: 4, ..stock.clone() };
    ensure!(stored == expected, "after adding -4 to 10 the item is {stored:?}, not {expected:?}");
    // No bounds; then down to exactly the floor, beside other writes of the same transaction.
    store.transact(vec![add(&stock.key, 5, None, None)]).await.map_err(fmt_err)?;
    let writes = vec![
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::NotExists },
        add(&stock.key, -11, Some(0), None),
        Write::Delete { key: ItemKey::new(&pk, "other"), condition: Condition::Exists },
    ];
    store.transact(writes).await.map_err(fmt_err)?;
    let stored = store.get(&stock.key).await.map_err(fmt_err)?.ok_or("the counter's item went away")?;
    let expected = Item { counter: Some(0), version: 6, ..stock };
    ensure!(stored == expected, "after +5 and -11 the item is {stored:?}, not {expected:?}");
    ensure!(tag_of(store, &ItemKey::new(&pk, "new")).await?.as_deref() == Some("new"), "the put beside the add did not apply");
    ensure!(tag_of(store, &ItemKey::new(&pk, "other")).await?.is_none(), "the delete beside the add did not apply");
    // Up to exactly the ceiling.
    store.transact(vec![add(&stored.key, 9, None, Some(9))]).await.map_err(fmt_err)?;
    let counter = counter_of(store, &stored.key).await?;
    ensure!(counter == Some((Some(9), 7)), "adding 9 to 0 under a ceiling of 9 gave {counter:?}");
    Ok(())
}

async fn an_add_past_a_bound_fails_and_changes_nothing<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#counter-bounds");
    let stock = ItemKey::new(&pk, "stock");
    let other = ItemKey::new(&pk, "other");
    let new = ItemKey::new(&pk, "new");
    store.put(item(&pk, "stock", 2, "stock").with_counter(10), Condition::None).await.map_err(fmt_err)?;
    store.put(item(&pk, "other", 1, "other").with_counter(1), Condition::None).await.map_err(fmt_err)?;
    let past_floor = vec![
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::NotExists },
        add(&other, 1, None, None),
        add(&stock, -11, Some(0), None),
    ];
    let result = store.transact(past_floor).await;
    ensure!(is_condition_failed(&result, 2, &stock), "taking 11 of 10 above a floor of 0 gave {result:?}");
    let past_ceiling = vec![
        Write::Delete { key: other.clone(), condition: Condition::Exists },
        add(&stock, 1, Some(0), Some(10)),
        Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::None },
    ];
    let result = store.transact(past_ceiling).await;
    ensure!(is_condition_failed(&result, 1, &stock), "adding 1 to 10 under a ceiling of 10 gave {result:?}");
    let past_i64 = vec![add(&stock, i64::MAX, None, None)];
    let result = store.transact(past_i64).await;
    ensure!(
        is_condition_failed(&result, 0, &stock) || matches!(result, Err(StoreError::Invalid(_))),
        "an add past the range of i64 gave {result:?}"
    );
    let counters = (counter_of(store, &stock).await?, counter_of(store, &other).await?);
    ensure!(counters == (Some((Some(10), 2)), Some((Some(1), 1))), "failed adds changed the counters to {counters:?}");
    ensure!(tag_of(store, &new).await?.is_none(), "a failed add let a put of its transaction through");
    Ok(())
}

async fn an_add_needs_a_live_item_with_a_counter<S: ItemStore, H: Harness>(
    store: &S,
    harness: &H,
    ns: &str,
) -> Result<(), String> {
    let pk = format!("{ns}#counter-absent");
    let plain = ItemKey::new(&pk, "plain");
    let counted = ItemKey::new(&pk, "counted");
    let missing = ItemKey::new(&pk, "missing");
    let mut expired = item(&pk, "expired", 1, "expired").with_counter(5);
    expired.expires_at = Some(harness.now().as_secs() - 5);
    store.put(item(&pk, "plain", 1, "plain"), Condition::None).await.map_err(fmt_err)?;
    store.put(item(&pk, "counted", 1, "counted").with_counter(3), Condition::None).await.map_err(fmt_err)?;
    store.put(expired.clone(), Condition::None).await.map_err(fmt_err)?;
    let on_missing = vec![add(&counted, -1, Some(0), None), add(&missing, 1, None, None)];
    let result = store.transact(on_missing).await;
    ensure!(is_condition_failed(&result, 1, &missing), "an add on no item gave {result:?}");
    let on_plain = vec![add(&plain, 1, None, None), Write::Put { item: item(&pk, "new", 1, "new"), condition: Condition::None }];
    let result = store.transact(on_plain).await;
    ensure!(is_condition_failed(&result, 0, &plain), "an add on an item without a counter gave {result:?}");
    let on_expired = vec![
        Write::Check { key: plain.clone(), condition: Condition::Exists },
        add(&expired.key, 1, None, None),
        add(&counted, 1, None, None),
    ];
    let result = store.transact(on_expired).await;
    ensure!(is_condition_failed(&result, 1, &expired.key), "an add on an expired item gave {result:?}");
    ensure!(counter_of(store, &counted).await? == Some((Some(3), 1)), "a failed transaction changed a counter beside it");
    ensure!(counter_of(store, &plain).await? == Some((None, 1)), "an add gave an item without a counter one");
    ensure!(counter_of(store, &missing).await?.is_none(), "an add on no item created one");
    ensure!(tag_of(store, &ItemKey::new(&pk, "new")).await?.is_none(), "a failed add let a put of its transaction through");
    ensure!(store.get(&expired.key).await.map_err(fmt_err)?.is_none(), "an add revived an expired item");
    Ok(())
}

async fn a_put_without_a_counter_removes_it<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#counter-removed");
    let key = ItemKey::new(&pk, "a");
    store.put(item(&pk, "a", 1, "counted").with_counter(4), Condition::NotExists).await.map_err(fmt_err)?;
    store.put(item(&pk, "a", 2, "plain"), Condition::VersionEquals(1)).await.map_err(fmt_err)?;
    let stored = store.get(&key).await.map_err(fmt_err)?;
    ensure!(stored.as_ref() == Some(&item(&pk, "a", 2, "plain")), "a put without a counter left {stored:?}");
    let result = store.transact(vec![add(&key, 1, None, None)]).await;
    ensure!(is_condition_failed(&result, 0, &key), "an add after the counter was removed gave {result:?}");
    // A put with a counter gives the item one again, as given.
    store.transact(vec![Write::Put { item: item(&pk, "a", 3, "counted again").with_counter(-2), condition: Condition::Exists }])
        .await
        .map_err(fmt_err)?;
    store.transact(vec![add(&key, 2, Some(0), None)]).await.map_err(fmt_err)?;
    let counter = counter_of(store, &key).await?;
    ensure!(counter == Some((Some(0), 4)), "a counter put back by a transaction then raised by 2 is {counter:?}");
    Ok(())
}

/// Takes one from the counter under `key` unless that would take it below zero. [`StoreError::Contention`]
/// means "nothing written, try again", so it is tried again, a bounded number of times.
async fn take_one<S: ItemStore>(store: &S, key: &ItemKey) -> Result<(), StoreError> {
    const TRIES: usize = 20;
    for _ in 1..TRIES {
        match store.transact(vec![add(key, -1, Some(0), None)]).await {
            Err(StoreError::Contention) => {}
            outcome => return outcome,
        }
    }
    store.transact(vec![add(key, -1, Some(0), None)]).await
}

async fn concurrent_adds_never_pass_the_floor<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    const TAKERS: usize = 20;
    const STOCK: usize = 7;
    let pk = format!("{ns}#counter-race");
    let key = ItemKey::new(&pk, "stock");
    let stock = i64::try_from(STOCK).map_err(fmt_err)?;
    store.put(item(&pk, "stock", 1, "stock").with_counter(stock), Condition::NotExists).await.map_err(fmt_err)?;
    let outcomes = futures::future::join_all((0..TAKERS).map(|_| take_one(store, &key))).await;
    let taken = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes.iter().filter(|outcome| is_condition_failed(outcome, 0, &key)).count();
    let others: Vec<String> =
        outcomes.iter().filter(|outcome| !outcome.is_ok() && !is_condition_failed(outcome, 0, &key)).map(fmt_err).collect();
    ensure!(others.is_empty(), "concurrent adds failed otherwise: {others:?}");
    ensure!(taken == STOCK && refused == TAKERS - STOCK, "{TAKERS} takers of {STOCK}: {taken} took one, {refused} were refused");
    let counter = counter_of(store, &key).await?;
    ensure!(counter == Some((Some(0), 1 + STOCK as u64)), "after the race the counter and version are {counter:?}");
    Ok(())
}

async fn get_many_reads_live_items_in_the_order_asked<S: ItemStore, H: Harness>(store: &S, harness: &H, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#many");
    for sk in ["a", "b", "c"] {
        store.put(item(&pk, sk, 1, sk), Condition::None).await.map_err(fmt_err)?;
    }
    let mut expired = item(&pk, "gone", 1, "gone");
    expired.expires_at = Some(harness.now().as_secs() - 5);
    store.put(expired, Condition::None).await.map_err(fmt_err)?;
    let other = format!("{ns}#many-other");
    store.put(item(&other, "a", 1, "other"), Condition::None).await.map_err(fmt_err)?;
    let keys: Vec<ItemKey> = [(&pk, "c"), (&pk, "absent"), (&other, "a"), (&pk, "gone"), (&pk, "a")]
        .iter()
        .map(|(pk, sk)| ItemKey::new(pk.as_str(), *sk))
        .collect();
    let found = store.get_many(&keys).await.map_err(fmt_err)?;
    let tags: Vec<String> = found.iter().map(|found| found.data["tag"].as_str().unwrap_or_default().to_owned()).collect();
    ensure!(tags == ["c", "other", "a"], "get_many returned {tags:?}");
    ensure!(found.first().map(|first| &first.key) == keys.first(), "the first item came back under {:?}", found.first().map(|f| &f.key));
    ensure!(store.get_many(&[]).await.map_err(fmt_err)?.is_empty(), "no keys, yet items");
    let twice = store.get_many(&[keys[0].clone(), keys[0].clone()]).await;
    ensure!(matches!(twice, Err(StoreError::Invalid(_))), "a repeated key gave {twice:?}");
    let too_many: Vec<ItemKey> = (0..=MAX_GET_MANY).map(|n| ItemKey::new(pk.as_str(), format!("k{n}"))).collect();
    let refused = store.get_many(&too_many).await;
    ensure!(matches!(refused, Err(StoreError::Invalid(_))), "{} keys gave {refused:?}", too_many.len());
    Ok(())
}

async fn bad_requests_are_refused<S: ItemStore>(store: &S, ns: &str) -> Result<(), String> {
    let pk = format!("{ns}#bad");
    let empty = store.transact(Vec::new()).await;
    ensure!(matches!(empty, Err(StoreError::Invalid(_))), "an empty transaction gave {empty:?}");
    let zero = store.query(&Query::new(&pk, "", 0)).await;
    ensure!(matches!(zero, Err(StoreError::Invalid(_))), "a query of limit 0 gave {zero:?}");
    let empty_key = store.get(&ItemKey::new(&pk, "")).await;
    ensure!(matches!(empty_key, Err(StoreError::Invalid(_))), "an empty sort key gave {empty_key:?}");
    let forged = Cursor::decode("not a cursor!");
    ensure!(matches!(forged, Err(StoreError::InvalidCursor)), "a malformed cursor decoded: {forged:?}");
    Ok(())
}

/// Runs every item store case against `store`, in partitions prefixed by `namespace` (unique per run).
pub async fn run<S: ItemStore, H: Harness>(store: &S, harness: &H, namespace: &str) -> Vec<CaseReport> {
    vec![
        CaseReport { name: "put if absent refuses a second put", outcome: put_if_absent(store, namespace).await },
        CaseReport { name: "put if version equals refuses a stale version", outcome: put_if_version_equals(store, namespace).await },
        CaseReport { name: "conditional delete", outcome: conditional_delete(store, namespace).await },
        CaseReport { name: "query pages by prefix in order", outcome: query_pages_by_prefix(store, namespace).await },
        CaseReport { name: "query resumes after a deleted item", outcome: query_resumes_after_a_deleted_item(store, namespace).await },
        CaseReport { name: "expired items are invisible", outcome: expired_items_are_invisible(store, harness, namespace).await },
        CaseReport { name: "a failed transaction changes nothing", outcome: a_failed_transaction_changes_nothing(store, namespace).await },
        CaseReport { name: "a transaction applies every write", outcome: a_transaction_applies_every_write(store, namespace).await },
        CaseReport { name: "bad requests are refused", outcome: bad_requests_are_refused(store, namespace).await },
        CaseReport {
            name: "get_many reads live items in the order asked",
            outcome: get_many_reads_live_items_in_the_order_asked(store, harness, namespace).await,
        },
        CaseReport { name: "counters are stored and read back", outcome: counters_are_stored_and_read_back(store, namespace).await },
        CaseReport { name: "an add within bounds applies", outcome: an_add_within_bounds_applies(store, harness, namespace).await },
        CaseReport {
            name: "an add past a bound fails and changes nothing",
            outcome: an_add_past_a_bound_fails_and_changes_nothing(store, namespace).await,
        },
        CaseReport {
            name: "an add needs a live item with a counter",
            outcome: an_add_needs_a_live_item_with_a_counter(store, harness, namespace).await,
        },
        CaseReport { name: "a put without a counter removes it", outcome: a_put_without_a_counter_removes_it(store, namespace).await },
        CaseReport {
            name: "concurrent adds never pass the floor",
            outcome: concurrent_adds_never_pass_the_floor(store, namespace).await,
        },
    ]
}
