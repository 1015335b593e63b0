//! Accounts: validated e-mail addresses, the password policy, roles, user ids and the user entity.
//!
//! Pure: it owns the rules, never the storage (`accounts`), the hashing (`ports::password`) or the tokens
//! (`ports::token`). Passwords live in `secrecy` types, so they never reach a `Debug` line or an error message.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::ports::Timestamp;

/// The longest e-mail address, in bytes (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_BYTES: usize = 254;
/// The longest local part (before the `@`), in bytes.
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// The shortest new password, in characters (Unicode scalar values). NIST SP 800-63B asks for at least 8 and
/// recommends more; 12 is OWASP's advice for passwords that are the only factor.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest new password, in characters. NIST SP 800-63B asks verifiers to accept at least 64; 128 leaves
/// room for passphrases and bounds the work a single request can ask of the hasher.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// The longest password a login attempt may present, in bytes; longer ones cannot match any stored password.
pub const MAX_PRESENTED_PASSWORD_BYTES: usize = MAX_PASSWORD_CHARS * 4;
/// The longest user id.
pub const MAX_USER_ID_CHARS: usize = 64;

/// What is wrong with account input. The message names the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A field breaks a rule.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's name, as the API spells it.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl AccountError {
    fn invalid(field: &'static str, reason: &'static str) -> Self {
        AccountError::Invalid { field, reason }
    }
}

/// An e-mail address, normalised: trimmed and lower-cased, so that one mailbox is one account.
///
/// The shape check is deliberately loose (RFC 5322 allows far more than any mail provider hands out) but
/// refuses what cannot be delivered or would confuse a key: whitespace, control characters, a missing or
/// repeated `@`, empty or dotted-at-the-edge parts, and a domain without a dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming `email`.
    pub fn parse(text: &str) -> Result<Self, AccountError> {
        const SHAPE: &str = "an address such as name@example.com, at most 254 bytes";
        let normalised = text.trim().to_lowercase();
        if normalised.is_empty() || normalised.len() > MAX_EMAIL_BYTES {
            return Err(AccountError::invalid("email", SHAPE));
        }
        if normalised.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AccountError::invalid("email", SHAPE));
        }
        let Some((local, domain)) = normalised.split_once('@') else {
            return Err(AccountError::invalid("email", SHAPE));
        };
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL_PART_BYTES
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && !local.chars().any(|c| "\"(),:;<>@[\\]".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
        if local_ok && domain_ok { Ok(Self(normalised)) } else { Err(AccountError::invalid("email", SHAPE)) }
    }
}

/// A user's id: 1 to 64 characters of `[0-9A-Za-z_-]`, given by the id generator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Parses an id.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming `id`.
    pub fn parse(text: &str) -> Result<Self, AccountError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_USER_ID_CHARS
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid { Ok(Self(text.to_owned())) } else { Err(AccountError::invalid("id", "not a user id")) }
    }
}

/// A sign-in session: one family of refresh tokens, named in the access tokens issued from it, so that
/// signing out revokes exactly that family. Same shape as a user id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// Parses a session id.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming `session`.
    pub fn parse(text: &str) -> Result<Self, AccountError> {
        UserId::parse(text).map(|id| Self(id.0)).map_err(|_| AccountError::invalid("session", "not a session id"))
    }
}

crate::domain::text_newtype!(Email, AccountError);
crate::domain::text_newtype!(UserId, AccountError);
crate::domain::text_newtype!(SessionId, AccountError);

/// A new password that meets the policy: 12 to 128 characters, counted as Unicode scalar values.
///
/// Following NIST SP 800-63B there are no composition rules (no "one digit, one symbol"), spaces and any
/// printable character are allowed, and the text is kept exactly as typed: it is not trimmed, because a
/// password that silently loses a trailing space would no longer match what the user typed at login.
/// The only refusal besides length is a control character, which no keyboard produces on purpose.
pub struct Password(SecretString);

