//! `maintenance_runs`: one row per background job that runs on one
//! instance at a time, once a day (today only retention, [`RETENTION`]):
//! its lease, the end of its last complete run, why its last run stopped,
//! and the personal-data rewrite's cursor. Times are the database's on both
//! backends, so instances with skewed clocks agree on who holds the lease.

use chrono::{DateTime, Utc};

use super::{Column, Dialect, plain};

/// The retention job's row.
pub const RETENTION: &str = "retention";

/// Every column, in one place.
pub const COLUMNS: &[Column] = &[
    plain("name"),
    plain("lease_owner"),
    plain("lease_until"),
    plain("finished_at"),
    plain("last_error"),
    plain("expunged_through"),
];

/// A job's row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MaintenanceRun {
    pub name: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The last event id the personal-data rewrite looked at.
    pub expunged_through: i64,
}

/// Makes job `$1`'s row if it has none.
pub fn create(d: Dialect) -> String {
    format!(
        "INSERT INTO maintenance_runs (name) VALUES ({}) ON CONFLICT (name) DO NOTHING",
        d.param(1)
    )
}

/// Job `$1`'s row.
pub fn select(d: Dialect) -> String {
    format!(
        "SELECT {} FROM maintenance_runs AS m WHERE m.name = {}",
        d.select("m", COLUMNS),
        d.param(1)
    )
}

/// Takes job `$1` for owner `$2` for `$3` seconds when its lease is free
/// (or already `$2`'s) and, with `daily`, its last complete run ended a day
/// ago or more; returns the row when taken.
pub fn claim(d: Dialect, daily: bool) -> String {
    let p = |n| d.param(n);
    let (until, day_ago) = match d {
        Dialect::Postgres => (
            format!("now() + make_interval(secs => {}::bigint)", p(3)),
            "now() - interval '1 day'".to_owned(),
        ),
        Dialect::Sqlite => (
            format!(
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || {} || ' seconds')",
                p(3)
            ),
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')".to_owned(),
        ),
    };
    let due = if daily {
        format!(" AND (finished_at IS NULL OR finished_at <= {day_ago})")
    } else {
        String::new()
    };
    format!(
        "UPDATE maintenance_runs SET lease_owner = {owner}, lease_until = {until} \
         WHERE name = {name} AND (lease_until IS NULL OR lease_until < {now} OR lease_owner = {owner}){due} \
         RETURNING {columns}",
        owner = p(2),
        name = p(1),
        now = d.now(),
        columns = d.select("", COLUMNS),
    )
}

/// Ends owner `$2`'s run of job `$1`: `$3` NULL, complete (`finished_at`
/// now), else the error it stopped on; the lease is free either way.
pub fn finish(d: Dialect) -> String {
    let p = |n| d.param(n);
    format!(
        "UPDATE maintenance_runs SET lease_owner = NULL, lease_until = NULL, last_error = {error}, \
         finished_at = CASE WHEN {error} IS NULL THEN {now} ELSE finished_at END \
         WHERE name = {name} AND lease_owner = {owner}",
        error = p(3),
        now = d.now(),
        name = p(1),
        owner = p(2),
    )
}

/// Moves job `$1`'s personal-data cursor to `$2` (never back).
pub fn expunged_through(d: Dialect) -> String {
    let p = |n| d.param(n);
    let larger = match d {
        Dialect::Postgres => "greatest",
        Dialect::Sqlite => "max",
    };
    format!(
        "UPDATE maintenance_runs SET expunged_through = {larger}(expunged_through, {}) WHERE name = {}",
        p(2),
        p(1)
    )
}
