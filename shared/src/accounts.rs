//! The account repository, written once on top of the [`ItemStore`] port.
//!
//! Layout in the store (one table, as on DynamoDB):
//!
//! | item | partition key | sort key | document |
//! | --- | --- | --- | --- |
//! | account | `USER#<user id>` | `USER` | the user and its password hash |
//! | e-mail claim | `EMAIL#<normalised email>` | `EMAIL` | the owning user id |
//!
//! One account per e-mail address is enforced by the store: registration writes the account and the e-mail
//! claim in one transaction, the claim with a not-exists condition, so of any number of concurrent
//! registrations of one address exactly one commits. Nothing here reads before it writes to decide that.
//! Closing an account keeps its claim, so the address cannot be taken over until the erasure job removes
//! the account's personal data. Closing an account and asking for an export each write their privacy job into
//! the outbox (`outbox`) in the same transaction as the account, so a recorded request always has its job.
//! The `USER#<id>` partition also holds the user's session index (`sessions`).
//! This module owns no HTTP, no hashing and no clock; time comes in as arguments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::account::{Email, PasswordHash, User, UserId};
use crate::jobs::privacy::PrivacyJob;
use crate::outbox::Event;
use crate::ports::Timestamp;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, StoreError, Write};

const USER_SK: &str = "USER";
const EMAIL_SK: &str = "EMAIL";
/// How often an update retries when another writer changed the account in between.
const UPDATE_ATTEMPTS: usize = 5;

pub(crate) fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}

fn user_key(id: &UserId) -> ItemKey {
    ItemKey::new(user_pk(id), USER_SK)
}

fn email_key(email: &Email) -> ItemKey {
    ItemKey::new(format!("EMAIL#{email}"), EMAIL_SK)
}

/// An account as stored: the user and its password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAccount {
    user: User,
    password_hash: PasswordHash,
}

/// What can go wrong with the account repository.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Another account has this e-mail address.
    #[error("the e-mail address belongs to another account")]
    EmailTaken,
    /// No such account.
    #[error("account not found")]
    NotFound,
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AccountsError {
    fn from(error: StoreError) -> Self {
        AccountsError::Internal(anyhow::Error::new(error).context("account store call failed"))
    }
}

fn to_item(key: ItemKey, version: u64, document: &impl Serialize) -> Result<Item, AccountsError> {
    let data =
        serde_json::to_value(document).map_err(|error| anyhow::Error::new(error).context("encode account item"))?;
    Ok(Item::new(key, version, data))
}

fn decode<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, AccountsError> {
    serde_json::from_value(item.data)
        .map_err(|error| AccountsError::Internal(anyhow::Error::new(error).context("decode stored account item")))
}

/// The accounts' repository.
#[derive(Debug, Clone)]
pub struct Accounts<S> {
    store: S,
}

impl<S: ItemStore> Accounts<S> {
    /// Accounts on a store.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// Stores a new account and claims its e-mail address, in one transaction.
    ///
    /// # Errors
    /// [`AccountsError::EmailTaken`] when another account holds the address (whether it registered long ago
    /// or a moment ago in a concurrent call); [`AccountsError::Internal`] when the store fails or the id is
    /// already in use (an id generator fault).
    pub async fn register(&self, user: &User, password_hash: &PasswordHash) -> Result<(), AccountsError> {
        let account = StoredAccount { user: user.clone(), password_hash: password_hash.clone() };
        let writes = vec![
            Write::Put { item: to_item(user_key(&user.id), 1, &account)?, condition: Condition::NotExists },
            Write::Put {
                item: to_item(email_key(&user.email), 1, &Value::String(user.id.to_string()))?,
                condition: Condition::NotExists,
            },
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { index: 1, .. }) => Err(AccountsError::EmailTaken),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(AccountsError::Internal(anyhow::anyhow!("the id generator gave an id already in use")))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn load(&self, id: &UserId) -> Result<Option<(StoredAccount, u64)>, AccountsError> {
        match self.store.get(&user_key(id)).await? {
            Some(item) => {
                let version = item.version;
                Ok(Some((decode(item)?, version)))
            }
            None => Ok(None),
        }
    }

    /// The account with this id, open or closed.
    ///
    /// # Errors
    /// [`AccountsError::NotFound`], or [`AccountsError::Internal`] when the store fails.
    pub async fn get(&self, id: &UserId) -> Result<User, AccountsError> {
        match self.load(id).await? {
            Some((account, _)) => Ok(account.user),
            None => Err(AccountsError::NotFound),
        }
    }

    /// The account holding this address, with its password hash, if any (open or closed).
    ///
    /// # Errors
    /// [`AccountsError::Internal`] when the store fails.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<(User, PasswordHash)>, AccountsError> {
        let Some(claim) = self.store.get(&email_key(email)).await? else { return Ok(None) };
        let owner: String = decode(claim)?;
        let owner = UserId::parse(&owner).map_err(|error| anyhow::anyhow!("stored e-mail claim: {error}"))?;
        Ok(self.load(&owner).await?.map(|(account, _)| (account.user, account.password_hash)))
    }

