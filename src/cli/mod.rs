//! The command line: one file per subcommand, each a thin shell over the library.

mod sign;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for bad configuration or arguments (interface contract).
pub const EXIT_BAD_CONFIG: u8 = 2;
/// Exit code for a runtime failure, or a signature that does not verify.
pub const EXIT_FAILURE: u8 = 1;

/// Merchant-side webhook receiver for the FreedomPay payment gateway.
#[derive(Debug, Parser)]
#[command(name = "freedompay-receiver", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Every key can also be set as FPR__SECTION__KEY.
    #[arg(long, global = true, env = "FPR_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the callback receiver (the default when no subcommand is given).
    Serve,
    /// Compute the pg_sig of a message given as name=value pairs.
    Sign(sign::SignArgs),
    /// Check the pg_sig of a message given as name=value pairs or as XML.
    Verify(verify::VerifyArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            eprintln!(
                "freedompay-receiver: the HTTP receiver is not built yet; use sign or verify"
            );
            ExitCode::SUCCESS
        }
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
    }
}

/// Parses `name=value` command-line pairs (split at the first `=`).
fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {text:?}"))
}
