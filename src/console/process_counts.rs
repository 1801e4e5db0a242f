//! Counts the process keeps only in its metrics, never in the database
//! (a forged request must not write anything): signature failures and
//! callbacks answered 503 because the database failed. They are read from
//! the process's Prometheus recorder, so they cover the time since the
//! process started.

use crate::telemetry::metrics::{DATABASE_ERRORS, SIGNATURE_FAILURES, render};

/// Totals since the process started, over every label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    pub signature_failures: u64,
    pub database_errors: u64,
}

impl ProcessCounts {
    pub fn read() -> ProcessCounts {
        let text = render();
        ProcessCounts {
            signature_failures: total(&text, SIGNATURE_FAILURES),
            database_errors: total(&text, DATABASE_ERRORS),
        }
    }
}

/// The sum of every series of the counter `name` in a Prometheus text exposition.
pub fn total(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .map(|value| value.max(0.0) as u64)
        .sum()
}
