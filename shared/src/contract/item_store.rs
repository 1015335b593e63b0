//! The item store contract (see `ports::item_store::ItemStore`), as named cases.

use serde_json::json;

use crate::contract::{CaseReport, Harness, ensure};
use crate::ports::item_store::{Condition, Cursor, Item, ItemKey, ItemStore, Query, StoreError, Write};

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
    ]
}
