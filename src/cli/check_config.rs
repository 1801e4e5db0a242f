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
    let mut database_warnings = Vec::new();
    if args.connect && !found.iter().any(|p| p.key.starts_with("database.")) {
        match runtime().block_on(try_database(&settings)) {
            Ok(warnings) => database_warnings = warnings,
            Err(problem) => found.push(problem),
        }
    }
    if !found.is_empty() {
        return report_problems(&found);
    }
    for warning in warnings(&settings) {
        eprintln!("warning: {warning}");
    }
    for warning in database_warnings {
        eprintln!("warning: database.url: {warning}");
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

/// Connects and runs a query; returns what to warn about the database (a
/// primary without a synchronous standby).
async fn try_database(settings: &Settings) -> Result<Vec<String>, ConfigError> {
    let unreachable = |e: String| ConfigError::new("database.url", format!("cannot connect: {e}"));
    let store = Store::connect(&settings.database).map_err(|e| unreachable(e.to_string()))?;
    let ping = tokio::time::timeout(CONNECT_TIMEOUT, async {
        store.ping().await?;
        store.replication_warning().await
    })
    .await;
    store.close().await;
    match ping {
        Ok(Ok(warning)) => Ok(warning.into_iter().collect()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}
