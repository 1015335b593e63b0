//! The id generator port: the only way the domain gets new unique ids.
//!
//! Random sources differ per host (the OS on native, `crypto.getRandomValues` on Workers), so ids come in
//! through this trait and tests can use predictable ones.

/// Produces new unique identifiers.
///
/// Contract: every id is unique within the deployment, is 1 to 64 characters of `[0-9A-Za-z_-]`,
/// and ids produced later by one generator sort after earlier ones (byte-wise), so they make stable,
/// roughly time-ordered sort keys.
pub trait IdGen: Send + Sync + 'static {
    /// A new unique id.
    fn new_id(&self) -> String;
}

impl<G: IdGen + ?Sized> IdGen for std::sync::Arc<G> {
    fn new_id(&self) -> String {
        (**self).new_id()
    }
}
