//! End-to-end admin scenarios: catalog writes (`POST /products`, `PUT` and `DELETE /products/{id}` with
//! `If-Match`) are refused to anonymous callers (401) and customers (403); an admin's writes are validated
//! (422 naming the field), conditional (428 without `If-Match`, 412 when stale), keep SKUs unique (409) and
//! keep the search in step. The admin is the host's configured first admin (`tests::admin_email`); the
//! scenarios register it themselves if no earlier run did, and sign it in once per process (`tests::Api::admin`).
//!
//! The products written here are in category `scenarios` and named with words no demo product uses, so the
//! catalog scenarios running at the same time are not disturbed.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Api, User, unique};

/// The password the scenarios give the first admin (scripts/test-workers.sh reads it from this line).
const ADMIN_PASSWORD: &str = "scenario-admin-password-0001";

/// The host's first admin, signed in once for every scenario of this process (see `tests::Api::admin`); the
/// commerce scenarios use it too.
pub(crate) async fn admin(api: &Api) -> User {
    api.admin(ADMIN_PASSWORD).await
}

fn product(sku: &str, name: &str) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "description": "written by the admin scenario",
        "category": "scenarios",
        "price": { "amount": 1234, "currency": "EUR" },
        "stock": 3
    })
}

fn search_ids(answer: &tests::Answer) -> Vec<String> {
    answer.json["items"].as_array().map(|items| items.iter().filter_map(|item| item["id"].as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[tokio::test]
async fn catalog_writes_are_refused_to_anonymous_callers_and_customers() {
    let api = Api::new();
    let customer = api.new_user("shopper").await;
    let listed = api.get("/products?limit=1").await;
    let id = listed.json["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/products/{id}");
    let etag = api.get(&path).await.header("etag").unwrap_or_default().to_owned();
    let body = product(&unique("SKU-"), "Zorblax Refused");
    let headers_for = |token: Option<&str>| token.map(|token| format!("Bearer {token}"));
    for (who, token, status, code) in [("anonymous", None, 401, "unauthorized"), ("a customer", Some(customer.access.as_str()), 403, "forbidden")] {
        for (method, target) in [(Method::POST, "/products"), (Method::PUT, path.as_str()), (Method::DELETE, path.as_str())] {
            let authorization = headers_for(token);
            let mut headers = vec![("if-match", etag.as_str())];
            if let Some(value) = &authorization {
                headers.push(("authorization", value.as_str()));
            }
            let answer = api.send(method.clone(), target, &headers, Some(("application/json", body.to_string().into_bytes()))).await;
            assert_eq!((answer.status, answer.problem_code()), (status, Some(code)), "{who} {method} {target}: {}", answer.text);
        }
    }
    let after = api.get(&path).await;
    assert_eq!(after.header("etag"), Some(etag.as_str()), "a refused write changed the product");
    assert!(search_ids(&api.get("/products?q=zorblax").await).is_empty(), "a refused create wrote a product");
}

#[tokio::test]
async fn an_admin_creates_replaces_and_deletes_products_conditionally() {
    let api = Api::new();
    let admin = admin(&api).await;
    let token = Some(admin.access.as_str());
    let sku = unique("SKU-");
    let word = unique("quuxwidget");

    for (field, mut body) in [("price", product(&sku, "Bad")), ("name", product(&sku, "  ")), ("price.currency", product(&sku, "Bad"))] {
        match field {
            "price" => body["price"]["amount"] = json!(-1),
            "price.currency" => body["price"]["currency"] = json!("euro"),
            _ => {}
        }
        let answer = api.call(Method::POST, "/products", token, Some(&body)).await;
        assert_eq!((answer.status, answer.problem_code()), (422, Some("validation_failed")), "{field}: {}", answer.text);
        assert_eq!(answer.json["param"], field, "{}", answer.text);
    }

    let created = api.call(Method::POST, "/products", token, Some(&product(&sku, &format!("Scenario {word}")))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/products/{id}");
    assert_eq!(created.header("location"), Some(path.as_str()));
    assert_eq!(search_ids(&api.get(&format!("/products?q={word}")).await), [id.as_str()]);
    let taken = api.call(Method::POST, "/products", token, Some(&product(&sku.to_lowercase(), "Same SKU"))).await;
    assert_eq!((taken.status, taken.problem_code()), (409, Some("conflict")), "{}", taken.text);

    let renamed_word = unique("frobnicator");
    let replacement = product(&sku, &format!("Scenario {renamed_word}"));
    let bearer = format!("Bearer {}", admin.access);
    let put = |if_match: Option<&'static str>| {
        let api = api.clone();
        let path = path.clone();
        let bearer = bearer.clone();
        let body = replacement.to_string().into_bytes();
        async move {
            let mut headers = vec![("authorization", bearer.as_str())];
            if let Some(tag) = if_match {
                headers.push(("if-match", tag));
            }
            api.send(Method::PUT, &path, &headers, Some(("application/json", body))).await
        }
    };
    let missing = put(None).await;
    assert_eq!((missing.status, missing.problem_code()), (428, Some("precondition_required")), "{}", missing.text);
    let stale = put(Some("\"7\"")).await;
    assert_eq!((stale.status, stale.problem_code()), (412, Some("precondition_failed")), "{}", stale.text);
    let weak = put(Some("W/\"1\"")).await;
    assert_eq!(weak.status, 412, "a weak tag must not match: {}", weak.text);
    let replaced = put(Some("\"1\"")).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    assert_eq!(replaced.json["version"], 2);
    let again = put(Some("\"1\"")).await;
    assert_eq!(again.status, 412, "a second write from the same stale read: {}", again.text);
    assert!(search_ids(&api.get(&format!("/products?q={word}")).await).is_empty(), "the old name is still indexed");
    assert_eq!(search_ids(&api.get(&format!("/products?q={renamed_word}")).await), [id.as_str()]);
    let fetched = api.get(&path).await;
    assert_eq!((fetched.header("etag"), &fetched.json["name"]), (Some("\"2\""), &json!(format!("Scenario {renamed_word}"))));

    let delete = |tag: Option<&'static str>| {
        let api = api.clone();
        let path = path.clone();
        let bearer = bearer.clone();
        async move {
            let mut headers = vec![("authorization", bearer.as_str())];
            if let Some(tag) = tag {
                headers.push(("if-match", tag));
            }
            api.send(Method::DELETE, &path, &headers, None).await
        }
    };
    assert_eq!(delete(None).await.status, 428);
    assert_eq!(delete(Some("\"1\"")).await.status, 412);
    assert_eq!(api.get(&path).await.status, 200, "a refused delete removed the product");
    let deleted = delete(Some("\"2\"")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(api.get(&path).await.status, 404);
    assert!(search_ids(&api.get(&format!("/products?q={renamed_word}")).await).is_empty(), "a deleted product is still indexed");
    assert_eq!(delete(Some("\"2\"")).await.status, 404);
    // The SKU is free again once its product is gone.
    let reused = api.call(Method::POST, "/products", token, Some(&product(&sku, "Scenario reuse"))).await;
    assert_eq!(reused.status, 201, "{}", reused.text);
    let reused_path = format!("/products/{}", reused.json["id"].as_str().unwrap_or_default());
    let cleanup = api.send(Method::DELETE, &reused_path, &[("authorization", bearer.as_str()), ("if-match", "*")], None).await;
    assert_eq!(cleanup.status, 204, "If-Match: * deletes the current version: {}", cleanup.text);
}
