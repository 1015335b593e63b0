//! The mailer on Amazon SES v2 (feature `aws`): each mail is sent as its raw RFC 5322 message
//! (`SendEmail` with raw content), so SES carries exactly the bytes every other host's carrier gets, our own
//! `Message-ID` included.
//!
//! The sender must be a verified SES identity (the address or its domain); SES refuses others with
//! `MessageRejected`, which is a permanent failure ([`MailError::Rejected`]), as are a suppressed or invalid
//! recipient. Throttling and transport errors are transient ([`MailError::Unavailable`]). Envelope recipients
//! are the mail's `To` addresses. Nothing shaped like SES leaves this module.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

use crate::ports::mailer::{Mail, MailError, MailFuture, Mailer};

/// Error codes of `SendEmail` that sending again will not cure.
const PERMANENT: [&str; 5] = ["MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException", "SendingPausedException", "BadRequestException"];

/// The SES v2 mailer.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    /// Sends through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn send_raw(&self, mail: &Mail) -> Result<(), MailError> {
        let raw = mail.to_rfc5322()?;
        let message = RawMessage::builder()
            .data(Blob::new(raw.into_bytes()))
            .build()
            .map_err(|error| MailError::Internal(anyhow::Error::new(error).context("build an SES raw message")))?;
        let destination = Destination::builder().set_to_addresses(Some(mail.to().iter().map(|to| to.to_string()).collect())).build();
        let sent = self
            .client
            .send_email()
            .from_email_address(mail.from().as_ref())
            .destination(destination)
            .content(EmailContent::builder().raw(message).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(error)) => {
                let code = error.err().code().unwrap_or("Unknown").to_owned();
                let detail = error.err().message().unwrap_or_default().chars().take(200).collect::<String>();
                if PERMANENT.contains(&code.as_str()) {
                    Err(MailError::Rejected(format!("{code}: {detail}")))
                } else {
                    Err(MailError::Unavailable(format!("{code}: {detail}")))
                }
            }
            Err(error) => Err(MailError::Unavailable(format!("{}", aws_sdk_sesv2::error::DisplayErrorContext(error)))),
        }
    }
}

impl Mailer for SesMailer {
    fn name(&self) -> &'static str {
        "ses"
    }

    fn send<'a>(&'a self, mail: &'a Mail) -> MailFuture<'a> {
        Box::pin(self.send_raw(mail))
    }
}
