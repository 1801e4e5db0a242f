//! `sign`: print the pg_sig of a message, optionally with its signing string.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::secret::key_from_args;
use super::{EXIT_BAD_CONFIG, parse_pair};
use crate::protocol::Message;
use crate::protocol::signature::{Variant, masked_signing_string, ordered_values, sign};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Script name: the last path segment of the URL that is called.
    #[arg(long, value_name = "NAME")]
    pub script: String,
    /// File holding the merchant's secret key (one trailing newline ignored);
    /// takes precedence over --secret and FPR_SECRET.
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// The merchant's secret key. On the command line it shows in `ps` and the
    /// shell history: set FPR_SECRET or use --secret-file instead.
    #[arg(long, env = "FPR_SECRET", hide_env_values = true, value_name = "KEY")]
    pub secret: Option<String>,
    /// Also print the signing string (with the key masked).
    #[arg(long)]
    pub debug: bool,
    /// Fields in message order, as name=value (pg_sig, if given, is ignored).
    #[arg(value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,
}

pub fn run(args: &SignArgs) -> ExitCode {
    let secret = match key_from_args(args.secret_file.as_deref(), args.secret.as_deref()) {
        Ok(Some(key)) => key,
        Ok(None) => {
            eprintln!("error: no key: give --secret-file PATH or set FPR_SECRET");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let message = match Message::from_pairs(args.pairs.clone()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if args.debug {
        let values = ordered_values(&message, Variant::Canonical);
        println!(
            "signing string: {}",
            masked_signing_string(&args.script, &values)
        );
    }
    println!("{}", sign(&args.script, &message, &secret));
    ExitCode::SUCCESS
}
