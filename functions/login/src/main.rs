//! The `login` function on AWS Lambda: `POST /auth/login` behind API Gateway (HTTP API payload v2 or REST
//! payload v1). Wiring only: the first admin, the login allowance and the Argon2id costs come from the environment
//! (`lambda_host::auth::run_account_http` reads `AuthEnv`), the client's address from API Gateway's request context, and
//! `lambda_host` builds the DynamoDB store once per cold start and serves `login::router`; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::auth::run_account_http(login::router)
}
