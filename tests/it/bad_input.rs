//! End-to-end scenarios for bad input: every malformed, oversized or hostile request gets a 4xx problem
//! document with a stable code, and changes nothing.

use tests::Api;

async fn assert_problem(api: &Api, path: &str, status: u16, code: &str) {
    let answer = api.get(path).await;
    assert_eq!(answer.status, status, "{path}: {}", answer.text);
    assert_eq!(answer.problem_code(), Some(code), "{path}: {} {:?}", answer.text, answer.header("content-type"));
    assert_eq!(answer.json["status"].as_u64(), Some(u64::from(status)), "{path}");
}

#[tokio::test]
async fn malformed_query_parameters_are_refused_with_the_parameter_named() {
    let api = Api::new();
    for (path, param) in [
        ("/products?limit=abc", "limit"),
        ("/products?limit=-1", "limit"),
        ("/products?min_price=1.5", "min_price"),
        ("/products?min_price=-5", "min_price"),
        ("/products?min_price=900&max_price=100", "min_price"),
        ("/products?category=Not%20A%20Slug", "category"),
        ("/products?q=ab%20cd%20ef%20gh%20ij%20kl%20mn%20op%20qr", "q"),
        ("/products?sort=cheapest", "sort"),
        ("/products?limit=5&limit=6", "limit"),
        ("/products?colour=red", "colour"),
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(answer.problem_code(), Some("invalid_parameter"), "{path}");
        assert_eq!(answer.json["param"], param, "{path}");
    }
}

#[tokio::test]
async fn a_page_size_over_the_maximum_is_refused() {
    let api = Api::new();
    assert_problem(&api, "/products?limit=101", 400, "invalid_parameter").await;
    assert_problem(&api, "/products?limit=0", 400, "invalid_parameter").await;
    assert_eq!(api.get("/products?limit=100").await.status, 200);
}

#[tokio::test]
async fn invalid_tampered_or_foreign_cursors_are_refused() {
    let api = Api::new();
    let page = api.get("/products?q=oak&limit=2").await;
    let cursor = page.json["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty(), "no cursor on a partial page: {}", page.text);
    assert_eq!(api.get(&format!("/products?q=oak&limit=2&cursor={cursor}")).await.status, 200);
    let (body, tag) = cursor.split_once('.').unwrap_or_default();
    let flipped: String = body.chars().rev().collect();
    for bad in ["garbage".to_owned(), format!("{flipped}.{tag}"), format!("{body}.AAAAAAAAAAAAAAAAAAAAAA"), format!("{cursor}x")] {
        assert_problem(&api, &format!("/products?q=oak&limit=2&cursor={bad}"), 400, "invalid_cursor").await;
    }
    // A cursor belongs to its search: the same cursor with other filters is refused.
    assert_problem(&api, &format!("/products?q=walnut&limit=2&cursor={cursor}"), 400, "invalid_cursor").await;
}

#[tokio::test]
async fn unknown_and_malformed_product_ids_are_refused() {
    let api = Api::new();
    assert_problem(&api, "/products/00000000000000000000000000000000", 404, "not_found").await;
    assert_problem(&api, "/products/not%20an%20id", 400, "invalid_parameter").await;
    assert_problem(&api, &format!("/products/{}", "x".repeat(65)), 400, "invalid_parameter").await;
    assert_problem(&api, "/no/such/route", 404, "not_found").await;
}

#[tokio::test]
async fn unsupported_methods_and_bodies_are_refused_and_change_nothing() {
    let api = Api::new();
    // The admin scenario writes products in category `scenarios` at the same time; they are not this test's.
    let ours = |items: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        items.into_iter().filter(|item| item["category"] != "scenarios").collect()
    };
    let before = ours(api.walk_products("limit=100").await);
    let huge = vec![b'x'; 2 * 1024 * 1024];
    for (method, path) in [(reqwest::Method::PATCH, "/products"), (reqwest::Method::POST, "/products/x1"), (reqwest::Method::PUT, "/health")] {
        let answer = api.send(method.clone(), path, &[], Some(("application/json", huge.clone()))).await;
        assert!((400..500).contains(&answer.status), "{method} {path}: {}", answer.status);
        assert_eq!(answer.problem_code(), Some("method_not_allowed"), "{method} {path}: {}", answer.text);
    }
    let after = ours(api.walk_products("limit=100").await);
    assert_eq!(before, after, "refused requests changed the catalog");
}

/// Sends `body` as JSON text with `method` to `path` as `token`, and checks the answer is the 4xx problem
/// document `status` / `code`.
async fn assert_refused(api: &Api, token: &str, (method, path): (reqwest::Method, &str), body: &[u8], (status, code): (u16, &str)) {
    let authorization = format!("Bearer {token}");
    let headers = [("authorization", authorization.as_str()), ("idempotency-key", "bad-input-key")];
    let answer = api.send(method.clone(), path, &headers, Some(("application/json", body.to_vec()))).await;
    let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
    assert_eq!((answer.status, answer.problem_code()), (status, Some(code)), "{method} {path} with {shown}: {}", answer.text);
}

