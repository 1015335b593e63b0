//! Signed pagination cursors: a store [`Cursor`] bound to one search by an HMAC, so that a client can neither
//! forge nor alter a cursor, nor carry one over to another search.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::error::ApiError;
use crate::ports::Cursor;

type HmacSha256 = Hmac<Sha256>;
/// Bytes of the MAC kept in a cursor: 128 bits are plenty against forgery and keep URLs short.
const TAG_BYTES: usize = 16;
/// The longest cursor text accepted.
const MAX_CURSOR_CHARS: usize = 2048;

/// Seals and opens cursors with a server-side key.
#[derive(Clone)]
pub struct CursorSigner {
    mac: HmacSha256,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

impl CursorSigner {
    /// A signer with a key (`Keys::derive` gives 32 bytes).
    ///
    /// # Errors
    /// `InvalidLength` if the MAC refuses the key (HMAC accepts every length, so only in theory).
    pub fn new(key: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self { mac: HmacSha256::new_from_slice(key)? })
    }

    fn tag(&self, scope: &str, body: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        mac.update(body.as_bytes());
        mac
    }

    /// The cursor's text for a search identified by `scope` (its fingerprint).
    pub fn seal(&self, scope: &str, cursor: &Cursor) -> String {
        let body = cursor.encode();
        let tag = self.tag(scope, &body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// Opens a cursor made by [`CursorSigner::seal`] for the same scope.
    ///
    /// # Errors
    /// [`ApiError::InvalidCursor`] when it is malformed, altered, or made for another scope or key.
    pub fn open(&self, scope: &str, text: &str) -> Result<Cursor, ApiError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(ApiError::InvalidCursor);
        }
        let (body, tag) = text.split_once('.').ok_or(ApiError::InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| ApiError::InvalidCursor)?;
        if tag.len() != TAG_BYTES {
            return Err(ApiError::InvalidCursor);
        }
        self.tag(scope, body).verify_truncated_left(&tag).map_err(|_| ApiError::InvalidCursor)?;
        Cursor::decode(body).map_err(|_| ApiError::InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(key: &[u8]) -> CursorSigner {
        CursorSigner::new(key).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn a_sealed_cursor_opens_only_for_its_scope_and_key() {
        let cursor = Cursor::after_sort_key_of("01ABC");
        let text = signer(b"k1").seal("q=lamp", &cursor);
        assert_eq!(signer(b"k1").open("q=lamp", &text).ok(), Some(cursor));
        assert!(signer(b"k1").open("q=desk", &text).is_err());
        assert!(signer(b"k2").open("q=lamp", &text).is_err());
    }

    #[test]
    fn an_altered_cursor_is_refused() {
        let text = signer(b"k").seal("s", &Cursor::after_sort_key_of("01ABC"));
        let forged_body = Cursor::after_sort_key_of("01ABD").encode();
        let (_, tag) = text.split_once('.').unwrap_or_default();
        for bad in [format!("{forged_body}.{tag}"), text.replace('.', ""), format!("{text}A"), String::new(), "...".to_owned()] {
            assert!(matches!(signer(b"k").open("s", &bad), Err(ApiError::InvalidCursor)), "{bad}");
        }
    }
}
