//! freedompay-receiver: a merchant-side webhook receiver for the FreedomPay
//! payment gateway (formerly PayBox.money).
//!
//! The crate is layered the way one callback flows through it:
//! [`protocol`] (pure FreedomPay protocol) → [`domain`] (typed callback, order
//! rules, state transitions) → [`store`] (one transaction per callback, on
//! PostgreSQL or SQLite) → [`http`] (axum endpoints and signed answers).
//! [`config`] holds the settings and [`cli`] the operator commands;
//! [`untrusted`] is how values from outside reach terminals and logs.

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod http;
pub mod protocol;
pub mod reconcile;
pub mod server;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod untrusted;
