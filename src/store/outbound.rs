//! `outbound_tasks`: the work the service does towards FreedomPay (status
//! queries for callbacks that never came, refunds), claimed by one instance
//! at a time. A claim is a lease: one statement marks due tasks as this
//! claimer's until `lease_until` (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
//! that instances sharing a database take different tasks without waiting on
//! each other). Every later write names the claimer, so an instance whose
//! lease ran out cannot overwrite what another instance did since.
//!
//! Times come from the database's clock on both backends, so instances with
//! skewed clocks still agree on what is due. Money is bound as canonical
//! decimal text and read back as text, as everywhere in the store.
//!
//! The task model itself (`Task`, `TaskKind`, `RefundStage`, ...) is the
//! reconciler's (`crate::domain::task`); this module stores it.

use super::{Store, StoreError};
use crate::domain::task::{NewTask, RefundStage, Task, TaskKind, TaskState};
use crate::protocol::Amount;

/// The SQL of one backend; the code around it is the same for both.
struct Dialect {
    find_pending_payments: &'static str,
    find_stalled_payouts: &'static str,
    find_refunds_needed: &'static str,
    insert: &'static str,
    claim: &'static str,
    claim_one: &'static str,
    insert_payout: &'static str,
    save: &'static str,
    by_id: &'static str,
    by_subject: &'static str,
}

macro_rules! pg_columns {
    () => {
        "id, merchant_id, task, subject_id, task_key, state, stage, method, request_id, \
         amount::text AS amount, confirm_total::text AS confirm_total, refund_id, attempts, \
         last_error, outcome, lease_owner"
    };
}
macro_rules! sqlite_columns {
    () => {
        "id, merchant_id, task, subject_id, task_key, state, stage, method, request_id, \
         amount, confirm_total, refund_id, attempts, last_error, outcome, lease_owner"
    };
}

const POSTGRES: Dialect = Dialect {
    find_pending_payments: "INSERT INTO outbound_tasks (merchant_id, task, subject_id) \
        SELECT merchant_id, 'payment_status', payment_id FROM payments \
        WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1::bigint) \
        ON CONFLICT DO NOTHING",
    find_stalled_payouts: "INSERT INTO outbound_tasks (merchant_id, task, subject_id) \
        SELECT merchant_id, 'payout_status', order_id FROM payouts \
        WHERE status = 'process' AND updated_at < now() - make_interval(secs => $1::bigint) \
        ON CONFLICT DO NOTHING",
    find_refunds_needed: "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, stage, method) \
        SELECT merchant_id, 'refund', payment_id, 'auto', 'new', $2::text FROM payments \
        WHERE needs_refund AND merchant_id = $1 \
        ON CONFLICT DO NOTHING",
    insert: "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, stage, method, \
        request_id, amount, confirm_total, next_attempt_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::numeric, $9::text::numeric, \
        now() + make_interval(secs => $10::bigint)) ON CONFLICT DO NOTHING RETURNING id",
    claim: concat!(
        "UPDATE outbound_tasks SET lease_until = now() + make_interval(secs => $1::bigint), \
         lease_owner = $2, updated_at = now() \
         WHERE id IN (SELECT id FROM outbound_tasks WHERE state = 'open' AND next_attempt_at <= now() \
           AND (lease_until IS NULL OR lease_until < now()) \
           ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        pg_columns!()
    ),
    claim_one: concat!(
        "UPDATE outbound_tasks SET lease_until = now() + make_interval(secs => $1::bigint), \
         lease_owner = $2, updated_at = now() \
         WHERE id IN (SELECT id FROM outbound_tasks WHERE id = $3 AND state = 'open' \
           AND (lease_until IS NULL OR lease_until < now()) FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        pg_columns!()
    ),
    insert_payout: "INSERT INTO payouts (merchant_id, order_id, status, amount) \
        VALUES ($1, $2, 'process', $3::text::numeric) ON CONFLICT DO NOTHING",
    save: "UPDATE outbound_tasks SET state = $3, stage = $4, method = $5, request_id = $6, \
        amount = $7::text::numeric, confirm_total = $8::text::numeric, refund_id = $9, attempts = $10, \
        last_error = $11, outcome = $12, next_attempt_at = now() + make_interval(secs => $13::bigint), \
        lease_until = CASE WHEN $14 THEN lease_until ELSE NULL END, updated_at = now() \
        WHERE id = $1 AND lease_owner = $2",
    by_id: concat!(
        "SELECT ",
        pg_columns!(),
        " FROM outbound_tasks WHERE id = $1"
    ),
    by_subject: concat!(
        "SELECT ",
        pg_columns!(),
        " FROM outbound_tasks WHERE merchant_id = $1 AND task = $2 AND subject_id = $3 ORDER BY id"
    ),
};

