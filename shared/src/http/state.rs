//! The state every function's router receives: the store, the clock, the id generator and the keys.
//!
//! The store is generic (its async methods are not object-safe, and each host names its concrete store once);
//! the clock and id generator are small synchronous traits, so one `Arc<dyn ..>` serves every host.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::SecretSlice;
use sha2::Sha256;

use crate::catalog::Catalog;
use crate::http::cursor::CursorSigner;
use crate::ports::{Clock, IdGen, ItemStore};

/// The shortest master secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Keys derived from one master secret, one per purpose, so that no key serves two jobs.
#[derive(Clone)]
pub struct Keys {
    /// Signs pagination cursors.
    pub cursors: CursorSigner,
    /// Signs access tokens (HS256); 32 bytes, kept out of `Debug` output.
    pub access_tokens: SecretSlice<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// What is wrong with a master secret.
#[derive(Debug, thiserror::Error)]
#[error("the master secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl Keys {
    /// Derives every key from the master secret (HMAC-SHA256 of the purpose's name).
    ///
    /// # Errors
    /// [`WeakSecret`] when the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn derive(master_secret: &[u8]) -> Result<Self, WeakSecret> {
        if master_secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let derive = |purpose: &str| -> Result<Vec<u8>, WeakSecret> {
            let mut mac = Hmac::<Sha256>::new_from_slice(master_secret).map_err(|_| WeakSecret)?;
            mac.update(purpose.as_bytes());
            Ok(mac.finalize().into_bytes().to_vec())
        };
        let cursors = CursorSigner::new(&derive("storefront cursor v1")?).map_err(|_| WeakSecret)?;
        let access_tokens = SecretSlice::from(derive("storefront access token v1")?);
        Ok(Self { cursors, access_tokens })
    }
}

/// The state shared by every function's router.
pub struct AppState<S> {
    /// The item store.
    pub store: S,
    /// The product repository on that store.
    pub catalog: Catalog<S>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The id generator.
    pub ids: Arc<dyn IdGen>,
    /// The keys.
    pub keys: Keys,
}

impl<S: ItemStore + Clone> AppState<S> {
    /// The state for a host.
    pub fn new(store: S, clock: Arc<dyn Clock>, ids: Arc<dyn IdGen>, keys: Keys) -> Self {
        Self { catalog: Catalog::new(store.clone()), store, clock, ids, keys }
    }
}

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            clock: Arc::clone(&self.clock),
            ids: Arc::clone(&self.ids),
            keys: self.keys.clone(),
        }
    }
}
