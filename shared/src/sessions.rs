//! Sign-in sessions and their rotating refresh tokens, written once on top of the [`ItemStore`] port.
//!
//! Layout in the store (one table, as on DynamoDB):
//!
//! | item | partition key | sort key | document | expires |
//! | --- | --- | --- | --- | --- |
//! | refresh token | `REFRESH#<SHA-256 of the token, hex>` | `REFRESH` | session, user, spent flag | with the token |
//! | session (token family) | `SESSION#<session id>` | `SESSION` | user, created, revoked | with its newest token |
//! | user's session index | `USER#<user id>` | `SESSION#<session id>` | empty | with its newest token |
//!
//! A refresh token is 32 random bytes, handed to the client once as 43 characters of base64url and stored only
//! as its SHA-256 hash (the token is unguessable, so an unsalted fast hash is enough; a stolen table yields
//! no usable token). Every use rotates it in one transaction: the presented token is marked spent (on the
//! version read), its successor is written (on not-exists), and the session is moved on (on the version
//! read). Spent tokens stay until they expire so that a replay is recognised: presenting a spent token, or
//! losing the race to rotate one, revokes the whole session, so a thief and the user both lose it and
//! the user signs in again. This module owns no HTTP and no clock; time, ids and randomness come in as
//! arguments.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::user_pk;
use crate::domain::account::{SessionId, UserId};
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, Query, StoreError, Write};
use crate::ports::random::{Random, random_bytes};
use crate::ports::{IdGen, Timestamp};

/// Random bytes per refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;
/// The length of a refresh token's text (base64url of [`REFRESH_TOKEN_BYTES`], unpadded).
pub const REFRESH_TOKEN_CHARS: usize = 43;
const TOKEN_SK: &str = "REFRESH";
const SESSION_SK: &str = "SESSION";
const INDEX_SK_PREFIX: &str = "SESSION#";
const REVOKE_ATTEMPTS: usize = 5;

/// How long refresh tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// How long a refresh token stays usable; each rotation starts a new one, so an active session lives on
    /// and an idle one ends this long after its last use.
    pub refresh_lifetime: Duration,
}

impl Default for SessionSettings {
    /// Refresh tokens live 30 days.
    fn default() -> Self {
        Self { refresh_lifetime: Duration::from_secs(30 * 24 * 60 * 60) }
    }
}

/// An opaque refresh token: issued to the client once, presented back to rotate. Never in `Debug` output.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// A token as a client presented it (checked only when used).
    pub fn presented(text: SecretString) -> Self {
        Self(text)
    }

    /// The token's text, to hand to the client.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    fn is_well_formed(&self) -> bool {
        let text = self.0.expose_secret();
        text.len() == REFRESH_TOKEN_CHARS && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    fn key(&self) -> ItemKey {
        let digest = Sha256::digest(self.0.expose_secret().as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        ItemKey::new(format!("REFRESH#{hex}"), TOKEN_SK)
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([REDACTED])")
    }
}

/// A session and the refresh token that continues it.
#[derive(Debug)]
pub struct Issued {
    /// The session (the token family).
    pub session: SessionId,
    /// Whose session it is.
    pub user: UserId,
    /// The new refresh token, to hand to the client once.
    pub refresh_token: RefreshToken,
    /// When that token expires.
    pub expires_at: Timestamp,
}

/// What can go wrong with sessions.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The token is malformed, unknown, expired, or its session was revoked.
    #[error("invalid refresh token")]
    Invalid,
    /// The token was already spent: its session has now been revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        SessionError::Internal(anyhow::Error::new(error).context("session store call failed"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    session: SessionId,
    user: UserId,
    spent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    user: UserId,
    created_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

fn session_key(session: &SessionId) -> ItemKey {
    ItemKey::new(format!("SESSION#{session}"), SESSION_SK)
}

fn index_key(user: &UserId, session: &SessionId) -> ItemKey {
    ItemKey::new(user_pk(user), format!("{INDEX_SK_PREFIX}{session}"))
}

fn to_item(key: ItemKey, version: u64, expires_at: Timestamp, document: &impl Serialize) -> Result<Item, SessionError> {
    let data =
        serde_json::to_value(document).map_err(|error| anyhow::Error::new(error).context("encode session item"))?;
    let mut item = Item::new(key, version, data);
    // Round up, so an item never disappears before the token it serves expires.
    item.expires_at = Some(expires_at.plus_millis(999).as_secs());
    Ok(item)
}

fn decode<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, SessionError> {
    serde_json::from_value(item.data)
        .map_err(|error| SessionError::Internal(anyhow::Error::new(error).context("decode stored session item")))
}

/// The sessions' repository.
#[derive(Debug, Clone)]
pub struct Sessions<S> {
    store: S,
    settings: SessionSettings,
}

