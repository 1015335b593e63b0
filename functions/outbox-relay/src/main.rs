//! The `outbox-relay` function on AWS Lambda: run by an EventBridge schedule, it publishes the outbox events
//! that are still in the table (their queue was down when the request committed them, or the function that
//! committed them has no publisher) and answers what it did as JSON. Wiring only: `lambda_host::run_outbox_relay`
//! reads the configuration, builds the DynamoDB store and the SQS publisher once per cold start and runs
//! `shared::outbox::Outbox::relay` on every invocation; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_outbox_relay()
}
