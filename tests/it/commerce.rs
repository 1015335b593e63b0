//! End-to-end commerce scenarios, as DESIGN.md's "Commerce wire contract" states them: carts (`/cart`), discount
//! codes (`/discounts`, `/cart/discount`), checkout with `Idempotency-Key` and each outcome of the sandbox payment
//! provider (`tok_success`, `tok_decline`, `tok_timeout_once`, `tok_timeout`), its ledger
//! (`/payments/sandbox/charges`), and orders (`/orders`, paging, cancellation). The races at the end prove
//! invariant 1 (stock never goes below zero; sold + in stock = initial + restocked), invariant 2 (one key makes
//! at most one order and one charge) and a discount's usage limit under concurrent checkouts; invariant 6 (one
//! user never reaches another's cart or orders) is checked wherever a scenario has a second user at hand.
//!
//! Every scenario makes its own products (category `scenarios`, named with fresh words, with the stock it needs),
//! its own users and its own discount codes, so scenarios running at the same time on any host never share a
//! cart, a stock count or a usage count. Every expected amount is computed from the prices the scenario set,
//! with the contract's rounding rule (a percentage rounded to the nearest minor unit, halves in the customer's
//! favour); nothing here depends on the demo catalog.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{Answer, Api, User, unique};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::admin::admin;

/// The sandbox provider's token that is approved.
const PAID: &str = "tok_success";
/// The sandbox provider's token that is declined.
const DECLINED: &str = "tok_decline";
/// The sandbox provider's token whose first attempt times out and whose retry succeeds.
const TIMES_OUT_ONCE: &str = "tok_timeout_once";
/// The sandbox provider's token whose every attempt times out.
const TIMES_OUT: &str = "tok_timeout";
/// How many registrations a scenario that needs many shoppers runs at once (each hashes a password).
const REGISTRATIONS_AT_ONCE: usize = 6;
/// How many pages of 100 the admin's order list is searched for one order: every concurrently running scenario's
/// orders are in it, newest first, so a fresh order is near its start.
const ADMIN_PAGES_SEARCHED: usize = 50;

fn money(amount: i64) -> Value {
    json!({ "amount": amount, "currency": "EUR" })
}

fn text_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("no text `{field}` in {value}"))
}

fn price_of(product: &Value) -> i64 {
    product["price"]["amount"].as_i64().unwrap_or_else(|| panic!("no price in {product}"))
}

/// `percent` % of `subtotal`, rounded to the nearest minor unit with halves in the customer's favour (up).
fn percentage_discount(subtotal: i64, percent: i64) -> i64 {
    (subtotal * percent + 50) / 100
}

fn instant_of(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|error| panic!("{text:?} is not RFC 3339: {error}"))
}

/// RFC 3339 text of now plus `days` (whole seconds, so a host that keeps milliseconds keeps it exactly).
fn days_from_now(days: i64) -> String {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|error| panic!("{error}"));
    (now + time::Duration::days(days)).format(&Rfc3339).unwrap_or_else(|error| panic!("{error}"))
}

fn assert_problem(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!((answer.status, answer.problem_code()), (status, Some(code)), "{what}: {}", answer.text);
}

/// A response that repeats `first`: the same status, the same body and the same `Location`.
fn assert_replay(replay: &Answer, first: &Answer, what: &str) {
    assert!(!first.json.is_null(), "{what}: the first answer has no JSON body: {}", first.text);
    assert_eq!(replay.status, first.status, "{what}: {}", replay.text);
    assert_eq!(replay.json, first.json, "{what}: the body differs from the first answer's {}", first.text);
    assert_eq!(replay.header("location"), first.header("location"), "{what}: Location");
    assert_eq!(replay.header("content-type"), first.header("content-type"), "{what}: Content-Type");
}

async fn cart(api: &Api, user: &User) -> Answer {
    api.call(Method::GET, "/cart", Some(&user.access), None).await
}

async fn set_line(api: &Api, user: &User, product_id: &str, quantity: i64) -> Answer {
    let body = json!({ "quantity": quantity });
    api.call(Method::PUT, &format!("/cart/items/{product_id}"), Some(&user.access), Some(&body)).await
}

async fn remove_line(api: &Api, user: &User, product_id: &str) -> Answer {
    api.call(Method::DELETE, &format!("/cart/items/{product_id}"), Some(&user.access), None).await
}

async fn apply_code(api: &Api, user: &User, code: &str) -> Answer {
    api.call(Method::PUT, "/cart/discount", Some(&user.access), Some(&json!({ "code": code }))).await
}

async fn remove_code(api: &Api, user: &User) -> Answer {
    api.call(Method::DELETE, "/cart/discount", Some(&user.access), None).await
}

/// Puts `quantity` of `product_id` in `user`'s cart, which must succeed.
async fn put_in_cart(api: &Api, user: &User, product_id: &str, quantity: i64) {
    let answer = set_line(api, user, product_id, quantity).await;
    assert_eq!(answer.status, 200, "{} puts {quantity} of {product_id} in the cart: {}", user.email, answer.text);
}

/// The line the contract says `quantity` of `product` makes, at the product's current price.
fn line(product: &Value, quantity: i64) -> Value {
    json!({
        "product_id": product["id"],
        "sku": product["sku"],
        "name": product["name"],
        "unit_price": product["price"],
        "quantity": quantity,
        "line_total": money(price_of(product) * quantity),
    })
}

/// The cart the contract says holds `lines` and, if given, the discount `(code, amount)`.
fn expected_cart(lines: &[(&Value, i64)], discount: Option<(&str, i64)>) -> Value {
    let subtotal: i64 = lines.iter().map(|(product, quantity)| price_of(product) * quantity).sum();
    let taken = discount.map_or(0, |(_, amount)| amount);
    json!({
        "items": lines.iter().map(|(product, quantity)| line(product, *quantity)).collect::<Vec<_>>(),
        "subtotal": money(subtotal),
        "discount": discount.map(|(code, amount)| json!({ "code": code, "amount": money(amount) })),
        "total": money(subtotal - taken),
    })
}

/// `document` with the lines under `field` in product-id order: the contract fixes no order of lines.
fn in_product_order(document: &Value, field: &str) -> Value {
    let mut document = document.clone();
    if let Some(lines) = document.get_mut(field).and_then(Value::as_array_mut) {
        lines.sort_by(|a, b| a["product_id"].as_str().cmp(&b["product_id"].as_str()));
    }
    document
}

fn assert_cart(answer: &Answer, expected: &Value, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text);
    assert_eq!(in_product_order(&answer.json, "items"), in_product_order(expected, "items"), "{what}: {}", answer.text);
}

