//! `retention run [--dry-run]`: one retention run now (`crate::retention`),
//! whatever the day, unless another instance is running it; `--dry-run`
//! prints what it would archive, delete and rewrite, and changes nothing.
//! `retention verify PATH`: re-reads an archive (a manifest, or every
//! manifest of a directory) against its checksum and row count.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, runtime};
use crate::config::Settings;
use crate::retention::{Retention, archive};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    pub command: RetentionCommand,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Archive and delete what is older than retention.keep_days, and
    /// replace personal fields older than retention.personal_data_days, now.
    Run {
        /// Print what would be archived, deleted and rewritten; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check an archive against its manifest (a *.manifest.json file, or a
    /// directory: every manifest in it). Exit 1 when one does not match.
    Verify {
        /// An archive's *.manifest.json, or a directory of archives.
        path: PathBuf,
    },
}

/// `retention verify` needs no configuration; `retention run` does.
pub fn needs_settings(args: &RetentionArgs) -> bool {
    matches!(args.command, RetentionCommand::Run { .. })
}

pub fn run(settings: Option<&Settings>, args: &RetentionArgs) -> ExitCode {
    match (&args.command, settings) {
        (RetentionCommand::Verify { path }, _) => verify(path),
        (RetentionCommand::Run { dry_run }, Some(settings)) => run_now(settings, *dry_run),
        (RetentionCommand::Run { .. }, None) => {
            eprintln!("error: retention run needs --config");
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

fn run_now(settings: &Settings, dry_run: bool) -> ExitCode {
    if !settings.retention.enabled() {
        println!("retention is off: set retention.keep_days or retention.personal_data_days");
        return ExitCode::SUCCESS;
    }
    let result = runtime().block_on(async {
        let store = Store::connect(&settings.database)?;
        let retention = Retention::new(store.clone(), settings.retention.clone());
        let report = retention.run(dry_run, false).await;
        store.close().await;
        Ok::<_, Box<dyn std::error::Error>>(report?)
    });
    match result {
        Ok(Some(report)) => {
            if dry_run {
                println!("dry run: nothing is changed");
            }
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: another instance is running retention now; try again later");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn verify(path: &Path) -> ExitCode {
    let manifests = if path.is_dir() {
        match archive::manifests(path) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        vec![path.to_owned()]
    };
    if manifests.is_empty() {
        eprintln!("error: no archive manifest in {}", path.display());
        return ExitCode::from(EXIT_FAILURE);
    }
    let mut failed = false;
    for manifest in &manifests {
        match archive::verify(manifest) {
            Ok(m) => println!(
                "ok  {}  month {}  {} rows  sha256 {}",
                m.file, m.month, m.rows, m.sha256
            ),
            Err(e) => {
                failed = true;
                println!("BAD {}: {e}", manifest.display());
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}
