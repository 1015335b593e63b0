//! Where a host's mail arrives, read back for the scenarios that check each e-mail went out exactly once.
//!
//! The in-process host's `.eml` folder is known; a host at a base URL names its sink in `STOREFRONT_MAIL_SINK`:
//! - `eml:<folder>`: a folder of `.eml` files (the local host's `--mail-dir`, by default `<data file>.mail`);
//! - `wrangler-eml:<folder>`: the `.eml` files `wrangler dev` writes for the Workers `send_email` binding, in
//!   that folder or below it (the simulator gives every message a `Message-ID` of its own, so the mail's own is
//!   not there to check: [`MailSink::keeps_message_id`]);
//! - `moto:<base URL>`: moto's record of what its SES v2 was given (`GET <base>/moto-api/data.json`, raw sends
//!   under `ses` → `RawMessage`, each with its `raw_data`), the Lambda tier's real SES client talking to moto.

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
    /// `wrangler dev`'s `.eml` files, anywhere below this folder.
    WranglerEml(PathBuf),
    /// moto's server at this base URL.
    Moto(String),
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
            Some(("wrangler-eml", folder)) if !folder.is_empty() => Ok(Self::WranglerEml(PathBuf::from(folder))),
            Some(("moto", base)) if base.starts_with("http://127.0.0.1:") => Ok(Self::Moto(base.trim_end_matches('/').to_owned())),
            _ => anyhow::bail!("{MAIL_SINK_VAR} must be eml:<folder> or moto:http://127.0.0.1:<port>, not {text:?}"),
        }
    }

    /// Whether the sink keeps each mail's own `Message-ID` (`wrangler dev`'s simulator replaces it).
    pub fn keeps_message_id(&self) -> bool {
        !matches!(self, Self::WranglerEml(_))
    }

    /// Every message in the sink now.
    ///
    /// # Errors
    /// When the sink cannot be read.
    pub async fn messages(&self) -> anyhow::Result<Vec<Received>> {
        let raws = match self {
            Self::Eml(folder) if !folder.exists() => Vec::new(),
            Self::Eml(folder) => shared::adapters::eml::read_folder(folder)?,
            Self::Moto(base) => moto_raw_messages(base).await?,
            Self::WranglerEml(folder) => eml_files_below(folder)?,
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
                .await
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

/// Every `.eml` file in `folder` and below it (none when it does not exist).
fn eml_files_below(folder: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "eml") {
                // A file the simulator removed between the listing and the read is simply not there.
                if let Ok(raw) = std::fs::read(&path) {
                    found.push(raw);
                }
            }
        }
    }
    Ok(found)
}

/// The raw messages moto's SES was given, from its state dump.
async fn moto_raw_messages(base: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use anyhow::Context as _;
    let url = format!("{base}/moto-api/data.json");
    let answer = reqwest::get(&url).await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(answer.status().is_success(), "GET {url} answered {}", answer.status());
    let state: serde_json::Value = answer.json().await.with_context(|| format!("GET {url} is not JSON"))?;
    let sent = state.pointer("/ses/RawMessage").cloned().unwrap_or(serde_json::Value::Null);
    let records: Vec<serde_json::Value> = match sent {
        serde_json::Value::Array(records) => records,
        serde_json::Value::Object(by_id) => by_id.into_values().collect(),
        _ => Vec::new(),
    };
    Ok(records.iter().filter_map(|record| record.get("raw_data").and_then(serde_json::Value::as_str)).map(|raw| raw.as_bytes().to_vec()).collect())
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