/// Checks a 201 from `POST /checkout` against the cart it checked out (its lines and amounts) and returns the order.
fn assert_paid_order(answer: &Answer, cart: &Value, what: &str) -> Value {
    assert_eq!(answer.status, 201, "{what}: {}", answer.text);
    let order = &answer.json;
    let id = text_of(order, "id");
    assert_eq!(answer.header("location"), Some(format!("/orders/{id}").as_str()), "{what}: Location: {}", answer.text);
    assert_eq!(order["status"], "paid", "{what}: {}", answer.text);
    assert_eq!(
        in_product_order(order, "lines")["lines"],
        in_product_order(cart, "items")["items"],
        "{what}: the order's lines are not the cart's {cart}: {}",
        answer.text
    );
    for field in ["subtotal", "discount", "total"] {
        assert_eq!(order[field], cart[field], "{what}: the order's {field} is not the cart's {cart}: {}", answer.text);
    }
    let payment = &order["payment"];
    for field in ["provider", "charge_id"] {
        assert!(payment[field].as_str().is_some_and(|text| !text.is_empty()), "{what}: payment.{field}: {}", answer.text);
    }
    assert_eq!(payment["status"], "captured", "{what}: {}", answer.text);
    let created_at = instant_of(text_of(order, "created_at"));
    assert!(created_at <= instant_of(text_of(order, "updated_at")), "{what}: updated before it was created: {}", answer.text);
    order.clone()
}

/// The sandbox ledger's entry the contract says `order`'s payment makes, in `status`.
fn charge(order: &Value, status: &str) -> Value {
    json!({ "charge_id": order["payment"]["charge_id"], "order_id": order["id"], "amount": order["total"], "status": status })
}

/// The sandbox ledger's entries for one order, read by the admin.
async fn ledger(api: &Api, admin: &User, order_id: &str) -> Vec<Value> {
    let path = format!("/payments/sandbox/charges?order_id={order_id}");
    let answer = api.call(Method::GET, &path, Some(&admin.access), None).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    answer.json["items"].as_array().cloned().unwrap_or_else(|| panic!("{path} lists no items: {}", answer.text))
}

/// The pages of `GET /orders?limit=<limit>` that `token` sees, following `next_cursor` to the end.
async fn order_pages(api: &Api, token: &str, limit: usize) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(cursor) => format!("/orders?limit={limit}&cursor={cursor}"),
            None => format!("/orders?limit={limit}"),
        };
        let page = api.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        let items = page.json["items"].as_array().cloned().unwrap_or_else(|| panic!("{path} lists no items: {}", page.text));
        assert!(items.len() <= limit, "{path}: {} orders on one page", items.len());
        pages.push(items);
        match &page.json["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            Value::Null => return pages,
            other => panic!("{path}: next_cursor is {other}"),
        }
    }
    panic!("GET /orders did not end within 1000 pages");
}

/// Every order `user` sees, newest first.
async fn orders_of(api: &Api, user: &User) -> Vec<Value> {
    order_pages(api, &user.access, 100).await.concat()
}

fn ids(orders: &[Value]) -> Vec<&str> {
    orders.iter().map(|order| text_of(order, "id")).collect()
}

/// Whether the admin's `GET /orders` lists `order_id` within its first [`ADMIN_PAGES_SEARCHED`] pages.
async fn admin_lists(api: &Api, admin: &User, order_id: &str) -> bool {
    let mut cursor: Option<String> = None;
    for _ in 0..ADMIN_PAGES_SEARCHED {
        let path = match &cursor {
            Some(cursor) => format!("/orders?limit=100&cursor={cursor}"),
            None => "/orders?limit=100".to_owned(),
        };
        let page = api.call(Method::GET, &path, Some(&admin.access), None).await;
        assert_eq!(page.status, 200, "the admin's {path}: {}", page.text);
        let items = page.json["items"].as_array().cloned().unwrap_or_default();
        if items.iter().any(|order| order["id"] == order_id) {
            return true;
        }
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return false,
        }
    }
    false
}

/// A fresh discount code (upper-case, as the host shows codes).
fn new_code(prefix: &str) -> String {
    unique(prefix).to_uppercase()
}

async fn create_discount(api: &Api, admin: &User, body: &Value) -> Value {
    let created = api.call(Method::POST, "/discounts", Some(&admin.access), Some(body)).await;
    assert_eq!(created.status, 201, "create the discount {body}: {}", created.text);
    assert_discount_as_given(&created.json, body, 0, "a created discount");
    created.json
}

/// A discount as the host shows it keeps every field it was created with (its code upper-cased, its times as
/// the same instants) and counts `used` uses.
fn assert_discount_as_given(shown: &Value, body: &Value, used: u64, what: &str) {
    for (field, given) in body.as_object().unwrap_or_else(|| panic!("{body} is not an object")) {
        match field.as_str() {
            "code" => assert_eq!(shown["code"], text_of(body, "code").to_uppercase(), "{what}: {shown}"),
            "starts_at" | "ends_at" => {
                assert_eq!(instant_of(text_of(shown, field)), instant_of(text_of(body, field)), "{what}: {field}: {shown}");
            }
            _ => assert_eq!(&shown[field], given, "{what}: {field}: {shown}"),
        }
    }
    assert_eq!(shown["used"], used, "{what}: used: {shown}");
}

/// The discount with `code` as `GET /discounts` lists it.
async fn listed_discount(api: &Api, admin: &User, code: &str) -> Option<Value> {
    let listed = api.call(Method::GET, "/discounts", Some(&admin.access), None).await;
    assert_eq!(listed.status, 200, "GET /discounts: {}", listed.text);
    let items = listed.json["items"].as_array().unwrap_or_else(|| panic!("GET /discounts lists no items: {}", listed.text));
    let mut matching = items.iter().filter(|discount| discount["code"] == code);
    let found = matching.next().cloned();
    assert!(matching.next().is_none(), "GET /discounts lists {code} more than once: {}", listed.text);
    found
}

async fn uses_of(api: &Api, admin: &User, code: &str) -> u64 {
    let discount = listed_discount(api, admin, code).await.unwrap_or_else(|| panic!("GET /discounts does not list {code}"));
    discount["used"].as_u64().unwrap_or_else(|| panic!("{code} shows no use count: {discount}"))
}

fn assert_discount_refused(answer: &Answer, reason: &str, what: &str) {
    assert_problem(answer, 422, "discount_invalid", what);
    assert_eq!(answer.json["reason"], reason, "{what}: {}", answer.text);
}

/// `count` new users, registered a few at a time.
async fn shoppers(api: &Api, prefix: &str, count: usize) -> Vec<User> {
    futures::stream::iter(0..count).map(|_| api.new_user(prefix)).buffer_unordered(REGISTRATIONS_AT_ONCE).collect().await
}

/// The nearest-rank `percent`-th percentile of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], percent: usize) -> u128 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1].as_millis()
}

