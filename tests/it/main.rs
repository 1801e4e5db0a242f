//! The project's one integration-test binary. Each module covers one area;
//! receiver tests run the real server on a loopback port against SQLite and
//! PostgreSQL (see `support`).

mod support;

mod api_client;
mod fuzz_corpus;
mod hardening_budget;
mod hardening_connections;
mod hardening_crash;
mod hardening_forgery;
mod hardening_forwarding;
mod hardening_hostile;
mod hardening_methods;
mod hardening_network;
mod hardening_outage;
mod hardening_tolerance;
mod operator_api_commands;
mod operator_cli_package;
mod operator_config;
mod operator_console;
mod operator_deploy;
mod operator_history;
mod operator_observability;
mod operator_simulate;
mod protocol_amount;
mod protocol_answer;
mod protocol_card_numbers;
mod protocol_cli;
mod protocol_decode;
mod protocol_props;
mod protocol_unsigned_additions;
mod protocol_vectors;
mod receiver_auth;
mod receiver_card_numbers;
mod receiver_endpoints;
mod receiver_idempotency;
mod receiver_malformed;
mod receiver_result;
mod receiver_rules;
mod receiver_state_machine;
mod receiver_storage;
mod receiver_unsigned_additions;
mod reconcile_confirm;
mod reconcile_crash;
mod reconcile_refunds;
mod reconcile_status;
