//! The shop's e-mails: what each says ([`letters`]), who sends and who receives the admins' copies
//! ([`MailSettings`]), and how a job sends one exactly once per event however often the event is delivered
//! ([`Outgoing`]).
//!
//! Sending once: each mail's `Message-ID` is derived from the event it answers, and [`Outgoing::send_once`]
//! records that id in the store (`MAIL#<message id>`, kept [`SENT_RECORD_DAYS`] days, longer than any queue
//! keeps a message) right after the carrier took the mail, and skips a mail whose id is recorded. A redelivered
//! event therefore sends nothing again. The one window left is a crash after the carrier took a mail and before
//! the record was written: then the mail goes out a second time, with the same `Message-ID`, which mail clients
//! use to show it once. No carrier offers an idempotent send that would close that window.

use std::sync::Arc;

use crate::domain::account::Email;
use crate::ports::item_store::{Condition, Item, ItemKey, ItemStore, StoreError};
use crate::ports::mailer::{Mail, MailError, Mailer};
use crate::ports::{Clock, Timestamp};

/// How long the record of a sent mail is kept.
pub const SENT_RECORD_DAYS: i64 = 35;

/// Who the shop's mail comes from and who gets the admins' mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The sender (on SES, a verified identity).
    pub from: Email,
    /// The admins' addresses, for low-stock alerts and sales reports; with none, those mails are not sent
    /// (the alert and the report are still recorded in the store).
    pub admins: Vec<Email>,
    /// The shop's name in subjects and greetings.
    pub shop_name: String,
}

impl MailSettings {
    /// The default sender of every host's configuration, when none is set.
    pub const DEFAULT_FROM: &'static str = "shop@storefront.test";

    /// Settings with a sender and admins, named "Storefront".
    pub fn new(from: Email, admins: Vec<Email>) -> Self {
        Self { from, admins, shop_name: "Storefront".to_owned() }
    }

    /// The settings every host derives from its configuration: the sender (`STOREFRONT_MAIL_FROM`, default
    /// [`Self::DEFAULT_FROM`]) and the admins (`STOREFRONT_ADMIN_EMAIL`, the first admin, and the
    /// comma-separated `STOREFRONT_ALERTS_TO`).
    ///
    /// # Errors
    /// A message naming the setting that holds something that is not an e-mail address.
    pub fn configured(from: Option<&str>, first_admin: Option<&str>, alerts_to: Option<&str>) -> Result<Self, String> {
        let from = Email::parse(from.filter(|text| !text.trim().is_empty()).unwrap_or(Self::DEFAULT_FROM))
            .map_err(|error| format!("STOREFRONT_MAIL_FROM: {error}"))?;
        let mut admins = Vec::new();
        for (name, list) in [("STOREFRONT_ADMIN_EMAIL", first_admin), ("STOREFRONT_ALERTS_TO", alerts_to)] {
            for text in list.unwrap_or_default().split(',').map(str::trim).filter(|text| !text.is_empty()) {
                let email = Email::parse(text).map_err(|error| format!("{name}: {error}"))?;
                if !admins.contains(&email) {
                    admins.push(email);
                }
            }
        }
        Ok(Self::new(from, admins))
    }

    /// A `Message-ID` for `what` (an event id and a purpose), on the sender's domain.
    pub fn message_id(&self, what: &str) -> String {
        let domain = self.from.as_ref().rsplit_once('@').map_or("storefront.invalid", |(_, domain)| domain);
        let left: String = what.chars().map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c } else { '_' }).collect();
        format!("{left}@{domain}")
    }
}

fn sent_key(message_id: &str) -> ItemKey {
    ItemKey::new(format!("MAIL#{message_id}"), "SENT")
}

/// What [`Outgoing::send_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The carrier took the mail now.
    Now,
    /// It had been sent before (a redelivered event); nothing was sent.
    Before,
}

/// Why a mail could not be sent once.
#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    /// The carrier's error.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The store's.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends mail at most once per `Message-ID` (see the module's documentation for the one window left).
#[derive(Clone)]
pub struct Outgoing<S> {
    store: S,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
}

