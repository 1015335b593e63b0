//! End-to-end catalog scenarios: health, search, filters, pagination and conditional reads, over HTTP against
//! the host under test (see `tests::base_url`). Expectations are computed from the catalog the host serves,
//! never hard-coded, so they hold on any host seeded with the demo catalog.

use std::collections::BTreeSet;

use serde_json::Value;
use tests::Api;

fn text(item: &Value, field: &str) -> String {
    item[field].as_str().unwrap_or_default().to_lowercase()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| item["id"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn health_answers_ok_with_a_request_id() {
    let api = Api::new();
    let answer = api.send(reqwest::Method::GET, "/health", &[("x-request-id", "scenario-health-1")], None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["status"], "ok");
    assert_eq!(answer.header("x-request-id"), Some("scenario-health-1"));
}

#[tokio::test]
async fn the_catalog_lists_every_demo_product_once_in_id_order() {
    let api = Api::new();
    let all = api.walk_products("limit=100").await;
    assert!(all.len() >= 200, "the catalog holds {} products", all.len());
    let listed = ids(&all);
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed, sorted, "the catalog is not in strictly ascending id order");
    let categories: BTreeSet<String> = all.iter().map(|item| text(item, "category")).collect();
    assert!(categories.len() >= 5, "categories: {categories:?}");
}

#[tokio::test]
async fn a_word_search_finds_exactly_the_products_that_mention_it() {
    let api = Api::new();
    let all = api.walk_products("limit=100").await;
    let mentions = |item: &Value, word: &str| {
        [text(item, "name"), text(item, "description"), text(item, "category")].iter().any(|field| {
            field.split(|character: char| !character.is_alphanumeric()).any(|token| token == word || token == format!("{word}s"))
        })
    };
    for word in ["walnut", "lamp", "kitchen"] {
        let found = api.walk_products(&format!("q={word}&limit=50")).await;
        let expected: Vec<String> = ids(&all.iter().filter(|item| mentions(item, word)).cloned().collect::<Vec<_>>());
        assert!(!expected.is_empty(), "the catalog has no product mentioning {word}");
        assert_eq!(ids(&found), expected, "q={word}");
    }
    // Every word must match, in any order and any case.
    let both = api.walk_products("q=LAMPS%20Walnut").await;
    let expected: Vec<String> =
        ids(&all.iter().filter(|item| mentions(item, "walnut") && mentions(item, "lamp")).cloned().collect::<Vec<_>>());
    assert!(!expected.is_empty());
    assert_eq!(ids(&both), expected);
    let nothing = api.get("/products?q=zeppelin").await;
    assert_eq!(nothing.status, 200);
    assert_eq!(nothing.json["items"].as_array().map(Vec::len), Some(0));
    assert!(nothing.json.get("next_cursor").is_none());
}

#[tokio::test]
async fn category_and_price_filters_narrow_the_results() {
    let api = Api::new();
    let all = api.walk_products("limit=100").await;
    let price = |item: &Value| item["price"]["amount"].as_i64().unwrap_or(-1);
    let found = api.walk_products("category=kitchen&min_price=5000&max_price=15000&limit=10").await;
    let expected: Vec<Value> = all
        .iter()
        .filter(|item| text(item, "category") == "kitchen" && (5000..=15000).contains(&price(item)))
        .cloned()
        .collect();
    assert!(!expected.is_empty(), "the demo catalog has no kitchen product in range");
    assert_eq!(ids(&found), ids(&expected));
    let searched = api.walk_products("q=oak&max_price=9000").await;
    assert!(searched.iter().all(|item| price(item) <= 9000 && text(item, "name").contains("oak")));
    assert!(!searched.is_empty());
}

#[tokio::test]
async fn pages_of_any_size_cover_the_same_results_without_gaps_or_repeats() {
    let api = Api::new();
    let whole = ids(&api.walk_products("category=garden&limit=100").await);
    let paged = ids(&api.walk_products("category=garden&limit=7").await);
    assert!(whole.len() > 7, "garden holds {} products", whole.len());
    assert_eq!(paged, whole);
    let first = api.get("/products?category=garden&limit=7").await;
    assert_eq!(first.json["items"].as_array().map(Vec::len), Some(7));
    assert!(first.json["next_cursor"].is_string());
}

#[tokio::test]
async fn a_product_is_served_with_an_etag_and_revalidates_with_304() {
    let api = Api::new();
    let listed = api.get("/products?q=brass&limit=1").await;
    let id = listed.json["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "no brass product: {}", listed.text);
    let first = api.get(&format!("/products/{id}")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["id"], id.as_str());
    assert_eq!(first.json, listed.json["items"][0], "the product differs from its search listing");
    let etag = first.header("etag").unwrap_or_default().to_owned();
    assert_eq!(etag, format!("\"{}\"", first.json["version"]));
    let path = format!("/products/{id}");
    let revalidated = api.send(reqwest::Method::GET, &path, &[("if-none-match", &etag)], None).await;
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.text.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    let weak = format!("\"0\", W/{etag}");
    assert_eq!(api.send(reqwest::Method::GET, &path, &[("if-none-match", &weak)], None).await.status, 304);
    let stale = api.send(reqwest::Method::GET, &path, &[("if-none-match", "\"999999\"")], None).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.json["id"], id.as_str());
}
