//! The state every function's router receives: the store, the clock, the id generator, the keys and the
//! authentication service built from them.
//!
//! The store is generic (its async methods are not object-safe, and each host names its concrete store once);
//! the clock and id generator are small synchronous traits, so one `Arc<dyn ..>` serves every host. The id
//! generator is also the random source (salts, refresh tokens), so `AppState::new` needs nothing more to build
//! `Auth`: Argon2id with OWASP's parameters, HS256 access tokens signed with `Keys::access_tokens`, and the
//! default issuer and audience. Hosts build it once with their settings (`AppState::configured`); tests adjust
//! it with the `with_*` builder methods, each of which rebuilds it.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::SecretSlice;
use sha2::Sha256;

use crate::adapters::argon2::{Argon2PasswordHasher, Argon2Settings, InvalidArgon2Settings};
use crate::adapters::jwt::{InvalidTokenSettings, JwtTokenSigner, TokenSettings};
use crate::auth::{Auth, AuthSettings};
use crate::catalog::Catalog;
use crate::commerce::Commerce;
use crate::commerce::checkout::{CommerceParts, CommerceSettings};
use crate::idempotency::Idempotency;
use crate::payments::{Breaker, BreakerSettings, RetryPolicy, SandboxPayments};
use crate::domain::account::Email;
use crate::http::cursor::CursorSigner;
use crate::outbox::{Event, Outbox, Publisher};
use crate::ports::{Clock, IdGen, ItemStore, Payments, Random, Sleep};

/// The issuer written to and required in access tokens unless a host configures another.
pub const DEFAULT_TOKEN_ISSUER: &str = "storefront";
/// The audience written to and required in access tokens unless a host configures another.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "storefront-api";

/// The authentication service every host runs: Argon2id passwords and HS256 JWT access tokens.
pub type AppAuth<S> = Auth<S, Argon2PasswordHasher, JwtTokenSigner>;

/// The shortest master secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Keys derived from one master secret, one per purpose, so that no key serves two jobs.
#[derive(Clone)]
pub struct Keys {
    /// Signs pagination cursors.
    pub cursors: CursorSigner,
    /// Signs access tokens (HS256); 32 bytes, kept out of `Debug` output.
    pub access_tokens: SecretSlice<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// What is wrong with a master secret.
#[derive(Debug, thiserror::Error)]
#[error("the master secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl Keys {
    /// Derives every key from the master secret (HMAC-SHA256 of the purpose's name).
    ///
    /// # Errors
    /// [`WeakSecret`] when the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn derive(master_secret: &[u8]) -> Result<Self, WeakSecret> {
        if master_secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let derive = |purpose: &str| -> Result<Vec<u8>, WeakSecret> {
            let mut mac = Hmac::<Sha256>::new_from_slice(master_secret).map_err(|_| WeakSecret)?;
            mac.update(purpose.as_bytes());
            Ok(mac.finalize().into_bytes().to_vec())
        };
        let cursors = CursorSigner::new(&derive("storefront cursor v1")?).map_err(|_| WeakSecret)?;
        let access_tokens = SecretSlice::from(derive("storefront access token v1")?);
        Ok(Self { cursors, access_tokens })
    }
}

/// Why the authentication stack could not be built with the settings given.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// Argon2 refused the password-hashing parameters.
    #[error(transparent)]
    PasswordParams(#[from] InvalidArgon2Settings),
    /// The access-token settings are incomplete.
    #[error(transparent)]
    Tokens(#[from] InvalidTokenSettings),
}

/// What `Auth` is built from, kept so a builder method can rebuild it with one setting changed.
#[derive(Debug, Clone)]
struct AuthConfig {
    password: Argon2Settings,
    tokens: TokenSettings,
    auth: AuthSettings,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            password: Argon2Settings::default(),
            tokens: TokenSettings::new(DEFAULT_TOKEN_ISSUER, DEFAULT_TOKEN_AUDIENCE),
            auth: AuthSettings::default(),
        }
    }
}

/// The state shared by every function's router.
pub struct AppState<S> {
    /// The item store.
    pub store: S,
    /// The product repository on that store.
    pub catalog: Catalog<S>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The id generator.
    pub ids: Arc<dyn IdGen>,
    /// The keys.
    pub keys: Keys,
    /// Registration, login, sessions and bearer-token checks.
    pub auth: Arc<AppAuth<S>>,
    /// Where committed outbox events are published right away; `None` leaves them to the host's relay.
    pub publisher: Option<Publisher>,
    /// Carts, discounts, orders and the checkout.
    pub commerce: Commerce<S>,
    /// Idempotency-key records.
    pub idempotency: Idempotency<S>,
    /// The sandbox provider, when it is the one configured (its ledger is readable by admins).
    pub sandbox: Option<SandboxPayments<S>>,
    auth_config: AuthConfig,
    commerce_config: CommerceParts,
}

