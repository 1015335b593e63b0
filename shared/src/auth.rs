//! The authentication use cases: register, login, refresh, logout and authenticate a bearer token.
//!
//! It owns the rules that sit between the repositories (`accounts`, `sessions`, `rate_limit`) and the ports
//! (`PasswordHasher`, `TokenSigner`): one answer for an unknown e-mail and a wrong password, with comparable
//! work for both; login limited per client address and per account before any password is checked; no
//! session for a closed account. It owns no HTTP: the functions map its errors to statuses.

use std::sync::{Arc, OnceLock};

use secrecy::{ExposeSecret, SecretString};

use crate::accounts::{Accounts, AccountsError};
use crate::outbox::Event;
use crate::domain::account::{Email, MAX_PRESENTED_PASSWORD_BYTES, Password, PasswordHash, Role, User, UserId};
use crate::ports::password::PasswordHasher;
use crate::ports::token::{AccessClaims, IssuedToken, TokenError, TokenSigner};
use crate::ports::{Clock, IdGen, ItemStore, Random};
use crate::rate_limit::{BucketSettings, RateDecision, RateLimitError, RateLimiter};
use crate::sessions::{RefreshToken, SessionError, SessionSettings, Sessions};

/// A password no account has, hashed once per instance so that a login for an unknown e-mail costs what a
/// wrong password costs. It only has to be a valid policy password; nobody can sign in with it.
const DUMMY_PASSWORD: &str = "no account has this password";

/// What a login presents.
#[derive(Debug)]
pub struct Login {
    /// The e-mail address as typed.
    pub email: String,
    /// The password as typed.
    pub password: SecretString,
    /// The client's address, for the per-client limit.
    pub client: String,
}

/// A signed-in user's tokens.
#[derive(Debug)]
pub struct SignedIn {
    /// The user.
    pub user: User,
    /// The access token and its expiry.
    pub access: IssuedToken,
    /// The refresh token, its session and its expiry.
    pub refresh: crate::sessions::Issued,
}

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Another account has this e-mail address.
    #[error("the e-mail address belongs to another account")]
    EmailTaken,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a login failed. An unknown e-mail, a wrong password and a closed account are one variant on purpose.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The e-mail and password do not match an open account.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Too many attempts from this client or for this account.
    #[error("too many login attempts")]
    RateLimited {
        /// Seconds until the next attempt may succeed, for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a refresh or an access token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is invalid, expired, revoked, reused, or its account is closed (401).
    #[error("not authenticated")]
    Unauthenticated,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn internal(context: &'static str) -> impl FnOnce(anyhow::Error) -> anyhow::Error {
    move |error| error.context(context)
}

impl From<AccountsError> for LoginError {
    fn from(error: AccountsError) -> Self {
        LoginError::Internal(internal("login: account lookup failed")(anyhow::Error::new(error)))
    }
}

impl From<RateLimitError> for LoginError {
    fn from(error: RateLimitError) -> Self {
        LoginError::Internal(internal("login: rate limiter failed")(anyhow::Error::new(error)))
    }
}

impl From<SessionError> for AuthError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Invalid | SessionError::Reused => AuthError::Unauthenticated,
            SessionError::Internal(error) => AuthError::Internal(error.context("session store failed")),
        }
    }
}

/// Settings of the authentication use cases.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The address whose registration becomes the first admin, if any (from configuration).
    pub first_admin: Option<Email>,
    /// Login attempts per client address.
    pub per_client: BucketSettings,
    /// Login attempts per account.
    pub per_account: BucketSettings,
    /// Refresh-token lifetime.
    pub sessions: SessionSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            first_admin: None,
            per_client: BucketSettings::LOGIN_PER_CLIENT,
            per_account: BucketSettings::LOGIN_PER_ACCOUNT,
            sessions: SessionSettings::default(),
        }
    }
}

impl AuthSettings {
    /// The defaults with what a host's configuration may change: the first admin and the per-client login
    /// allowance (a burst of `login_attempts_per_client`, refilled at the default rate).
    pub fn for_host(first_admin: Option<Email>, login_attempts_per_client: u32) -> Self {
        let defaults = Self::default();
        Self {
            first_admin,
            per_client: BucketSettings { capacity: login_attempts_per_client, ..defaults.per_client },
            ..defaults
        }
    }
}

