//! The Argon2id password hasher (`argon2` crate, pure Rust), for every host including wasm32.
//!
//! Salts come from the `Random` port, so nothing here reaches for an operating-system generator. It keeps
//! the `PasswordHasher` contract and nothing else: no storage, no policy, no logging.

use std::sync::Arc;

use ::argon2::password_hash::{self, SaltString};
use ::argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::account::{Password, PasswordHash};
use crate::ports::password::{PasswordHashError, PasswordHasher};
use crate::ports::random::{Random, random_bytes};

/// Bytes of salt per hash (the PHC string format recommends 16).
pub const SALT_BYTES: usize = 16;

/// Argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory per hash, in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over the memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`). The hash is computed on one thread whatever this says; it changes the result, not the speed.
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// OWASP's minimum for Argon2id (Password Storage Cheat Sheet): m = 19456 KiB (19 MiB), t = 2, p = 1.
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// The setting (environment variable, Worker variable, local-host flag's variable) for Argon2id's memory per
/// hash in KiB; every host reads the three settings under these names.
pub const ARGON2_MEMORY_KIB: &str = "STOREFRONT_ARGON2_MEMORY_KIB";
/// The setting for Argon2id's passes over the memory.
pub const ARGON2_ITERATIONS: &str = "STOREFRONT_ARGON2_ITERATIONS";
/// The setting for Argon2id's lanes.
pub const ARGON2_PARALLELISM: &str = "STOREFRONT_ARGON2_PARALLELISM";

/// OWASP's equally strong Argon2id configurations (Password Storage Cheat Sheet), as (memory in KiB, passes),
/// each with one lane: configured parameters must be at least as costly as one of them.
pub const OWASP_MINIMUMS: [(u32, u32); 5] = [(47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5)];

impl Argon2Settings {
    /// Whether these costs are at least those of one of [`OWASP_MINIMUMS`] in both memory and passes.
    pub fn meets_owasp_minimum(&self) -> bool {
        OWASP_MINIMUMS.iter().any(|&(memory_kib, iterations)| self.memory_kib >= memory_kib && self.iterations >= iterations)
    }

    /// The parameters a host's configuration gives: each value is a whole number, and an unset one keeps the
    /// default (OWASP's m = 19456, t = 2, p = 1). The result must meet [`Self::meets_owasp_minimum`] and be
    /// accepted by Argon2, so a typo cannot weaken every stored password. Hashes made with other parameters
    /// still verify: each stored hash carries its own.
    ///
    /// # Errors
    /// [`InvalidArgon2Settings`] naming the setting that is not a number, or saying why the costs are refused.
    pub fn configured(memory_kib: Option<&str>, iterations: Option<&str>, parallelism: Option<&str>) -> Result<Self, InvalidArgon2Settings> {
        let parse = |name: &str, text: Option<&str>, default: u32| -> Result<u32, InvalidArgon2Settings> {
            match text.map(str::trim).filter(|text| !text.is_empty()) {
                None => Ok(default),
                Some(text) => text.parse::<u32>().map_err(|_| InvalidArgon2Settings(format!("{name} must be a whole number, not {text:?}"))),
            }
        };
        let defaults = Self::default();
        let settings = Self {
            memory_kib: parse(ARGON2_MEMORY_KIB, memory_kib, defaults.memory_kib)?,
            iterations: parse(ARGON2_ITERATIONS, iterations, defaults.iterations)?,
            parallelism: parse(ARGON2_PARALLELISM, parallelism, defaults.parallelism)?,
        };
        if !settings.meets_owasp_minimum() {
            return Err(InvalidArgon2Settings(format!(
                "m = {} KiB, t = {} is cheaper than every OWASP minimum ({})",
                settings.memory_kib,
                settings.iterations,
                OWASP_MINIMUMS.iter().map(|(m, t)| format!("m = {m}, t = {t}")).collect::<Vec<_>>().join("; ")
            )));
        }
        Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|error| InvalidArgon2Settings(error.to_string()))?;
        Ok(settings)
    }

    /// The cheapest parameters Argon2 accepts (m = 8 KiB, t = 1, p = 1). For tests only: they make guessing
    /// a stored password almost free.
    pub const fn insecure_for_tests() -> Self {
        Self { memory_kib: 8, iterations: 1, parallelism: 1 }
    }
}

/// What is wrong with Argon2 settings.
#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct InvalidArgon2Settings(String);

/// Hashes with Argon2id (version 0x13) and verifies any Argon2 PHC string.
#[derive(Clone)]
pub struct Argon2PasswordHasher {
    argon2: Argon2<'static>,
    random: Arc<dyn Random>,
}

impl std::fmt::Debug for Argon2PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2PasswordHasher").field("params", self.argon2.params()).finish_non_exhaustive()
    }
}

impl Argon2PasswordHasher {
    /// A hasher with these costs, drawing salts from `random`.
    ///
    /// # Errors
    /// [`InvalidArgon2Settings`] when Argon2 refuses the parameters (for example memory under 8 KiB per lane).
    pub fn new(settings: Argon2Settings, random: Arc<dyn Random>) -> Result<Self, InvalidArgon2Settings> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|error| InvalidArgon2Settings(error.to_string()))?;
        Ok(Self { argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params), random })
    }
}

