//! What follows a sale and a privacy request, seen from outside the host: the mail each order and cancellation
//! sends (read back from the host's real mail sink, `tests::mail_sink`), the low-stock alert, the day's sales
//! report, the data export and the erasure (checked against a scan of the host's store, `tests::store_scan`).
//! The consumers run in the background, so each check waits for its effect, then checks it happened once.
//!
//! Each scenario prices its products in a currency of its own (three letters no other scenario uses), so the
//! report's figures for that currency are exactly this scenario's orders on a host shared with other scenarios.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Api, User, unique};

const ADMIN_PASSWORD: &str = "scenario-admin-password-0001";
/// How long a scenario waits for the background jobs.
const JOB_WAIT: Duration = Duration::from_secs(90);

/// Three upper-case letters no other run or scenario is likely to use, as a currency code.
fn own_currency() -> String {
    let seed = unique("");
    let mut value: u64 = seed.bytes().fold(1_469_598_103_934_665_603, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(1_099_511_628_211));
    (0..3)
        .map(|_| {
            let letter = char::from(b'A' + u8::try_from(value % 26).unwrap_or(0));
            value /= 26;
            letter
        })
        .collect()
}

async fn product(api: &Api, admin: &User, currency: &str, price: i64, stock: u32, threshold: u32) -> Value {
    let body = json!({
        "sku": unique("MAIL-"),
        "name": format!("Mailed {}", unique("lamp")),
        "category": "scenarios",
        "price": { "amount": price, "currency": currency },
        "stock": stock,
        "low_stock_threshold": threshold
    });
    let created = api.call(Method::POST, "/products", Some(&admin.access), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["low_stock_threshold"], threshold, "{}", created.text);
    created.json
}

/// Buys `units` of `product` as `user`; returns the order.
async fn buy(api: &Api, user: &User, product: &Value, units: u32) -> Value {
    let id = product["id"].as_str().unwrap_or_default();
    let line = api.call(Method::PUT, &format!("/cart/items/{id}"), Some(&user.access), Some(&json!({ "quantity": units }))).await;
    assert_eq!(line.status, 200, "{}", line.text);
    let order = api.checkout(user, &unique("k-"), "tok_success").await;
    assert_eq!(order.status, 201, "{}", order.text);
    order.json
}

fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[tokio::test]
async fn each_order_and_cancellation_is_mailed_once_alerted_once_and_reported_exactly() {
    let api = Api::new();
    let sink = tests::mail_sink();
    let admin = api.admin(ADMIN_PASSWORD).await;
    let currency = own_currency();
    let lamp = product(&api, &admin, &currency, 1250, 7, 5).await;
    let sku = text_of(&lamp["sku"]).to_owned();
    let buyer = api.new_user("mailed").await;
    let first = buy(&api, &buyer, &lamp, 2).await;
    // 5 left, at the threshold: the alert reads the stock when its event is handled, so the scenario lets it be
    // handled before anything restocks the lamp.
    sink.wait_for(&format!("low stock of {sku}"), 1, JOB_WAIT).await;
    let second = buy(&api, &buyer, &lamp, 1).await;
    let (first_id, second_id) = (text_of(&first["id"]).to_owned(), text_of(&second["id"]).to_owned());
    let cancelled = api.call(Method::POST, &format!("/orders/{first_id}/cancel"), Some(&buyer.access), None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);

    let expectations = [
        (format!("order {first_id} confirmed"), 1),
        (format!("order {second_id} confirmed"), 1),
        (format!("order {first_id} cancelled"), 1),
        (format!("low stock of {sku}"), 1),
    ];
    for (needle, count) in &expectations {
        sink.wait_for(needle, *count, JOB_WAIT).await;
    }
    // Whatever was going to be sent twice has had time to be: every message must still be there once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (needle, count) in &expectations {
        let found = sink.wait_for(needle, *count, Duration::ZERO).await;
        assert_eq!(found.len(), *count, "mail with {needle:?}: {:?}", found.iter().map(|m| &m.subject).collect::<Vec<_>>());
    }
    let confirmation = &sink.wait_for(&format!("order {first_id} confirmed"), 1, Duration::ZERO).await[0];
    assert_eq!(confirmation.to, std::slice::from_ref(&buyer.email));
    assert!(confirmation.text.contains(&first_id) && confirmation.text.contains(text_of(&lamp["name"])), "{}", confirmation.text);
    assert!(confirmation.text.contains(&format!("Total: {currency} 25.00")), "{}", confirmation.text);
    if sink.keeps_message_id() {
        assert!(confirmation.message_id.contains(&first_id), "the Message-ID {:?} is not derived from the event", confirmation.message_id);
    }
    let alert = &sink.wait_for(&format!("low stock of {sku}"), 1, Duration::ZERO).await[0];
    assert_eq!(alert.to, [tests::admin_email()], "the alert goes to the admins");
    for message in sink.messages().await.unwrap_or_default().iter().filter(|m| m.to.contains(&buyer.email)) {
        for secret in [&buyer.password, &buyer.access, &buyer.refresh] {
            assert!(!message.raw.contains(secret.as_str()), "a mail to the buyer holds a password or token");
        }
    }

    let date = &text_of(&first["created_at"])[..10];
    let mut totals = Value::Null;
    for _ in 0..120 {
        let report = api.call(Method::GET, &format!("/reports/sales?date={date}"), Some(&admin.access), None).await;
        assert_eq!(report.status, 200, "{}", report.text);
        assert_eq!(report.json["date"], date);
        totals = report.json["totals"].as_array().and_then(|all| all.iter().find(|t| t["currency"] == currency.as_str()).cloned()).unwrap_or(Value::Null);
        if totals["cancellations"] == 1 {
            assert!(matches!(text_of(&report.json["status"]), "live" | "closed"), "{}", report.text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let money = |amount: i64| json!({ "amount": amount, "currency": currency });
    assert_eq!(
        totals,
        json!({
            "currency": currency, "orders": 2, "units": 3, "revenue": money(3750), "discounts": money(0),
            "cancellations": 1, "refunds": money(2500), "net": money(1250)
        })
    );

    let customer = api.call(Method::GET, &format!("/reports/sales?date={date}"), Some(&buyer.access), None).await;
    assert_eq!(customer.status, 403, "{}", customer.text);
    for bad in ["2026-02-30", "yesterday", "9999-01-01"] {
        let refused = api.call(Method::GET, &format!("/reports/sales?date={bad}"), Some(&admin.access), None).await;
        assert_eq!((refused.status, refused.problem_code()), (400, Some("invalid_parameter")), "{bad}: {}", refused.text);
    }
}

#[tokio::test]
async fn an_export_is_for_its_owner_and_an_erasure_leaves_only_anonymous_orders() {
    let api = Api::new();
    let sink = tests::mail_sink();
    let scan = tests::store_scan();
    let admin = api.admin(ADMIN_PASSWORD).await;
    let lamp = product(&api, &admin, "EUR", 990, 50, 1).await;
    let user = api.new_user("private").await;
    let other = api.new_user("nosy").await;
    let order = buy(&api, &user, &lamp, 1).await;
    let order_id = text_of(&order["id"]).to_owned();

    let none = api.call(Method::GET, "/me/export", Some(&user.access), None).await;
    assert_eq!((none.status, none.problem_code()), (404, Some("not_found")), "{}", none.text);
    let asked = api.call(Method::POST, "/me/export", Some(&user.access), None).await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let mut export = None;
    for _ in 0..180 {
        let fetched = api.call(Method::GET, "/me/export", Some(&user.access), None).await;
        match fetched.status {
            200 => {
                export = Some(fetched.json);
                break;
            }
            202 => assert_eq!(fetched.json["status"], "pending", "{}", fetched.text),
            _ => panic!("GET /me/export: {}", fetched.text),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let export = export.unwrap_or_else(|| panic!("the export was not ready in time"));
    assert_eq!(export["account"]["email"], user.email.as_str());
    assert_eq!(export["orders"][0]["id"], order_id.as_str(), "{export}");
    let nosy = api.call(Method::GET, "/me/export", Some(&other.access), None).await;
    assert_eq!(nosy.status, 404, "another user reads nothing of it: {}", nosy.text);
    assert!(!nosy.text.contains(&user.email));
    let ready = sink.wait_for("your data export is ready", 1, JOB_WAIT).await;
    assert_eq!(ready.iter().filter(|m| m.to == std::slice::from_ref(&user.email)).count(), 1, "the owner is told once");

    let erased = api.call(Method::DELETE, "/me", Some(&user.access), None).await;
    assert_eq!(erased.status, 202, "{}", erased.text);
    let mut left = Vec::new();
    for _ in 0..180 {
        left = scan.containing(&user.email).await.unwrap_or_else(|error| panic!("scanning the store: {error:#}"));
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(left.is_empty(), "the erased address is still in the store: {:?}", left.iter().map(|item| (&item.pk, &item.sk)).collect::<Vec<_>>());
    // The Worker's test build records what reaches its queues (partitions TESTKIT#..., an hour's TTL) for the test
    // script; that instrumentation is not the shop's data, and no deployed build has it.
    let order_items: Vec<_> = scan
        .containing(&order_id)
        .await
        .unwrap_or_else(|error| panic!("{error:#}"))
        .into_iter()
        .filter(|item| !item.pk.starts_with("TESTKIT#"))
        .collect();
    assert!(!order_items.is_empty(), "the order is kept for the books");
    for item in &order_items {
        assert!(!item.data.contains(&user.id) && !item.pk.contains(&user.id), "the order still names its user: {} {}", item.pk, item.data);
    }
    assert!(order_items.iter().any(|item| item.data.contains("anon-")), "the order has no anonymous owner");
    let kept = api.call(Method::GET, &format!("/orders/{order_id}"), Some(&admin.access), None).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let me = api.call(Method::GET, "/me", Some(&user.access), None).await;
    assert_eq!(me.status, 401, "{}", me.text);
    let again = api.register(&user.email, &user.password).await;
    assert_eq!(again.status, 201, "the address registers again: {}", again.text);
}