impl<S> std::fmt::Debug for Outgoing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").field("mailer", &self.mailer.name()).finish_non_exhaustive()
    }
}

impl<S: ItemStore> Outgoing<S> {
    /// Mail through `mailer`, recorded in `store`.
    pub fn new(store: S, mailer: Arc<dyn Mailer>, clock: Arc<dyn Clock>) -> Self {
        Self { store, mailer, clock }
    }

    /// Sends `mail` unless a mail with its `Message-ID` was sent before, and records it.
    ///
    /// # Errors
    /// [`OutgoingError`] when the carrier or the store fails (nothing is recorded, so a retry sends it).
    pub async fn send_once(&self, mail: &Mail) -> Result<Sent, OutgoingError> {
        let key = sent_key(mail.message_id());
        if self.store.get(&key).await?.is_some() {
            return Ok(Sent::Before);
        }
        self.mailer.send(mail).await?;
        let now: Timestamp = self.clock.now();
        let mut record = Item::new(key, 1, serde_json::json!({ "sent_at": now.as_millis(), "carrier": self.mailer.name() }));
        record.expires_at = Some(now.as_secs() + SENT_RECORD_DAYS * 86_400);
        self.store.put(record, Condition::None).await?;
        tracing::info!(message_id = %mail.message_id(), carrier = self.mailer.name(), "mail sent");
        Ok(Sent::Now)
    }
}

/// The texts of the shop's mails. Each names what it is about and never holds a password, a token or a link
/// that signs anyone in.
pub mod letters {
    use std::fmt::Write as _;

    use super::MailSettings;
    use crate::domain::account::Email;
    use crate::domain::commerce::Totals;
    use crate::domain::sales::SalesReport;
    use crate::ports::Timestamp;
    use crate::ports::mailer::{Mail, MailError};

    fn order_text(greeting: &str, order_id: &str, totals: &Totals) -> String {
        let mut text = format!("{greeting}\n\nOrder {order_id}\n\n");
        for line in &totals.lines {
            let _ = writeln!(text, "  {} x {} ({}) at {} = {}", line.quantity.get(), line.name, line.sku, line.unit_price, line.line_total);
        }
        let _ = writeln!(text, "\nSubtotal: {}", totals.subtotal);
        if let Some(discount) = &totals.discount {
            let _ = writeln!(text, "Discount ({}): -{}", discount.code, discount.amount);
        }
        let _ = writeln!(text, "Total: {}", totals.total);
        text
    }

    /// The confirmation of a paid order.
    ///
    /// # Errors
    /// [`MailError::Invalid`] only for an event id that cannot make a `Message-ID` (event ids always can).
    pub fn order_confirmation(settings: &MailSettings, to: Email, event_id: &str, order_id: &str, totals: &Totals, at: Timestamp) -> Result<Mail, MailError> {
        let text = order_text(&format!("Thank you for your order at {}. We have received your payment.", settings.shop_name), order_id, totals);
        let text = format!("{text}\nYou can follow it at GET /orders/{order_id}.\n");
        let subject = format!("{}: order {order_id} confirmed, total {}", settings.shop_name, totals.total);
        Mail::new(settings.message_id(event_id), settings.from.clone(), vec![to], subject, text, at)
    }

    /// The notice of a cancelled (and refunded) order.
    ///
    /// # Errors
    /// As [`order_confirmation`].
    pub fn order_cancellation(settings: &MailSettings, to: Email, event_id: &str, order_id: &str, totals: &Totals, at: Timestamp) -> Result<Mail, MailError> {
        let text = order_text(&format!("Your order at {} was cancelled, and its payment refunded in full.", settings.shop_name), order_id, totals);
        let text = format!("{text}\nRefunded: {}\n", totals.total);
        let subject = format!("{}: order {order_id} cancelled, {} refunded", settings.shop_name, totals.total);
        Mail::new(settings.message_id(event_id), settings.from.clone(), vec![to], subject, text, at)
    }