#[tokio::test]
async fn every_commerce_route_refuses_anonymous_callers() {
    let api = Api::new();
    let made_up = "0".repeat(32);
    let routes = [
        (Method::GET, "/cart".to_owned(), None),
        (Method::PUT, format!("/cart/items/{made_up}"), Some(json!({ "quantity": 1 }))),
        (Method::DELETE, format!("/cart/items/{made_up}"), None),
        (Method::PUT, "/cart/discount".to_owned(), Some(json!({ "code": "SUMMER10" }))),
        (Method::DELETE, "/cart/discount".to_owned(), None),
        (Method::GET, "/discounts".to_owned(), None),
        (Method::POST, "/discounts".to_owned(), Some(json!({ "code": new_code("ANON"), "percent_off": 10 }))),
        (Method::GET, "/orders".to_owned(), None),
        (Method::GET, format!("/orders/{made_up}"), None),
        (Method::POST, format!("/orders/{made_up}/cancel"), None),
        (Method::GET, format!("/payments/sandbox/charges?order_id={made_up}"), None),
    ];
    for (method, path, body) in &routes {
        for token in [None, Some("not-a-token")] {
            let answer = api.call(method.clone(), path, token, body.as_ref()).await;
            assert_problem(&answer, 401, "unauthorized", &format!("{method} {path} with token {token:?}"));
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{method} {path}");
        }
    }
    let key = unique("anonymous-");
    let checkout = api.checkout_raw(None, Some(key.as_bytes()), &json!({ "payment_token": PAID })).await;
    assert_problem(&checkout, 401, "unauthorized", "an anonymous POST /checkout");
}

#[tokio::test]
async fn a_cart_sets_lines_keeps_its_totals_and_shows_current_prices() {
    let api = Api::new();
    let admin = admin(&api).await;
    let lamp = api.create_product(&admin, "cartlamp", 1250, 5).await;
    let mug = api.create_product(&admin, "cartmug", 399, 2).await;
    let crate_ = api.create_product(&admin, "cartcrate", 75, 150).await;
    let (lamp_id, mug_id, crate_id) = (text_of(&lamp, "id"), text_of(&mug, "id"), text_of(&crate_, "id"));
    let shopper = api.new_user("cart").await;
    let other = api.new_user("cartother").await;

    assert_cart(&cart(&api, &shopper).await, &expected_cart(&[], None), "a new user's cart");
    assert_cart(&set_line(&api, &shopper, lamp_id, 2).await, &expected_cart(&[(&lamp, 2)], None), "two lamps");
    assert_cart(&set_line(&api, &shopper, lamp_id, 3).await, &expected_cart(&[(&lamp, 3)], None), "a quantity sets the line");
    let holding = expected_cart(&[(&lamp, 3), (&mug, 2)], None);
    assert_cart(&set_line(&api, &shopper, mug_id, 2).await, &holding, "two mugs beside the lamps");

    // The crate has stock to spare, so 100 is refused for the quantity rule and not for the stock.
    for quantity in [0, 100] {
        let refused = set_line(&api, &shopper, crate_id, quantity).await;
        assert_problem(&refused, 422, "validation_failed", &format!("quantity {quantity}"));
        assert_eq!(refused.json["param"], "quantity", "quantity {quantity}: {}", refused.text);
    }
    let most = set_line(&api, &shopper, crate_id, 99).await;
    assert_cart(&most, &expected_cart(&[(&lamp, 3), (&mug, 2), (&crate_, 99)], None), "99 crates, the most a line holds");
    assert_cart(&remove_line(&api, &shopper, crate_id).await, &holding, "the crates removed");
    let over = set_line(&api, &shopper, mug_id, 3).await;
    assert_problem(&over, 409, "insufficient_stock", "three mugs of two in stock");
    assert_eq!(over.json["product_id"], mug_id, "the refusal names the product: {}", over.text);
    let unknown = set_line(&api, &shopper, &"0".repeat(lamp_id.len()), 1).await;
    assert_problem(&unknown, 404, "not_found", "a product that does not exist");
    assert_cart(&cart(&api, &shopper).await, &holding, "refused changes changed the cart");
    // A cart reserves nothing: only a checkout takes stock.
    assert_eq!((api.stock_of(lamp_id).await, api.stock_of(mug_id).await), (5, 2), "a cart took stock");

    // Invariant 6: another user's cart is their own, and what they do with it leaves the first one alone.
    assert_cart(&cart(&api, &other).await, &expected_cart(&[], None), "another user's cart");
    assert_cart(&remove_line(&api, &other, lamp_id).await, &expected_cart(&[], None), "another user removes a lamp");
    assert_cart(&set_line(&api, &other, lamp_id, 1).await, &expected_cart(&[(&lamp, 1)], None), "another user's lamp");
    assert_cart(&cart(&api, &shopper).await, &holding, "another user's changes reached the first user's cart");

    // The admin changes the mug's price: the cart shows the catalog's current price.
    let path = format!("/products/{mug_id}");
    let current = api.get(&path).await;
    let etag = current.header("etag").unwrap_or_else(|| panic!("{path} has no ETag")).to_owned();
    let replacement = json!({
        "sku": current.json["sku"],
        "name": current.json["name"],
        "description": current.json["description"],
        "category": current.json["category"],
        "price": money(price_of(&mug) + 51),
        "stock": current.json["stock"],
    });
    let bearer = format!("Bearer {}", admin.access);
    let headers = [("authorization", bearer.as_str()), ("if-match", etag.as_str())];
    let repriced = api.send(Method::PUT, &path, &headers, Some(("application/json", replacement.to_string().into_bytes()))).await;
    assert_eq!(repriced.status, 200, "the admin reprices the mug: {}", repriced.text);
    let repriced_mug = repriced.json;
    let holding = expected_cart(&[(&lamp, 3), (&repriced_mug, 2)], None);
    assert_cart(&cart(&api, &shopper).await, &holding, "the cart after the mug's price changed");

    let mugs_only = expected_cart(&[(&repriced_mug, 2)], None);
    assert_cart(&remove_line(&api, &shopper, lamp_id).await, &mugs_only, "the lamps removed");
    assert_cart(&remove_line(&api, &shopper, lamp_id).await, &mugs_only, "removing a line that is not there");
    assert_cart(&cart(&api, &other).await, &expected_cart(&[(&lamp, 1)], None), "the first user's removal reached another cart");
}