/// `?N` are SQLite's numbered parameters (its `$N` would be named ones).
const SQLITE: Dialect = Dialect {
    find_pending_payments: "INSERT INTO outbound_tasks (merchant_id, task, subject_id) \
        SELECT merchant_id, 'payment_status', payment_id FROM payments \
        WHERE status = 'pending' AND created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds') \
        ON CONFLICT DO NOTHING",
    find_stalled_payouts: "INSERT INTO outbound_tasks (merchant_id, task, subject_id) \
        SELECT merchant_id, 'payout_status', order_id FROM payouts \
        WHERE status = 'process' AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?1 || ' seconds') \
        ON CONFLICT DO NOTHING",
    find_refunds_needed: "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, stage, method) \
        SELECT merchant_id, 'refund', payment_id, 'auto', 'new', ?2 FROM payments \
        WHERE needs_refund = 1 AND merchant_id = ?1 \
        ON CONFLICT DO NOTHING",
    insert: "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, stage, method, \
        request_id, amount, confirm_total, next_attempt_at) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?10 || ' seconds')) ON CONFLICT DO NOTHING \
        RETURNING id",
    claim: concat!(
        "UPDATE outbound_tasks SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?1 || ' seconds'), \
         lease_owner = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
         WHERE id IN (SELECT id FROM outbound_tasks WHERE state = 'open' \
           AND next_attempt_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
           AND (lease_until IS NULL OR lease_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
           ORDER BY next_attempt_at LIMIT ?3) \
         RETURNING ",
        sqlite_columns!()
    ),
    claim_one: concat!(
        "UPDATE outbound_tasks SET lease_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?1 || ' seconds'), \
         lease_owner = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
         WHERE id = ?3 AND state = 'open' \
           AND (lease_until IS NULL OR lease_until < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
         RETURNING ",
        sqlite_columns!()
    ),
    insert_payout: "INSERT INTO payouts (merchant_id, order_id, status, amount) \
        VALUES (?1, ?2, 'process', ?3) ON CONFLICT DO NOTHING",
    save: "UPDATE outbound_tasks SET state = ?3, stage = ?4, method = ?5, request_id = ?6, \
        amount = ?7, confirm_total = ?8, refund_id = ?9, attempts = ?10, \
        last_error = ?11, outcome = ?12, \
        next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?13 || ' seconds'), \
        lease_until = CASE WHEN ?14 THEN lease_until ELSE NULL END, \
        updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
        WHERE id = ?1 AND lease_owner = ?2",
    by_id: concat!(
        "SELECT ",
        sqlite_columns!(),
        " FROM outbound_tasks WHERE id = ?1"
    ),
    by_subject: concat!(
        "SELECT ",
        sqlite_columns!(),
        " FROM outbound_tasks WHERE merchant_id = ?1 AND task = ?2 AND subject_id = ?3 ORDER BY id"
    ),
};

/// `outbound_tasks`, as read (money as text).
#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    id: i64,
    merchant_id: String,
    task: String,
    subject_id: String,
    task_key: String,
    state: String,
    stage: Option<String>,
    method: Option<String>,
    request_id: Option<String>,
    amount: Option<String>,
    confirm_total: Option<String>,
    refund_id: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    outcome: Option<String>,
    lease_owner: Option<String>,
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("outbound_tasks.{what} {text:?}"))
}

fn amount(text: Option<String>) -> Result<Option<Amount>, StoreError> {
    text.map(|t| super::schema::amount(&t)).transpose()
}

fn task(row: TaskRow) -> Result<Task, StoreError> {
    Ok(Task {
        id: row.id,
        merchant_id: row.merchant_id,
        kind: TaskKind::parse(&row.task).ok_or_else(|| corrupt("task", &row.task))?,
        subject_id: row.subject_id,
        task_key: row.task_key,
        state: match row.state.as_str() {
            "open" => TaskState::Open,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            other => return Err(corrupt("state", other)),
        },
        stage: row
            .stage
            .map(|s| RefundStage::parse(&s).ok_or_else(|| corrupt("stage", &s)))
            .transpose()?,
        method: row.method,
        request_id: row.request_id,
        amount: amount(row.amount)?,
        confirm_total: amount(row.confirm_total)?,
        refund_id: row.refund_id,
        attempts: row.attempts,
        last_error: row.last_error,
        outcome: row.outcome,
        lease_owner: row.lease_owner.unwrap_or_default(),
    })
}

/// Runs `$body` with the pool and the task SQL ([`Dialect`]) of the backend in use.
macro_rules! on_backend {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        with_dialect!($store, &POSTGRES, &SQLITE, |$pool, $sql| $body)
    };
}