impl PasswordHasher for Argon2PasswordHasher {
    fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordHashError> {
        let salt_bytes: [u8; SALT_BYTES] =
            random_bytes(self.random.as_ref()).map_err(|error| anyhow::Error::new(error).context("draw a salt"))?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| anyhow::anyhow!("encode the salt: {error}"))?;
        let hash = self
            .argon2
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map_err(|error| anyhow::anyhow!("argon2 failed: {error}"))?;
        Ok(PasswordHash::from_phc(hash.to_string()))
    }

    fn verify(&self, password: &SecretString, hash: &PasswordHash) -> Result<bool, PasswordHashError> {
        let parsed = password_hash::PasswordHash::new(hash.as_phc())
            .map_err(|error| anyhow::anyhow!("the stored password hash is unreadable: {error}"))?;
        match self.argon2.verify_password(password.expose_secret().as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(password_hash::Error::Password) => Ok(false),
            Err(error) => Err(anyhow::anyhow!("argon2 failed to verify: {error}").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::PredictableRandom;

    fn hasher(settings: Argon2Settings) -> Argon2PasswordHasher {
        Argon2PasswordHasher::new(settings, Arc::new(PredictableRandom::new(7))).unwrap_or_else(|e| panic!("{e}"))
    }

    fn password(text: &str) -> Password {
        Password::parse(SecretString::from(text.to_owned())).unwrap_or_else(|e| panic!("{e}"))
    }

    fn attempt(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn configured_parameters_default_to_owasp_and_refuse_anything_weaker_or_unreadable() {
        assert_eq!(Argon2Settings::configured(None, Some(" "), None).ok(), Some(Argon2Settings::default()));
        let stronger = Argon2Settings::configured(Some("47104"), Some("1"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stronger, Argon2Settings { memory_kib: 47_104, iterations: 1, parallelism: 1 });
        assert!(Argon2Settings::configured(Some("65536"), Some("3"), Some("2")).is_ok());
        let weaker = Argon2Settings::configured(Some("19456"), Some("1"), None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(weaker.contains("cheaper than every OWASP minimum"), "{weaker}");
        let typo = Argon2Settings::configured(Some("19M"), None, None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(typo.contains(ARGON2_MEMORY_KIB), "{typo}");
        assert!(Argon2Settings::configured(None, None, Some("0")).is_err(), "Argon2 refuses zero lanes");
        assert!(!Argon2Settings::insecure_for_tests().meets_owasp_minimum());
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = hasher(Argon2Settings::insecure_for_tests());
        let hash = hasher.hash(&password("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{}", hash.as_phc());
        assert!(matches!(hasher.verify(&attempt("correct horse battery"), &hash), Ok(true)));
        assert!(matches!(hasher.verify(&attempt("correct horse batterY"), &hash), Ok(false)));
        assert!(matches!(hasher.verify(&attempt(""), &hash), Ok(false)));
    }

    #[test]
    fn hashing_one_password_twice_uses_two_salts() {
        let hasher = hasher(Argon2Settings::insecure_for_tests());
        let first = hasher.hash(&password("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
        let second = hasher.hash(&password("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, second);
        assert!(matches!(hasher.verify(&attempt("correct horse battery"), &second), Ok(true)));
    }

    #[test]
    fn verify_reads_the_parameters_from_the_stored_hash() {
        let old = hasher(Argon2Settings { memory_kib: 16, iterations: 2, parallelism: 1 });
        let hash = old.hash(&password("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
        let new = hasher(Argon2Settings::insecure_for_tests());
        assert!(matches!(new.verify(&attempt("correct horse battery"), &hash), Ok(true)));
    }

    #[test]
    fn an_unreadable_hash_is_an_error_that_does_not_name_the_password() {
        let hasher = hasher(Argon2Settings::insecure_for_tests());
        let error = hasher
            .verify(&attempt("sekrit-sekrit-sekrit"), &PasswordHash::from_phc("not a phc string".to_owned()))
            .err()
            .map(|e| format!("{e} {e:?}"))
            .unwrap_or_default();
        assert!(error.contains("unreadable"), "{error}");
        assert!(!error.contains("sekrit"), "{error}");
    }

    #[test]
    fn parameters_argon2_refuses_are_refused_up_front() {
        let settings = Argon2Settings { memory_kib: 1, iterations: 1, parallelism: 1 };
        assert!(Argon2PasswordHasher::new(settings, Arc::new(PredictableRandom::new(1))).is_err());
        assert!(!format!("{:?}", hasher(Argon2Settings::insecure_for_tests())).is_empty());
    }

    #[test]
    fn the_default_parameters_are_owasps_minimum_and_work() {
        let settings = Argon2Settings::default();
        assert_eq!((settings.memory_kib, settings.iterations, settings.parallelism), (19_456, 2, 1));
        let hasher = hasher(settings);
        let hash = hasher.hash(&password("correct horse battery")).unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.as_phc());
        assert!(matches!(hasher.verify(&attempt("correct horse battery"), &hash), Ok(true)));
        assert!(matches!(hasher.verify(&attempt("wrong horse battery"), &hash), Ok(false)));
    }
}
