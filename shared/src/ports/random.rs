//! The random port: the only way the domain gets secret random bytes (password salts, refresh tokens).
//!
//! Sources differ per host (the operating system on native hosts, `crypto.getRandomValues` on Workers), and
//! tests want predictable bytes, so they come in through this trait. It never hands out ids: that is `IdGen`.

/// What can go wrong with a random source.
#[derive(Debug, thiserror::Error)]
pub enum RandomError {
    /// The source could not produce bytes (the operating system refused, the platform has no source).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A source of secret random bytes.
///
/// Contract: production adapters MUST draw from a cryptographically secure generator, so that 32 bytes are
/// unguessable; a test adapter may be predictable but MUST say so in its name and documentation.
/// On failure an adapter MUST return an error and never leave a partly filled buffer looking like success.
pub trait Random: Send + Sync + 'static {
    /// Fills `buffer` with random bytes.
    ///
    /// # Errors
    /// [`RandomError::Internal`] when the source fails.
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError>;
}

impl<R: Random + ?Sized> Random for std::sync::Arc<R> {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        (**self).fill(buffer)
    }
}

/// `N` random bytes from any source, including a `dyn Random`.
///
/// # Errors
/// As [`Random::fill`].
pub fn random_bytes<const N: usize>(random: &(impl Random + ?Sized)) -> Result<[u8; N], RandomError> {
    let mut buffer = [0_u8; N];
    random.fill(&mut buffer)?;
    Ok(buffer)
}
