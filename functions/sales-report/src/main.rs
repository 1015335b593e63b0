//! The `sales-report` function on AWS Lambda, on a daily EventBridge schedule. Wiring only:
//! `lambda_host::run_sales_report` reads the configuration, builds the DynamoDB and SES clients once per cold
//! start and runs `shared::jobs::Jobs::sales_report` on each invocation; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_sales_report()
}
