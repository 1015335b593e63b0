//! The `openapi` function on AWS Lambda: `GET /openapi.json` behind API Gateway. Wiring only: it
//! needs no store, so it builds no SDK client and reads neither the table's name nor the master secret.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_static_http(openapi::router)
}
