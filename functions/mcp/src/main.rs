//! The `mcp` function on AWS Lambda: `POST /mcp` behind API Gateway. Wiring only.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_http(mcp::router)
}