impl Store {
    /// Creates the tasks that are due by now: payments seen at check and
    /// payouts still in `process` for longer than `after_secs`, and, for each
    /// `(merchant, method)` in `auto_refund`, a refund of every payment flagged
    /// `needs_refund`. Existing tasks are left as they are. Returns how many
    /// were created.
    pub async fn discover_tasks(
        &self,
        after_secs: u64,
        auto_refund: &[(&str, &str)],
    ) -> Result<u64, StoreError> {
        let after = i64::try_from(after_secs).unwrap_or(i64::MAX);
        on_backend!(self, |pool, sql| {
            let mut created = 0;
            for query in [sql.find_pending_payments, sql.find_stalled_payouts] {
                created += sqlx::query(query)
                    .bind(after)
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            for (merchant, method) in auto_refund {
                created += sqlx::query(sql.find_refunds_needed)
                    .bind(*merchant)
                    .bind(*method)
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            Ok(created)
        })
    }

    /// Creates `task` unless the same one exists; its id when created.
    pub async fn schedule_task(&self, task: &NewTask<'_>) -> Result<Option<i64>, StoreError> {
        let due = i64::try_from(task.due_in_secs).unwrap_or(i64::MAX);
        let created: Option<(i64,)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(sql.insert)
                .bind(task.merchant_id)
                .bind(task.kind.as_str())
                .bind(task.subject_id)
                .bind(task.task_key)
                .bind(task.stage.map(RefundStage::as_str))
                .bind(task.method)
                .bind(task.request_id)
                .bind(task.amount.map(|a| a.canonical()))
                .bind(task.confirm_total.map(|a| a.canonical()))
                .bind(due)
                .fetch_optional(pool)
                .await?
        });
        Ok(created.map(|(id,)| id))
    }

    /// Claims up to `limit` due tasks for `owner` for `lease_secs`.
    pub async fn claim_tasks(
        &self,
        owner: &str,
        lease_secs: u64,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let lease = i64::try_from(lease_secs).unwrap_or(i64::MAX);
        let rows: Vec<TaskRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(sql.claim)
                .bind(lease)
                .bind(owner)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(task).collect()
    }

    /// Claims the task `id` (open, not leased) for `owner`, whether due or not.
    pub async fn claim_task(
        &self,
        id: i64,
        owner: &str,
        lease_secs: u64,
    ) -> Result<Option<Task>, StoreError> {
        let lease = i64::try_from(lease_secs).unwrap_or(i64::MAX);
        let row: Option<TaskRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(sql.claim_one)
                .bind(lease)
                .bind(owner)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(task).transpose()
    }

    /// Records a payout we are about to request, in `process` until its
    /// notify or a status query settles it. False when the order id is taken.
    pub async fn record_payout_request(
        &self,
        merchant_id: &str,
        order_id: &str,
        amount: Amount,
    ) -> Result<bool, StoreError> {
        on_backend!(self, |pool, sql| {
            Ok(sqlx::query(sql.insert_payout)
                .bind(merchant_id)
                .bind(order_id)
                .bind(amount.canonical())
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    /// Writes `task` back, due again in `due_in_secs`. With `keep_lease` the
    /// claim stays (a call is about to be made); otherwise it is released.
    /// Returns false when the claim was lost (another instance took the task
    /// over after the lease ran out): nothing was written.
    pub async fn save_task(
        &self,
        task: &Task,
        due_in_secs: u64,
        keep_lease: bool,
    ) -> Result<bool, StoreError> {
        let due = i64::try_from(due_in_secs).unwrap_or(i64::MAX);
        on_backend!(self, |pool, sql| {
            Ok(sqlx::query(sql.save)
                .bind(task.id)
                .bind(&task.lease_owner)
                .bind(task.state.as_str())
                .bind(task.stage.map(RefundStage::as_str))
                .bind(&task.method)
                .bind(&task.request_id)
                .bind(task.amount.map(|a| a.canonical()))
                .bind(task.confirm_total.map(|a| a.canonical()))
                .bind(&task.refund_id)
                .bind(task.attempts)
                .bind(&task.last_error)
                .bind(&task.outcome)
                .bind(due)
                .bind(keep_lease)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    /// One task as stored (operators, tests).
    pub async fn task(&self, id: i64) -> Result<Option<Task>, StoreError> {
        let row: Option<TaskRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(sql.by_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(task).transpose()
    }

    /// Every task about `subject_id` of `kind`, oldest first (operators, tests).
    pub async fn tasks_for(
        &self,
        merchant_id: &str,
        kind: TaskKind,
        subject_id: &str,
    ) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<TaskRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(sql.by_subject)
                .bind(merchant_id)
                .bind(kind.as_str())
                .bind(subject_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(task).collect()
    }
}
