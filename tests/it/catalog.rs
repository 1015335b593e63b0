//! End-to-end catalog scenarios: health, search (prefixes, typos, accents, ranking, sorting, facets), filters,
//! pagination and conditional reads, over HTTP against the host under test (see `tests::base_url`).
//! Expectations are computed from the catalog the host serves, never hard-coded, so they hold on any host
//! seeded with the demo catalog.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Api, unique};

/// The category of the products these scenarios create, so no other scenario's listing sees them.
const SEARCH_CATEGORY: &str = "search-scenarios";

fn text(item: &Value, field: &str) -> String {
    item[field].as_str().unwrap_or_default().to_lowercase()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| item["id"].as_str().unwrap_or_default().to_owned()).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The words of a product's name, category and description, lower-cased and split as the search does (accents
/// are left alone: the demo catalog has none).
fn words(item: &Value) -> Vec<String> {
    [text(item, "name"), text(item, "category"), text(item, "description")]
        .iter()
        .flat_map(|field| field.split(|character: char| !character.is_alphanumeric()).map(str::to_owned).collect::<Vec<_>>())
        .filter(|word| !word.is_empty())
        .collect()
}

fn name_words(item: &Value) -> Vec<String> {
    text(item, "name").split(|character: char| !character.is_alphanumeric()).map(str::to_owned).collect()
}

