//! The one test binary: end-to-end scenarios over HTTP (`catalog`, `bad_input`), which run unchanged against
//! every host, and in-process router tests (`router`) that need no socket.

mod bad_input;
mod catalog;
mod router;
