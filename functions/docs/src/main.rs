//! The `docs` function on AWS Lambda: the API reference page and its files behind API Gateway. Wiring only;
//! the only function whose binary carries Swagger UI. It needs no store, so it builds no SDK client and reads neither
//! the table's name nor the master secret.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_static_http(docs::router)
}
