//! Who is calling: the bearer-token extractor ([`Authenticated`]), the admin check ([`Admin`]) and the
//! client's network address ([`ClientAddress`]), which the host, not the request, supplies.
//!
//! The extractors answer 401 or 403 problem documents and never echo or log the presented token. They hold no
//! rules of their own: `Auth::authenticate` decides whether a token is good.

use axum::extract::FromRequestParts;
use http::header;
use http::request::Parts;

use crate::domain::account::{Role, User};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::ports::ItemStore;
use crate::ports::token::AccessClaims;

/// The longest `Authorization` header read, in bytes; anything longer is not a token this API issued.
const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// The signed-in caller: the account as it is now and the claims of the token that signed it in.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account.
    pub user: User,
    /// The access token's claims (its session, for logout).
    pub claims: AccessClaims,
}

/// A signed-in caller with the admin role (403 for other roles, 401 for nobody).
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

/// The network address of the client, as the host saw the connection (never from a request header such as
/// `X-Forwarded-For`, which any client can write). Each host puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// The token of an `Authorization: Bearer <token>` header, if there is exactly one well-formed such header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S: ItemStore + Clone> FromRequestParts<AppState<S>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let (user, claims) = state.auth.authenticate(token).await?;
        Ok(Authenticated { user, claims })
    }
}

impl<S: ItemStore + Clone> FromRequestParts<AppState<S>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let caller = Authenticated::from_request_parts(parts, state).await?;
        // The role is the account's current one, not the token's: a demoted admin loses access at once.
        if caller.user.role == Role::Admin { Ok(Admin(caller)) } else { Err(ApiError::Forbidden) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A host that does not say who the client is would put every client in one rate-limit bucket; that is
        // a wiring bug, so it fails loudly instead.
        parts
            .extensions
            .get::<ClientAddress>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the host did not supply the client address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(values: &[&str]) -> Parts {
        let mut request = http::Request::builder();
        for value in values {
            request = request.header(header::AUTHORIZATION, *value);
        }
        request.body(()).unwrap_or_else(|e| panic!("{e}")).into_parts().0
    }

    #[test]
    fn only_one_well_formed_bearer_header_gives_a_token() {
        assert_eq!(bearer_token(&parts(&["Bearer abc.def.ghi"])), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&parts(&["bearer  abc "])), Some("abc"));
        assert_eq!(bearer_token(&parts(&[])), None);
        assert_eq!(bearer_token(&parts(&["Basic abc"])), None);
        assert_eq!(bearer_token(&parts(&["Bearer "])), None);
        assert_eq!(bearer_token(&parts(&["Bearer a", "Bearer b"])), None);
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(bearer_token(&parts(&[&long])), None);
    }
}