    /// Changes an account with `change`, retrying when another writer got in between. Each try is one write
    /// conditioned on the version read, in one transaction with the outbox event `change` returns, if any, so
    /// the change and the job it starts commit together or not at all.
    async fn update(
        &self,
        id: &UserId,
        change: impl Fn(&mut User) -> Option<PrivacyJob>,
    ) -> Result<(User, Option<Event>), AccountsError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((mut account, version)) = self.load(id).await? else { return Err(AccountsError::NotFound) };
            let job = change(&mut account.user);
            let put = Write::Put { item: to_item(user_key(id), version + 1, &account)?, condition: Condition::VersionEquals(version) };
            let event = match job {
                Some(job) => Some(job.event().map_err(|error| anyhow::Error::new(error).context("build a privacy event"))?),
                None => None,
            };
            let mut writes = vec![put];
            if let Some(event) = &event {
                writes.push(event.write()?);
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok((account.user, event)),
                Err(StoreError::ConditionFailed { index: 0, .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccountsError::Internal(anyhow::anyhow!("the account kept changing under concurrent updates")))
    }

    /// Closes an account and records the request to erase its data: it can no longer sign in and its tokens
    /// are refused. The first close writes the `privacy.erase` job into the outbox in the same transaction and
    /// returns it, to be published; closing again changes nothing and returns no event. Returns the account as
    /// it now is.
    ///
    /// # Errors
    /// [`AccountsError::NotFound`], or [`AccountsError::Internal`] when the store fails.
    pub async fn close(&self, id: &UserId, now: Timestamp) -> Result<(User, Option<Event>), AccountsError> {
        self.update(id, |user| {
            user.deleted_at.get_or_insert(now);
            match user.erasure_requested_at {
                Some(_) => None,
                None => {
                    user.erasure_requested_at = Some(now);
                    Some(PrivacyJob::Erase { user_id: user.id.clone(), requested_at: now })
                }
            }
        })
        .await
    }

    /// Records that the user asked for an export of their data. The first request writes the
    /// `privacy.export` job into the outbox in the same transaction and returns it, to be published; while it
    /// is pending, asking again keeps the first request's time and starts no second job.
    ///
    /// # Errors
    /// [`AccountsError::NotFound`], or [`AccountsError::Internal`] when the store fails.
    pub async fn request_export(&self, id: &UserId, now: Timestamp) -> Result<(User, Option<Event>), AccountsError> {
        self.update(id, |user| match user.export_requested_at {
            Some(_) => None,
            None => {
                user.export_requested_at = Some(now);
                Some(PrivacyJob::Export { user_id: user.id.clone(), requested_at: now })
            }
        })
        .await
    }

    /// Marks the export requested at `requested_at` done, in one transaction with `writes` (the stored
    /// document's manifest), so the request is shown pending until its document is there. Returns `false`,
    /// writing nothing, when that request is no longer pending (the job ran before: a redelivery).
    ///
    /// # Errors
    /// [`AccountsError::NotFound`], or [`AccountsError::Internal`] when the store fails.
    pub async fn finish_export(&self, id: &UserId, requested_at: crate::ports::Timestamp, writes: Vec<Write>) -> Result<bool, AccountsError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((mut account, version)) = self.load(id).await? else { return Err(AccountsError::NotFound) };
            if account.user.export_requested_at != Some(requested_at) {
                return Ok(false);
            }
            account.user.export_requested_at = None;
            let mut all = vec![Write::Put { item: to_item(user_key(id), version + 1, &account)?, condition: Condition::VersionEquals(version) }];
            all.extend(writes.iter().cloned());
            match self.store.transact(all).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { index: 0, .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccountsError::Internal(anyhow::anyhow!("the account kept changing while its export was stored")))
    }