/// The authentication service, generic over the store, the hasher and the token signer.
pub struct Auth<S, H, T> {
    accounts: Accounts<S>,
    sessions: Sessions<S>,
    per_client: RateLimiter<S>,
    per_account: RateLimiter<S>,
    hasher: H,
    signer: T,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    random: Arc<dyn Random>,
    first_admin: Option<Email>,
    dummy_hash: OnceLock<PasswordHash>,
}

impl<S: ItemStore + Clone, H: PasswordHasher, T: TokenSigner> Auth<S, H, T> {
    /// The service on a store with these ports and settings.
    pub fn new(
        store: S,
        hasher: H,
        signer: T,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        random: Arc<dyn Random>,
        settings: AuthSettings,
    ) -> Self {
        Self {
            accounts: Accounts::new(store.clone()),
            sessions: Sessions::new(store.clone(), settings.sessions),
            per_client: RateLimiter::new(store.clone(), "login-client", settings.per_client),
            per_account: RateLimiter::new(store, "login-account", settings.per_account),
            hasher,
            signer,
            clock,
            ids,
            random,
            first_admin: settings.first_admin,
            dummy_hash: OnceLock::new(),
        }
    }

    /// The account repository, for the `me` endpoints.
    pub fn accounts(&self) -> &Accounts<S> {
        &self.accounts
    }

    /// Registers a new account; the configured first admin's address gets the admin role.
    ///
    /// # Errors
    /// [`RegisterError::EmailTaken`]; [`RegisterError::Internal`] when hashing or the store fails.
    pub async fn register(&self, email: Email, password: &Password) -> Result<User, RegisterError> {
        let hash =
            self.hasher.hash(password).map_err(|error| anyhow::Error::new(error).context("hash a new password"))?;
        let id =
            UserId::parse(&self.ids.new_id()).map_err(|_| anyhow::anyhow!("the id generator made an invalid id"))?;
        let role = Role::for_new_account(&email, self.first_admin.as_ref());
        let user = User::new(id, email, role, self.clock.now());
        match self.accounts.register(&user, &hash).await {
            Ok(()) => Ok(user),
            Err(AccountsError::EmailTaken) => Err(RegisterError::EmailTaken),
            Err(error) => Err(RegisterError::Internal(anyhow::Error::new(error).context("register an account"))),
        }
    }