#[tokio::test]
async fn a_cart_holds_at_most_fifty_lines() {
    let api = Api::new();
    let admin = admin(&api).await;
    let products: Vec<Value> = futures::stream::iter(0..51)
        .map(|_| api.create_product(&admin, "fullcart", 100, 2))
        .buffer_unordered(8)
        .collect()
        .await;
    let shopper = api.new_user("fullcart").await;
    for product in &products[..50] {
        put_in_cart(&api, &shopper, text_of(product, "id"), 1).await;
    }
    let fifty: Vec<(&Value, i64)> = products[..50].iter().map(|product| (product, 1)).collect();
    assert_cart(&cart(&api, &shopper).await, &expected_cart(&fifty, None), "fifty lines");
    let refused = set_line(&api, &shopper, text_of(&products[50], "id"), 1).await;
    assert_problem(&refused, 422, "cart_full", "a 51st line");
    assert_cart(&cart(&api, &shopper).await, &expected_cart(&fifty, None), "a refused 51st line changed the cart");

    // A line already in a full cart can still change, and a freed place can take another product.
    let mut changed = fifty.clone();
    changed[0].1 = 2;
    assert_cart(&set_line(&api, &shopper, text_of(&products[0], "id"), 2).await, &expected_cart(&changed, None), "a full cart's line");
    assert_eq!(remove_line(&api, &shopper, text_of(&products[0], "id")).await.status, 200);
    let swapped: Vec<(&Value, i64)> = products[1..].iter().map(|product| (product, 1)).collect();
    assert_cart(&set_line(&api, &shopper, text_of(&products[50], "id"), 1).await, &expected_cart(&swapped, None), "a freed place");
}

#[tokio::test]
async fn discount_codes_are_admin_only_validated_and_applied_with_each_refusal_reason() {
    let api = Api::new();
    let admin = admin(&api).await;
    let customer = api.new_user("discounts").await;

    // Only the admin manages codes.
    let attempt = json!({ "code": new_code("CUST"), "percent_off": 10 });
    let as_customer = api.call(Method::POST, "/discounts", Some(&customer.access), Some(&attempt)).await;
    assert_problem(&as_customer, 403, "forbidden", "a customer creates a code");
    let listed_by_customer = api.call(Method::GET, "/discounts", Some(&customer.access), None).await;
    assert_problem(&listed_by_customer, 403, "forbidden", "a customer lists the codes");
    assert!(listed_discount(&api, &admin, text_of(&attempt, "code")).await.is_none(), "a customer's refused code was created");

    // Malformed codes are refused and create nothing.
    let refused_code = new_code("BAD");
    let malformed = [
        ("both a percentage and an amount", json!({ "code": refused_code, "percent_off": 10, "amount_off": money(100) })),
        ("neither a percentage nor an amount", json!({ "code": refused_code })),
        ("0 percent", json!({ "code": refused_code, "percent_off": 0 })),
        ("101 percent", json!({ "code": refused_code, "percent_off": 101 })),
        ("a usage limit of 0", json!({ "code": refused_code, "percent_off": 10, "usage_limit": 0 })),
        ("a space in the code", json!({ "code": format!("{refused_code} X"), "percent_off": 10 })),
        ("a 33-character code", json!({ "code": "A".repeat(33), "percent_off": 10 })),
        ("an empty code", json!({ "code": "", "percent_off": 10 })),
    ];
    for (what, body) in &malformed {
        let answer = api.call(Method::POST, "/discounts", Some(&admin.access), Some(body)).await;
        assert_problem(&answer, 422, "validation_failed", what);
    }
    assert!(listed_discount(&api, &admin, &refused_code).await.is_none(), "a refused code was created");

    // The admin creates codes; a code is taken whatever its case.
    let percent = new_code("PCT");
    let percent_body = json!({ "code": percent.to_lowercase(), "percent_off": 15 });
    create_discount(&api, &admin, &percent_body).await;
    let taken = api.call(Method::POST, "/discounts", Some(&admin.access), Some(&json!({ "code": percent, "amount_off": money(100) }))).await;
    assert_problem(&taken, 409, "conflict", "a taken code in another case");
    let fixed = new_code("FIX");
    let fixed_body = json!({ "code": fixed, "amount_off": money(500), "min_subtotal": money(3000), "usage_limit": 50 });
    create_discount(&api, &admin, &fixed_body).await;
    let whole = new_code("ALL");
    let whole_body = json!({ "code": whole, "amount_off": money(5000) });
    create_discount(&api, &admin, &whole_body).await;
    let later = new_code("LATER");
    let later_body = json!({ "code": later, "percent_off": 10, "starts_at": days_from_now(1) });
    create_discount(&api, &admin, &later_body).await;
    let over = new_code("OVER");
    let over_body = json!({ "code": over, "percent_off": 10, "starts_at": days_from_now(-2), "ends_at": days_from_now(-1) });
    create_discount(&api, &admin, &over_body).await;
    let tenth = new_code("TENTH");
    let tenth_body = json!({ "code": tenth, "percent_off": 10 });
    create_discount(&api, &admin, &tenth_body).await;

    // The contract's worked examples of its rounding rule, which this scenario computes with.
    assert_eq!((percentage_discount(1999, 15), percentage_discount(1995, 10)), (300, 200));
    let clock = api.create_product(&admin, "discountclock", 1999, 10).await;
    let radio = api.create_product(&admin, "discountradio", 1995, 10).await;
    let clock_id = text_of(&clock, "id");
    let shopper = api.new_user("discounted").await;
    put_in_cart(&api, &shopper, clock_id, 1).await;

    // A code applies whatever its case, and the cart shows it upper-case: 15% of 19.99 is 2.9985, so 3.00 off.
    let one_clock = expected_cart(&[(&clock, 1)], Some((&percent, percentage_discount(1999, 15))));
    assert_cart(&apply_code(&api, &shopper, &percent.to_lowercase()).await, &one_clock, "a percentage code in lower case");
    for (code, reason) in [
        (new_code("NONE"), "unknown"),
        (later.clone(), "not_started"),
        (over.clone(), "expired"),
        (fixed.clone(), "min_subtotal_not_met"),
    ] {
        let refused = apply_code(&api, &shopper, &code).await;
        assert_discount_refused(&refused, reason, &format!("{code} on a subtotal of 19.99"));
        assert_cart(&cart(&api, &shopper).await, &one_clock, &format!("the refused {code} changed the cart"));
    }

    // The discount follows the cart: 15% of 39.98 is 5.997, so 6.00 off; then the fixed code's minimum is met.
    let two_clocks = expected_cart(&[(&clock, 2)], Some((&percent, percentage_discount(2 * 1999, 15))));
    assert_cart(&set_line(&api, &shopper, clock_id, 2).await, &two_clocks, "the percentage of a larger subtotal");
    let fixed_off = expected_cart(&[(&clock, 2)], Some((&fixed, 500)));
    assert_cart(&apply_code(&api, &shopper, &fixed.to_lowercase()).await, &fixed_off, "a fixed code replaces the percentage");
    // A fixed amount never takes more than the subtotal.
    let all_off = expected_cart(&[(&clock, 2)], Some((&whole, 2 * 1999)));
    assert_cart(&apply_code(&api, &shopper, &whole).await, &all_off, "a fixed amount above the subtotal");
    let no_code = expected_cart(&[(&clock, 2)], None);
    assert_cart(&remove_code(&api, &shopper).await, &no_code, "the code removed");
    assert_cart(&remove_code(&api, &shopper).await, &no_code, "removing a code that is not there");

    // A half unit goes to the customer: 10% of 19.95 is 1.995, so 2.00 off.
    assert_eq!(remove_line(&api, &shopper, clock_id).await.status, 200);
    put_in_cart(&api, &shopper, text_of(&radio, "id"), 1).await;
    let half = expected_cart(&[(&radio, 1)], Some((&tenth, percentage_discount(1995, 10))));
    assert_cart(&apply_code(&api, &shopper, &tenth).await, &half, "10% of 19.95");

    // Applying codes uses none of them.
    for body in [&percent_body, &fixed_body, &whole_body, &later_body, &over_body, &tenth_body] {
        let code = text_of(body, "code").to_uppercase();
        let shown = listed_discount(&api, &admin, &code).await.unwrap_or_else(|| panic!("GET /discounts does not list {code}"));
        assert_discount_as_given(&shown, body, 0, &format!("{code} in GET /discounts"));
    }
}

