//! Where a host's mail arrives, read back for the scenarios that check each e-mail went out exactly once.
//!
//! The in-process host's `.eml` folder is known; a host at a base URL names its sink in `STOREFRONT_MAIL_SINK`:
//! - `eml:<folder>`: a folder of `.eml` files (the local host's `--mail-dir`, by default `<data file>.mail`).

use std::path::PathBuf;
use std::time::Duration;

use mail_parser::MessageParser;

/// The variable naming a host's mail sink.
pub const MAIL_SINK_VAR: &str = "STOREFRONT_MAIL_SINK";

/// Where a host's mail arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailSink {
    /// A folder of `.eml` files.
    Eml(PathBuf),
}

/// One message as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its `Message-ID`, without brackets.
    pub message_id: String,
    /// Its subject.
    pub subject: String,
    /// Its recipients' addresses.
    pub to: Vec<String>,
    /// Its plain-text body, with `\n` line ends.
    pub text: String,
    /// The whole raw message.
    pub raw: String,
}

impl MailSink {
    /// Reads the `scheme:location` form of [`MAIL_SINK_VAR`].
    ///
    /// # Errors
    /// When the scheme is not `eml`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.trim().split_once(':') {
            Some(("eml", folder)) if !folder.is_empty() => Ok(Self::Eml(PathBuf::from(folder))),
            _ => anyhow::bail!("{MAIL_SINK_VAR} must be eml:<folder>, not {text:?}"),
        }
    }

    /// Every message in the sink now.
    ///
    /// # Errors
    /// When the sink cannot be read.
    pub fn messages(&self) -> anyhow::Result<Vec<Received>> {
        let raws = match self {
            Self::Eml(folder) if !folder.exists() => Vec::new(),
            Self::Eml(folder) => shared::adapters::eml::read_folder(folder)?,
        };
        Ok(raws.iter().filter_map(|raw| parse(raw)).collect())
    }

    /// The messages whose subject contains `needle`, once at least `expected` are there (or, after `wait`,
    /// whatever is there then).
    ///
    /// # Panics
    /// When the sink cannot be read.
    pub async fn wait_for(&self, needle: &str, expected: usize, wait: Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let found: Vec<Received> = self
                .messages()
                .unwrap_or_else(|error| panic!("reading the mail sink {self:?}: {error:#}"))
                .into_iter()
                .filter(|message| message.subject.contains(needle))
                .collect();
            if found.len() >= expected || std::time::Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn parse(raw: &[u8]) -> Option<Received> {
    let message = MessageParser::default().parse(raw)?;
    Some(Received {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        to: message.to().map(|list| list.iter().filter_map(|address| address.address().map(str::to_owned)).collect()).unwrap_or_default(),
        text: message.body_text(0).map(|text| text.replace("\r\n", "\n")).unwrap_or_default(),
        raw: String::from_utf8_lossy(raw).into_owned(),
    })
}
