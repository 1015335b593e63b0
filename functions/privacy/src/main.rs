//! The `privacy` function on AWS Lambda: the privacy queue's consumer, triggered by an SQS event source mapping
//! with `ReportBatchItemFailures`. Wiring only: `lambda_host::run_privacy` reads the configuration, builds the
//! DynamoDB, SQS and SES clients once per cold start and hands every record to `shared::jobs::Jobs::privacy`;
//! no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_privacy()
}
