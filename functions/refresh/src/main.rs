//! The `refresh` function on AWS Lambda: `POST /auth/refresh` behind API Gateway (HTTP API payload v2 or REST
//! payload v1). Wiring only: the first admin, the login allowance and the Argon2id costs come from the environment
//! (`shared::lambda::auth::AuthEnv`), the client's address from API Gateway's request context, and
//! `shared::lambda` builds the DynamoDB store once per cold start and serves `refresh::router`; no rule lives here.

use shared::lambda::auth::{AuthEnv, with_client_address};

fn main() -> Result<(), shared::lambda::Error> {
    let auth = AuthEnv::from_env()?;
    shared::lambda::run_http(move |state| {
        // AuthEnv::from_env checked both at cold start (Argon2's limits included), so neither can fail here.
        let state = state
            .with_auth_settings(auth.settings())
            .and_then(|state| state.with_password_params(auth.password))
            .expect("the authentication settings are valid");
        with_client_address(refresh::router(state))
    })
}
