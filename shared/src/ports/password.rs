//! The password hasher port: turns a new password into a stored hash and checks a presented password
//! against one. It never stores anything and never logs its input.

use secrecy::SecretString;

use crate::domain::account::{Password, PasswordHash};

/// What can go wrong while hashing or checking a password. A wrong password is not an error: it is
/// `Ok(false)` from [`PasswordHasher::verify`].
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    /// The stored hash is not one this hasher can read, or the hasher or its random source failed.
    /// The message never contains the password.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Hashes and verifies passwords with a slow, salted, memory-hard function.
///
/// Contract, which every adapter MUST keep:
/// - `hash` uses a fresh random salt each call, so hashing one password twice gives two different hashes,
///   and returns a self-describing PHC string that records the algorithm, its parameters and the salt;
/// - `verify` reads the parameters from the stored hash (not from its own configuration), so hashes made
///   before a parameter change still verify; it compares in constant time;
/// - `verify` of a wrong password is `Ok(false)`, never an error; an error means the hash is unreadable or
///   the hasher failed;
/// - neither method puts the password into an error, a log line or a `Debug` output.
///
/// Both methods are synchronous and CPU-bound (tens of milliseconds with production parameters): a host
/// with a multi-threaded runtime may move them off its reactor threads.
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a new password that already meets the policy.
    ///
    /// # Errors
    /// [`PasswordHashError::Internal`] when the random source or the hash function fails.
    fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError>;

    /// Whether `password` is the one `hash` was made from.
    ///
    /// # Errors
    /// [`PasswordHashError::Internal`] when `hash` is not a hash this hasher can read.
    fn verify(&self, password: &SecretString, hash: &PasswordHash) -> Result<bool, PasswordHashError>;
}

impl<H: PasswordHasher + ?Sized> PasswordHasher for std::sync::Arc<H> {
    fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError> {
        (**self).hash(password)
    }

    fn verify(&self, password: &SecretString, hash: &PasswordHash) -> Result<bool, PasswordHashError> {
        (**self).verify(password, hash)
    }
}
