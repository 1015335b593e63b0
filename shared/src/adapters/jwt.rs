//! The JWT access-token signer (`jsonwebtoken` crate, HS256), for every host including wasm32.
//!
//! The algorithm is fixed here, never taken from a token: `jsonwebtoken` is given a crypto provider that
//! knows HS256 and nothing else, and a validation that accepts HS256 only, so `alg: none` and algorithm
//! confusion (an `RS256` or `HS512` header) are refused before a claim is read. The library's own time checks
//! read the system clock (which panics on wasm32), so they are switched off and expiry and not-before are
//! checked here against the injected `Clock`. The key comes from `Keys::access_tokens`; it never appears in
//! `Debug` output or an error.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, signature};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::account::{Role, SessionId, UserId};
use crate::ports::token::{AccessClaims, IssuedToken, TokenError, TokenRejection, TokenSigner};
use crate::ports::{Clock, Timestamp};

/// The shortest signing key accepted, in bytes (RFC 7518 asks for at least the hash size for HS256).
pub const MIN_KEY_BYTES: usize = 32;

/// The issuer, audience, lifetime and leeway of access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Written to and required in `iss`.
    pub issuer: String,
    /// Written to and required in `aud`.
    pub audience: String,
    /// How long an access token lives. Short, because it cannot be revoked before it expires.
    pub lifetime: Duration,
    /// How far expiry and not-before may be off, for clocks of different instances that disagree slightly.
    pub leeway: Duration,
}

impl TokenSettings {
    /// Settings with the default lifetime (15 minutes) and leeway (5 seconds).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(5),
        }
    }
}

/// What is wrong with the signer's configuration.
#[derive(Debug, thiserror::Error)]
pub enum InvalidTokenSettings {
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the access-token key must be at least {MIN_KEY_BYTES} bytes")]
    WeakKey,
    /// Issuer or audience is empty, or the lifetime is zero.
    #[error("the access-token issuer and audience must be set and the lifetime must be positive")]
    Incomplete,
}

/// The claims as they travel in the token.
#[derive(Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    aud: String,
    sub: UserId,
    role: Role,
    sid: SessionId,
    iat: i64,
    nbf: i64,
    exp: i64,
}

type HmacSha256 = Hmac<Sha256>;

struct Hs256(HmacSha256);

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.clone().chain_update(message).finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        // `verify_slice` compares in constant time.
        self.0.clone().chain_update(message).verify_slice(tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn hs256(algorithm: Algorithm, key: &[u8]) -> jsonwebtoken::errors::Result<Hs256> {
    if algorithm != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    HmacSha256::new_from_slice(key).map(Hs256).map_err(|_| ErrorKind::InvalidKeyFormat.into())
}

/// A crypto provider for `jsonwebtoken` that knows HS256 only, built from the `hmac` and `sha2` crates the
/// rest of `shared` already uses. It spares the build RSA, ECDSA and EdDSA code that would never run.
static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: |algorithm, key| Ok(Box::new(hs256(*algorithm, key.as_bytes())?)),
    verifier_factory: |algorithm, key| Ok(Box::new(hs256(*algorithm, key.try_get_as_bytes()?)?)),
    key_utils: KeyUtils::new_unimplemented(),
};

/// Issues and verifies HS256 JWT access tokens.
pub struct JwtTokenSigner {
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    settings: TokenSettings,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokenSigner").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl JwtTokenSigner {
    /// A signer with this key and these settings, telling time by `clock`.
    ///
    /// # Errors
    /// [`InvalidTokenSettings`] for a short key, an empty issuer or audience, or a zero lifetime.
    pub fn new(
        key: &SecretSlice<u8>,
        settings: TokenSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidTokenSettings> {
        let key = key.expose_secret();
        if key.len() < MIN_KEY_BYTES {
            return Err(InvalidTokenSettings::WeakKey);
        }
        if settings.issuer.is_empty() || settings.audience.is_empty() || settings.lifetime.is_zero() {
            return Err(InvalidTokenSettings::Incomplete);
        }
        // Installing fails only when a provider is already installed, which then serves HS256 too; the
        // validation below still refuses every other algorithm.
        let _ = CryptoProvider::install_default(&HS256_ONLY);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        Ok(Self {
            encoding_key: EncodingKey::from_secret(key),
            decoding_key: DecodingKey::from_secret(key),
            validation,
            settings,
            clock,
        })
    }

    /// The reason to give for a token the library refused.
    fn rejection(token: &str, kind: &ErrorKind) -> TokenRejection {
        match kind {
            ErrorKind::InvalidSignature => TokenRejection::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
                TokenRejection::WrongAlgorithm
            }
            ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
            ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
            ErrorKind::ExpiredSignature => TokenRejection::Expired,
            ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
            // The library cannot parse a header naming an algorithm it does not know (such as `none`); read
            // the header ourselves to give the precise reason.
            _ if header_names_another_algorithm(token) => TokenRejection::WrongAlgorithm,
            _ => TokenRejection::Malformed,
        }
    }
}

