//! Where `sign`, `verify` and `simulate` take the merchant's key from, first
//! found first: `--secret-file PATH`, then `--secret KEY` or the `FPR_SECRET`
//! environment variable, then (`simulate` only) the configuration.
//!
//! A key given as `--secret` can be read by every local user in `ps` and stays
//! in the shell history, so it is there for tests; the documentation uses
//! `--secret-file` and `FPR_SECRET`. The API commands (`status`, `refund`,
//! `payout`, `balance`) take no key argument at all: they read the key from
//! the configuration (`secret_key_file`, or `FPR__MERCHANTS__<n>__SECRET_KEY`).

use std::path::Path;

/// The environment variable that holds the key.
pub const SECRET_ENV: &str = "FPR_SECRET";

/// Reads a key file: the whole file, one trailing line break ignored (as the
/// configuration's `secret_key_file`). An empty key is an error.
pub fn read_key_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--secret-file: cannot read {}: {e}", path.display()))?;
    let key = text.trim_end_matches(['\r', '\n']);
    if key.is_empty() {
        return Err(format!("--secret-file: {} is empty", path.display()));
    }
    Ok(key.to_owned())
}

/// The key from `--secret-file` when given, else from `--secret`/`FPR_SECRET`;
/// `None` when neither is set. An empty `--secret` or `FPR_SECRET` is refused.
pub fn key_from_args(file: Option<&Path>, value: Option<&str>) -> Result<Option<String>, String> {
    match (file, value) {
        (Some(path), _) => read_key_file(path).map(Some),
        (None, Some("")) => Err(format!("--secret ({SECRET_ENV}): the key is empty")),
        (None, Some(key)) => Ok(Some(key.to_owned())),
        (None, None) => Ok(None),
    }
}