    fn dummy_hash(&self) -> Result<&PasswordHash, LoginError> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash);
        }
        let password = Password::parse(SecretString::from(DUMMY_PASSWORD))
            .map_err(|error| anyhow::anyhow!("the dummy password breaks the policy: {error}"))?;
        let hash = self
            .hasher
            .hash(&password)
            .map_err(|error| anyhow::Error::new(error).context("hash the dummy password"))?;
        Ok(self.dummy_hash.get_or_init(|| hash))
    }

    /// Spends the time a real check would, then refuses.
    fn refuse_after_dummy_check(&self, password: &SecretString) -> Result<User, LoginError> {
        let dummy = self.dummy_hash()?;
        let _ =
            self.hasher.verify(password, dummy).map_err(|error| anyhow::Error::new(error).context("dummy check"))?;
        Err(LoginError::InvalidCredentials)
    }

    /// Checks an e-mail and password, limited per client and per account.
    async fn check_credentials(&self, login: &Login) -> Result<User, LoginError> {
        let now = self.clock.now();
        if let RateDecision::Limited { retry_after_secs } = self.per_client.check(&login.client, now).await? {
            return Err(LoginError::RateLimited { retry_after_secs });
        }
        let email = Email::parse(&login.email);
        // Limit by the normalised address when there is one, so case and spaces do not open new buckets.
        let account_key = match &email {
            Ok(email) => email.to_string(),
            Err(_) => login.email.trim().to_lowercase(),
        };
        if let RateDecision::Limited { retry_after_secs } = self.per_account.check(&account_key, now).await? {
            return Err(LoginError::RateLimited { retry_after_secs });
        }
        if login.password.expose_secret().len() > MAX_PRESENTED_PASSWORD_BYTES {
            return Err(LoginError::InvalidCredentials);
        }
        let Ok(email) = email else { return self.refuse_after_dummy_check(&login.password) };
        let Some((user, hash)) = self.accounts.find_by_email(&email).await? else {
            return self.refuse_after_dummy_check(&login.password);
        };
        let matches = self
            .hasher
            .verify(&login.password, &hash)
            .map_err(|error| anyhow::Error::new(error).context("verify a password"))?;
        if matches && user.is_active() { Ok(user) } else { Err(LoginError::InvalidCredentials) }
    }

    /// Signs a user in: checks the credentials, starts a session and issues its tokens.
    ///
    /// # Errors
    /// [`LoginError::InvalidCredentials`] for an unknown e-mail, a wrong password or a closed account, all
    /// alike; [`LoginError::RateLimited`]; [`LoginError::Internal`] when a port fails.
    pub async fn login(&self, login: &Login) -> Result<SignedIn, LoginError> {
        let user = self.check_credentials(login).await?;
        let refresh = self
            .sessions
            .start(&user.id, self.ids.as_ref(), self.random.as_ref(), self.clock.now())
            .await
            .map_err(|error| anyhow::Error::new(error).context("start a session"))?;
        let access = self
            .signer
            .issue(&user.id, user.role, &refresh.session)
            .map_err(|error| anyhow::Error::new(error).context("issue an access token"))?;
        Ok(SignedIn { user, access, refresh })
    }

    /// Rotates a refresh token and issues a new access token in the same session. A closed account's
    /// session is revoked instead.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for an invalid, expired, revoked or reused token or a closed account;
    /// [`AuthError::Internal`] when a port fails.
    pub async fn refresh(&self, presented: &RefreshToken) -> Result<SignedIn, AuthError> {
        let now = self.clock.now();
        let refresh = self.sessions.rotate(presented, self.random.as_ref(), now).await?;
        let user = match self.accounts.get(&refresh.user).await {
            Ok(user) if user.is_active() => user,
            Ok(_) | Err(AccountsError::NotFound) => {
                self.sessions.revoke(&refresh.session, now).await?;
                return Err(AuthError::Unauthenticated);
            }
            Err(error) => return Err(AuthError::Internal(anyhow::Error::new(error).context("load the account"))),
        };
        let access = self
            .signer
            .issue(&user.id, user.role, &refresh.session)
            .map_err(|error| anyhow::Error::new(error).context("issue an access token"))?;
        Ok(SignedIn { user, access, refresh })
    }

    /// Checks a bearer access token: signature and claims, a live session, an open account. Returns the
    /// account as it is now (its current role, not the token's) and the token's claims.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for any refused token, a revoked session or a closed account;
    /// [`AuthError::Internal`] when a port fails.
    pub async fn authenticate(&self, bearer: &str) -> Result<(User, AccessClaims), AuthError> {
        let claims = match self.signer.verify(bearer) {
            Ok(claims) => claims,
            Err(TokenError::Rejected(reason)) => {
                tracing::info!(%reason, "access token refused");
                return Err(AuthError::Unauthenticated);
            }
            Err(TokenError::Internal(error)) => return Err(AuthError::Internal(error.context("verify a token"))),
        };
        if !self.sessions.is_live(&claims.session, &claims.subject).await? {
            return Err(AuthError::Unauthenticated);
        }
        match self.accounts.get(&claims.subject).await {
            Ok(user) if user.is_active() => Ok((user, claims)),
            Ok(_) | Err(AccountsError::NotFound) => Err(AuthError::Unauthenticated),
            Err(error) => Err(AuthError::Internal(anyhow::Error::new(error).context("load the account"))),
        }
    }

    /// Signs out of one session: its refresh tokens and the access tokens issued from it stop working.
    ///
    /// # Errors
    /// [`AuthError::Internal`] when the store fails.
    pub async fn logout(&self, claims: &AccessClaims) -> Result<(), AuthError> {
        Ok(self.sessions.revoke(&claims.session, self.clock.now()).await?)
    }

    /// Closes the signed-in user's account and records the erasure request, with its `privacy.erase` job in
    /// the outbox (returned when this call wrote it, to be published); every session is revoked. Returns the
    /// account as it now is, for the 202 answer.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] when the account is gone; [`AuthError::Internal`] when the store fails.
    pub async fn close_account(&self, user: &UserId) -> Result<(User, Option<Event>), AuthError> {
        let now = self.clock.now();
        let closed = self.accounts.close(user, now).await.map_err(|error| match error {
            AccountsError::NotFound => AuthError::Unauthenticated,
            other => AuthError::Internal(anyhow::Error::new(other).context("close an account")),
        })?;
        // The account is closed already, so its tokens are refused whatever happens here; revoking the
        // sessions also ends the refresh-token families.
        self.sessions.revoke_all(user, now).await?;
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::adapters::argon2::{Argon2PasswordHasher, Argon2Settings};
    use crate::adapters::jwt::{JwtTokenSigner, TokenSettings};
    use crate::adapters::memory::{ManualClock, PredictableRandom, SequentialIds};
    use crate::domain::account::PasswordHash;
    use crate::http::state::Keys;
    use crate::ports::PasswordHashError;

    /// The test hasher, counting how many checks it did (a login must always do one).
    struct CountingHasher {
        inner: Argon2PasswordHasher,
        verified: AtomicUsize,
    }

    impl PasswordHasher for Arc<CountingHasher> {
        fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError> {
            self.inner.hash(password)
        }
        fn verify(&self, password: &SecretString, hash: &PasswordHash) -> Result<bool, PasswordHashError> {
            self.verified.fetch_add(1, Ordering::SeqCst);
            self.inner.verify(password, hash)
        }
    }

    type TestAuth<S> = Auth<S, Arc<CountingHasher>, JwtTokenSigner>;

    fn service<S: ItemStore + Clone>(store: S, clock: Arc<ManualClock>) -> (TestAuth<S>, Arc<CountingHasher>) {
        let random: Arc<dyn Random> = Arc::new(PredictableRandom::new(9));
        let inner = Argon2PasswordHasher::new(Argon2Settings::insecure_for_tests(), random.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let hasher = Arc::new(CountingHasher { inner, verified: AtomicUsize::new(0) });
        let keys = Keys::derive(b"a master secret of at least thirty-two bytes").unwrap_or_else(|e| panic!("{e}"));
        let signer =
            JwtTokenSigner::new(&keys.access_tokens, TokenSettings::new("https://shop.example", "api"), clock.clone())
                .unwrap_or_else(|e| panic!("{e}"));
        let settings = AuthSettings {
            first_admin: Some(Email::parse("boss@shop.example").unwrap_or_else(|e| panic!("{e}"))),
            per_client: BucketSettings { capacity: 10, refill_every: Duration::from_secs(6) },
            per_account: BucketSettings { capacity: 3, refill_every: Duration::from_secs(60) },
            sessions: SessionSettings::default(),
        };
        let auth =
            Auth::new(store, hasher.clone(), signer, clock, Arc::new(SequentialIds::new("id")), random, settings);
        (auth, hasher)
    }

    fn password(text: &str) -> Password {
        Password::parse(SecretString::from(text.to_owned())).unwrap_or_else(|e| panic!("{e}"))
    }

    fn login(email: &str, password: &str, client: &str) -> Login {
        Login { email: email.to_owned(), password: SecretString::from(password.to_owned()), client: client.to_owned() }
    }

    async fn register(auth: &TestAuth<impl ItemStore + Clone>, email: &str) -> User {
        let email = Email::parse(email).unwrap_or_else(|e| panic!("{e}"));
        auth.register(email, &password("correct horse battery")).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn the_full_flow_register_login_authenticate_refresh_logout(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let (auth, _) = service(store, clock.clone());
        let alice = register(&auth, "Alice@Example.com").await;
        assert_eq!(alice.role, Role::Customer);
        let taken = auth.register(alice.email.clone(), &password("another good password")).await;
        assert!(matches!(taken, Err(RegisterError::EmailTaken)));
        let signed_in = auth.login(&login(" alice@example.COM ", "correct horse battery", "10.0.0.1")).await;
        let signed_in = signed_in.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signed_in.user, alice);
        let (me, claims) =
            auth.authenticate(signed_in.access.token.expose_secret()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((me.id, claims.session.clone()), (alice.id.clone(), signed_in.refresh.session.clone()));
        clock.advance(Duration::from_secs(60));
        let refreshed = auth.refresh(&signed_in.refresh.refresh_token).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(auth.authenticate(refreshed.access.token.expose_secret()).await.is_ok());
        auth.logout(&claims).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            auth.authenticate(refreshed.access.token.expose_secret()).await,
            Err(AuthError::Unauthenticated)
        ));
        assert!(matches!(auth.refresh(&refreshed.refresh.refresh_token).await, Err(AuthError::Unauthenticated)));
    }

    async fn the_configured_first_admin_registers_as_admin(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let (auth, _) = service(store, clock);
        assert_eq!(register(&auth, "BOSS@shop.example").await.role, Role::Admin);
        assert_eq!(register(&auth, "clerk@shop.example").await.role, Role::Customer);
    }

    async fn an_unknown_email_and_a_wrong_password_get_the_same_answer_and_the_same_work(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let (auth, hasher) = service(store, clock);
        register(&auth, "alice@example.com").await;
        let attempts = [
            login("alice@example.com", "wrong horse battery", "10.0.0.1"),
            login("nobody@example.com", "wrong horse battery", "10.0.0.2"),
            login("not an email", "wrong horse battery", "10.0.0.3"),
        ];
        let mut answers = Vec::new();
        for attempt in &attempts {
            let before = hasher.verified.load(Ordering::SeqCst);
            let answer = auth.login(attempt).await.err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(
                hasher.verified.load(Ordering::SeqCst),
                before + 1,
                "one password check for {:?}",
                attempt.email
            );
            answers.push(answer);
        }
        assert_eq!(answers, vec!["invalid e-mail or password"; 3]);
        assert!(!answers.concat().contains("wrong horse"));
    }

    async fn a_closed_account_cannot_sign_in_and_its_tokens_are_refused(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let (auth, _) = service(store, clock);
        let alice = register(&auth, "alice@example.com").await;
        let signed_in = auth.login(&login("alice@example.com", "correct horse battery", "10.0.0.1")).await;
        let signed_in = signed_in.unwrap_or_else(|e| panic!("{e}"));
        let (closed, _) = auth.close_account(&alice.id).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(closed.erasure_requested_at.is_some() && !closed.is_active());
        let token = signed_in.access.token.expose_secret();
        assert!(matches!(auth.authenticate(token).await, Err(AuthError::Unauthenticated)));
        assert!(matches!(auth.refresh(&signed_in.refresh.refresh_token).await, Err(AuthError::Unauthenticated)));
        let again = auth.login(&login("alice@example.com", "correct horse battery", "10.0.0.1")).await;
        assert!(matches!(again, Err(LoginError::InvalidCredentials)), "{again:?}");
    }

    async fn a_reused_refresh_token_ends_the_session_for_everyone(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let (auth, _) = service(store, clock);
        register(&auth, "alice@example.com").await;
        let signed_in = auth.login(&login("alice@example.com", "correct horse battery", "10.0.0.1")).await;
        let signed_in = signed_in.unwrap_or_else(|e| panic!("{e}"));
        let stolen =
            RefreshToken::presented(SecretString::from(signed_in.refresh.refresh_token.expose_secret().to_owned()));
        let rotated = auth.refresh(&signed_in.refresh.refresh_token).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(auth.refresh(&stolen).await, Err(AuthError::Unauthenticated)));
        assert!(matches!(auth.refresh(&rotated.refresh.refresh_token).await, Err(AuthError::Unauthenticated)));
        let access = rotated.access.token.expose_secret();
        assert!(matches!(auth.authenticate(access).await, Err(AuthError::Unauthenticated)));
    }

    async fn repeated_failed_logins_are_limited_per_account_and_per_client(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let (auth, hasher) = service(store, clock.clone());
        register(&auth, "alice@example.com").await;
        for n in 0..3 {
            let attempt = login("alice@example.com", "wrong horse battery", &format!("10.0.0.{n}"));
            assert!(matches!(auth.login(&attempt).await, Err(LoginError::InvalidCredentials)));
        }
        let checks = hasher.verified.load(Ordering::SeqCst);
        let limited = auth.login(&login("ALICE@example.com", "correct horse battery", "10.0.0.9")).await;
        assert!(matches!(limited, Err(LoginError::RateLimited { retry_after_secs: 60 })), "{limited:?}");
        assert_eq!(hasher.verified.load(Ordering::SeqCst), checks, "a limited attempt checks no password");
        clock.advance(Duration::from_secs(60));
        assert!(auth.login(&login("alice@example.com", "correct horse battery", "10.0.0.9")).await.is_ok());

        for n in 0..10 {
            let attempt = login(&format!("user{n}@example.com"), "wrong horse battery", "192.0.2.1");
            assert!(matches!(auth.login(&attempt).await, Err(LoginError::InvalidCredentials)));
        }
        let limited = auth.login(&login("someone@example.com", "whatever password", "192.0.2.1")).await;
        assert!(matches!(limited, Err(LoginError::RateLimited { retry_after_secs: 6 })), "{limited:?}");
    }

    crate::test_stores::each_store!(
        the_full_flow_register_login_authenticate_refresh_logout,
        the_configured_first_admin_registers_as_admin,
        an_unknown_email_and_a_wrong_password_get_the_same_answer_and_the_same_work,
        a_closed_account_cannot_sign_in_and_its_tokens_are_refused,
        a_reused_refresh_token_ends_the_session_for_everyone,
        repeated_failed_logins_are_limited_per_account_and_per_client,
    );
}