#[tokio::test]
async fn hostile_commerce_requests_are_refused_and_change_nothing() {
    use reqwest::Method;
    let api = Api::new();
    let shopper = api.new_user("hostile").await;
    let token = shopper.access.as_str();
    let cart_before = api.call(Method::GET, "/cart", Some(token), None).await;
    assert_eq!(cart_before.status, 200, "{}", cart_before.text);
    let line = "/cart/items/00000000000000000000000000000000";
    // Over the JSON limit (64 KiB) but within what a host buffers (8 MiB), so the connection stays usable.
    let huge = vec![b' '; 2 * 1024 * 1024];
    for (body, status, code) in [
        (&b"not json"[..], 400, "invalid_body"),
        (b"[]", 400, "invalid_body"),
        (b"{\"quantity\":\"2\"}", 400, "invalid_body"),
        (b"{\"quantity\":2,\"extra\":true}", 400, "invalid_body"),
        (b"{\"quantity\":1e309}", 400, "invalid_body"),
        (b"{\"quantity\":0}", 422, "validation_failed"),
        (b"{\"quantity\":-3}", 422, "validation_failed"),
        (b"{\"quantity\":4294967297}", 422, "validation_failed"),
        (&huge[..], 413, "payload_too_large"),
    ] {
        assert_refused(&api, token, (Method::PUT, line), body, (status, code)).await;
    }
    assert_refused(&api, token, (Method::PUT, "/cart/items/not%20an%20id"), b"{\"quantity\":1}", (400, "invalid_parameter")).await;
    assert_refused(&api, token, (Method::PUT, "/cart/discount"), b"{\"code\":7}", (400, "invalid_body")).await;
    assert_refused(&api, token, (Method::PUT, "/cart/discount"), b"{\"code\":\"\\u0000DROP\"}", (422, "discount_invalid")).await;
    for (body, status, code) in [
        (&b"{}"[..], 400, "invalid_body"),
        (b"{\"payment_token\":\"\"}", 422, "validation_failed"),
        (b"{\"payment_token\":\"tok success\"}", 422, "validation_failed"),
        (b"{\"payment_token\":[\"tok_success\"]}", 400, "invalid_body"),
    ] {
        assert_refused(&api, token, (Method::POST, "/checkout"), body, (status, code)).await;
    }
    let long_token = format!("{{\"payment_token\":\"{}\"}}", "t".repeat(300));
    assert_refused(&api, token, (Method::POST, "/checkout"), long_token.as_bytes(), (422, "validation_failed")).await;
    assert_refused(&api, token, (Method::POST, "/discounts"), b"{\"code\":\"X1\",\"percent_off\":10}", (403, "forbidden")).await;
    for (path, status, code) in [
        ("/orders?limit=abc", 400, "invalid_parameter"),
        ("/orders?limit=0", 400, "invalid_parameter"),
        ("/orders?cursor=garbage", 400, "invalid_cursor"),
        ("/orders?colour=red", 400, "invalid_parameter"),
    ] {
        let answer = api.call(Method::GET, path, Some(token), None).await;
        assert_eq!((answer.status, answer.problem_code()), (status, Some(code)), "{path}: {}", answer.text);
    }
    let long_id = format!("/orders/{}", "o".repeat(300));
    for path in [long_id.as_str(), "/orders/%00", "/orders/..%2F..%2Fetc"] {
        let answer = api.call(Method::GET, path, Some(token), None).await;
        assert!((400..500).contains(&answer.status), "{path}: {}", answer.text);
        let cancelled = api.call(Method::POST, &format!("{path}/cancel"), Some(token), None).await;
        assert!((400..500).contains(&cancelled.status), "{path}/cancel: {}", cancelled.text);
    }
    for (method, path) in [(Method::DELETE, "/checkout"), (Method::PATCH, "/cart"), (Method::PUT, "/orders")] {
        let answer = api.call(method.clone(), path, Some(token), None).await;
        assert_eq!((answer.status, answer.problem_code()), (405, Some("method_not_allowed")), "{method} {path}: {}", answer.text);
    }
    let cart_after = api.call(Method::GET, "/cart", Some(token), None).await;
    assert_eq!(cart_after.json, cart_before.json, "refused requests changed the cart");
    let orders = api.call(Method::GET, "/orders", Some(token), None).await;
    assert_eq!(orders.json["items"], serde_json::json!([]), "refused requests made an order: {}", orders.text);
}

#[tokio::test]
async fn docs_serve_the_page_and_its_files_a_name_that_is_no_file_is_not_found_and_docs_take_only_get() {
    let api = Api::new();
    let missing = api.call(reqwest::Method::GET, "/docs/no-such-file.js", None, None).await;
    assert_eq!((missing.status, missing.problem_code()), (404, Some("not_found")), "GET /docs/no-such-file.js: {}", missing.text);
    // The page and its files themselves, on the Worker from its docs Worker: the page names the files it loads.
    let page = api.call(reqwest::Method::GET, "/docs", None, None).await;
    assert_eq!(page.status, 200, "GET /docs: {}", page.text);
    assert!(page.text.contains("<title>Storefront API reference</title>"), "GET /docs is not the page: {}", page.text);
    for file in ["/docs/docs.js", "/docs/swagger-ui.css"] {
        assert!(page.text.contains(file), "the page does not load {file}");
        let answer = api.call(reqwest::Method::GET, file, None, None).await;
        assert_eq!(answer.status, 200, "GET {file}: {}", answer.status);
        assert!(!answer.text.is_empty(), "GET {file} is empty");
    }
    // The page and its files take GET (and HEAD) only, with the docs function's problem document on every host:
    // the Worker hands only GET and HEAD to its docs Worker.
    for path in ["/docs", "/docs/docs.js"] {
        let answer = api.call(reqwest::Method::POST, path, None, None).await;
        assert_eq!((answer.status, answer.problem_code()), (405, Some("method_not_allowed")), "POST {path}: {}", answer.text);
    }
    // A name that is no file reaches the docs function on every host, the Worker included.
    let answer = api.call(reqwest::Method::POST, "/docs/no-such-file.js", None, None).await;
    assert_eq!((answer.status, answer.problem_code()), (405, Some("method_not_allowed")), "POST /docs/no-such-file.js: {}", answer.text);
}
