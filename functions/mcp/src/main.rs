//! The `mcp` function on AWS Lambda: `POST /mcp` behind API Gateway. Wiring only: `lambda_host` reads the
//! configuration (the allowed browser origins included) and builds the store once per cold start.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::run_mcp_http(|state, origins| mcp::router_with(state, mcp::McpSettings::from_list(origins)))
}