impl<S: ItemStore> Sessions<S> {
    /// Sessions on a store.
    pub fn new(store: S, settings: SessionSettings) -> Self {
        Self { store, settings }
    }

    fn new_token(random: &(impl Random + ?Sized)) -> Result<RefreshToken, SessionError> {
        let bytes: [u8; REFRESH_TOKEN_BYTES] =
            random_bytes(random).map_err(|error| anyhow::Error::new(error).context("draw a refresh token"))?;
        Ok(RefreshToken(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))))
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        now.plus_millis(i64::try_from(self.settings.refresh_lifetime.as_millis()).unwrap_or(i64::MAX))
    }

    /// Starts a session for `user` (at sign-in) and issues its first refresh token.
    ///
    /// # Errors
    /// [`SessionError::Internal`] when the store, the id generator or the random source fails.
    pub async fn start(
        &self,
        user: &UserId,
        ids: &(impl IdGen + ?Sized),
        random: &(impl Random + ?Sized),
        now: Timestamp,
    ) -> Result<Issued, SessionError> {
        let session = SessionId::parse(&ids.new_id())
            .map_err(|_| SessionError::Internal(anyhow::anyhow!("the id generator made an invalid id")))?;
        let refresh_token = Self::new_token(random)?;
        let expires_at = self.expiry(now);
        let record = SessionRecord { user: user.clone(), created_at: now, revoked_at: None };
        let token = TokenRecord { session: session.clone(), user: user.clone(), spent: false };
        let writes = vec![
            Write::Put {
                item: to_item(session_key(&session), 1, expires_at, &record)?,
                condition: Condition::NotExists,
            },
            Write::Put { item: to_item(refresh_token.key(), 1, expires_at, &token)?, condition: Condition::NotExists },
            Write::Put {
                item: to_item(index_key(user, &session), 1, expires_at, &serde_json::json!({}))?,
                condition: Condition::None,
            },
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(Issued { session, user: user.clone(), refresh_token, expires_at }),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(SessionError::Internal(anyhow::anyhow!("a new session or token collided with an existing one")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Spends a presented refresh token and issues its successor in the same session.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] for a malformed, unknown or expired token or a revoked session;
    /// [`SessionError::Reused`] when the token was already spent (the session is revoked before returning);
    /// [`SessionError::Internal`] when the store or the random source fails.
    pub async fn rotate(
        &self,
        presented: &RefreshToken,
        random: &(impl Random + ?Sized),
        now: Timestamp,
    ) -> Result<Issued, SessionError> {
        if !presented.is_well_formed() {
            return Err(SessionError::Invalid);
        }
        let Some(token_item) = self.store.get(&presented.key()).await? else { return Err(SessionError::Invalid) };
        let (token_version, token_expiry) = (token_item.version, token_item.expires_at);
        let token: TokenRecord = decode(token_item)?;
        if token.spent {
            self.revoke(&token.session, now).await?;
            return Err(SessionError::Reused);
        }
        let Some(session_item) = self.store.get(&session_key(&token.session)).await? else {
            return Err(SessionError::Invalid);
        };
        let session_version = session_item.version;
        let record: SessionRecord = decode(session_item)?;
        if record.revoked_at.is_some() {
            return Err(SessionError::Invalid);
        }
        let successor = Self::new_token(random)?;
        let expires_at = self.expiry(now);
        let spent = TokenRecord { spent: true, ..token.clone() };
        let mut spent_item = to_item(presented.key(), token_version + 1, now, &spent)?;
        spent_item.expires_at = token_expiry;
        let writes = vec![
            Write::Put { item: spent_item, condition: Condition::VersionEquals(token_version) },
            Write::Put { item: to_item(successor.key(), 1, expires_at, &token)?, condition: Condition::NotExists },
            Write::Put {
                item: to_item(session_key(&token.session), session_version + 1, expires_at, &record)?,
                condition: Condition::VersionEquals(session_version),
            },
            Write::Put {
                item: to_item(index_key(&token.user, &token.session), 1, expires_at, &serde_json::json!({}))?,
                condition: Condition::None,
            },
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(Issued { session: token.session, user: token.user, refresh_token: successor, expires_at }),
            Err(StoreError::ConditionFailed { index: 1, .. }) => {
                Err(SessionError::Internal(anyhow::anyhow!("a new refresh token collided with an existing one")))
            }
            Err(StoreError::ConditionFailed { .. }) => {
                // Someone else changed the token or the session since we read them. If the token is now spent,
                // it was presented twice at once: treat that as reuse. Otherwise the session was revoked.
                let spent_now = match self.store.get(&presented.key()).await? {
                    Some(item) => decode::<TokenRecord>(item)?.spent,
                    None => false,
                };
                if spent_now {
                    self.revoke(&token.session, now).await?;
                    Err(SessionError::Reused)
                } else {
                    Err(SessionError::Invalid)
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Revokes a session (sign-out, or a detected reuse): none of its refresh tokens works any more.
    /// Revoking an unknown, expired or already revoked session succeeds.
    ///
    /// # Errors
    /// [`SessionError::Internal`] when the store fails.
    pub async fn revoke(&self, session: &SessionId, now: Timestamp) -> Result<(), SessionError> {
        for _ in 0..REVOKE_ATTEMPTS {
            let Some(item) = self.store.get(&session_key(session)).await? else { return Ok(()) };
            let (version, expires_at) = (item.version, item.expires_at);
            let mut record: SessionRecord = decode(item)?;
            if record.revoked_at.is_some() {
                return Ok(());
            }
            record.revoked_at = Some(now);
            let mut revoked = to_item(session_key(session), version + 1, now, &record)?;
            revoked.expires_at = expires_at;
            match self.store.put(revoked, Condition::VersionEquals(version)).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(SessionError::Internal(anyhow::anyhow!("the session kept changing while being revoked")))
    }

    /// Revokes every session of a user (account closed). Returns how many it revoked or found revoked.
    ///
    /// # Errors
    /// [`SessionError::Internal`] when the store fails.
    pub async fn revoke_all(&self, user: &UserId, now: Timestamp) -> Result<usize, SessionError> {
        let mut cursor = None;
        let mut count = 0;
        loop {
            let page = self.store.query(&Query::new(user_pk(user), INDEX_SK_PREFIX, 100).after(cursor.take())).await?;
            for item in &page.items {
                let Some(id) = item.key.sk.strip_prefix(INDEX_SK_PREFIX) else { continue };
                let session = SessionId::parse(id).map_err(|error| anyhow::anyhow!("stored session index: {error}"))?;
                self.revoke(&session, now).await?;
                count += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(count),
            }
        }
    }

    /// Removes every session of `user` and its index entry (an erasure): refresh tokens of those sessions then
    /// name no session and are refused, and expire on their own.
    ///
    /// # Errors
    /// [`SessionError::Internal`] when the store fails.
    pub async fn erase_all(&self, user: &UserId) -> Result<usize, SessionError> {
        let mut count = 0;
        loop {
            let page = self.store.query(&Query::new(user_pk(user), INDEX_SK_PREFIX, 100)).await?;
            if page.items.is_empty() {
                return Ok(count);
            }
            for item in &page.items {
                if let Some(id) = item.key.sk.strip_prefix(INDEX_SK_PREFIX) {
                    let session = SessionId::parse(id).map_err(|error| anyhow::anyhow!("stored session index: {error}"))?;
                    self.store.delete(&session_key(&session), Condition::None).await?;
                }
                self.store.delete(&item.key, Condition::None).await?;
                count += 1;
            }
        }
    }

    /// Whether a session is still live (known, unexpired, not revoked) and belongs to `user`: access tokens
    /// issued from a revoked session are refused, so signing out takes effect before they expire, and a token
    /// naming one user with another user's session is refused too.
    ///
    /// # Errors
    /// [`SessionError::Internal`] when the store fails.
    pub async fn is_live(&self, session: &SessionId, user: &UserId) -> Result<bool, SessionError> {
        match self.store.get(&session_key(session)).await? {
            Some(item) => {
                let record = decode::<SessionRecord>(item)?;
                Ok(record.revoked_at.is_none() && &record.user == user)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::{ManualClock, PredictableRandom, SequentialIds};
    use crate::ports::Clock;

    struct Fixture<S> {
        sessions: Sessions<S>,
        ids: SequentialIds,
        random: PredictableRandom,
        user: UserId,
    }

    fn fixture<S: ItemStore>(store: S) -> Fixture<S> {
        Fixture {
            sessions: Sessions::new(store, SessionSettings::default()),
            ids: SequentialIds::new("s"),
            random: PredictableRandom::new(42),
            user: UserId::parse("u1").unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn again(token: &RefreshToken) -> RefreshToken {
        RefreshToken::presented(SecretString::from(token.expose_secret().to_owned()))
    }

    async fn rotation_spends_the_old_token_and_keeps_the_session(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let f = fixture(store);
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.refresh_token.expose_secret().len(), REFRESH_TOKEN_CHARS);
        clock.advance(Duration::from_secs(60));
        let second =
            f.sessions.rotate(&first.refresh_token, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((&second.session, &second.user), (&first.session, &f.user));
        assert_ne!(second.refresh_token.expose_secret(), first.refresh_token.expose_secret());
        assert!(second.expires_at > first.expires_at, "each rotation starts a new lifetime");
        let third =
            f.sessions.rotate(&second.refresh_token, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(third.session, first.session);
        assert!(matches!(f.sessions.is_live(&first.session, &first.user).await, Ok(true)));
    }

    async fn reusing_a_spent_token_revokes_the_family(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = fixture(store);
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let other = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let second =
            f.sessions.rotate(&first.refresh_token, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let replay = f.sessions.rotate(&again(&first.refresh_token), &f.random, clock.now()).await;
        assert!(matches!(replay, Err(SessionError::Reused)), "{replay:?}");
        let newest = f.sessions.rotate(&second.refresh_token, &f.random, clock.now()).await;
        assert!(matches!(newest, Err(SessionError::Invalid)), "the newest token of the family fails too: {newest:?}");
        assert!(matches!(f.sessions.is_live(&first.session, &first.user).await, Ok(false)));
        let unrelated = f.sessions.rotate(&other.refresh_token, &f.random, clock.now()).await;
        assert!(unrelated.is_ok(), "another session of the same user is untouched");
    }

    async fn racing_rotations_of_one_token_let_at_most_one_win(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = Arc::new(fixture(store));
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let text = first.refresh_token.expose_secret().to_owned();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (f, text, now) = (f.clone(), text.clone(), clock.now());
                tokio::spawn(async move {
                    f.sessions.rotate(&RefreshToken::presented(SecretString::from(text)), &f.random, now).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap_or_else(|e| panic!("{e}")) {
                Ok(issued) => winners.push(issued),
                Err(SessionError::Reused | SessionError::Invalid) => {}
                Err(error) => panic!("{error}"),
            }
        }
        assert!(winners.len() <= 1, "{} rotations of one token succeeded", winners.len());
        assert!(matches!(f.sessions.is_live(&first.session, &first.user).await, Ok(false)), "a replayed token revokes the family");
        for winner in winners {
            assert!(f.sessions.rotate(&winner.refresh_token, &f.random, clock.now()).await.is_err());
        }
    }

    async fn logout_revokes_the_family(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = fixture(store);
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        f.sessions.revoke(&first.session, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        f.sessions.revoke(&first.session, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let after = f.sessions.rotate(&first.refresh_token, &f.random, clock.now()).await;
        assert!(matches!(after, Err(SessionError::Invalid)), "{after:?}");
        assert!(matches!(f.sessions.is_live(&first.session, &first.user).await, Ok(false)));
    }

    async fn revoke_all_ends_every_session_of_the_user(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = fixture(store);
        let mut issued = Vec::new();
        for _ in 0..3 {
            issued.push(
                f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let bob = UserId::parse("u2").unwrap_or_else(|e| panic!("{e}"));
        let bobs = f.sessions.start(&bob, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(f.sessions.revoke_all(&f.user, clock.now()).await, Ok(3)));
        for session in &issued {
            assert!(f.sessions.rotate(&session.refresh_token, &f.random, clock.now()).await.is_err());
        }
        assert!(f.sessions.rotate(&bobs.refresh_token, &f.random, clock.now()).await.is_ok());
    }

    async fn expired_malformed_and_unknown_tokens_are_invalid(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = fixture(store);
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        for text in ["", "short", &"A".repeat(REFRESH_TOKEN_CHARS), &format!("{}!", "A".repeat(42))] {
            let presented = RefreshToken::presented(SecretString::from(text.to_owned()));
            assert!(matches!(f.sessions.rotate(&presented, &f.random, clock.now()).await, Err(SessionError::Invalid)));
        }
        clock.advance(SessionSettings::default().refresh_lifetime + Duration::from_secs(1));
        let late = f.sessions.rotate(&first.refresh_token, &f.random, clock.now()).await;
        assert!(matches!(late, Err(SessionError::Invalid)), "{late:?}");
        assert!(matches!(f.sessions.is_live(&first.session, &first.user).await, Ok(false)));
    }

    async fn only_hashes_of_tokens_are_stored(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let f = fixture(store.clone());
        let first = f.sessions.start(&f.user, &f.ids, &f.random, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let text = first.refresh_token.expose_secret().to_owned();
        let item = store.get(&first.refresh_token.key()).await.unwrap_or_else(|e| panic!("{e}"));
        let item = item.unwrap_or_else(|| panic!("the token's item is missing"));
        assert!(!item.key.pk.contains(&text) && !item.data.to_string().contains(&text));
        assert!(item.expires_at.is_some());
        assert!(!format!("{first:?}").contains(&text));
    }

    crate::test_stores::each_store!(
        rotation_spends_the_old_token_and_keeps_the_session,
        reusing_a_spent_token_revokes_the_family,
        racing_rotations_of_one_token_let_at_most_one_win,
        logout_revokes_the_family,
        revoke_all_ends_every_session_of_the_user,
        expired_malformed_and_unknown_tokens_are_invalid,
        only_hashes_of_tokens_are_stored,
    );
}