#[tokio::test]
async fn a_checkout_with_a_discount_makes_a_paid_order_and_empties_the_cart() {
    let api = Api::new();
    let admin = admin(&api).await;
    let (kettle_stock, toaster_stock) = (5, 4);
    let kettle = api.create_product(&admin, "happykettle", 1999, kettle_stock).await;
    let toaster = api.create_product(&admin, "happytoaster", 350, toaster_stock).await;
    let code = new_code("HAPPY");
    create_discount(&api, &admin, &json!({ "code": code, "percent_off": 10, "usage_limit": 5 })).await;
    let shopper = api.new_user("happy").await;
    put_in_cart(&api, &shopper, text_of(&kettle, "id"), 2).await;
    put_in_cart(&api, &shopper, text_of(&toaster, "id"), 1).await;
    let subtotal = 2 * 1999 + 350;
    let expected = expected_cart(&[(&kettle, 2), (&toaster, 1)], Some((&code, percentage_discount(subtotal, 10))));
    assert_cart(&apply_code(&api, &shopper, &code).await, &expected, "the cart before checkout");

    let answer = api.checkout(&shopper, &unique("happy-"), PAID).await;
    let order = assert_paid_order(&answer, &expected, "a checkout");
    let order_id = text_of(&order, "id");
    assert_cart(&cart(&api, &shopper).await, &expected_cart(&[], None), "the cart after checkout");
    assert_eq!(api.stock_of(text_of(&kettle, "id")).await, u64::from(kettle_stock) - 2, "the kettles' stock");
    assert_eq!(api.stock_of(text_of(&toaster, "id")).await, u64::from(toaster_stock) - 1, "the toasters' stock");
    assert_eq!(uses_of(&api, &admin, &code).await, 1, "the code's uses");

    let listed = orders_of(&api, &shopper).await;
    assert_eq!(listed, std::slice::from_ref(&order), "GET /orders");
    let path = format!("/orders/{order_id}");
    let fetched = api.call(Method::GET, &path, Some(&shopper.access), None).await;
    assert_eq!(fetched.status, 200, "{path}: {}", fetched.text);
    assert_eq!(fetched.json, order, "{path}");
    assert_eq!(ledger(&api, &admin, order_id).await, [charge(&order, "captured")], "the sandbox ledger");
}

#[tokio::test]
async fn checkout_keys_replay_refuse_reuse_and_belong_to_one_user() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock = 10;
    let product = api.create_product(&admin, "idemkettle", 2400, stock).await;
    let product_id = text_of(&product, "id");
    let alice = api.new_user("idem").await;
    let bob = api.new_user("idemother").await;
    put_in_cart(&api, &alice, product_id, 1).await;
    let alices_cart = expected_cart(&[(&product, 1)], None);
    let body = json!({ "payment_token": PAID });

    // Refused before it begins, a checkout changes nothing.
    let missing = api.checkout_raw(Some(&alice.access), None, &body).await;
    assert_problem(&missing, 400, "idempotency_key_missing", "no Idempotency-Key");
    let too_long = "k".repeat(256);
    for (what, key) in [
        ("a 256-character key", too_long.as_bytes()),
        ("an empty quoted key", b"\"\"".as_slice()),
        ("a key with a space", b"two words".as_slice()),
        ("a key with a non-ASCII letter", "cl\u{e9}".as_bytes()),
    ] {
        let answer = api.checkout_raw(Some(&alice.access), Some(key), &body).await;
        assert_problem(&answer, 400, "idempotency_key_invalid", what);
    }
    assert_cart(&cart(&api, &alice).await, &alices_cart, "refused checkouts changed the cart");
    assert!(orders_of(&api, &alice).await.is_empty(), "a refused checkout made an order");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock), "a refused checkout took stock");

    // The quoted (RFC 8941) and the bare form name one key.
    let key = unique("idem-");
    let quoted = format!("\"{key}\"");
    let first = api.checkout(&alice, &quoted, PAID).await;
    let order = assert_paid_order(&first, &alices_cart, "the first checkout, with a quoted key");
    let order_id = text_of(&order, "id");
    // A replay does not run again: with a new line in the cart it still answers the first order, and keeps the line.
    put_in_cart(&api, &alice, product_id, 1).await;
    for (what, form) in [("the bare form of the key", key.as_str()), ("the quoted form again", quoted.as_str())] {
        assert_replay(&api.checkout(&alice, form, PAID).await, &first, what);
    }
    let reused = api.checkout(&alice, &key, DECLINED).await;
    assert_problem(&reused, 422, "idempotency_key_reused", "the key with another body");
    assert_cart(&cart(&api, &alice).await, &alices_cart, "a replay or a reused key checked the cart out");
    assert_eq!(ids(&orders_of(&api, &alice).await), [order_id], "one key, one order");
    assert_eq!(ledger(&api, &admin, order_id).await, [charge(&order, "captured")], "one key, one charge");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 1, "one key, one reservation");

    // Keys belong to their user: Bob's checkout with Alice's key is his own.
    put_in_cart(&api, &bob, product_id, 2).await;
    let bobs = api.checkout(&bob, &key, PAID).await;
    let bobs_order = assert_paid_order(&bobs, &expected_cart(&[(&product, 2)], None), "another user with the same key");
    assert_ne!(bobs_order["id"], order["id"], "Bob got Alice's order");
    assert_eq!(ids(&orders_of(&api, &bob).await), [text_of(&bobs_order, "id")], "Bob's orders");
    assert_eq!(ids(&orders_of(&api, &alice).await), [order_id], "Alice's orders after Bob's checkout");

    // The longest key is accepted.
    let longest = format!("{key}{}", "k".repeat(255 - key.len()));
    let answer = api.checkout(&alice, &longest, PAID).await;
    assert_paid_order(&answer, &alices_cart, "a 255-character key");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 4, "the stock after four units were sold in three orders");
}