fn header_names_another_algorithm(token: &str) -> bool {
    let Some(header) = token.split('.').next() else { return false };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header) else { return false };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    value.get("alg").and_then(serde_json::Value::as_str).is_some_and(|alg| alg != "HS256")
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

impl TokenSigner for JwtTokenSigner {
    fn issue(&self, subject: &UserId, role: Role, session: &SessionId) -> Result<IssuedToken, TokenError> {
        let now = self.clock.now().as_secs();
        let expires_at = now.saturating_add(secs(self.settings.lifetime));
        let claims = WireClaims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: subject.clone(),
            role,
            sid: session.clone(),
            iat: now,
            nbf: now,
            exp: expires_at,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding_key)
            .map_err(|error| anyhow::anyhow!("encode an access token: {error}"))?;
        Ok(IssuedToken { token: SecretString::from(token), expires_at: Timestamp::from_secs(expires_at) })
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<WireClaims>(token, &self.decoding_key, &self.validation)
            .map_err(|error| TokenError::Rejected(Self::rejection(token, error.kind())))?;
        let claims = data.claims;
        let now = self.clock.now().as_secs();
        let leeway = secs(self.settings.leeway);
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenError::Rejected(TokenRejection::Expired));
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(TokenError::Rejected(TokenRejection::NotYetValid));
        }
        Ok(AccessClaims {
            subject: claims.sub,
            role: claims.role,
            session: claims.sid,
            issued_at: Timestamp::from_secs(claims.iat),
            not_before: Timestamp::from_secs(claims.nbf),
            expires_at: Timestamp::from_secs(claims.exp),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::ManualClock;
    use crate::http::state::Keys;

    const START: i64 = 1_800_000_000;

    fn key(master: &[u8]) -> SecretSlice<u8> {
        Keys::derive(master).unwrap_or_else(|e| panic!("{e}")).access_tokens
    }

    fn master() -> Vec<u8> {
        b"a master secret of at least thirty-two bytes".to_vec()
    }

    fn signer_with(settings: TokenSettings, clock: Arc<ManualClock>) -> JwtTokenSigner {
        JwtTokenSigner::new(&key(&master()), settings, clock).unwrap_or_else(|e| panic!("{e}"))
    }

    fn setup() -> (Arc<ManualClock>, JwtTokenSigner) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
        let signer = signer_with(TokenSettings::new("https://shop.example", "storefront-api"), clock.clone());
        (clock, signer)
    }

    fn ids() -> (UserId, SessionId) {
        (
            UserId::parse("u000000000001").unwrap_or_else(|e| panic!("{e}")),
            SessionId::parse("s000000000001").unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn issue(signer: &JwtTokenSigner) -> String {
        let (user, session) = ids();
        signer.issue(&user, Role::Customer, &session).unwrap_or_else(|e| panic!("{e}")).token.expose_secret().to_owned()
    }

    fn rejection(signer: &JwtTokenSigner, token: &str) -> Option<TokenRejection> {
        match signer.verify(token) {
            Err(TokenError::Rejected(reason)) => Some(reason),
            Err(TokenError::Internal(error)) => panic!("internal error: {error}"),
            Ok(_) => None,
        }
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn valid_claims() -> serde_json::Value {
        json!({
            "iss": "https://shop.example", "aud": "storefront-api", "sub": "u000000000001", "role": "admin",
            "sid": "s000000000001", "iat": START, "nbf": START, "exp": START + 900,
        })
    }

    /// A token with any header, signed with `mac` over `header.claims` (or unsigned when `mac` is `None`).
    fn craft(header: serde_json::Value, claims: serde_json::Value, mac: Option<Vec<u8>>) -> String {
        let message = format!("{}.{}", b64(&header), b64(&claims));
        let signature = mac.map(|tag| URL_SAFE_NO_PAD.encode(tag)).unwrap_or_default();
        format!("{message}.{signature}")
    }

    fn hs256_tag(header: &serde_json::Value, claims: &serde_json::Value) -> Vec<u8> {
        let message = format!("{}.{}", b64(header), b64(claims));
        HmacSha256::new_from_slice(key(&master()).expose_secret())
            .unwrap_or_else(|e| panic!("{e}"))
            .chain_update(message.as_bytes())
            .finalize()
            .into_bytes()
            .to_vec()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let (_, signer) = setup();
        let (user, session) = ids();
        let issued = signer.issue(&user, Role::Admin, &session).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(issued.expires_at, Timestamp::from_secs(START + 900));
        let claims = signer.verify(issued.token.expose_secret()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            claims,
            AccessClaims {
                subject: user,
                role: Role::Admin,
                session,
                issued_at: Timestamp::from_secs(START),
                not_before: Timestamp::from_secs(START),
                expires_at: Timestamp::from_secs(START + 900),
            }
        );
    }

    #[test]
    fn the_token_header_names_hs256_and_a_hand_crafted_hs256_token_verifies() {
        let (_, signer) = setup();
        let token = issue(&signer);
        let header = token.split('.').next().map(|part| URL_SAFE_NO_PAD.decode(part).unwrap_or_default());
        let header: serde_json::Value = serde_json::from_slice(&header.unwrap_or_default()).unwrap_or_default();
        assert_eq!(header["alg"], "HS256");
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let crafted = craft(header.clone(), valid_claims(), Some(hs256_tag(&header, &valid_claims())));
        assert_eq!(signer.verify(&crafted).map(|claims| claims.role).ok(), Some(Role::Admin));
    }

    #[test]
    fn a_tampered_signature_or_payload_is_refused() {
        let (_, signer) = setup();
        let token = issue(&signer);
        let (message, tag) = token.rsplit_once('.').unwrap_or_default();
        let mut tag_bytes = URL_SAFE_NO_PAD.decode(tag).unwrap_or_default();
        tag_bytes[0] ^= 1;
        let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&tag_bytes));
        assert_eq!(rejection(&signer, &tampered), Some(TokenRejection::BadSignature));
        let mut parts = token.split('.');
        let header = parts.next().unwrap_or_default();
        let _claims = parts.next();
        let forged_claims = b64(&valid_claims());
        let forged = format!("{header}.{forged_claims}.{tag}");
        assert_eq!(rejection(&signer, &forged), Some(TokenRejection::BadSignature));
    }

    #[test]
    fn a_token_signed_with_another_master_secret_is_refused() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
        let other = JwtTokenSigner::new(
            &key(b"another master secret of at least 32 bytes"),
            TokenSettings::new("https://shop.example", "storefront-api"),
            clock.clone(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let signer = signer_with(TokenSettings::new("https://shop.example", "storefront-api"), clock);
        assert_eq!(rejection(&signer, &issue(&other)), Some(TokenRejection::BadSignature));
    }

    #[test]
    fn an_expired_token_is_refused_by_the_injected_clock() {
        let (clock, signer) = setup();
        let token = issue(&signer);
        clock.advance(Duration::from_secs(900 + 4));
        assert!(signer.verify(&token).is_ok(), "within the leeway");
        clock.advance(Duration::from_secs(1));
        assert_eq!(rejection(&signer, &token), Some(TokenRejection::Expired));
    }

    #[test]
    fn a_token_that_is_not_yet_valid_is_refused() {
        let (clock, signer) = setup();
        let early_clock = Arc::new(ManualClock::new(Timestamp::from_secs(START - 6)));
        let early = signer_with(TokenSettings::new("https://shop.example", "storefront-api"), early_clock.clone());
        let token = issue(&signer);
        assert_eq!(rejection(&early, &token), Some(TokenRejection::NotYetValid));
        early_clock.advance(Duration::from_secs(1));
        assert!(early.verify(&token).is_ok(), "within the leeway");
        assert!(signer.verify(&token).is_ok());
        drop(clock);
    }

    #[test]
    fn a_wrong_audience_or_issuer_is_refused() {
        let (clock, signer) = setup();
        let other_audience = signer_with(TokenSettings::new("https://shop.example", "another-api"), clock.clone());
        assert_eq!(rejection(&signer, &issue(&other_audience)), Some(TokenRejection::WrongAudience));
        let other_issuer = signer_with(TokenSettings::new("https://evil.example", "storefront-api"), clock);
        assert_eq!(rejection(&signer, &issue(&other_issuer)), Some(TokenRejection::WrongIssuer));
    }

    #[test]
    fn alg_none_is_refused() {
        let (_, signer) = setup();
        for alg in ["none", "None", "NONE"] {
            let unsigned = craft(json!({"alg": alg, "typ": "JWT"}), valid_claims(), None);
            assert_eq!(rejection(&signer, &unsigned), Some(TokenRejection::WrongAlgorithm), "{alg}");
        }
        let header = json!({"alg": "none"});
        let signed = craft(header.clone(), valid_claims(), Some(hs256_tag(&header, &valid_claims())));
        assert_eq!(rejection(&signer, &signed), Some(TokenRejection::WrongAlgorithm));
        let no_alg = json!({"typ": "JWT"});
        let no_alg = craft(no_alg.clone(), valid_claims(), Some(hs256_tag(&no_alg, &valid_claims())));
        assert!(rejection(&signer, &no_alg).is_some());
    }

    #[test]
    fn another_algorithm_in_the_header_is_refused_even_with_a_valid_hs256_signature() {
        let (_, signer) = setup();
        for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"] {
            let header = json!({"alg": alg, "typ": "JWT"});
            let token = craft(header.clone(), valid_claims(), Some(hs256_tag(&header, &valid_claims())));
            assert_eq!(rejection(&signer, &token), Some(TokenRejection::WrongAlgorithm), "{alg}");
        }
        let header = json!({"alg": "HS512", "typ": "JWT"});
        let message = format!("{}.{}", b64(&header), b64(&valid_claims()));
        let tag = Hmac::<sha2::Sha512>::new_from_slice(key(&master()).expose_secret())
            .unwrap_or_else(|e| panic!("{e}"))
            .chain_update(message.as_bytes())
            .finalize()
            .into_bytes()
            .to_vec();
        let hs512 = craft(header, valid_claims(), Some(tag));
        assert_eq!(rejection(&signer, &hs512), Some(TokenRejection::WrongAlgorithm));
    }

    #[test]
    fn malformed_tokens_and_missing_claims_are_refused() {
        let (_, signer) = setup();
        for token in ["", "abc", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
            assert_eq!(rejection(&signer, token), Some(TokenRejection::Malformed), "{token:?}");
        }
        let header = json!({"alg": "HS256"});
        let mut no_exp = valid_claims();
        no_exp.as_object_mut().map(|claims| claims.remove("exp"));
        let token = craft(header.clone(), no_exp.clone(), Some(hs256_tag(&header, &no_exp)));
        assert_eq!(rejection(&signer, &token), Some(TokenRejection::Malformed));
        let mut bad_role = valid_claims();
        bad_role["role"] = json!("root");
        let token = craft(header.clone(), bad_role.clone(), Some(hs256_tag(&header, &bad_role)));
        assert_eq!(rejection(&signer, &token), Some(TokenRejection::Malformed));
    }

    #[test]
    fn weak_keys_and_incomplete_settings_are_refused() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
        let short = SecretSlice::from(vec![7_u8; 31]);
        let settings = TokenSettings::new("iss", "aud");
        assert!(matches!(
            JwtTokenSigner::new(&short, settings.clone(), clock.clone()),
            Err(InvalidTokenSettings::WeakKey)
        ));
        let empty = TokenSettings::new("", "aud");
        assert!(matches!(JwtTokenSigner::new(&key(&master()), empty, clock), Err(InvalidTokenSettings::Incomplete)));
    }

    #[test]
    fn neither_the_key_nor_the_token_shows_in_debug_output() {
        let (_, signer) = setup();
        let (user, session) = ids();
        let issued = signer.issue(&user, Role::Customer, &session).unwrap_or_else(|e| panic!("{e}"));
        let token = issued.token.expose_secret().to_owned();
        assert!(!format!("{issued:?}").contains(&token));
        let key_hex: String = key(&master()).expose_secret().iter().map(|byte| format!("{byte:02x}")).collect();
        let debug = format!("{signer:?} {:?}", Keys::derive(&master()).unwrap_or_else(|e| panic!("{e}")));
        assert!(!debug.contains(&key_hex) && !debug.contains(&format!("{:?}", key(&master()).expose_secret())));
    }
}