impl Password {
    /// Checks a new password against the policy.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming `password` (the message never contains the password).
    pub fn parse(password: SecretString) -> Result<Self, AccountError> {
        let text = password.expose_secret();
        let chars = text.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(AccountError::invalid("password", "at least 12 characters"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(AccountError::invalid("password", "at most 128 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(AccountError::invalid("password", "no control characters"));
        }
        Ok(Self(password))
    }

    /// The password itself, for the hasher only.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A stored password hash in PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
///
/// Not a secret in the strict sense, but it allows offline guessing, so it is kept out of `Debug` output too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string made by a `PasswordHasher`.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Shops: carts, checkout, their own orders and account.
    Customer,
    /// Also writes the catalog and discounts and reads every order and report.
    Admin,
}

impl Role {
    /// The role a new account gets: admin only for the address the deployment names as its first admin.
    pub fn for_new_account(email: &Email, first_admin: Option<&Email>) -> Self {
        if first_admin == Some(email) { Role::Admin } else { Role::Customer }
    }

    /// The wire name (`customer` or `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] naming `role`.
    pub fn parse(text: &str) -> Result<Self, AccountError> {
        match text {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            _ => Err(AccountError::invalid("role", "customer or admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user account, as `GET /me` shows it. The password hash is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its normalised e-mail address.
    pub email: Email,
    /// What it may do.
    pub role: Role,
    /// When it registered.
    pub created_at: Timestamp,
    /// When the user first asked for an export of their data, if they did.
    pub export_requested_at: Option<Timestamp>,
    /// When the user first asked for their data to be erased, if they did.
    pub erasure_requested_at: Option<Timestamp>,
    /// When the account was closed; a closed account cannot sign in and its tokens are refused.
    pub deleted_at: Option<Timestamp>,
}

impl User {
    /// A new, open account.
    pub fn new(id: UserId, email: Email, role: Role, created_at: Timestamp) -> Self {
        Self { id, email, role, created_at, export_requested_at: None, erasure_requested_at: None, deleted_at: None }
    }

    /// Whether the account is open (not deleted).
    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Alice.Smith@Example.COM \n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(email.as_ref(), "alice.smith@example.com");
        assert_eq!(email, Email::parse("alice.smith@example.com").unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn email_accepts_common_shapes() {
        for text in
            ["a@b.co", "first.last+tag@sub.example.org", "o'brien@example.ie", "josé@exämple.de", "x_y-z@a-b.io"]
        {
            assert!(Email::parse(text).is_ok(), "{text} was refused");
        }
    }

    #[test]
    fn email_refuses_malformed_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let too_long = format!("a@{}.com", "b".repeat(250));
        for text in [
            "",
            "   ",
            "plain",
            "@example.com",
            "alice@",
            "alice@example",
            "a@@example.com",
            "a@b@example.com",
            "a b@example.com",
            "alice@exa mple.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@.example.com",
            "alice@example..com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@127.0.0.1",
            "\"a\"@example.com",
            "a<b>@example.com",
            "alice@exa_mple.com",
            "alice\u{0}@example.com",
            &long_local,
            &too_long,
        ] {
            assert_eq!(
                Email::parse(text).map_err(|AccountError::Invalid { field, .. }| field),
                Err("email"),
                "{text:?} was accepted"
            );
        }
    }

    #[test]
    fn email_of_exactly_254_bytes_is_accepted_and_255_refused() {
        let domain_of = |len: usize| {
            let mut labels = Vec::new();
            let mut left = len - 4;
            while left > 0 {
                let take = left.min(62);
                labels.push("d".repeat(take));
                left = (left - take).saturating_sub(1);
            }
            format!("{}.com", labels.join("."))
        };
        let exact = format!("{}@{}", "a".repeat(64), domain_of(254 - 65));
        assert_eq!(exact.len(), 254);
        assert!(Email::parse(&exact).is_ok());
        let over = format!("{}@{}", "a".repeat(64), domain_of(255 - 65));
        assert_eq!(over.len(), 255);
        assert!(Email::parse(&over).is_err());
    }

    #[test]
    fn email_round_trips_through_serde_and_refuses_bad_input() {
        let email: Email = serde_json::from_str("\"Bob@Example.com\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::to_string(&email).unwrap_or_default(), "\"bob@example.com\"");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert!(Password::parse(secret("abcdefghijk")).is_err(), "11 characters");
        assert!(Password::parse(secret("abcdefghijkl")).is_ok(), "12 characters");
        assert!(Password::parse(secret("ééééééééééé")).is_err(), "11 two-byte characters");
        assert!(Password::parse(secret("éééééééééééé")).is_ok(), "12 two-byte characters");
        assert!(Password::parse(secret(&"x".repeat(128))).is_ok());
        assert!(Password::parse(secret(&"x".repeat(129))).is_err());
    }

    #[test]
    fn password_policy_has_no_composition_rules_and_keeps_spaces() {
        let password = Password::parse(secret("  correct horse battery staple  ")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(password.expose_secret(), "  correct horse battery staple  ");
        assert!(Password::parse(secret("aaaaaaaaaaaaaaaa")).is_ok());
        assert!(Password::parse(secret("line\nbreak-password")).is_err());
    }

    #[test]
    fn password_never_shows_in_debug_or_errors() {
        let password = Password::parse(secret("hunter2-hunter2")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{password:?}").contains("hunter2"));
        let error = Password::parse(secret("hunter2")).err().map(|e| format!("{e} {e:?}")).unwrap_or_default();
        assert!(!error.is_empty() && !error.contains("hunter2"), "{error}");
        let hash = PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_owned());
        assert!(!format!("{hash:?}").contains("argon2id"));
    }

    #[test]
    fn user_ids_are_id_text() {
        assert!(UserId::parse("u000000000001").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn only_the_configured_first_admin_registers_as_admin() {
        let admin = Email::parse("boss@shop.example").unwrap_or_else(|e| panic!("{e}"));
        let other = Email::parse("customer@shop.example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Role::for_new_account(&admin, Some(&admin)), Role::Admin);
        assert_eq!(Role::for_new_account(&other, Some(&admin)), Role::Customer);
        assert_eq!(Role::for_new_account(&admin, None), Role::Customer);
        assert_eq!(Role::parse(Role::Admin.as_str()), Ok(Role::Admin));
        assert!(Role::parse("root").is_err());
        assert_eq!(serde_json::to_string(&Role::Customer).unwrap_or_default(), "\"customer\"");
    }

    #[test]
    fn a_new_user_is_active_until_deleted() {
        let mut user = User::new(
            UserId::parse("u1").unwrap_or_else(|e| panic!("{e}")),
            Email::parse("a@b.co").unwrap_or_else(|e| panic!("{e}")),
            Role::Customer,
            Timestamp::from_secs(1),
        );
        assert!(user.is_active());
        user.deleted_at = Some(Timestamp::from_secs(2));
        assert!(!user.is_active());
    }
}
