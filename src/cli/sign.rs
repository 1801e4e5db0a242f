//! `sign`: print the pg_sig of a message, optionally with its signing string.

use std::process::ExitCode;

use clap::Args;

use super::{EXIT_BAD_CONFIG, parse_pair};
use crate::protocol::Message;
use crate::protocol::signature::{Variant, masked_signing_string, ordered_values, sign};

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Script name: the last path segment of the URL that is called.
    #[arg(long)]
    pub script: String,
    /// The merchant's secret key.
    #[arg(long)]
    pub secret: String,
    /// Also print the signing string (with the key masked).
    #[arg(long)]
    pub debug: bool,
    /// Fields in message order, as name=value (pg_sig, if given, is ignored).
    #[arg(value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,
}

pub fn run(args: &SignArgs) -> ExitCode {
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
    println!("{}", sign(&args.script, &message, &args.secret));
    ExitCode::SUCCESS
}
