//! A mailer that writes each message as an RFC 5322 `.eml` file into a folder: the local host's carrier, so a
//! developer opens what the shop sent in any mail client.
//!
//! Each send makes a new file, `<milliseconds>-<sequence>-<Message-ID>.eml` (the id with every character but
//! letters, digits, `.`, `-` and `_` replaced), written to a temporary name and renamed into place, so a
//! reader never sees half a message. A mail sent twice is two files: the folder shows what really went out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use crate::ports::mailer::{Mail, MailError, MailFuture, Mailer};
use crate::ports::Clock;

/// The `.eml` folder mailer.
pub struct EmlFolder {
    folder: PathBuf,
    clock: Arc<dyn Clock>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for EmlFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmlFolder").field("folder", &self.folder).finish_non_exhaustive()
    }
}

impl EmlFolder {
    /// Writes into `folder`, creating it if needed.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn open(folder: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(folder).with_context(|| format!("failed to create the mail folder {}", folder.display()))?;
        Ok(Self { folder: folder.to_owned(), clock, sequence: AtomicU64::new(0) })
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    fn write(&self, mail: &Mail) -> Result<(), MailError> {
        let raw = mail.to_rfc5322()?;
        let id: String = mail.message_id().chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!("{:013}-{sequence:04}-{id}.eml", self.clock.now().as_millis().max(0));
        let target = self.folder.join(&name);
        let temporary = self.folder.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, raw.as_bytes())
            .and_then(|()| std::fs::rename(&temporary, &target))
            .map_err(|error| MailError::Unavailable(format!("cannot write {}: {error}", target.display())))
    }
}

impl Mailer for EmlFolder {
    fn name(&self) -> &'static str {
        "eml-folder"
    }

    fn send<'a>(&'a self, mail: &'a Mail) -> MailFuture<'a> {
        Box::pin(std::future::ready(self.write(mail)))
    }
}

/// Every `.eml` file in `folder`, oldest first (by name), as raw bytes: how tests and developers read the sink.
///
/// # Errors
/// When the folder or a file cannot be read.
pub fn read_folder(folder: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("failed to read {}", folder.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    names.sort();
    names.iter().map(|path| std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))).collect()
}
