//! The `jobs` function on AWS Lambda: the consumer of the jobs queue, triggered by an SQS event source
//! mapping with `ReportBatchItemFailures`. Wiring only: `lambda_host::run_jobs` reads the configuration,
//! builds the SQS client once per cold start and settles every record through `shared::jobs::handle`,
//! reporting only the records that must be delivered again; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_jobs()
}
