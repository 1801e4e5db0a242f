//! The project's one integration-test binary. Each module covers one area;
//! receiver tests run the real server on a loopback port against SQLite and
//! PostgreSQL (see `support`).

mod support;

mod api_client;
mod fuzz_corpus;
mod hardening_crash;
mod hardening_forgery;
mod hardening_hostile;
mod hardening_network;
mod hardening_outage;
mod operator_api_commands;
mod operator_config;
mod operator_console;
mod operator_history;
mod operator_observability;
mod operator_simulate;
mod protocol_amount;
mod protocol_answer;
mod protocol_cli;
mod protocol_decode;
mod protocol_props;
mod protocol_vectors;
mod receiver_auth;
mod receiver_endpoints;
mod receiver_idempotency;
mod receiver_malformed;
mod receiver_result;
mod receiver_rules;
mod receiver_storage;
mod reconcile_crash;
mod reconcile_refunds;
mod reconcile_status;
