//! `outbound_tasks`: the work the service does towards FreedomPay (status
//! queries for callbacks that never came, refunds). The write path opens
//! status queries (`confirm` tasks); the reconciler finds, claims and saves
//! tasks (`store::outbound`); `history` and the console read them.
//!
//! Times come from the database's clock on both backends, so instances with
//! skewed clocks still agree on what is due.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Column, Dialect, ShownAmounts, amount, canonical_opt, money, plain};
use crate::domain::task::{RefundStage, Task, TaskKind, TaskState};
use crate::store::StoreError;

/// Every column the service reads, in one place.
pub const COLUMNS: &[Column] = &[
    plain("id"),
    plain("merchant_id"),
    plain("task"),
    plain("subject_id"),
    plain("task_key"),
    plain("state"),
    plain("stage"),
    plain("method"),
    plain("request_id"),
    money("amount"),
    money("confirm_total"),
    plain("refund_id"),
    plain("attempts"),
    plain("next_attempt_at"),
    plain("last_error"),
    plain("outcome"),
    plain("lease_owner"),
];

/// An `outbound_tasks` row (money as text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub merchant_id: String,
    pub task: String,
    pub subject_id: String,
    pub task_key: String,
    pub state: String,
    pub stage: Option<String>,
    pub method: Option<String>,
    pub request_id: Option<String>,
    pub amount: Option<String>,
    pub confirm_total: Option<String>,
    pub refund_id: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub lease_owner: Option<String>,
}

/// A status query to open (or bring forward), as the write path makes it:
/// a task with task key `confirm`.
#[derive(Debug, Serialize)]
pub struct ConfirmRow {
    pub merchant_id: String,
    pub task: &'static str,
    pub subject_id: String,
    pub due_in_secs: i64,
}

/// The write path's status queries (`$1` a JSON array of [`ConfirmRow`]s).
/// A finished query of the same subject is opened again: this is a new
/// question about it. An open one is only brought forward, never put off.
pub fn open_confirms(d: Dialect, param: usize) -> String {
    let (rows, due, earliest) = match d {
        Dialect::Postgres => (
            format!(
                "SELECT merchant_id, task, subject_id, 'confirm', \
                 now() + make_interval(secs => due_in_secs) \
                 FROM jsonb_to_recordset(${param}::jsonb) \
                 AS r(merchant_id text, task text, subject_id text, due_in_secs bigint)"
            ),
            "EXCLUDED.next_attempt_at",
            "LEAST",
        ),
        Dialect::Sqlite => (
            format!(
                "SELECT value ->> 'merchant_id', value ->> 'task', value ->> 'subject_id', \
                 'confirm', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (value ->> 'due_in_secs') \
                 || ' seconds') FROM json_each(?{param}) WHERE true"
            ),
            "excluded.next_attempt_at",
            "min",
        ),
    };
    format!(
        "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, next_attempt_at) {rows} \
         ON CONFLICT (merchant_id, task, subject_id, task_key) DO UPDATE SET state = 'open', \
         attempts = CASE WHEN outbound_tasks.state <> 'open' THEN 0 ELSE outbound_tasks.attempts END, \
         last_error = CASE WHEN outbound_tasks.state <> 'open' THEN NULL ELSE outbound_tasks.last_error END, \
         next_attempt_at = CASE WHEN outbound_tasks.state <> 'open' THEN {due} \
           ELSE {earliest}(outbound_tasks.next_attempt_at, {due}) END, \
         updated_at = {}",
        d.now()
    )
}

/// Rows where `filter` (in terms of `t.`) holds, with their times.
pub fn stored_where(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT {}, t.created_at, t.updated_at FROM outbound_tasks AS t WHERE {filter}",
        d.select("t", COLUMNS)
    )
}

/// Rows where `filter` (in terms of `t.`) holds.
pub fn where_(d: Dialect, filter: &str) -> String {
    format!(
        "SELECT {} FROM outbound_tasks AS t WHERE {filter}",
        d.select("t", COLUMNS)
    )
}

/// The columns as an `UPDATE … RETURNING` names them.
pub fn returning(d: Dialect) -> String {
    d.select("", COLUMNS)
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("outbound_tasks.{what} {text:?}"))
}

impl TaskRow {
    pub fn into_task(self) -> Result<Task, StoreError> {
        let amount = |text: Option<String>| text.map(|t| amount(&t)).transpose();
        Ok(Task {
            id: self.id,
            merchant_id: self.merchant_id,
            kind: TaskKind::parse(&self.task).ok_or_else(|| corrupt("task", &self.task))?,
            subject_id: self.subject_id,
            task_key: self.task_key,
            state: match self.state.as_str() {
                "open" => TaskState::Open,
                "done" => TaskState::Done,
                "failed" => TaskState::Failed,
                other => return Err(corrupt("state", other)),
            },
            stage: self
                .stage
                .map(|s| RefundStage::parse(&s).ok_or_else(|| corrupt("stage", &s)))
                .transpose()?,
            method: self.method,
            request_id: self.request_id,
            amount: amount(self.amount)?,
            confirm_total: amount(self.confirm_total)?,
            refund_id: self.refund_id,
            attempts: self.attempts,
            last_error: self.last_error,
            outcome: self.outcome,
            // A task no one has claimed has no owner; saving it needs a claim.
            lease_owner: self.lease_owner.unwrap_or_default(),
        })
    }
}

impl ShownAmounts for TaskRow {
    fn canonical_amounts(&mut self) -> Vec<&'static str> {
        let mut damaged = Vec::new();
        canonical_opt(&mut self.amount, "amount", &mut damaged);
        canonical_opt(&mut self.confirm_total, "confirm_total", &mut damaged);
        damaged
    }
}
