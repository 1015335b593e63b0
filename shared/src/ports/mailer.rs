//! The mailer port: how a job sends an e-mail, whatever carries it (Amazon SES, the Workers `send_email`
//! binding, `.eml` files in a folder on the local host).
//!
//! A [`Mail`] is validated when it is made (addresses, one-line subject, a `Message-ID` of the form
//! `left@right`) and rendered once, by [`Mail::to_rfc5322`], into the RFC 5322 message every adapter hands to
//! its carrier: a plain-text UTF-8 body, `Date` from the mail (never the system clock, which does not exist on
//! wasm32) and the mail's own `Message-ID`, so a message sent twice for one event is recognisable as one. The
//! trait is object-safe (boxed futures) because each host picks its carrier at start, as with payments.

use std::future::Future;
use std::pin::Pin;

use crate::domain::account::Email;
use crate::ports::Timestamp;

/// The longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The most recipients of one mail.
pub const MAX_RECIPIENTS: usize = 50;
/// The largest text body, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A future a [`Mailer`] returns.
pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// An e-mail to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    message_id: String,
    from: Email,
    to: Vec<Email>,
    subject: String,
    text: String,
    date: Timestamp,
}

/// Addresses are personal data: a mail's debug form names its id and subject only.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("message_id", &self.message_id).field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl Mail {
    /// A plain-text mail.
    ///
    /// # Errors
    /// [`MailError::Invalid`] when the `Message-ID` is not `left@right` in printable ASCII without `<>` or
    /// spaces, there are no or too many recipients, the subject is empty, too long or has a line break, or the
    /// text is over [`MAX_TEXT_BYTES`].
    pub fn new(message_id: impl Into<String>, from: Email, to: Vec<Email>, subject: impl Into<String>, text: impl Into<String>, date: Timestamp) -> Result<Self, MailError> {
        let (message_id, subject, text) = (message_id.into(), subject.into(), text.into());
        let id_ok = message_id.len() <= 250
            && message_id.split_once('@').is_some_and(|(left, right)| !left.is_empty() && !right.is_empty() && !right.contains('@'))
            && message_id.bytes().all(|byte| byte.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&byte));
        if !id_ok {
            return Err(MailError::Invalid("a Message-ID is left@right in printable ASCII, without brackets".to_owned()));
        }
        if to.is_empty() || to.len() > MAX_RECIPIENTS {
            return Err(MailError::Invalid(format!("a mail has 1 to {MAX_RECIPIENTS} recipients")));
        }
        if subject.trim().is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
            return Err(MailError::Invalid(format!("a subject is one line of 1 to {MAX_SUBJECT_CHARS} characters")));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(MailError::Invalid(format!("a text body is at most {MAX_TEXT_BYTES} bytes")));
        }
        Ok(Self { message_id, from, to, subject, text, date })
    }

    /// The `Message-ID`, without angle brackets.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The sender.
    pub fn from(&self) -> &Email {
        &self.from
    }

    /// The recipients.
    pub fn to(&self) -> &[Email] {
        &self.to
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// When it was written (its `Date` header).
    pub fn date(&self) -> Timestamp {
        self.date
    }

    /// The message in RFC 5322 form (CRLF line ends, MIME headers, the body encoded for 7-bit transport).
    ///
    /// # Errors
    /// [`MailError::Internal`] only if the builder fails to write into memory.
    pub fn to_rfc5322(&self) -> Result<String, MailError> {
        let to: Vec<&str> = self.to.iter().map(AsRef::as_ref).collect();
        mail_builder::MessageBuilder::new()
            .message_id(self.message_id.as_str())
            .from(self.from.as_ref())
            .to(to)
            .subject(self.subject.as_str())
            .date(self.date.as_secs())
            .text_body(self.text.as_str())
            .write_to_string()
            .map_err(|error| MailError::Internal(anyhow::Error::new(error).context("render a mail")))
    }
}

/// What can go wrong when sending.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail breaks a rule of the port; sending it again will not help.
    #[error("invalid mail: {0}")]
    Invalid(String),
    /// The carrier refused it for good (an unverified sender, a suppressed address); sending it again will not
    /// help until an operator acts.
    #[error("the mail carrier refused the message: {0}")]
    Rejected(String),
    /// The carrier did not take it now (throttled, unreachable); try again later.
    #[error("the mail carrier is unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl MailError {
    /// Whether sending again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Unavailable(_) | MailError::Internal(_))
    }
}

/// Something that sends mail.
///
/// Contract (checked by `contract::mailer`), which every adapter MUST keep:
/// - a mail whose `send` returned `Ok` reaches the carrier as [`Mail::to_rfc5322`] renders it, with its
///   `Message-ID`, every recipient, its subject and its text;
/// - `send` does not deduplicate: callers that must send once record what they sent (`mail::Outgoing`);
/// - nothing is logged but the `Message-ID` (addresses and bodies are personal data).
pub trait Mailer: Send + Sync {
    /// The carrier's name, for logs (`ses`, `send_email`, `eml-folder`, `memory`).
    fn name(&self) -> &'static str;

    /// Sends one mail.
    ///
    /// # Errors
    /// As [`MailError`].
    fn send<'a>(&'a self, mail: &'a Mail) -> MailFuture<'a>;
}
