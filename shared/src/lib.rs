//! Storefront's domain library, shared by every function and every host.
//!
//! It owns the domain rules (`domain`), the ports through which the domain reaches the outside (`ports`),
//! the typed repositories written once on top of the item store (`catalog`, `accounts`, `sessions`, `rate_limit`),
//! the authentication use cases (`auth`), buying (`commerce`: carts, discounts, orders, the checkout), payments
//! (`payments`: the sandbox provider and the retrying gateway), idempotency keys (`idempotency`), what follows a sale and a privacy request (`jobs`, with `mail`, `sales` and
//! `exports`), trace context and metrics (`telemetry`), the HTTP pieces every
//! endpoint uses (`http`) and one adapter per backend (`adapters`). The hosts that wire them live in
//! `functions/lambda-host`, `functions/worker-host` and `functions/local-host`.
//! With no features it builds for `wasm32-unknown-unknown`: nothing here may call an API that panics there.
#![warn(missing_docs)]

pub mod accounts;
pub mod adapters;
pub mod auth;
pub mod catalog;
pub mod commerce;
#[cfg(any(test, feature = "testkit"))]
pub mod contract;
pub mod demo;
pub mod domain;
pub mod exports;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod mail;
pub mod outbox;
pub mod payments;
pub mod ports;
pub mod rate_limit;
pub mod sales;
pub mod sessions;
pub mod telemetry;
#[cfg(test)]
mod test_stores;
