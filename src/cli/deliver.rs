//! `deliver`: the webhook dispatcher alone, until stopped (SIGINT or
//! SIGTERM). `serve` runs the same dispatcher inside when endpoints are
//! configured; this runs it as a process of its own (e.g. beside receivers
//! that should only answer callbacks), sharing the work with any other
//! through the deliveries' leases. Without the receiver in its process it
//! is not woken after each commit: it finds new deliveries by polling
//! (`webhook_delivery.poll_interval_ms`).

use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, runtime, start_service};
use crate::deliver::Dispatcher;
use crate::server::shutdown_signal;
use crate::store::Store;

pub fn run(config: Option<&Path>) -> ExitCode {
    let settings = match start_service(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let endpoints = match settings.webhook_endpoints() {
        Ok(endpoints) if !endpoints.is_empty() => endpoints,
        Ok(_) => {
            eprintln!("error: webhooks: no endpoint configured; nothing to deliver");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    runtime().block_on(async move {
        let count = endpoints.len();
        let store = match Store::connect(&settings.database) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let dispatcher = match Dispatcher::new(store.clone(), endpoints, &settings.webhook_delivery)
        {
            Ok(dispatcher) => dispatcher,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        tracing::info!(endpoints = count, "delivering webhooks");
        dispatcher.run(shutdown_signal()).await;
        store.close().await;
        ExitCode::SUCCESS
    })
}
