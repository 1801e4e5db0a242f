//! `bench`: a burst of signed result callbacks at a running service, with a
//! correctness check afterwards; and `--sqlite-ceiling`, the SQLite ceiling
//! that `scripts/bench` measures the service against (see BENCHMARKS.md).

use std::process::ExitCode;

use clap::Args;
use secrecy::ExposeSecret;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, runtime};
use crate::bench::{self, Plan, ceiling};
use crate::config::Settings;
use crate::domain::CallbackKind;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The service's base URL (default: from the config's server.listen).
    #[arg(long)]
    pub url: Option<String>,
    /// Callbacks (and orders) in the run.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pub callbacks: usize,
    /// Callbacks in flight at once.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub concurrency: usize,
    /// Tag for this run's order ids (default: the current time).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Instead: measure the SQLite ceiling on a fresh database file at this path.
    #[arg(long)]
    pub sqlite_ceiling: Option<String>,
}

pub fn run(settings: Option<&Settings>, args: &BenchArgs) -> ExitCode {
    if let Some(path) = &args.sqlite_ceiling {
        return match runtime().block_on(ceiling::sqlite_tps(path, args.callbacks)) {
            Ok(tps) => {
                println!(
                    "{}",
                    serde_json::json!({ "sqlite_ceiling_tps": tps, "transactions": args.callbacks })
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    let Some(settings) = settings else {
        eprintln!(
            "error: --config: the bench needs the service's configuration (database and merchant key)"
        );
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let Some(merchant) = settings.merchants.first() else {
        eprintln!("error: merchants: none configured");
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    let key = match merchant.payment_key() {
        Ok(key) => key.expose_secret().to_owned(),
        Err(e) => {
            eprintln!("error: merchants[0].{e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.server.listen));
    let plan = Plan {
        result_url: format!(
            "{}{}",
            base.trim_end_matches('/'),
            settings.endpoints.path(CallbackKind::Result)
        ),
        merchant_id: merchant.id.clone(),
        key,
        callbacks: args.callbacks,
        concurrency: args.concurrency,
        run_id: args
            .run_id
            .clone()
            .unwrap_or_else(|| chrono::Utc::now().format("%H%M%S%3f").to_string()),
    };
    let result = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        bench::register_orders(&store, &plan).await?;
        let report = bench::run(&store, &plan).await;
        store.close().await;
        report
    });
    match result {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: the report cannot be written as JSON: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            }
            if report.correct {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