#[tokio::test]
async fn a_declined_payment_gives_back_the_stock_and_the_discount_and_keeps_the_cart() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock = 4;
    let product = api.create_product(&admin, "declinedlamp", 1500, stock).await;
    let product_id = text_of(&product, "id");
    let code = new_code("DECL");
    create_discount(&api, &admin, &json!({ "code": code, "percent_off": 20, "usage_limit": 10 })).await;
    let shopper = api.new_user("declined").await;
    put_in_cart(&api, &shopper, product_id, 2).await;
    let before = expected_cart(&[(&product, 2)], Some((&code, percentage_discount(2 * 1500, 20))));
    assert_cart(&apply_code(&api, &shopper, &code).await, &before, "the cart before checkout");

    let key = unique("decline-");
    let declined = api.checkout(&shopper, &key, DECLINED).await;
    assert_problem(&declined, 402, "payment_declined", "a declined card");
    let unchanged = async |what: &str| {
        assert_eq!(api.stock_of(product_id).await, u64::from(stock), "{what}: the stock was not given back");
        assert_eq!(uses_of(&api, &admin, &code).await, 0, "{what}: the discount's use was not given back");
        assert_cart(&cart(&api, &shopper).await, &before, &format!("{what}: the cart"));
        assert!(orders_of(&api, &shopper).await.is_empty(), "{what}: an order is listed");
    };
    unchanged("after a declined payment").await;
    assert_replay(&api.checkout(&shopper, &key, DECLINED).await, &declined, "the declined checkout's key again");
    unchanged("after the replayed decline").await;

    // The kept cart checks out with another card.
    let paid = api.checkout(&shopper, &unique("decline-then-"), PAID).await;
    let order = assert_paid_order(&paid, &before, "the kept cart with a good card");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 2);
    assert_eq!(uses_of(&api, &admin, &code).await, 1);
    assert_eq!(ledger(&api, &admin, text_of(&order, "id")).await, [charge(&order, "captured")]);
}

#[tokio::test]
async fn a_payment_that_times_out_once_is_retried_and_charged_once() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock = 3;
    let product = api.create_product(&admin, "retriedradio", 990, stock).await;
    let shopper = api.new_user("retried").await;
    put_in_cart(&api, &shopper, text_of(&product, "id"), 2).await;
    let before = expected_cart(&[(&product, 2)], None);

    let answer = api.checkout(&shopper, &unique("retry-"), TIMES_OUT_ONCE).await;
    let order = assert_paid_order(&answer, &before, "a payment whose first attempt timed out");
    let order_id = text_of(&order, "id");
    assert_eq!(ledger(&api, &admin, order_id).await, [charge(&order, "captured")], "the retry charged again");
    assert_eq!(ids(&orders_of(&api, &shopper).await), [order_id]);
    assert_eq!(api.stock_of(text_of(&product, "id")).await, u64::from(stock) - 2);
    // The ledger is the admin's.
    let path = format!("/payments/sandbox/charges?order_id={order_id}");
    assert_problem(&api.call(Method::GET, &path, Some(&shopper.access), None).await, 403, "forbidden", "a customer reads the ledger");
}

#[tokio::test]
async fn a_payment_that_keeps_timing_out_answers_503_with_retry_after_and_keeps_the_cart() {
    let api = Api::new();
    let admin = admin(&api).await;
    let product = api.create_product(&admin, "timeoutheater", 4200, 3).await;
    let shopper = api.new_user("timeout").await;
    put_in_cart(&api, &shopper, text_of(&product, "id"), 1).await;
    let before = expected_cart(&[(&product, 1)], None);

    let answer = api.checkout(&shopper, &unique("timeout-"), TIMES_OUT).await;
    assert_problem(&answer, 503, "payment_unavailable", "a provider that keeps timing out");
    let retry_after = answer.header("retry-after").and_then(|value| value.trim().parse::<u64>().ok());
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "Retry-After: {:?}", answer.header("retry-after"));
    assert_cart(&cart(&api, &shopper).await, &before, "the cart after the provider timed out");
    let orders = orders_of(&api, &shopper).await;
    assert!(orders.iter().all(|order| order["status"] != "paid"), "a paid order is listed: {orders:?}");
}

#[tokio::test]
async fn orders_are_listed_newest_first_page_by_page_and_only_to_their_owner() {
    let api = Api::new();
    let admin = admin(&api).await;
    let product = api.create_product(&admin, "listedpen", 300, 20).await;
    let product_id = text_of(&product, "id");
    let alice = api.new_user("orders").await;
    let bob = api.new_user("ordersother").await;
    let mut placed = Vec::new();
    for quantity in 1..=5 {
        put_in_cart(&api, &alice, product_id, quantity).await;
        let answer = api.checkout(&alice, &unique("orders-"), PAID).await;
        placed.push(assert_paid_order(&answer, &expected_cart(&[(&product, quantity)], None), &format!("order {quantity}")));
    }
    let newest_first: Vec<Value> = placed.iter().rev().cloned().collect();

    let page = api.call(Method::GET, "/orders", Some(&alice.access), None).await;
    assert_eq!(page.status, 200, "GET /orders: {}", page.text);
    assert_eq!(page.json["items"], Value::Array(newest_first.clone()), "GET /orders is not every order newest first");
    assert!(page.json["next_cursor"].is_null(), "GET /orders: {}", page.text);
    let pages = order_pages(&api, &alice.access, 2).await;
    assert_eq!(pages.concat(), newest_first, "pages of two do not visit every order once, newest first");
    for limit in [0, 101] {
        let refused = api.call(Method::GET, &format!("/orders?limit={limit}"), Some(&alice.access), None).await;
        assert_problem(&refused, 400, "invalid_parameter", &format!("limit {limit}"));
        assert_eq!(refused.json["param"], "limit", "limit {limit}: {}", refused.text);
    }

    // Invariant 6: Bob sees none of Alice's orders, and hers are as absent to him as one that never existed.
    assert!(orders_of(&api, &bob).await.is_empty(), "Bob's list shows orders");
    let made_up = "0".repeat(text_of(&placed[0], "id").len());
    let absent = api.call(Method::GET, &format!("/orders/{made_up}"), Some(&bob.access), None).await;
    assert_problem(&absent, 404, "not_found", "an order that does not exist");
    for order in &placed {
        let path = format!("/orders/{}", text_of(order, "id"));
        let foreign = api.call(Method::GET, &path, Some(&bob.access), None).await;
        assert_problem(&foreign, 404, "not_found", &format!("Bob reads Alice's {path}"));
        assert_eq!(foreign.json["detail"], absent.json["detail"], "Alice's order is told apart from a missing one");
        let own = api.call(Method::GET, &path, Some(&alice.access), None).await;
        assert_eq!((own.status, &own.json), (200, order), "Alice reads {path}: {}", own.text);
        let by_admin = api.call(Method::GET, &path, Some(&admin.access), None).await;
        assert_eq!((by_admin.status, &by_admin.json), (200, order), "the admin reads {path}: {}", by_admin.text);
    }
    let first_page = api.call(Method::GET, "/orders?limit=2", Some(&alice.access), None).await;
    let alices_cursor = text_of(&first_page.json, "next_cursor");
    let borrowed = api.call(Method::GET, &format!("/orders?limit=2&cursor={alices_cursor}"), Some(&bob.access), None).await;
    match borrowed.status {
        400 => assert_problem(&borrowed, 400, "invalid_cursor", "Bob pages with Alice's cursor"),
        200 => assert_eq!(borrowed.json["items"], json!([]), "Alice's cursor shows Bob her orders"),
        other => panic!("Bob pages with Alice's cursor: {other}: {}", borrowed.text),
    }
    assert!(admin_lists(&api, &admin, text_of(&placed[0], "id")).await, "the admin's GET /orders does not list a customer's order");
}

