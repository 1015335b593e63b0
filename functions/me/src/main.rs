//! The `me` function on AWS Lambda: `GET /me`, `DELETE /me` and `POST /me/export` behind API Gateway (HTTP API
//! payload v2 or REST payload v1). Wiring only: the first admin, the login allowance and the Argon2id costs come
//! from the environment (`lambda_host::auth::run_account_http` reads `AuthEnv`), the client's address from API Gateway's request
//! context, and `lambda_host` builds the DynamoDB store once per cold start, with the privacy queue's publisher
//! when `PRIVACY_QUEUE_URL` is set (the privacy jobs the requests commit are sent right away; the outbox relay
//! sends any left behind), and serves `me::router`; no rule lives here.

fn main() -> Result<(), lambda_host::Error> {
    lambda_host::auth::run_account_http(me::router)
}
