//! `serve` (the default command) and `migrate`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use tokio::net::TcpListener;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, load_settings, runtime, start_service};
use crate::config::MetricsPlace;
use crate::server::{bind_metrics, run_with, shutdown_signal};
use crate::store::{EventLog, Store};

pub fn serve(config: Option<&Path>) -> ExitCode {
    let settings = match start_service(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    runtime().block_on(async move {
        let listener = match TcpListener::bind(&settings.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: server.listen: cannot listen on {}: {e}",
                    settings.server.listen
                );
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        // The bound address (port 0 resolved); the configured one if the
        // socket cannot say.
        let address = listener
            .local_addr()
            .map_or_else(|_| settings.server.listen.to_string(), |a| a.to_string());
        let metrics = match bind_metrics(&settings).await {
            Ok(metrics) => metrics,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        // Where it listens, for operators and scripts. Written without
        // println!, which panics when the reader has gone (a closed pipe):
        // the service must outlive whoever started it.
        let metrics_line = match (&metrics, settings.metrics.place()) {
            (Some(listener), _) => match listener.local_addr() {
                Ok(metrics_address) => format!("metrics on http://{metrics_address}/metrics"),
                Err(_) => format!("metrics on {}", settings.metrics.listen),
            },
            (None, Ok(MetricsPlace::Server)) => format!("metrics on http://{address}/metrics"),
            (None, _) => "metrics off".to_owned(),
        };
        // Before the address is announced: whoever reads it may stop the
        // service at once.
        let shutdown = shutdown_signal();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "freedompay-receiver listening on http://{address}\n{metrics_line}"
        );
        let _ = stdout.flush();
        drop(stdout);
        match run_with(settings, listener, metrics, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}

pub fn migrate(config: Option<&Path>, plain_events: bool) -> ExitCode {
    let settings = match load_settings(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let log = if plain_events {
        EventLog::Plain
    } else {
        EventLog::Partitioned
    };
    runtime().block_on(async move {
        let result = async {
            let store = Store::connect(&settings.database)?;
            let upgrade = store.migrate_with(log).await?;
            store.close().await;
            Ok::<_, crate::store::StoreError>((store.backend_name(), upgrade))
        }
        .await;
        match result {
            Ok((backend, upgrade)) => {
                if let Some(u) = upgrade {
                    let kept = match &u.old_partition {
                        Some(name) => format!("{} rows kept in place as {name}", u.rows),
                        None => "the empty table replaced".to_owned(),
                    };
                    println!(
                        "event log partitioned by month: {kept}, in {:.3} s, locked {:.1} ms",
                        u.took.as_secs_f64(),
                        u.locked.as_secs_f64() * 1000.0
                    );
                }
                println!("migrations applied ({backend})");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}
