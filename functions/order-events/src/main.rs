//! The `order-events` function on AWS Lambda: the orders queue's consumer, triggered by an SQS event source
//! mapping with `ReportBatchItemFailures`. Wiring only: `lambda_host::run_order_events` reads the configuration,
//! builds the DynamoDB, SQS and SES clients once per cold start and hands every record to
//! `shared::jobs::Jobs::orders`, reporting only the records that must be delivered again; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_order_events()
}