/// Creates a product in [`SEARCH_CATEGORY`] as the admin and returns its id.
async fn create(api: &Api, name: &str, description: &str, amount: i64) -> String {
    let admin = crate::admin::admin(api).await;
    let body = json!({
        "sku": unique("SRCH-"),
        "name": name,
        "description": description,
        "category": SEARCH_CATEGORY,
        "price": { "amount": amount, "currency": "EUR" },
        "stock": 5
    });
    let created = api.call(Method::POST, "/products", Some(&admin.access), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap_or_default().to_owned()
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
        let found = api.walk_products(&format!("q={word}%20&limit=50")).await;
        let expected: Vec<String> = ids(&all.iter().filter(|item| mentions(item, word)).cloned().collect::<Vec<_>>());
        assert!(!expected.is_empty(), "the catalog has no product mentioning {word}");
        assert_eq!(sorted(ids(&found)), expected, "q={word}");
    }
    // Every word must match, in any order and any case.
    let both = api.walk_products("q=LAMPS%20Walnut%20").await;
    let expected: Vec<String> =
        ids(&all.iter().filter(|item| mentions(item, "walnut") && mentions(item, "lamp")).cloned().collect::<Vec<_>>());
    assert!(!expected.is_empty());
    assert_eq!(sorted(ids(&both)), expected);
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

#[tokio::test]
async fn a_prefix_finds_walnut_products_first() {
    let api = Api::new();
    let all = api.walk_products("limit=100").await;
    let walnut_named = all.iter().filter(|item| name_words(item).iter().any(|word| word == "walnut")).count();
    assert!(walnut_named >= 10, "the demo catalog names {walnut_named} walnut products");
    let found = api.walk_products("q=wal&limit=25").await;
    assert!(found.len() > walnut_named, "`wal` also begins other words (wall): {} results", found.len());
    for (position, item) in found.iter().take(walnut_named).enumerate() {
        assert!(name_words(item).iter().any(|word| word == "walnut"), "result {position} is {}", item["name"]);
    }
    for item in &found {
        assert!(words(item).iter().any(|word| word.starts_with("wal")), "{} does not begin a word with wal", item["name"]);
    }
    let single = api.get("/products?q=a").await;
    assert_eq!(single.status, 200, "{}", single.text);
    let items = single.json["items"].as_array().cloned().unwrap_or_default();
    assert!(!items.is_empty(), "one letter finds the words it begins");
    assert!(items.iter().all(|item| words(item).iter().any(|word| word.len() >= 2 && word.starts_with('a'))));
}

#[tokio::test]
async fn a_typo_is_forgiven_and_ranks_below_nothing_it_should() {
    let api = Api::new();
    let all = api.walk_products("limit=100").await;
    let walnut_lamps: Vec<String> = ids(&all
        .iter()
        .filter(|item| {
            let words = words(item);
            words.iter().any(|word| word == "walnut") && words.iter().any(|word| word.starts_with("lamp"))
        })
        .cloned()
        .collect::<Vec<_>>());
    assert!(!walnut_lamps.is_empty());
    let found = api.walk_products("q=walnt%20lamp").await;
    assert_eq!(sorted(ids(&found)), walnut_lamps, "walnt lamp");
    // Four letters take no typo, so `lamb ` is not `lamp`; a word no product has is dropped and reported.
    let lamb = api.get("/products?q=lamb%20").await;
    assert_eq!((lamb.status, lamb.json["total"].as_u64()), (200, Some(0)), "{}", lamb.text);
    let dropped = api.get("/products?q=walnut%20zeppelin%20&limit=100").await;
    assert_eq!(dropped.json["ignored_words"], json!(["zeppelin"]), "{}", dropped.text);
    assert!(dropped.json["total"].as_u64().unwrap_or_default() >= walnut_lamps.len() as u64);
}

#[tokio::test]
async fn accents_are_folded_and_a_name_match_ranks_above_a_description_match() {
    let api = Api::new();
    let word = unique("zq");
    let described = create(&api, &format!("Plain Tray {word}x"), &format!("Goes with any {word} set."), 1500).await;
    let named = create(&api, &format!("Café {word} Table"), "A small round table.", 9900).await;
    let found = api.walk_products(&format!("q={word}%20")).await;
    assert_eq!(ids(&found), [named.clone(), described.clone()], "the name match first, whatever the ids");
    for query in ["cafe", "CAFÉ", "caf%C3%A9%20"] {
        let cafes = api.walk_products(&format!("q={query}&limit=100")).await;
        assert!(ids(&cafes).contains(&named), "q={query} misses the Café product");
    }
    let cafes = api.get(&format!("/products?q=cafe%20{word}")).await;
    assert_eq!(ids(cafes.json["items"].as_array().map(Vec::as_slice).unwrap_or_default()), [named]);
}

#[tokio::test]
async fn sorting_by_price_holds_across_pages_with_no_repeats_or_gaps() {
    let api = Api::new();
    for (sort, ascending) in [("price_asc", true), ("price_desc", false)] {
        let whole = api.walk_products(&format!("category=lighting&sort={sort}&limit=100")).await;
        let paged = api.walk_products(&format!("category=lighting&sort={sort}&limit=4")).await;
        assert!(whole.len() > 8, "lighting holds {} products", whole.len());
        assert_eq!(ids(&paged), ids(&whole), "{sort}: pages of 4 differ from one page");
        let distinct: BTreeSet<String> = ids(&paged).into_iter().collect();
        assert_eq!(distinct.len(), paged.len(), "{sort}: a product came twice");
        let prices: Vec<i64> = paged.iter().map(|item| item["price"]["amount"].as_i64().unwrap_or(-1)).collect();
        let mut ordered = prices.clone();
        ordered.sort_unstable();
        if !ascending {
            ordered.reverse();
        }
        assert_eq!(prices, ordered, "{sort}");
    }
    let unsorted = api.walk_products("category=lighting&limit=100").await;
    let by_price = api.walk_products("category=lighting&sort=price_asc&limit=100").await;
    assert_eq!(sorted(ids(&unsorted)), sorted(ids(&by_price)), "sorting changed which products match");
    let bad = api.get("/products?sort=cheapest").await;
    assert_eq!((bad.status, bad.problem_code()), (400, Some("invalid_parameter")), "{}", bad.text);
    assert_eq!(bad.json["param"], "sort");
}

#[tokio::test]
async fn facet_counts_equal_the_matching_products_of_each_category() {
    let api = Api::new();
    let answer = api.get("/products?q=walnut%20&category=lighting&limit=3").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let facets = answer.json["facets"]["category"].as_object().cloned().unwrap_or_default();
    assert!(facets.len() >= 5, "walnut products in {} categories", facets.len());
    let lighting = api.walk_products("q=walnut%20&category=lighting").await;
    assert_eq!(answer.json["total"].as_u64(), Some(lighting.len() as u64), "the total counts every page");
    let mut sum = 0;
    for (category, count) in &facets {
        let found = api.walk_products(&format!("q=walnut%20&category={category}")).await;
        assert_eq!(Some(found.len() as u64), count.as_u64(), "{category}");
        sum += found.len();
    }
    let everywhere = api.walk_products("q=walnut%20").await;
    assert_eq!(sum, everywhere.len(), "the facets cover every match once");
}
