//! The one test binary: end-to-end scenarios over HTTP (`catalog`, `bad_input`, `auth`, `admin`, `commerce`,
//! `after_sale`, `mcp` with the official MCP Python SDK), traces and metrics in a host's log (`host_log`),
//! which run unchanged against every host, a crash test of the local-host binary (`crash`), the route/operation coverage of the OpenAPI document (`openapi`), the local
//! host on Stripe against localstripe (`stripe_host`), and in-process router tests
//! (`router`) that need no socket.

mod admin;
mod api_contract;
mod after_sale;
mod auth;
mod bad_input;
mod catalog;
mod commerce;
mod crash;
mod mcp;
mod openapi;
mod router;
mod stripe_host;
mod host_log;
