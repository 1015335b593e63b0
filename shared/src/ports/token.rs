//! The token signer port: issues the short-lived access tokens that sign a user in, and verifies them.
//!
//! Refresh tokens are not its business: they are opaque random strings kept by `sessions`. Time comes from
//! the `Clock` the adapter is built with, never from the system, which panics on wasm32.

use secrecy::SecretString;

use crate::domain::account::{Role, SessionId, UserId};
use crate::ports::Timestamp;

/// Why a presented access token was refused. Every reason means 401 to a client; the reason is for logs
/// and tests, and is safe to log (it never contains the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a well-formed token, or a required claim is missing or of the wrong type.
    Malformed,
    /// The header names an algorithm other than the one the server fixed (including `none`).
    WrongAlgorithm,
    /// The signature does not match.
    BadSignature,
    /// Its expiry has passed.
    Expired,
    /// Its not-before time has not come yet.
    NotYetValid,
    /// Another issuer made it.
    WrongIssuer,
    /// It is meant for another audience.
    WrongAudience,
}

impl std::fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRejection::Malformed => "malformed token",
            TokenRejection::WrongAlgorithm => "wrong algorithm",
            TokenRejection::BadSignature => "bad signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not yet valid",
            TokenRejection::WrongIssuer => "wrong issuer",
            TokenRejection::WrongAudience => "wrong audience",
        })
    }
}

/// What can go wrong issuing or verifying an access token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The presented token is not acceptable.
    #[error("access token refused: {0}")]
    Rejected(TokenRejection),
    /// The signer failed (it could not encode the claims, for instance).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user it signs in (`sub`).
    pub subject: UserId,
    /// The user's role when it was issued.
    pub role: Role,
    /// The session (refresh-token family) it was issued from (`sid`).
    pub session: SessionId,
    /// When it was issued (`iat`).
    pub issued_at: Timestamp,
    /// When it becomes valid (`nbf`).
    pub not_before: Timestamp,
    /// When it stops being valid (`exp`).
    pub expires_at: Timestamp,
}

/// A freshly issued access token, to be handed to the client once.
pub struct IssuedToken {
    /// The token (a compact JWS); a secret, so it stays out of `Debug` output.
    pub token: SecretString,
    /// When it expires, for the response's `expires_in`.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("token", &"[REDACTED]").field("expires_at", &self.expires_at).finish()
    }
}

/// Issues and verifies access tokens.
///
/// Contract, which every adapter MUST keep:
/// - the signing algorithm and key are fixed by the server; the token's header never chooses them, so a
///   token whose header names another algorithm (`none`, another HMAC size, an asymmetric one) is refused
///   with [`TokenRejection::WrongAlgorithm`] or [`TokenRejection::Malformed`] before any claim is read;
/// - `issue` sets issuer, audience, subject, role, session, issued-at and not-before to the clock's current
///   second, and expiry to that plus the configured lifetime;
/// - `verify` checks the signature, then the issuer and audience against its configuration, then expiry and
///   not-before against the injected clock (with at most the configured leeway), and refuses on the first
///   failure; it never reads the system clock;
/// - neither the token nor the key appears in an error, a log line or a `Debug` output.
pub trait TokenSigner: Send + Sync + 'static {
    /// Issues an access token for `subject` in `session`.
    ///
    /// # Errors
    /// [`TokenError::Internal`] when the token cannot be encoded or signed.
    fn issue(&self, subject: &UserId, role: Role, session: &SessionId) -> Result<IssuedToken, TokenError>;

    /// Verifies a presented token and returns its claims.
    ///
    /// # Errors
    /// [`TokenError::Rejected`] with the first reason found; [`TokenError::Internal`] when the signer fails.
    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError>;
}

impl<T: TokenSigner + ?Sized> TokenSigner for std::sync::Arc<T> {
    fn issue(&self, subject: &UserId, role: Role, session: &SessionId) -> Result<IssuedToken, TokenError> {
        (**self).issue(subject, role, session)
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        (**self).verify(token)
    }
}
