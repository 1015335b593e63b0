//! The `openapi` function on AWS Lambda: `GET /openapi.json` behind API Gateway. Wiring only.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_http(openapi::router)
}
