//! One file per table: its row struct (named fields, read with
//! `sqlx::FromRow` by column name, written as JSON objects by key name), its
//! column list written once, and its statements for both backends, built
//! from that list by the few functions below. A new column is one entry in
//! its table's list and one field in its row: every `SELECT`, `INSERT` and
//! `ON CONFLICT … SET` of both dialects takes it from there
//! (`tests/it/storage_columns.rs` compares the lists with the tables a
//! fresh migration makes, on both backends).
//!
//! Money is text in these rows: PostgreSQL reads `amount::text`, SQLite
//! reads the stored text (a BLOB as its SQL literal, which no amount
//! parser takes), and a stored amount is parsed by the same strict rule as
//! an incoming one ([`amount`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::protocol::Amount;

pub mod callback_decisions;
pub mod events;
pub mod maintenance_runs;
pub mod orders;
pub mod outbound_tasks;
pub mod payments;
pub mod payouts;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_messages;

/// The backend a statement is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// How a column's value crosses between the database and a row, where the
/// backends differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Read and written as it is.
    Plain,
    /// `NUMERIC` on PostgreSQL, canonical decimal text on SQLite; read as
    /// text on both.
    Money,
    /// `JSONB` on PostgreSQL, JSON text on SQLite; read as text on both.
    Json,
}

/// A column as the statements name it.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

pub const fn plain(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Plain,
    }
}

pub const fn money(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Money,
    }
}

pub const fn json(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Json,
    }
}

/// What an insert does when its key is already stored.
#[derive(Clone, Copy, Debug)]
pub enum OnConflict {
    /// Nothing: the insert fails (a key claimed meanwhile elsewhere).
    Fail,
    /// Every written column outside the key takes the new value.
    UpdateAll,
    /// Only these columns take the new value; the rest keep the stored one.
    Update(&'static [&'static str]),
    /// This assignment, the same text on both backends.
    Set(&'static str),
}

/// An `INSERT` of rows passed as one JSON array of named objects.
#[derive(Clone, Copy, Debug)]
pub struct Insert {
    pub table: &'static str,
    pub columns: &'static [Column],
    /// The unique key an upsert is arbitrated by.
    pub key: &'static [&'static str],
    pub on_conflict: OnConflict,
    /// Whether an update sets `updated_at` to now.
    pub touch: bool,
}

