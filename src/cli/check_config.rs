//! `check-config`: load the configuration the way `serve` does, report every
//! problem (one line each, naming the key, exit code 2), optionally try the
//! database, and print the effective configuration with secrets redacted.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{report_problems, runtime};
use crate::config::validate::{problems, warnings};
use crate::config::{ConfigError, Settings};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Also connect to the database and run a query.
    #[arg(long)]
    pub connect: bool,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(path: Option<&Path>, args: &CheckConfigArgs) -> ExitCode {
    let settings = match Settings::load_unchecked(path) {
        Ok(s) => s,
        Err(e) => return report_problems(&[e]),
    };
    let mut found = problems(&settings);
    if args.connect
        && !found.iter().any(|p| p.key.starts_with("database."))
        && let Err(problem) = runtime().block_on(try_database(&settings))
    {
        found.push(problem);
    }
    if !found.is_empty() {
        return report_problems(&found);
    }
    for warning in warnings(&settings) {
        eprintln!("warning: {warning}");
    }
    println!("# effective configuration (secrets redacted)");
    print!("{}", settings.to_redacted_toml());
    eprintln!(
        "configuration OK{}",
        if args.connect {
            ", database reachable"
        } else {
            ""
        }
    );
    ExitCode::SUCCESS
}

async fn try_database(settings: &Settings) -> Result<(), ConfigError> {
    let unreachable = |e: String| ConfigError::new("database.url", format!("cannot connect: {e}"));
    let store = Store::connect(&settings.database).map_err(|e| unreachable(e.to_string()))?;
    let ping = tokio::time::timeout(CONNECT_TIMEOUT, store.ping()).await;
    store.close().await;
    match ping {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}