    /// The admins' alert that a product's stock fell to its threshold or below.
    ///
    /// # Errors
    /// [`MailError::Invalid`] when there are no admins.
    pub fn low_stock(settings: &MailSettings, crossing_id: &str, product: &crate::domain::product::Product, at: Timestamp) -> Result<Mail, MailError> {
        let text = format!(
            "The stock of {} ({}, id {}) is down to {} units, at or below its threshold of {}.\n\nRestock it with PUT /products/{}.\n",
            product.name, product.sku, product.id, product.stock, product.low_stock_threshold, product.id
        );
        let subject = format!("{}: low stock of {} ({} left)", settings.shop_name, product.sku, product.stock);
        Mail::new(settings.message_id(crossing_id), settings.from.clone(), settings.admins.clone(), subject, text, at)
    }

    /// The user's notice that their data export is ready.
    ///
    /// # Errors
    /// As [`order_confirmation`].
    pub fn export_ready(settings: &MailSettings, to: Email, event_id: &str, expires_at: Timestamp, at: Timestamp) -> Result<Mail, MailError> {
        let until = crate::http::views::rfc3339(expires_at);
        let text = format!(
            "The export of your data at {} that you asked for is ready.\n\nSign in and fetch it with GET /me/export before {until}; it is deleted then.\n",
            settings.shop_name
        );
        let subject = format!("{}: your data export is ready", settings.shop_name);
        Mail::new(settings.message_id(event_id), settings.from.clone(), vec![to], subject, text, at)
    }

    /// The admins' copy of a closed daily sales report.
    ///
    /// # Errors
    /// [`MailError::Invalid`] when there are no admins.
    pub fn sales_report(settings: &MailSettings, report: &SalesReport, at: Timestamp) -> Result<Mail, MailError> {
        let subject = format!("{}: sales report for {}", settings.shop_name, report.date);
        let id = settings.message_id(&format!("sales-report.{}", report.date));
        Mail::new(id, settings.from.clone(), settings.admins.clone(), subject, report.to_text(), at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryItemStore, MemoryMailer};

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn settings_come_from_the_host_s_configuration_and_name_a_bad_setting() {
        let settings = MailSettings::configured(None, Some("Boss@Shop.test"), Some("ops@shop.test, boss@shop.test ,")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.from, email(MailSettings::DEFAULT_FROM));
        assert_eq!(settings.admins, [email("boss@shop.test"), email("ops@shop.test")]);
        assert_eq!(settings.message_id("order.created-o1"), "order.created-o1@storefront.test");
        assert_eq!(settings.message_id("a b<c>"), "a_b_c_@storefront.test");
        let bad = MailSettings::configured(Some("nobody"), None, None);
        assert!(bad.is_err_and(|message| message.starts_with("STOREFRONT_MAIL_FROM")));
        let bad = MailSettings::configured(None, None, Some("ops@shop.test, x"));
        assert!(bad.is_err_and(|message| message.starts_with("STOREFRONT_ALERTS_TO")));
    }

    #[tokio::test]
    async fn a_mail_is_sent_once_per_message_id() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
        let mailer = Arc::new(MemoryMailer::default());
        let outgoing = Outgoing::new(MemoryItemStore::new(clock.clone()), mailer.clone(), clock.clone());
        let mail = Mail::new("e1.confirmation@shop.test", email("shop@shop.test"), vec![email("a@b.test")], "Hi", "Body", clock.now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outgoing.send_once(&mail).await.ok(), Some(Sent::Now));
        assert_eq!(outgoing.send_once(&mail).await.ok(), Some(Sent::Before));
        assert_eq!(mailer.sent().len(), 1);
        mailer.fail_next(MailError::Unavailable("down".to_owned()));
        let other = Mail::new("e2@shop.test", email("shop@shop.test"), vec![email("a@b.test")], "Hi", "Body", clock.now()).unwrap_or_else(|e| panic!("{e}"));
        assert!(outgoing.send_once(&other).await.is_err());
        assert_eq!(outgoing.send_once(&other).await.ok(), Some(Sent::Now), "a failed send is not recorded, so the retry sends it");
        assert_eq!(mailer.sent().len(), 2);
    }
}
