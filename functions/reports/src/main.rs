//! The `reports` function on AWS Lambda, behind API Gateway (HTTP API payload v2 or REST payload v1). Wiring
//! only: `lambda_host` reads the configuration, builds the DynamoDB store once per cold start and serves
//! `reports::router` through `lambda_http`; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_http(reports::router)
}