#[tokio::test]
async fn cancelling_an_order_twice_restocks_and_refunds_it_once() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock = 5;
    let product = api.create_product(&admin, "cancelledchair", 800, stock).await;
    let product_id = text_of(&product, "id");
    let alice = api.new_user("cancel").await;
    let bob = api.new_user("cancelother").await;
    put_in_cart(&api, &alice, product_id, 3).await;
    let answer = api.checkout(&alice, &unique("cancel-"), PAID).await;
    let order = assert_paid_order(&answer, &expected_cart(&[(&product, 3)], None), "the order to cancel");
    let path = format!("/orders/{}", text_of(&order, "id"));
    let cancel_path = format!("{path}/cancel");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 3);

    let foreign = api.call(Method::POST, &cancel_path, Some(&bob.access), None).await;
    assert_problem(&foreign, 404, "not_found", "Bob cancels Alice's order");
    let still = api.call(Method::GET, &path, Some(&alice.access), None).await;
    assert_eq!((still.status, &still.json), (200, &order), "Bob's cancel changed the order: {}", still.text);
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 3, "Bob's cancel restocked");

    let cancelled = api.call(Method::POST, &cancel_path, Some(&alice.access), None).await;
    assert_eq!(cancelled.status, 200, "the cancel: {}", cancelled.text);
    let mut expected = order.clone();
    expected["status"] = json!("cancelled");
    expected["payment"]["status"] = json!("refunded");
    expected["updated_at"] = cancelled.json["updated_at"].clone();
    assert_eq!(cancelled.json, expected, "the cancelled order");
    assert!(
        instant_of(text_of(&cancelled.json, "updated_at")) >= instant_of(text_of(&order, "updated_at")),
        "the cancel moved updated_at back: {}",
        cancelled.text
    );
    assert_eq!(api.stock_of(product_id).await, u64::from(stock), "the cancel did not restock");

    let again = api.call(Method::POST, &cancel_path, Some(&alice.access), None).await;
    assert_eq!((again.status, &again.json), (200, &cancelled.json), "the second cancel: {}", again.text);
    assert_eq!(api.stock_of(product_id).await, u64::from(stock), "the second cancel restocked again");
    assert_eq!(ledger(&api, &admin, text_of(&order, "id")).await, [charge(&order, "refunded")], "the ledger after two cancels");
    let shown = api.call(Method::GET, &path, Some(&alice.access), None).await;
    assert_eq!((shown.status, &shown.json), (200, &cancelled.json), "{path}: {}", shown.text);
    assert_eq!(orders_of(&api, &alice).await, std::slice::from_ref(&cancelled.json), "GET /orders after the cancel");
}

#[tokio::test]
async fn thirty_shoppers_racing_for_ten_units_buy_exactly_ten() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock: u32 = 10;
    let product = api.create_product(&admin, "racedlamp", 2500, stock).await;
    let product_id = text_of(&product, "id");
    let shoppers = shoppers(&api, "race", 30).await;
    futures::future::join_all(shoppers.iter().map(|shopper| put_in_cart(&api, shopper, product_id, 1))).await;
    let expected = expected_cart(&[(&product, 1)], None);

    let checkouts = shoppers.iter().map(|shopper| {
        let key = unique("race-");
        let api = &api;
        async move {
            let started = Instant::now();
            let answer = api.checkout(shopper, &key, PAID).await;
            (answer, started.elapsed())
        }
    });
    let results = futures::future::join_all(checkouts).await;
    let (mut paid, mut refused) = (Vec::new(), 0);
    for (answer, _) in &results {
        match answer.status {
            201 => paid.push(assert_paid_order(answer, &expected, "a racing checkout")),
            409 => {
                assert_problem(answer, 409, "insufficient_stock", "a racing checkout");
                assert_eq!(answer.json["product_id"], product_id, "the refusal names the product: {}", answer.text);
                refused += 1;
            }
            other => panic!("a racing checkout answered {other}: {}", answer.text),
        }
    }
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    eprintln!(
        "checkout latency under contention: p50 {} ms, p99 {} ms over {} checkouts",
        percentile_ms(&latencies, 50),
        percentile_ms(&latencies, 99),
        latencies.len()
    );
    assert_eq!((paid.len(), refused), (10, 20), "paid and refused checkouts of 30 for {stock} units");
    let mut order_ids = ids(&paid);
    order_ids.sort_unstable();
    order_ids.dedup();
    assert_eq!(order_ids.len(), paid.len(), "two checkouts answered the same order");
    assert_eq!(api.stock_of(product_id).await, 0, "the stock after the race");
}