    /// Removes a closed account and releases its e-mail address, in one transaction: the last step of an
    /// erasure, after everything else the account owned is gone, so a crash before it leaves the account for
    /// the retried job to find. Returns `false` when there is no such account (erased before).
    ///
    /// # Errors
    /// [`AccountsError::Internal`] when the account is still open or the store fails.
    pub async fn erase(&self, id: &UserId) -> Result<bool, AccountsError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((account, version)) = self.load(id).await? else { return Ok(false) };
            if account.user.is_active() {
                return Err(AccountsError::Internal(anyhow::anyhow!("an open account is never erased")));
            }
            let mut writes = vec![Write::Delete { key: user_key(id), condition: Condition::VersionEquals(version) }];
            let claim_key = email_key(&account.user.email);
            if let Some(claim) = self.store.get(&claim_key).await?.filter(|claim| claim.data.as_str() == Some(id.as_ref())) {
                writes.push(Write::Delete { key: claim_key, condition: Condition::VersionEquals(claim.version) });
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccountsError::Internal(anyhow::anyhow!("the account kept changing while it was erased")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::memory::ManualClock;
    use crate::domain::account::Role;
    use crate::ports::Clock;

    fn user(id: &str, email: &str, now: Timestamp) -> User {
        User::new(
            UserId::parse(id).unwrap_or_else(|e| panic!("{e}")),
            Email::parse(email).unwrap_or_else(|e| panic!("{e}")),
            Role::Customer,
            now,
        )
    }

    fn hash(text: &str) -> PasswordHash {
        PasswordHash::from_phc(format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ${text}"))
    }

    async fn register_then_get_and_find_by_normalised_email(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let accounts = Accounts::new(store);
        let alice = user("u1", "Alice@Example.com", clock.now());
        accounts.register(&alice, &hash("a")).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(accounts.get(&alice.id).await.ok(), Some(alice.clone()));
        let found = accounts.find_by_email(&Email::parse(" ALICE@example.COM").unwrap_or_else(|e| panic!("{e}"))).await;
        let (found_user, found_hash) = found.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("not found"));
        assert_eq!(found_user, alice);
        assert_eq!(found_hash, hash("a"));
        let nobody = accounts.find_by_email(&Email::parse("bob@example.com").unwrap_or_else(|e| panic!("{e}"))).await;
        assert!(matches!(nobody, Ok(None)));
        let missing = UserId::parse("u404").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(accounts.get(&missing).await, Err(AccountsError::NotFound)));
    }

    async fn a_second_registration_of_an_email_is_refused(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let accounts = Accounts::new(store);
        accounts
            .register(&user("u1", "a@example.com", clock.now()), &hash("a"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let second = accounts.register(&user("u2", "A@EXAMPLE.COM", clock.now()), &hash("b")).await;
        assert!(matches!(second, Err(AccountsError::EmailTaken)), "{second:?}");
        let u2 = UserId::parse("u2").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(accounts.get(&u2).await, Err(AccountsError::NotFound)), "nothing of the loser was written");
    }

    async fn concurrent_registrations_of_one_email_give_exactly_one_account(
        store: impl ItemStore + Clone,
        clock: Arc<ManualClock>,
    ) {
        let accounts = Accounts::new(store);
        let tasks: Vec<_> = (0..32)
            .map(|n| {
                let accounts = accounts.clone();
                let candidate = user(&format!("u{n}"), "race@example.com", clock.now());
                tokio::spawn(async move { accounts.register(&candidate, &hash("x")).await })
            })
            .collect();
        let mut won = 0;
        let mut taken = 0;
        for task in tasks {
            match task.await.unwrap_or_else(|e| panic!("{e}")) {
                Ok(()) => won += 1,
                Err(AccountsError::EmailTaken) => taken += 1,
                Err(error) => panic!("{error}"),
            }
        }
        assert_eq!((won, taken), (1, 31));
        let mut stored = 0;
        for n in 0..32 {
            if accounts.get(&UserId::parse(&format!("u{n}")).unwrap_or_else(|e| panic!("{e}"))).await.is_ok() {
                stored += 1;
            }
        }
        assert_eq!(stored, 1);
    }

    async fn closing_and_requests_are_recorded_once_with_their_jobs(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let accounts = Accounts::new(store.clone());
        let outbox = crate::outbox::Outbox::new(store);
        let alice = user("u1", "a@example.com", clock.now());
        accounts.register(&alice, &hash("a")).await.unwrap_or_else(|e| panic!("{e}"));
        let first = clock.now();
        let (exported, event) = accounts.request_export(&alice.id, first).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exported.export_requested_at, Some(first));
        let export_job = PrivacyJob::Export { user_id: alice.id.clone(), requested_at: first };
        assert_eq!(event.as_ref().map(|event| event.body.clone()), export_job.event().ok().map(|event| event.body));
        clock.advance(std::time::Duration::from_secs(60));
        let (again, second) = accounts.request_export(&alice.id, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.export_requested_at, Some(first), "the first request's time is kept");
        assert!(second.is_none(), "a pending export starts no second job");
        let (closed, erase) = accounts.close(&alice.id, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((closed.erasure_requested_at, closed.deleted_at), (Some(clock.now()), Some(clock.now())));
        assert!(!closed.is_active());
        assert_eq!(erase.as_ref().map(|event| event.id.as_str()), Some("privacy.erase.u1"));
        let (_, none) = accounts.close(&alice.id, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_none(), "closing twice starts no second erasure");
        let pending = outbox.pending(10).await.unwrap_or_else(|e| panic!("{e}")).0;
        assert_eq!(pending, [event, erase].into_iter().flatten().collect::<Vec<_>>(), "each job is in the outbox once");
        assert_eq!(accounts.get(&alice.id).await.ok(), Some(closed));
        let email = Email::parse("a@example.com").unwrap_or_else(|e| panic!("{e}"));
        let retaken = accounts.register(&user("u2", "a@example.com", clock.now()), &hash("b")).await;
        assert!(matches!(retaken, Err(AccountsError::EmailTaken)), "a closed account keeps its address");
        assert!(matches!(accounts.find_by_email(&email).await, Ok(Some((found, _))) if !found.is_active()));
        let missing = UserId::parse("u404").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(accounts.close(&missing, clock.now()).await, Err(AccountsError::NotFound)));
    }

    async fn concurrent_updates_all_land_each_with_its_job(store: impl ItemStore + Clone, clock: Arc<ManualClock>) {
        let accounts = Accounts::new(store.clone());
        let alice = user("u1", "a@example.com", clock.now());
        accounts.register(&alice, &hash("a")).await.unwrap_or_else(|e| panic!("{e}"));
        let now = clock.now();
        let (export, erasure) = tokio::join!(accounts.request_export(&alice.id, now), accounts.close(&alice.id, now));
        assert!(export.is_ok_and(|(_, event)| event.is_some()) && erasure.is_ok_and(|(_, event)| event.is_some()));
        let stored = accounts.get(&alice.id).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stored.export_requested_at, stored.erasure_requested_at), (Some(now), Some(now)));
        let pending = crate::outbox::Outbox::new(store).pending(10).await.unwrap_or_else(|e| panic!("{e}")).0;
        assert_eq!(pending.len(), 2, "a retried update wrote its job once");
    }

    crate::test_stores::each_store!(
        register_then_get_and_find_by_normalised_email,
        a_second_registration_of_an_email_is_refused,
        concurrent_registrations_of_one_email_give_exactly_one_account,
        closing_and_requests_are_recorded_once_with_their_jobs,
        concurrent_updates_all_land_each_with_its_job,
    );
}
