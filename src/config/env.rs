//! The environment layer: every `FPR__…` variable becomes an override of the
//! key it names (`FPR__SERVER__LISTEN` → `server.listen`,
//! `FPR__MERCHANTS__0__SECRET_KEY` → `merchants[0].secret_key`,
//! `FPR__WEBHOOKS__0__SECRET` → `webhooks[0].secret`).
//!
//! Values are handed on as text, and serde turns the text into the field's
//! type when the settings are read: a number keeps its spelling where the
//! field is text (`FPR__RULES__MIN_AMOUNT=100.50` stays `100.50`, and `1e3` is
//! refused by the amount check as it is in TOML). A list key (any key whose
//! default is a list) takes comma-separated items; an empty value is an empty
//! list.
//!
//! The `config` crate's own `Environment` source cannot do both: its list
//! splitting only works with `try_parsing`, which turns `100.50` into the
//! float `100.5` before serde sees it, and it has no array indices for the
//! merchants.

use std::collections::BTreeSet;
use std::ffi::OsString;

use config::ConfigBuilder;
use config::builder::DefaultState;

use super::{ConfigError, Settings};

const PREFIX: &str = "FPR__";

/// The arrays of tables (`[[merchants]]`, `[[webhooks]]`), whose variables
/// carry an index, with the list keys of each entry.
struct TableArray {
    name: &'static str,
    /// One entry, as error messages call it.
    entry: &'static str,
    lists: &'static [&'static str],
}

const TABLE_ARRAYS: [TableArray; 2] = [
    TableArray {
        name: "merchants",
        entry: "merchant",
        lists: &[],
    },
    TableArray {
        name: "webhooks",
        entry: "webhook",
        lists: &["types", "merchants"],
    },
];

/// Entries one array may have through the environment.
const MAX_ENTRIES: usize = 256;

/// Adds an override for every `FPR__…` variable among `vars` to `builder`.
pub(super) fn apply(
    mut builder: ConfigBuilder<DefaultState>,
    vars: impl Iterator<Item = (OsString, OsString)>,
) -> Result<ConfigBuilder<DefaultState>, ConfigError> {
    let lists = list_keys();
    let mut vars: Vec<(String, OsString)> = vars
        .filter_map(|(name, value)| name.into_string().ok().map(|name| (name, value)))
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    // A stable order, so that the same environment always gives the same result.
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in vars {
        let value = value
            .into_string()
            .map_err(|_| ConfigError::new(name.as_str(), "is not valid UTF-8"))?;
        let path = key_path(&name)?;
        let list = lists.contains(&path)
            || TABLE_ARRAYS.iter().any(|array| {
                path.strip_prefix(array.name)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.split_once("]."))
                    .is_some_and(|(_, key)| array.lists.contains(&key))
            });
        let result = if list {
            builder.set_override(&path, list_items(&value))
        } else {
            builder.set_override(&path, value)
        };
        builder = result.map_err(|e| ConfigError::new(name.as_str(), e.to_string()))?;
    }
    Ok(builder)
}

/// `FPR__SECTION__KEY` → `section.key`; `FPR__MERCHANTS__<i>__KEY` →
/// `merchants[i].key` (and so for every array of [`TABLE_ARRAYS`]).
fn key_path(name: &str) -> Result<String, ConfigError> {
    let rest = name[PREFIX.len()..].to_ascii_lowercase();
    let parts: Vec<&str> = rest.split("__").collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::new(name, "expected FPR__SECTION__KEY"));
    }
    if let Some(array) = TABLE_ARRAYS.iter().find(|array| parts[0] == array.name) {
        let upper = array.name.to_ascii_uppercase();
        let shape = || ConfigError::new(name, format!("expected FPR__{upper}__<index>__<KEY>"));
        let [_, index, key @ ..] = parts.as_slice() else {
            return Err(shape());
        };
        let index: usize = index.parse().map_err(|_| {
            ConfigError::new(name, format!("the {} index must be a number", array.entry))
        })?;
        // The config crate grows its array up to the index: a huge index
        // would allocate (or overflow) before any check could refuse it.
        if index >= MAX_ENTRIES {
            return Err(ConfigError::new(
                name,
                format!("the {} index must be below {MAX_ENTRIES}", array.entry),
            ));
        }
        if key.is_empty() {
            return Err(shape());
        }
        return Ok(format!("{}[{index}].{}", array.name, key.join(".")));
    }
    Ok(parts.join("."))
}

/// `a, b,c` → `["a", "b", "c"]`; blank items are dropped, so an empty value
/// is an empty list.
fn list_items(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The dotted paths of every list key outside the arrays of tables, read
/// from the defaults, so that a list key added later is covered without a
/// change here.
fn list_keys() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(Settings::default()) {
        for (name, value) in sections {
            if !TABLE_ARRAYS.iter().any(|array| name == array.name) {
                collect_lists(&name, &value, &mut found);
            }
        }
    }
    found
}

fn collect_lists(path: &str, value: &serde_json::Value, found: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Array(_) => {
            found.insert(path.to_owned());
        }
        serde_json::Value::Object(fields) => {
            for (name, value) in fields {
                collect_lists(&format!("{path}.{name}"), value, found);
            }
        }
        _ => {}
    }
}