/// SQLite's text of now, as every SQLite row stores a time.
pub const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl Dialect {
    /// The `n`th parameter.
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// The SQL of now.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "now()",
            Dialect::Sqlite => SQLITE_NOW,
        }
    }

    /// A column as read, named as itself, from the table aliased `from`.
    /// (`from` empty: unqualified, as `RETURNING` names them).
    pub fn read(self, from: &str, column: &Column) -> String {
        let name = column.name;
        let from = if from.is_empty() {
            String::new()
        } else {
            format!("{from}.")
        };
        match (self, column.kind) {
            (_, Kind::Plain) | (Dialect::Sqlite, Kind::Json) => format!("{from}{name}"),
            (Dialect::Postgres, Kind::Money | Kind::Json) => {
                format!("{from}{name}::text AS {name}")
            }
            // A BLOB as its SQL literal (`X'373030'`): no driver type check
            // refuses it, no amount parser takes it, and an operator sees
            // what is stored.
            (Dialect::Sqlite, Kind::Money) => format!(
                "CASE typeof({from}{name}) WHEN 'blob' THEN 'X''' || hex({from}{name}) || '''' \
                 ELSE CAST({from}{name} AS TEXT) END AS {name}"
            ),
        }
    }

    /// The select list of `columns` of the table aliased `from`.
    pub fn select(self, from: &str, columns: &[Column]) -> String {
        columns
            .iter()
            .map(|c| self.read(from, c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows of one merchant (parameter 1) by `id` (parameter 2, a JSON
    /// array), each by its primary key (locked until commit on PostgreSQL;
    /// on SQLite the transaction holds the one write lock).
    ///
    /// PostgreSQL: one `LIMIT 1` lookup per wanted id, so the only plan is
    /// the primary key's index, whatever the table's statistics say.
    /// SQLite: `json_each(…) CROSS JOIN table` fixes the wanted ids as the
    /// outer loop, so each row is found by its key (left to choose on a
    /// fresh database without `sqlite_stat1`, the planner scanned).
    pub fn lock_by_id(self, table: &str, columns: &[Column], id: &str) -> String {
        let select = self.select("found", columns);
        match self {
            Dialect::Postgres => format!(
                "SELECT {select} FROM jsonb_array_elements_text($2::jsonb) AS wanted(id) \
                 CROSS JOIN LATERAL (SELECT * FROM {table} AS t \
                 WHERE t.merchant_id = $1 AND t.{id} = wanted.id LIMIT 1 FOR UPDATE) AS found"
            ),
            Dialect::Sqlite => format!(
                "SELECT {select} FROM json_each(?2) AS wanted CROSS JOIN {table} AS found \
                 ON found.merchant_id = ?1 AND found.{id} = wanted.value"
            ),
        }
    }

    /// The insert `insert` of the rows of the JSON array parameter `param`.
    pub fn insert(self, insert: &Insert, param: usize) -> String {
        let Insert {
            table,
            columns,
            key,
            on_conflict,
            touch,
        } = *insert;
        let names = columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ");
        let rows = match self {
            Dialect::Postgres => format!(
                "SELECT {names} FROM jsonb_populate_recordset(NULL::{table}, ${param}::jsonb)"
            ),
            // `WHERE true`: SQLite's parser needs it before `ON CONFLICT`
            // after a `SELECT … FROM`.
            Dialect::Sqlite => format!(
                "SELECT {} FROM json_each(?{param}) WHERE true",
                columns
                    .iter()
                    .map(|c| format!("value ->> '{}'", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut sets: Vec<String> = match on_conflict {
            OnConflict::Fail => Vec::new(),
            OnConflict::UpdateAll => columns
                .iter()
                .map(|c| c.name)
                .filter(|name| !key.contains(name))
                .map(|name| format!("{name} = excluded.{name}"))
                .collect(),
            OnConflict::Update(names) => names
                .iter()
                .map(|name| format!("{name} = excluded.{name}"))
                .collect(),
            OnConflict::Set(assignment) => vec![assignment.to_owned()],
        };
        if touch && !sets.is_empty() {
            sets.push(format!("updated_at = {}", self.now()));
        }
        let conflict = if sets.is_empty() {
            String::new()
        } else {
            format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                sets.join(", ")
            )
        };
        format!("INSERT INTO {table} ({names}) {rows}{conflict}")
    }
}

/// A statement made here from the tables' constant column lists and
/// statement text: no value is ever formatted into it (values are bound),
/// which is what sqlx asks a dynamic statement to promise.
pub fn made(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// The names of `columns`.
pub fn names(columns: &[Column]) -> Vec<&'static str> {
    columns.iter().map(|c| c.name).collect()
}

/// A row with the times the database keeps for it (as history and the
/// console show it), and which of its columns hold what the schema does
/// not promise (`damaged`, e.g. `["amount"]`, absent from JSON when none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Stored<T> {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub row: T,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[sqlx(skip)]
    pub damaged: Vec<&'static str>,
}

impl<T> std::ops::Deref for Stored<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.row
    }
}

/// A row whose stored amounts are shown to operators: made canonical, or
/// kept as stored and named damaged.
pub trait ShownAmounts {
    /// Makes each amount canonical text; returns the columns that hold
    /// something else.
    fn canonical_amounts(&mut self) -> Vec<&'static str>;
}

impl<T: ShownAmounts> Stored<T> {
    /// The row with its amounts canonical and the damaged ones named.
    pub fn shown(mut self) -> Self {
        self.damaged = self.row.canonical_amounts();
        self
    }

    /// ` (amount damaged)` naming the damaged columns, or nothing.
    pub fn damage_note(&self) -> String {
        if self.damaged.is_empty() {
            String::new()
        } else {
            format!(" ({} damaged)", self.damaged.join(", "))
        }
    }
}

/// Makes a stored amount canonical text (PostgreSQL may add trailing
/// zeros); one that does not parse stays as stored and `column` goes into
/// `damaged`.
pub fn canonical(text: &mut String, column: &'static str, damaged: &mut Vec<&'static str>) {
    match amount(text) {
        Ok(amount) => *text = amount.to_string(),
        Err(_) => damaged.push(column),
    }
}

/// [`canonical`] of an amount that may be absent.
pub fn canonical_opt(
    text: &mut Option<String>,
    column: &'static str,
    damaged: &mut Vec<&'static str>,
) {
    if let Some(text) = text {
        canonical(text, column, damaged);
    }
}

/// Reads a stored amount; anything unparsable is corrupt data, not a zero.
/// PostgreSQL may render `NUMERIC` with trailing zeros beyond two decimals
/// (`7000.000`), so those are trimmed first.
pub fn amount(text: &str) -> Result<Amount, StoreError> {
    let trimmed = match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => text.to_owned(),
    };
    trimmed
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("amount {text:?}: {e}")))
}

/// Reads a stored status word with the given parser.
pub fn status<T>(text: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown status {text:?}")))
}

/// A value that may fail to decode without failing its whole query: an
/// order row written malformed by an internal service must not take the
/// callbacks of other orders down with it. Any stored type is accepted by
/// the query; a value whose own type is not `T`'s (SQLite keeps a BLOB in
/// a TEXT column as a BLOB) or that does not decode is `Err(why)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lenient<T>(pub Result<T, String>);

impl<DB: sqlx::Database, T: sqlx::Type<DB>> sqlx::Type<DB> for Lenient<T> {
    fn type_info() -> DB::TypeInfo {
        T::type_info()
    }

    /// Every column type: the check is made per value, in `decode`.
    fn compatible(_: &DB::TypeInfo) -> bool {
        true
    }
}

impl<'r, DB: sqlx::Database, T: sqlx::Type<DB> + sqlx::Decode<'r, DB>> sqlx::Decode<'r, DB>
    for Lenient<T>
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::{TypeInfo, ValueRef};
        let stored = value.type_info();
        if !value.is_null() && !T::compatible(&stored) {
            return Ok(Lenient(Err(format!("stored as {}", stored.name()))));
        }
        Ok(Lenient(T::decode(value).map_err(|e| e.to_string())))
    }
}

/// The value, or why there is none, as an operator is shown it.
impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Ok(value) => value.serialize(serializer),
            Err(why) => serializer.serialize_str(&format!("(unreadable: {why})")),
        }
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Lenient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(value) => value.fmt(f),
            Err(why) => write!(f, "(unreadable: {why})"),
        }
    }
}

impl<T> Lenient<T> {
    /// The value as `show` renders it, or why there is none.
    pub fn shown(&self, show: impl FnOnce(&T) -> String) -> String {
        match &self.0 {
            Ok(value) => show(value),
            Err(why) => format!("(unreadable: {why})"),
        }
    }

    /// The value, or why there is none as damaged data in `column`.
    pub fn value(self, column: &str) -> Result<T, StoreError> {
        self.0
            .map_err(|why| StoreError::Corrupt(format!("{column}: {why}")))
    }
}

/// The returned id of an inserted row.
#[derive(Debug, sqlx::FromRow)]
pub struct IdRow {
    pub id: i64,
}
