//! The HTTP pieces every endpoint shares, tied to no platform: the application state, errors as RFC 9457
//! problem documents, extractors that answer 4xx to bad input, the caller's identity (bearer token, admin
//! check, client address), signed cursors and the request-context middleware (request id, one structured log
//! line per request).
//!
//! It uses axum with `default-features = false` so it compiles for Lambda, Workers (wasm32) and the local host.

pub mod context;
pub mod cursor;
pub mod error;
pub mod extract;
pub mod identity;
pub mod idempotent;
pub mod openapi;
pub mod state;
pub mod views;

pub use cursor::CursorSigner;
pub use error::ApiError;
pub use extract::{Json, MAX_BODY_BYTES, Params};
pub use identity::{Admin, Authenticated, ClientAddress};
pub use state::{AppAuth, AppState, Keys};
pub use views::{ProductBody, ProductView};
