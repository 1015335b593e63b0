//! The id generator port: the only way the domain gets new unique ids.
//!
//! Random sources differ per host (the OS on native, `crypto.getRandomValues` on Workers), so ids come in
//! through this trait and tests can use predictable ones. Every id generator is also the host's source of
//! secret random bytes ([`Random`] is its supertrait), so a host names one object for both.

use crate::ports::random::Random;

/// Produces new unique identifiers.
///
/// Contract: every id is unique within the deployment, is 1 to 64 characters of `[0-9A-Za-z_-]`,
/// and ids produced later by one generator sort after earlier ones (byte-wise), so they make stable,
/// roughly time-ordered sort keys. Its [`Random`] half keeps the `Random` contract: production generators draw
/// from a cryptographically secure source, test ones say in their name that they are predictable.
pub trait IdGen: Random + Send + Sync + 'static {
    /// A new unique id.
    fn new_id(&self) -> String;
}

impl<G: IdGen + ?Sized> IdGen for std::sync::Arc<G> {
    fn new_id(&self) -> String {
        (**self).new_id()
    }
}