fn build_auth<S: ItemStore + Clone>(
    store: &S,
    clock: &Arc<dyn Clock>,
    ids: &Arc<dyn IdGen>,
    keys: &Keys,
    config: &AuthConfig,
) -> Result<AppAuth<S>, AuthConfigError> {
    // The id generator is the random source: `IdGen` has `Random` as its supertrait.
    let random: Arc<dyn Random> = Arc::new(Arc::clone(ids));
    let hasher = Argon2PasswordHasher::new(config.password, Arc::clone(&random))?;
    let signer = JwtTokenSigner::new(&keys.access_tokens, config.tokens.clone(), Arc::clone(clock))?;
    Ok(Auth::new(store.clone(), hasher, signer, Arc::clone(clock), Arc::clone(ids), random, config.auth.clone()))
}

impl<S: ItemStore + Clone> AppState<S> {
    /// The state for a host, with the default authentication settings (OWASP's Argon2id minimum, 15-minute
    /// access tokens for [`DEFAULT_TOKEN_AUDIENCE`] from [`DEFAULT_TOKEN_ISSUER`], no first admin).
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>, keys: Keys) -> Self {
        // The defaults are valid by construction: OWASP's parameters are within Argon2's limits, the derived
        // key is 32 bytes, and the issuer, audience and lifetime are set. A test pins this down.
        #[allow(clippy::expect_used)]
        Self::configured(store, clock, ids, keys, AuthSettings::default(), Argon2Settings::default())
            .expect("the default authentication settings are valid")
    }

    /// The state for a host, with its authentication settings and Argon2id costs, building `Auth` once (the
    /// `with_*` builders rebuild it on every call, which a host's start-up or a Worker's request should not pay).
    ///
    /// # Errors
    /// [`AuthConfigError::PasswordParams`] when Argon2 refuses the costs.
    pub fn configured(
        store: S,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        keys: Keys,
        auth: AuthSettings,
        password: Argon2Settings,
    ) -> Result<Self, AuthConfigError> {
        let auth_config = AuthConfig { password, auth, ..AuthConfig::default() };
        let built = build_auth(&store, &clock, &ids, &keys, &auth_config)?;
        let sandbox = SandboxPayments::new(store.clone(), Arc::clone(&ids));
        let commerce_config = CommerceParts::new(Arc::new(sandbox.clone()));
        Ok(Self {
            catalog: Catalog::new(store.clone()),
            commerce: commerce_config.build(&store, &clock, &ids),
            idempotency: Idempotency::new(store.clone()),
            sandbox: Some(sandbox),
            store,
            clock,
            ids,
            keys,
            auth: Arc::new(built),
            publisher: None,
            auth_config,
            commerce_config,
        })
    }

    fn rebuilt_commerce(mut self, change: impl FnOnce(&mut CommerceParts)) -> Self {
        change(&mut self.commerce_config);
        self.commerce = self.commerce_config.build(&self.store, &self.clock, &self.ids);
        self
    }

    /// The state with the host's timer for the backoff of the payment retries and of catalog writes that lost
    /// the index head to another write (the default, `commerce::NoDelay`, waits for nothing), with jitter drawn
    /// from the id generator. The breaker starts closed again.
    pub fn with_sleep(mut self, sleep: Arc<dyn Sleep>) -> Self {
        let random: Arc<dyn Random> = Arc::new(Arc::clone(&self.ids));
        self.catalog = self.catalog.with_backoff(Arc::clone(&sleep), random);
        self.rebuilt_commerce(|config| config.sleep = sleep)
    }

    /// The state with another payment provider than the sandbox (whose ledger endpoint then answers 404).
    pub fn with_payments(mut self, payments: Arc<dyn Payments>) -> Self {
        self.sandbox = None;
        self.rebuilt_commerce(|config| config.payments = payments)
    }

    /// The state with other payment retry, breaker and sweep timings (and a new, closed breaker).
    pub fn with_payment_timing(self, retry: RetryPolicy, breaker: BreakerSettings, settings: CommerceSettings) -> Self {
        self.rebuilt_commerce(|config| {
            config.retry = retry;
            config.breaker = Arc::new(Breaker::new(breaker));
            config.settings = settings;
        })
    }

    /// The state with another in-progress lease for idempotency keys, in seconds (see `Idempotency::with_lease`).
    pub fn with_idempotency_lease(mut self, lease_secs: i64) -> Self {
        self.idempotency = self.idempotency.with_lease(lease_secs);
        self
    }

    /// The state sharing `breaker`: a host that builds its state more than once per instance (a Worker, per
    /// request) keeps one breaker for the instance, so that it sees every call's outcome.
    pub fn with_breaker(self, breaker: Arc<Breaker>) -> Self {
        self.rebuilt_commerce(|config| config.breaker = breaker)
    }

    fn rebuilt(mut self, change: impl FnOnce(&mut AuthConfig)) -> Result<Self, AuthConfigError> {
        let mut config = self.auth_config.clone();
        change(&mut config);
        self.auth = Arc::new(build_auth(&self.store, &self.clock, &self.ids, &self.keys, &config)?);
        self.auth_config = config;
        Ok(self)
    }

    /// The state with `email` as the address whose registration becomes an admin.
    pub fn with_first_admin(self, email: Email) -> Self {
        let mut config = self.auth_config.clone();
        config.auth.first_admin = Some(email);
        // Only the first admin changed, which no constructor checks, so rebuilding cannot fail; keep the
        // state unchanged if it somehow does.
        let fallback = self.clone();
        self.rebuilt(|current| *current = config).unwrap_or(fallback)
    }

    /// The state with other Argon2id costs (tests use `Argon2Settings::insecure_for_tests()`).
    ///
    /// # Errors
    /// [`AuthConfigError::PasswordParams`] when Argon2 refuses them.
    pub fn with_password_params(self, params: Argon2Settings) -> Result<Self, AuthConfigError> {
        self.rebuilt(|config| config.password = params)
    }

    /// The state with another issuer, audience, lifetime or leeway for access tokens.
    ///
    /// # Errors
    /// [`AuthConfigError::Tokens`] when they are incomplete.
    pub fn with_token_settings(self, tokens: TokenSettings) -> Result<Self, AuthConfigError> {
        self.rebuilt(|config| config.tokens = tokens)
    }

    /// The state with other rate limits and session lifetimes. Its `first_admin` replaces the current one.
    ///
    /// # Errors
    /// None in practice; the signature matches the other builders.
    pub fn with_auth_settings(self, settings: AuthSettings) -> Result<Self, AuthConfigError> {
        self.rebuilt(|config| config.auth = settings)
    }

    /// The state with the queues that committed outbox events are published to right after their commit.
    pub fn with_publisher(mut self, publisher: Publisher) -> Self {
        self.publisher = Some(publisher.clone());
        self.rebuilt_commerce(|config| config.publisher = Some(publisher))
    }

    /// The outbox in this state's store.
    pub fn outbox(&self) -> Outbox<S> {
        Outbox::new(self.store.clone())
    }

    /// Publishes an event that has just committed, and removes it from the outbox. It never fails the
    /// request: the event is committed, so if its queue is unreachable (or the host has no publisher) it
    /// waits in the outbox for the host's relay, and the failure is logged.
    pub async fn publish_committed(&self, event: Option<Event>) {
        let (Some(event), Some(publisher)) = (event, &self.publisher) else { return };
        if let Err(error) = self.outbox().publish(&event, publisher.as_ref()).await {
            tracing::warn!(event_id = %event.id, topic = event.topic.name(), error = ?error, "event left in the outbox for the relay");
        }
    }

    /// The access-token settings in force (tests mint tokens with them).
    pub fn token_settings(&self) -> &TokenSettings {
        &self.auth_config.tokens
    }

    /// The authentication settings in force.
    pub fn auth_settings(&self) -> &AuthSettings {
        &self.auth_config.auth
    }
}

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            clock: Arc::clone(&self.clock),
            ids: Arc::clone(&self.ids),
            keys: self.keys.clone(),
            auth: Arc::clone(&self.auth),
            publisher: self.publisher.clone(),
            commerce: self.commerce.clone(),
            idempotency: self.idempotency.clone(),
            sandbox: self.sandbox.clone(),
            auth_config: self.auth_config.clone(),
            commerce_config: self.commerce_config.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryItemStore, SequentialIds};
    use crate::domain::account::Role;
    use crate::ports::Timestamp;

    #[test]
    fn the_default_authentication_stack_builds_and_the_builders_change_it() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
        let keys = Keys::derive(&[3; 32]).unwrap_or_else(|e| panic!("{e}"));
        let state = AppState::new(MemoryItemStore::new(clock.clone()), clock, Arc::new(SequentialIds::new("s")), keys);
        assert_eq!(state.token_settings().issuer, DEFAULT_TOKEN_ISSUER);
        assert!(state.auth_settings().first_admin.is_none());
        let boss = Email::parse("Boss@Example.com").unwrap_or_else(|e| panic!("{e}"));
        let state = state.with_first_admin(boss.clone());
        assert_eq!(state.auth_settings().first_admin.as_ref(), Some(&boss));
        assert_eq!(Role::for_new_account(&boss, state.auth_settings().first_admin.as_ref()), Role::Admin);
        let refused = state.clone().with_password_params(Argon2Settings { memory_kib: 1, iterations: 1, parallelism: 1 });
        assert!(matches!(refused, Err(AuthConfigError::PasswordParams(_))));
        let refused = state.clone().with_token_settings(TokenSettings::new("", "api"));
        assert!(matches!(refused, Err(AuthConfigError::Tokens(_))));
        let fast = state.with_password_params(Argon2Settings::insecure_for_tests());
        assert!(fast.is_ok_and(|state| state.auth_settings().first_admin == Some(boss)));
    }
}
