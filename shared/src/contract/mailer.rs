//! The mailer contract (see `ports::mailer::Mailer`): a fixed set of mails is sent through the adapter, the
//! messages are read back from the carrier's own sink (the memory mailer's list, the `.eml` folder, moto's
//! record of SES, the files `wrangler dev` writes for the Workers binding) and each case checks what arrived,
//! parsed as RFC 5322 by `mail-parser`. Sending and checking are apart because some sinks are only readable
//! from outside the host (a Worker cannot read the files its binding's simulator writes).

use mail_parser::MessageParser;

use crate::contract::{CaseReport, ensure};
use crate::domain::account::Email;
use crate::ports::Timestamp;
use crate::ports::mailer::{Mail, Mailer};

/// What the suite needs to know about the carrier under test.
#[derive(Debug, Clone)]
pub struct MailerFixture {
    /// The sender to use (on SES, a verified identity).
    pub from: String,
    /// Unique to this run, so one sink can serve several runs.
    pub namespace: String,
    /// Whether the sink keeps the mail's own `Message-ID` (the Workers simulator replaces it with its own).
    pub keeps_message_id: bool,
}

fn email(text: &str) -> Result<Email, String> {
    Email::parse(text).map_err(|error| format!("{text}: {error}"))
}

/// The mails the suite sends, in order: a plain one, one to two recipients, one with non-ASCII text.
///
/// # Errors
/// A message when the fixture's sender is not an address.
pub fn mails(fixture: &MailerFixture) -> Result<Vec<Mail>, String> {
    let from = email(&fixture.from)?;
    let ns = &fixture.namespace;
    let at = Timestamp::from_secs(1_800_000_000);
    let make = |id: &str, to: Vec<Email>, subject: String, text: &str| {
        Mail::new(format!("{ns}.{id}@contract.test"), from.clone(), to, subject, text, at).map_err(|error| error.to_string())
    };
    Ok(vec![
        make("plain", vec![email("ann@contract.test")?], format!("[{ns}] plain"), "Order o-1\r\nTotal: EUR 25.00\r\n")?,
        make("two", vec![email("ann@contract.test")?, email("bob@contract.test")?], format!("[{ns}] two recipients"), "For both of you.\r\n")?,
        make("utf8", vec![email("ann@contract.test")?], format!("[{ns}] Café crème"), "Caf\u{e9} cr\u{e8}me \u{2014} EUR 4.50 \u{20ac}\r\n")?,
    ])
}

/// Sends every mail of [`mails`] through `mailer`.
///
/// # Errors
/// The first failure, as text.
pub async fn send_all(mailer: &dyn Mailer, mails: &[Mail]) -> Result<(), String> {
    for mail in mails {
        mailer.send(mail).await.map_err(|error| format!("{}: {error}", mail.message_id()))?;
    }
    Ok(())
}

/// Checks what arrived (`delivered`: the raw messages in the sink, any order, others' too) against `sent`.
pub fn check(fixture: &MailerFixture, sent: &[Mail], delivered: &[Vec<u8>]) -> Vec<CaseReport> {
    let parsed: Vec<mail_parser::Message<'_>> = delivered.iter().filter_map(|raw| MessageParser::default().parse(raw.as_slice())).collect();
    let find = |mail: &Mail| parsed.iter().filter(|message| message.subject() == Some(mail.subject())).collect::<Vec<_>>();
    let case = |name: &'static str, index: usize| {
        let outcome = (|| {
            let mail = sent.get(index).ok_or("the suite sent fewer mails")?;
            let found = find(mail);
            ensure!(found.len() == 1, "{} message(s) with subject {:?} arrived, not one", found.len(), mail.subject());
            let message = found[0];
            if fixture.keeps_message_id {
                ensure!(message.message_id() == Some(mail.message_id()), "Message-ID {:?}, not {:?}", message.message_id(), mail.message_id());
            }
            let from: Vec<String> = message.from().map(|list| list.iter().filter_map(|a| a.address().map(str::to_owned)).collect()).unwrap_or_default();
            ensure!(from == [mail.from().to_string()], "From {from:?}");
            let to: Vec<String> = message.to().map(|list| list.iter().filter_map(|a| a.address().map(str::to_owned)).collect()).unwrap_or_default();
            let expected: Vec<String> = mail.to().iter().map(ToString::to_string).collect();
            ensure!(to == expected, "To {to:?}, not {expected:?}");
            let text = message.body_text(0).map(|text| text.replace("\r\n", "\n")).unwrap_or_default();
            ensure!(text.trim_end() == mail.text().replace("\r\n", "\n").trim_end(), "the text arrived as {text:?}");
            ensure!(message.date().map(mail_parser::DateTime::to_timestamp) == Some(mail.date().as_secs()), "Date {:?}", message.date());
            Ok(())
        })();
        CaseReport { name, outcome }
    };
    vec![
        case("a mail arrives once with its sender, recipient, subject, date and text", 0),
        case("a mail to two recipients names both", 1),
        case("non-ASCII subjects and text arrive intact", 2),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryMailer;

    fn fixture() -> MailerFixture {
        MailerFixture { from: "shop@contract.test".to_owned(), namespace: "t1".to_owned(), keeps_message_id: true }
    }

    #[tokio::test]
    async fn the_memory_mailer_keeps_the_contract() {
        let mailer = MemoryMailer::default();
        let sent = mails(&fixture()).unwrap_or_else(|e| panic!("{e}"));
        send_all(&mailer, &sent).await.unwrap_or_else(|e| panic!("{e}"));
        let raw: Vec<Vec<u8>> = mailer.raw().into_iter().map(String::into_bytes).collect();
        let reports = check(&fixture(), &sent, &raw);
        assert!(reports.iter().all(|report| report.outcome.is_ok()), "{}", crate::contract::failures(&reports));
    }

    #[test]
    fn the_check_fails_on_a_duplicate_and_on_a_missing_mail() {
        let sent = mails(&fixture()).unwrap_or_else(|e| panic!("{e}"));
        let raw: Vec<Vec<u8>> = sent.iter().map(|mail| mail.to_rfc5322().unwrap_or_default().into_bytes()).collect();
        let doubled: Vec<Vec<u8>> = raw.iter().chain(raw.iter().take(1)).cloned().collect();
        let reports = check(&fixture(), &sent, &doubled);
        assert!(reports[0].outcome.is_err() && reports[1].outcome.is_ok());
        let reports = check(&fixture(), &sent, &raw[1..]);
        assert!(reports[0].outcome.is_err());
    }

    #[cfg(feature = "native")]
    #[tokio::test]
    async fn the_eml_folder_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clock = std::sync::Arc::new(crate::adapters::memory::ManualClock::new(Timestamp::from_secs(1)));
        let mailer = crate::adapters::eml::EmlFolder::open(dir.path(), clock).unwrap_or_else(|e| panic!("{e:#}"));
        let sent = mails(&fixture()).unwrap_or_else(|e| panic!("{e}"));
        send_all(&mailer, &sent).await.unwrap_or_else(|e| panic!("{e}"));
        let raw = crate::adapters::eml::read_folder(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(raw.len(), 3);
        let reports = check(&fixture(), &sent, &raw);
        assert!(reports.iter().all(|report| report.outcome.is_ok()), "{}", crate::contract::failures(&reports));
    }
}
