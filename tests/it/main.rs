//! The one test binary: end-to-end scenarios over HTTP (`catalog`, `bad_input`, `auth`, `admin`, `commerce`),
//! which run unchanged against every host, and in-process router tests (`router`) that need no socket.

mod admin;
mod auth;
mod bad_input;
mod catalog;
mod commerce;
mod router;
