//! The `docs` function on AWS Lambda: the API reference page and its files behind API Gateway. Wiring only;
//! the only function whose binary carries Swagger UI.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_http(docs::router)
}
