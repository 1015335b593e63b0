//! The local host with Stripe as its payment provider, against localstripe: the `local-host` binary built
//! with `--features stripe` (named by `STOREFRONT_LOCAL_HOST_BIN`) runs with `--payments stripe` and
//! `STRIPE_API_BASE` pointing at localstripe, and a customer checks out with a card, gets a declined card
//! refused with everything given back, and cancels the paid order into a refund. The secret key never shows
//! in the host's output. `scripts/test-stripe.sh` runs it; without `STRIPE_API_BASE` it says loudly that it
//! was skipped.

use reqwest::Method;
use serde_json::{Value, json};
use tests::Api;
use tests::host_process::{HostProcess, LOCAL_HOST_BIN_VAR, free_port, wait_until_up};

const ADMIN_EMAIL: &str = "stripe-admin@scenarios.test";
const ADMIN_PASSWORD: &str = "stripe-admin-password-0001";
/// localstripe accepts any key of Stripe's shape; this one is made up for the test.
const SECRET_KEY: &str = "sk_test_storefront_scenario_key_0001";

/// A payment method localstripe declines when charged (Stripe's test card 4000 0000 0000 0341).
async fn declining_payment_method(stripe_base: &str) -> String {
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{stripe_base}/v1/payment_methods"))
        .basic_auth(SECRET_KEY, Some(""))
        .form(&[("type", "card"), ("card[number]", "4000000000000341"), ("card[exp_month]", "12"), ("card[exp_year]", "2030"), ("card[cvc]", "123")])
        .send()
        .await
        .unwrap_or_else(|error| panic!("localstripe did not answer: {error}"));
    let created: Value = answer.json().await.unwrap_or_else(|error| panic!("localstripe answered no JSON: {error}"));
    created["id"].as_str().unwrap_or_else(|| panic!("no payment method id: {created}")).to_owned()
}

#[tokio::test]
async fn the_local_host_checks_out_declines_and_refunds_through_stripe() {
    let (Ok(bin), Ok(stripe_base)) = (std::env::var(LOCAL_HOST_BIN_VAR), std::env::var("STRIPE_API_BASE")) else {
        eprintln!("\n!!!! SKIPPED: {LOCAL_HOST_BIN_VAR} or STRIPE_API_BASE is not set, so the local host on Stripe was NOT tested.");
        eprintln!("!!!! scripts/test-stripe.sh sets both.\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let data = dir.path().join("stripe.db");
    let port = free_port();
    let api = Api::at(&format!("http://127.0.0.1:{port}"));
    let args = [
        "--no-seed", "--insecure-fast-passwords", "--admin-email", ADMIN_EMAIL, "--log", "info",
        "--payments", "stripe", "--stripe-api-base", &stripe_base, "--stripe-secret-key", SECRET_KEY,
    ];
    let host = HostProcess::start(&bin, &data, port, "stripe", &args);
    wait_until_up(&api).await;

    let registered = api.register(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let admin = api.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let product = api.create_product(&admin, "stripe", 2000, 5).await;
    let product_id = product["id"].as_str().unwrap_or_default().to_owned();
    let shopper = api.new_user("stripe").await;
    let cart_line = format!("/cart/items/{product_id}");
    let added = api.call(Method::PUT, &cart_line, Some(&shopper.access), Some(&json!({"quantity": 2}))).await;
    assert_eq!(added.status, 200, "{}", added.text);

    let declined = api.checkout(&shopper, "stripe-declined", &declining_payment_method(&stripe_base).await).await;
    assert_eq!((declined.status, declined.problem_code()), (402, Some("payment_declined")), "{}", declined.text);
    assert_eq!(api.stock_of(&product_id).await, 5, "a declined card gives the reservation back");
    let cart = api.call(Method::GET, "/cart", Some(&shopper.access), None).await;
    assert_eq!(cart.json["items"].as_array().map(Vec::len), Some(1), "the cart is kept: {}", cart.text);

    let paid = api.checkout(&shopper, "stripe-paid", "pm_card_visa").await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    assert_eq!(paid.json["status"], "paid");
    assert_eq!(paid.json["payment"]["provider"], "stripe", "{}", paid.text);
    let charge_id = paid.json["payment"]["charge_id"].as_str().unwrap_or_default().to_owned();
    assert!(charge_id.starts_with("pi_"), "a Stripe PaymentIntent id: {charge_id}");
    assert_eq!(api.stock_of(&product_id).await, 3);
    let order_id = paid.json["id"].as_str().unwrap_or_default().to_owned();

    let cancelled = api.call(Method::POST, &format!("/orders/{order_id}/cancel"), Some(&shopper.access), None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!((cancelled.json["status"].clone(), cancelled.json["payment"]["status"].clone()), (json!("cancelled"), json!("refunded")));
    assert_eq!(api.stock_of(&product_id).await, 5, "a cancelled order restocks");
    let again = api.call(Method::POST, &format!("/orders/{order_id}/cancel"), Some(&shopper.access), None).await;
    assert_eq!(again.json, cancelled.json, "cancelling twice changes nothing");

    let intent = reqwest::Client::new()
        .get(format!("{stripe_base}/v1/payment_intents/{charge_id}"))
        .basic_auth(SECRET_KEY, Some(""))
        .send()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let intent: Value = intent.json().await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(intent["metadata"]["order_id"], order_id.as_str(), "the intent names its order: {intent}");
    let ledger = api.call(Method::GET, "/payments/sandbox/charges", Some(&admin.access), None).await;
    assert_eq!(ledger.status, 404, "no sandbox ledger when Stripe is the provider: {}", ledger.text);

    drop(host);
    for stream in ["out", "err"] {
        let output = std::fs::read_to_string(data.with_extension(format!("stripe.{stream}"))).unwrap_or_default();
        assert!(!output.contains(SECRET_KEY), "the Stripe secret key appears in the host's std{stream}");
    }
}
