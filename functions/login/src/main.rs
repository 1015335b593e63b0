//! The `login` function on AWS Lambda: `POST /auth/login` behind API Gateway (HTTP API payload v2 or REST
//! payload v1). Wiring only: the first admin and the login allowance come from the environment
//! (`shared::lambda::auth::AuthEnv`), the client's address from API Gateway's request context, and
//! `shared::lambda` builds the DynamoDB store once per cold start and serves `login::router`; no rule lives here.

use shared::lambda::auth::{AuthEnv, with_client_address};

fn main() -> Result<(), shared::lambda::Error> {
    let auth = AuthEnv::from_env()?;
    shared::lambda::run_http(move |state| {
        let state = state.with_auth_settings(auth.settings()).expect("the authentication settings are valid");
        with_client_address(login::router(state))
    })
}
