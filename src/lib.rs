//! freedompay-receiver: a merchant-side webhook receiver for the FreedomPay
//! payment gateway (formerly PayBox.money).
//!
//! The layers, each using only those below it (one arrow points up, from
//! `config::validate` to the API client's refund methods, with its reason):
//!
//! - [`protocol`] (pure FreedomPay protocol: messages, signatures, answers)
//!   and [`untrusted`] (how values from outside reach terminals and logs);
//! - [`domain`] (stored records, the typed callback, order rules, state
//!   transitions, the reconciler's task model: pure);
//! - [`webhooks`] (what the merchant's own services are sent: message types
//!   and bodies, Standard Webhooks signatures, endpoints, the retry schedule
//!   and the HTTP sender; below `config`, which compiles `[[webhooks]]`
//!   into its endpoints);
//! - [`config`] (typed settings, compiled into domain values);
//! - [`auth`], [`api`] (talking back to FreedomPay) and [`telemetry`]
//!   (logs, metrics, the request span);
//! - [`store`] (the one write path: callbacks queue for group-commit
//!   writers, each group read, decided and written in one transaction on
//!   PostgreSQL or SQLite), with [`simulate`] beside it;
//! - [`operator`] (what operators are shown of stored rows: the state
//!   summary, the key fields of an event), used by the console and `history`;
//! - [`http`] (axum endpoints and signed answers), [`console`],
//!   [`reconcile`], [`retention`] (what the event log keeps, archives and
//!   deletes) and [`bench`];
//! - [`server`] (runs them), then [`cli`] (the operator commands).
//!
//! A callback flows down and back: http → decode → authenticate → parse →
//! decide → store → answer.

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod deliver;
pub mod domain;
pub mod http;
pub mod operator;
pub mod protocol;
pub mod reconcile;
pub mod retention;
pub mod server;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod untrusted;
pub mod webhooks;
