//! `verify`: check the pg_sig of a message; exit 0 when valid, 1 when not.

use std::process::ExitCode;

use clap::Args;

use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, parse_pair};
use crate::protocol::decode::parse_xml;
use crate::protocol::{Message, VerifyOptions, verify};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Script name: the last path segment of the URL that was called.
    #[arg(long)]
    pub script: String,
    /// Candidate secret keys, tried in order (e.g. current, then previous).
    #[arg(long = "secret", required = true)]
    pub secrets: Vec<String>,
    /// Accept only the canonical signature rule, not the tolerated variants.
    #[arg(long)]
    pub no_variants: bool,
    /// Verify this XML document (<request> or <response>) instead of pairs.
    #[arg(long, conflicts_with = "pairs")]
    pub xml: Option<String>,
    /// Fields in message order, as name=value, including pg_sig.
    #[arg(value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,
}

pub fn run(args: &VerifyArgs) -> ExitCode {
    let message = match &args.xml {
        Some(xml) => parse_xml(xml),
        None => Message::from_pairs(args.pairs.clone()),
    };
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let keys: Vec<&str> = args.secrets.iter().map(String::as_str).collect();
    let options = VerifyOptions {
        allow_variants: !args.no_variants,
    };
    match verify(&args.script, &message, &keys, options) {
        Ok(verified) => {
            println!(
                "valid: key #{} of {}, variant {}",
                verified.key_index + 1,
                keys.len(),
                verified.variant.as_str()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