#[tokio::test]
async fn concurrent_sales_and_double_cancels_keep_sold_plus_stock_equal_to_what_there_was() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock: u32 = 10;
    let product = api.create_product(&admin, "restockedlamp", 1800, stock).await;
    let product_id = text_of(&product, "id");
    let shoppers = shoppers(&api, "restock", 12).await;
    futures::future::join_all(shoppers.iter().map(|shopper| put_in_cart(&api, shopper, product_id, 1))).await;
    let expected = expected_cart(&[(&product, 1)], None);
    let checkouts = shoppers.iter().map(|shopper| {
        let api = &api;
        async move { (shopper, api.checkout(shopper, &unique("restock-"), PAID).await) }
    });
    let mut paid = Vec::new();
    for (shopper, answer) in futures::future::join_all(checkouts).await {
        match answer.status {
            201 => paid.push((shopper, assert_paid_order(&answer, &expected, "a racing checkout"))),
            409 => {
                assert_problem(&answer, 409, "insufficient_stock", "a racing checkout");
                assert_eq!(answer.json["product_id"], product_id, "the refusal names the product: {}", answer.text);
            }
            other => panic!("a racing checkout answered {other}: {}", answer.text),
        }
    }
    assert_eq!(paid.len(), 10, "12 shoppers for {stock} units");
    assert_eq!(api.stock_of(product_id).await, 0);

    // Three orders are cancelled, each twice, all at once.
    let cancelling = &paid[..3];
    let cancels = cancelling.iter().flat_map(|(shopper, order)| {
        let path = format!("/orders/{}/cancel", text_of(order, "id"));
        [0, 1].map(|_| {
            let path = path.clone();
            let api = &api;
            async move { (path.clone(), api.call(Method::POST, &path, Some(&shopper.access), None).await) }
        })
    });
    let answers = futures::future::join_all(cancels).await;
    for pair in answers.chunks(2) {
        for (path, answer) in pair {
            assert_eq!((answer.status, &answer.json["status"]), (200, &json!("cancelled")), "{path}: {}", answer.text);
            assert_eq!(answer.json["payment"]["status"], "refunded", "{path}: {}", answer.text);
        }
        assert_eq!(pair[0].1.json, pair[1].1.json, "two cancels of {} answered differently", pair[0].0);
    }

    // Sold + in stock = initial + restocked: every unit is either on the shelf or in an order still paid.
    let mut units_in_paid_orders = 0;
    for (shopper, order) in &paid {
        let order_id = text_of(order, "id");
        let shown = api.call(Method::GET, &format!("/orders/{order_id}"), Some(&shopper.access), None).await;
        assert_eq!(shown.status, 200, "/orders/{order_id}: {}", shown.text);
        let cancelled = cancelling.iter().any(|(_, cancelled)| cancelled["id"] == order["id"]);
        let (status, payment) = if cancelled { ("cancelled", "refunded") } else { ("paid", "captured") };
        assert_eq!((&shown.json["status"], &shown.json["payment"]["status"]), (&json!(status), &json!(payment)), "{}", shown.text);
        assert_eq!(ledger(&api, &admin, order_id).await, [charge(order, payment)], "the ledger of {order_id}");
        if !cancelled {
            let lines = shown.json["lines"].as_array().cloned().unwrap_or_default();
            units_in_paid_orders += lines.iter().map(|line| line["quantity"].as_u64().unwrap_or_default()).sum::<u64>();
        }
    }
    let on_the_shelf = api.stock_of(product_id).await;
    assert_eq!(on_the_shelf, 3, "three cancelled units, each restocked once");
    assert_eq!(on_the_shelf + units_in_paid_orders, u64::from(stock), "in stock + sold in paid orders");
}

#[tokio::test]
async fn concurrent_checkouts_with_one_key_make_one_order_and_one_charge() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock = 5;
    let product = api.create_product(&admin, "onekeyclock", 1234, stock).await;
    let product_id = text_of(&product, "id");
    let shopper = api.new_user("onekey").await;
    put_in_cart(&api, &shopper, product_id, 1).await;
    let expected = expected_cart(&[(&product, 1)], None);
    let key = unique("onekey-");

    let answers = futures::future::join_all((0..8).map(|_| api.checkout(&shopper, &key, PAID))).await;
    let mut created = Vec::new();
    for answer in &answers {
        match answer.status {
            201 => created.push(answer),
            409 => assert_problem(answer, 409, "idempotency_key_in_use", "a concurrent checkout with the key"),
            other => panic!("a concurrent checkout with one key answered {other}: {}", answer.text),
        }
    }
    let first = *created.first().unwrap_or_else(|| panic!("none of 8 concurrent checkouts with one key answered 201"));
    let order = assert_paid_order(first, &expected, "a concurrent checkout with one key");
    for other in &created[1..] {
        assert_replay(other, first, "another 201 for the same key");
    }
    let order_id = text_of(&order, "id");
    assert_eq!(ids(&orders_of(&api, &shopper).await), [order_id], "orders made by one key");
    assert_eq!(ledger(&api, &admin, order_id).await, [charge(&order, "captured")], "charges made by one key");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - 1, "units taken by one key");
    assert_replay(&api.checkout(&shopper, &key, PAID).await, first, "the key once the race is over");
}

#[tokio::test]
async fn a_discounts_usage_limit_holds_under_concurrent_checkouts() {
    let api = Api::new();
    let admin = admin(&api).await;
    let stock: u32 = 10;
    let usage_limit = 3;
    let product = api.create_product(&admin, "limitedvase", 2000, stock).await;
    let product_id = text_of(&product, "id");
    let code = new_code("LIMIT");
    create_discount(&api, &admin, &json!({ "code": code, "percent_off": 10, "usage_limit": usage_limit })).await;
    let shoppers = shoppers(&api, "limited", 6).await;
    let expected = expected_cart(&[(&product, 1)], Some((&code, percentage_discount(2000, 10))));
    for shopper in &shoppers {
        put_in_cart(&api, shopper, product_id, 1).await;
        assert_cart(&apply_code(&api, shopper, &code).await, &expected, "a shopper's cart with the limited code");
    }

    let checkouts = shoppers.iter().map(|shopper| {
        let api = &api;
        async move { api.checkout(shopper, &unique("limited-"), PAID).await }
    });
    let mut successes = 0;
    for answer in futures::future::join_all(checkouts).await {
        match answer.status {
            201 => {
                assert_paid_order(&answer, &expected, "a checkout with the limited code");
                successes += 1;
            }
            422 => assert_discount_refused(&answer, "used_up", "a checkout with a used-up code"),
            other => panic!("a checkout with the limited code answered {other}: {}", answer.text),
        }
    }
    assert!(successes <= usage_limit, "{successes} checkouts used a code limited to {usage_limit} uses");
    // Every payment was approved, so no use was given back: a refusal as used up means every use was taken.
    assert_eq!(successes, usage_limit, "6 shoppers for {usage_limit} uses, the others refused as used up");
    assert_eq!(uses_of(&api, &admin, &code).await, successes, "the code's uses");
    let mut carrying = 0;
    for shopper in &shoppers {
        carrying += orders_of(&api, shopper).await.iter().filter(|order| order["discount"]["code"] == code.as_str()).count();
    }
    assert_eq!(u64::try_from(carrying).unwrap_or(u64::MAX), successes, "orders carrying the code");
    assert_eq!(api.stock_of(product_id).await, u64::from(stock) - successes, "the stock after the limited sales");

    let late = api.new_user("limitedlate").await;
    put_in_cart(&api, &late, product_id, 1).await;
    assert_discount_refused(&apply_code(&api, &late, &code).await, "used_up", "a used-up code applied to a cart");
}
