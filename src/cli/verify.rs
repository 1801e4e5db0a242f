//! `verify`: check the pg_sig of a message; exit 0 when valid, 1 when not.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::secret::{SECRET_ENV, read_key_file};
use super::{EXIT_BAD_CONFIG, EXIT_FAILURE, parse_pair};
use crate::protocol::decode::parse_xml;
use crate::protocol::{Message, VerifyOptions, verify};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Script name: the last path segment of the URL that was called.
    #[arg(long, value_name = "NAME")]
    pub script: String,
    /// Files holding candidate secret keys (one trailing newline ignored), tried
    /// in order (e.g. current, then previous), before any --secret.
    #[arg(long = "secret-file", value_name = "PATH")]
    pub secret_files: Vec<PathBuf>,
    /// Candidate secret keys, tried in order after the --secret-file keys. On
    /// the command line they show in `ps` and the shell history: set
    /// FPR_SECRET (one key) or use --secret-file instead.
    #[arg(
        long = "secret",
        env = "FPR_SECRET",
        hide_env_values = true,
        value_name = "KEY"
    )]
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
    let keys = match candidate_keys(args) {
        Ok(keys) => keys,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
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

/// The keys of every --secret-file, then every --secret (or FPR_SECRET).
fn candidate_keys(args: &VerifyArgs) -> Result<Vec<String>, String> {
    let mut keys = args
        .secret_files
        .iter()
        .map(|path| read_key_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    for key in &args.secrets {
        if key.is_empty() {
            return Err(format!("--secret ({SECRET_ENV}): the key is empty"));
        }
        keys.push(key.clone());
    }
    if keys.is_empty() {
        return Err(format!(
            "no key: give --secret-file PATH (repeatable) or set {SECRET_ENV}"
        ));
    }
    Ok(keys)
}
