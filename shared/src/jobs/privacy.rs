//! The privacy queue's jobs: a user's request for an export of their data, and for its erasure.
//!
//! The `me` function writes them into the outbox in the same transaction that records the request on the
//! account (`accounts::Accounts::request_export`, `close`); [`PrivacyJobs`] consumes them. Each job names the
//! account and the time of the request, never any personal data, so the message itself can be logged and
//! dead-lettered without leaking anything.
//!
//! Export: a JSON document of everything the shop holds about the user (the account, every order, the cart
//! and the privacy requests) is stored for [`crate::exports::EXPORT_TTL_DAYS`] days, the request is marked done
//! in the same transaction as the document's manifest, and the user is told by e-mail. A redelivery after that
//! finds the request done and only makes sure the e-mail went (once per `Message-ID`).
//!
//! Erasure (the account is already closed, its tokens refused): the orders are handed to an anonymous id
//! derived from the user id (kept for the books, listed among everybody's orders, gone from the user's list),
//! then the sessions, the cart, the idempotency records and the exports are removed, and last the account and
//! its e-mail claim go in one transaction, so the address can register again. Each step is idempotent and the
//! account is removed last, so a redelivered or retried job finishes what a failed one started.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{Accounts, AccountsError};
use crate::commerce::carts::Carts;
use crate::commerce::orders::{Order, Orders};
use crate::domain::account::UserId;
use crate::exports::{Exports, clear_partition};
use crate::http::views::AccountView;
use crate::http::views::commerce::OrderView;
use crate::http::views::privacy::{ExportView, ExportedCart, ExportedCartLine, ExportedRequests};
use crate::jobs::JobError;
use crate::mail::{MailSettings, Outgoing, letters};
use crate::outbox::{Event, EventError, Topic};
use crate::ports::item_store::ItemStore;
use crate::ports::{Clock, Timestamp};
use crate::sessions::{SessionSettings, Sessions};

/// The most orders read per page while exporting or erasing.
const ORDER_PAGE: usize = 100;

/// The id an erased user's orders are kept under: derived from the user id alone, so a retried erasure uses
/// the same one, and not the user id itself.
pub fn anonymous_id(user: &UserId) -> UserId {
    let digest = Sha256::digest(format!("storefront-erased-user:{user}").as_bytes());
    let hex: String = digest.iter().take(12).map(|byte| format!("{byte:02x}")).collect();
    UserId::parse(&format!("anon-{hex}")).unwrap_or_else(|_| user.clone())
}

/// A job on the privacy queue, as `{"type": "privacy.export" | "privacy.erase", "user_id": .., "requested_at": ..}`
/// (`requested_at` in milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PrivacyJob {
    /// Build a JSON document of the account's data that the user can fetch.
    #[serde(rename = "privacy.export")]
    Export {
        /// Whose data.
        user_id: UserId,
        /// When the user asked.
        requested_at: Timestamp,
    },
    /// Remove the account's personal data, keeping its orders anonymised.
    #[serde(rename = "privacy.erase")]
    Erase {
        /// Whose data.
        user_id: UserId,
        /// When the user asked.
        requested_at: Timestamp,
    },
}

impl PrivacyJob {
    /// The outbox event that carries this job. Its id is unique per request: an account is erased once, and
    /// each export request is told apart by its time.
    ///
    /// # Errors
    /// [`EventError`] only if the job could not be encoded (user ids are always valid deduplication ids).
    pub fn event(&self) -> Result<Event, EventError> {
        let (id, requested_at) = match self {
            PrivacyJob::Export { user_id, requested_at } => {
                (format!("privacy.export.{user_id}.{}", requested_at.as_millis()), *requested_at)
            }
            PrivacyJob::Erase { user_id, requested_at } => (format!("privacy.erase.{user_id}"), *requested_at),
        };
        Event::new(Topic::Privacy, id, self, requested_at)
    }
}

/// The privacy queue's consumer.
#[derive(Clone)]
pub struct PrivacyJobs<S> {
    store: S,
    accounts: Accounts<S>,
    orders: Orders<S>,
    carts: Carts<S>,
    exports: Exports<S>,
    sessions: Sessions<S>,
    outgoing: Outgoing<S>,
    settings: MailSettings,
    clock: Arc<dyn Clock>,
}

fn transient(error: impl Into<anyhow::Error>) -> JobError {
    JobError::Transient(error.into())
}

