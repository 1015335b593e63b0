//! The `checkout-sweep` function on AWS Lambda: run by an EventBridge schedule, it settles the orders a checkout
//! left reserved past the grace period (a killed process, a client that never retried), asking the payment
//! provider under the order's own key whether the charge happened, and answers what it did as JSON. Wiring only:
//! `lambda_host::run_checkout_sweep` reads the configuration, builds the DynamoDB store, the commerce use cases
//! and the orders publisher once per cold start and runs `shared::commerce::Commerce::sweep` on every
//! invocation; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_checkout_sweep()
}