impl<S: ItemStore + Clone> PrivacyJobs<S> {
    /// The consumer on `store`, mailing through `outgoing`.
    pub fn new(store: S, outgoing: Outgoing<S>, settings: MailSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            accounts: Accounts::new(store.clone()),
            orders: Orders::new(store.clone()),
            carts: Carts::new(store.clone()),
            exports: Exports::new(store.clone()),
            sessions: Sessions::new(store.clone(), SessionSettings::default()),
            store,
            outgoing,
            settings,
            clock,
        }
    }

    /// Handles one job.
    ///
    /// # Errors
    /// [`JobError::Permanent`] for a body that is not a privacy job; [`JobError::Transient`] when the store or
    /// the carrier fails.
    pub async fn handle(&self, body: &str) -> Result<(), JobError> {
        let job: PrivacyJob = serde_json::from_str(body).map_err(|error| JobError::Permanent(format!("not a privacy job: {error}")))?;
        match job {
            PrivacyJob::Export { user_id, requested_at } => self.export(&user_id, requested_at).await,
            PrivacyJob::Erase { user_id, .. } => self.erase(&user_id).await,
        }
    }

    /// The export document of a user: everything the shop holds about them.
    ///
    /// # Errors
    /// [`JobError::Transient`] when the store fails.
    async fn document(&self, user: &crate::domain::account::User) -> Result<serde_json::Value, JobError> {
        let mut orders = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.orders.list(Some(&user.id), ORDER_PAGE, cursor.take()).await.map_err(JobError::store)?;
            orders.extend(page.orders.iter().map(OrderView::from));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let (cart, _) = self.carts.get(&user.id).await.map_err(JobError::store)?;
        let document = ExportView {
            exported_at: crate::http::views::rfc3339(self.clock.now()),
            account: AccountView::from(user),
            orders,
            cart: ExportedCart {
                items: cart
                    .lines
                    .iter()
                    .map(|line| ExportedCartLine { product_id: line.product_id.to_string(), quantity: line.quantity.get() })
                    .collect(),
                discount_code: cart.discount.as_ref().map(ToString::to_string),
            },
            requests: ExportedRequests {
                export_requested_at: user.export_requested_at.map(crate::http::views::rfc3339),
                erasure_requested_at: user.erasure_requested_at.map(crate::http::views::rfc3339),
            },
        };
        serde_json::to_value(document).map_err(transient)
    }

    async fn export(&self, user_id: &UserId, requested_at: Timestamp) -> Result<(), JobError> {
        let user = match self.accounts.get(user_id).await {
            Ok(user) => user,
            // Erased before its export was built: there is nothing left to export.
            Err(AccountsError::NotFound) => return Ok(()),
            Err(error) => return Err(transient(error)),
        };
        let event_id = format!("privacy.export.{user_id}.{}", requested_at.as_millis());
        if user.export_requested_at == Some(requested_at) {
            let text = self.document(&user).await?.to_string();
            let now = self.clock.now();
            let (_, manifest) = self.exports.store_parts(user_id, requested_at, &text, now).await.map_err(JobError::store)?;
            match self.accounts.finish_export(user_id, requested_at, vec![manifest]).await {
                Ok(_) => tracing::info!(user_id = %user_id, "data export stored"),
                Err(AccountsError::NotFound) => return Ok(()),
                Err(error) => return Err(transient(error)),
            }
        }
        if !user.is_active() {
            return Ok(());
        }
        let Some((manifest, _)) = self.exports.get(user_id).await.map_err(JobError::store)? else { return Ok(()) };
        if manifest.requested_at != requested_at {
            return Ok(());
        }
        let mail = letters::export_ready(&self.settings, user.email, &event_id, manifest.expires_at, manifest.created_at).map_err(JobError::mail)?;
        self.outgoing.send_once(&mail).await.map_err(JobError::outgoing)?;
        Ok(())
    }

    async fn erase(&self, user_id: &UserId) -> Result<(), JobError> {
        let user = match self.accounts.get(user_id).await {
            Ok(user) => user,
            Err(AccountsError::NotFound) => return Ok(()),
            Err(error) => return Err(transient(error)),
        };
        if user.is_active() {
            return Err(JobError::Permanent("an erasure job for an open account".to_owned()));
        }
        let anonymous = anonymous_id(user_id);
        loop {
            let page = self.orders.list(Some(user_id), ORDER_PAGE, None).await.map_err(JobError::store)?;
            if page.orders.is_empty() {
                break;
            }
            for listed in page.orders {
                let writes = match self.orders.get(&listed.id).await.map_err(JobError::store)? {
                    Some(order) if order.user_id == *user_id => Orders::<S>::anonymise_writes(&order, &anonymous).map_err(JobError::store)?,
                    // Handed over already (a retried erasure): only the user's list entry is left.
                    Some(order) => {
                        let stale = Order { user_id: user_id.clone(), ..order };
                        Orders::<S>::anonymise_writes(&stale, &anonymous).map_err(JobError::store)?.split_off(1)
                    }
                    None => continue,
                };
                match self.store.transact(writes).await {
                    Ok(()) | Err(crate::ports::item_store::StoreError::ConditionFailed { .. }) => {}
                    Err(error) => return Err(JobError::store(error)),
                }
            }
        }
        self.sessions.erase_all(user_id).await.map_err(transient)?;
        self.store.transact(vec![Carts::<S>::clear_write(user_id)]).await.map_err(JobError::store)?;
        clear_partition(&self.store, &crate::idempotency::user_partition(user_id)).await.map_err(JobError::store)?;
        self.exports.delete_all(user_id).await.map_err(JobError::store)?;
        self.accounts.erase(user_id).await.map_err(transient)?;
        tracing::info!(user_id = %user_id, anonymous_id = %anonymous, "account erased; its orders kept anonymised");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privacy_job_names_the_account_and_the_time_and_nothing_else() {
        let user_id = UserId::parse("u-123").unwrap_or_else(|e| panic!("{e}"));
        let job = PrivacyJob::Erase { user_id: user_id.clone(), requested_at: Timestamp::from_millis(1_700_000_000_000) };
        let event = job.event().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.id, "privacy.erase.u-123");
        assert_eq!(event.topic, Topic::Privacy);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body, serde_json::json!({"type": "privacy.erase", "user_id": "u-123", "requested_at": 1_700_000_000_000_i64}));
        assert_eq!(serde_json::from_str::<PrivacyJob>(&event.body).ok(), Some(job));
        let export = PrivacyJob::Export { user_id, requested_at: Timestamp::from_millis(5) }.event().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(export.id, "privacy.export.u-123.5");
    }
}
