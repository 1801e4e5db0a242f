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

use super::tables::{Dialect, made, outbound_tasks, payouts};
use super::{Store, StoreError};
use crate::domain::task::{NewTask, RefundStage, Task, TaskKind};
use crate::protocol::Amount;

/// The reconciler's statements where the backends differ; the rows and the
/// column list are the table's (`tables::outbound_tasks`).
fn sql(d: Dialect, which: Statement) -> String {
    let p = |n| d.param(n);
    let now = d.now();
    // A time `secs` (a parameter) from now, or before it.
    let from_now = |n: usize, sign: char| match d {
        Dialect::Postgres => format!("now() {sign} make_interval(secs => ${n}::bigint)"),
        Dialect::Sqlite => {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '{sign}' || ?{n} || ' seconds')")
        }
    };
    let money = |n: usize| match d {
        Dialect::Postgres => format!("${n}::text::numeric"),
        Dialect::Sqlite => format!("?{n}"),
    };
    match which {
        Statement::Insert => format!(
            "INSERT INTO outbound_tasks (merchant_id, task, subject_id, task_key, stage, method, \
             request_id, amount, confirm_total, next_attempt_at) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            money(8),
            money(9),
            from_now(10, '+')
        ),
        // PostgreSQL: `FOR UPDATE SKIP LOCKED`, so that instances sharing a
        // database take different tasks without waiting on each other;
        // SQLite has one writer.
        Statement::Claim | Statement::ClaimOne => {
            let which_tasks = match which {
                Statement::Claim => format!(
                    "state = 'open' AND next_attempt_at <= {now} \
                     AND (lease_until IS NULL OR lease_until < {now}) \
                     ORDER BY next_attempt_at LIMIT {}",
                    p(3)
                ),
                _ => format!(
                    "id = {} AND state = 'open' AND (lease_until IS NULL OR lease_until < {now})",
                    p(3)
                ),
            };
            let skip_locked = match d {
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
                Dialect::Sqlite => "",
            };
            format!(
                "UPDATE outbound_tasks SET lease_until = {}, lease_owner = {}, updated_at = {now} \
                 WHERE id IN (SELECT id FROM outbound_tasks WHERE {which_tasks}{skip_locked}) \
                 RETURNING {}",
                from_now(1, '+'),
                p(2),
                outbound_tasks::returning(d)
            )
        }
        Statement::Save => format!(
            "UPDATE outbound_tasks SET state = {}, stage = {}, method = {}, request_id = {}, \
             amount = {}, confirm_total = {}, refund_id = {}, attempts = {}, \
             last_error = {}, outcome = {}, next_attempt_at = {}, \
             lease_until = CASE WHEN {} THEN lease_until ELSE NULL END, updated_at = {now} \
             WHERE id = {} AND lease_owner = {}",
            p(3),
            p(4),
            p(5),
            p(6),
            money(7),
            money(8),
            p(9),
            p(10),
            p(11),
            p(12),
            from_now(13, '+'),
            p(14),
            p(1),
            p(2)
        ),
        Statement::ById => outbound_tasks::where_(d, &format!("t.id = {}", p(1))),
        Statement::BySubject => outbound_tasks::where_(
            d,
            &format!(
                "t.merchant_id = {} AND t.task = {} AND t.subject_id = {} ORDER BY t.id",
                p(1),
                p(2),
                p(3)
            ),
        ),
    }
}

/// The statements of [`sql`].
#[derive(Clone, Copy, Debug)]
enum Statement {
    Insert,
    Claim,
    ClaimOne,
    Save,
    ById,
    BySubject,
}

/// Due work the reconciler looks for: searched on the read pool, created
/// on the primary with its condition checked again ([`Store::discover_tasks`]).
#[derive(Clone, Copy, Debug)]
enum Due {
    /// Payments seen at check and no result for longer than `$n` seconds.
    PendingPayments,
    /// Payouts still in `process` for longer than `$n` seconds.
    StalledPayouts,
    /// Payments flagged `needs_refund`, of one merchant.
    RefundsNeeded,
}

/// A candidate of a search: the subject of the task it would create.
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
struct Candidate {
    merchant_id: String,
    subject_id: String,
}

impl Due {
    /// The table searched, and its subject's key column (with `merchant_id`).
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Due::PendingPayments | Due::RefundsNeeded => ("payments", "payment_id"),
            Due::StalledPayouts => ("payouts", "order_id"),
        }
    }

    /// What makes a row (`p`) due; `n`: the parameter holding the seconds.
    /// `<=`, not `<`: SQLite's clock has milliseconds, so with
    /// `after_secs = 0` a payment made in the same millisecond as the search
    /// is due too (with `<` it was not, and a test saw it once).
    fn condition(self, d: Dialect, n: usize) -> String {
        let before = |column: &str| match d {
            Dialect::Postgres => {
                format!("p.{column} <= now() - make_interval(secs => ${n}::bigint)")
            }
            Dialect::Sqlite => format!(
                "p.{column} <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ?{n} || ' seconds')"
            ),
        };
        match self {
            Due::PendingPayments => format!("p.status = 'pending' AND {}", before("created_at")),
            Due::StalledPayouts => format!("p.status = 'process' AND {}", before("updated_at")),
            Due::RefundsNeeded => "p.needs_refund".to_owned(),
        }
    }

    /// The search: `$1` the seconds (or, for refunds, the merchant).
    fn search(self, d: Dialect) -> String {
        let (table, id) = self.table();
        let condition = match self {
            Due::RefundsNeeded => format!(
                "p.merchant_id = {} AND {}",
                d.param(1),
                self.condition(d, 1)
            ),
            _ => self.condition(d, 1),
        };
        format!("SELECT p.merchant_id, p.{id} AS subject_id FROM {table} AS p WHERE {condition}")
    }

    /// The insert of the tasks: `$1` a JSON array of [`Candidate`]s, each
    /// row found by its primary key; `$2` the seconds (or, for refunds, the
    /// method).
    fn create(self, d: Dialect) -> String {
        let (table, id) = self.table();
        let candidates = match d {
            Dialect::Postgres => format!(
                "jsonb_to_recordset($1::jsonb) AS c(merchant_id text, subject_id text) \
                 CROSS JOIN LATERAL (SELECT * FROM {table} AS t \
                 WHERE t.merchant_id = c.merchant_id AND t.{id} = c.subject_id LIMIT 1) AS p"
            ),
            Dialect::Sqlite => format!(
                "json_each(?1) AS c CROSS JOIN {table} AS p \
                 ON p.merchant_id = c.value ->> 'merchant_id' AND p.{id} = c.value ->> 'subject_id'"
            ),
        };
        let (task, more_columns, more_values) = match self {
            Due::PendingPayments => ("payment_status", "", ""),
            Due::StalledPayouts => ("payout_status", "", ""),
            Due::RefundsNeeded => (
                "refund",
                ", task_key, stage, method",
                match d {
                    Dialect::Postgres => ", 'auto', 'new', $2::text",
                    Dialect::Sqlite => ", 'auto', 'new', ?2",
                },
            ),
        };
        // Refunds' condition has no parameter: their `$2` is the method.
        format!(
            "INSERT INTO outbound_tasks (merchant_id, task, subject_id{more_columns}) \
             SELECT p.merchant_id, '{task}', p.{id}{more_values} FROM {candidates} \
             WHERE {} ON CONFLICT DO NOTHING",
            self.condition(d, 2)
        )
    }
}

/// Runs `$body` with the pool and the [`Dialect`] of the backend in use.
macro_rules! on_backend {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        with_dialect!($store, Dialect::Postgres, Dialect::Sqlite, |$pool, $sql| {
            $body
        })
    };
}

impl Store {
    /// Creates the tasks that are due by now: payments seen at check and
    /// payouts still in `process` for longer than `after_secs`, and, for each
    /// `(merchant, method)` in `auto_refund`, a refund of every payment flagged
    /// `needs_refund`. Existing tasks are left as they are. Returns how many
    /// were created.
    ///
    /// Each search reads a whole table, so it runs on the read pool (a
    /// standby when `database.read_url` is set, so that it never competes
    /// with callbacks); its candidates' tasks are created on the primary,
    /// where each candidate's condition is checked again by primary key (a
    /// standby may lag: a payment it still shows pending may be settled).
    pub async fn discover_tasks(
        &self,
        after_secs: u64,
        auto_refund: &[(&str, &str)],
    ) -> Result<u64, StoreError> {
        let after = i64::try_from(after_secs).unwrap_or(i64::MAX).to_string();
        let mut created = 0;
        for due in [Due::PendingPayments, Due::StalledPayouts] {
            let found = self.search_due(due, &after).await?;
            created += self.create_due(due, &found, &after).await?;
        }
        for (merchant, method) in auto_refund {
            let found = self.search_due(Due::RefundsNeeded, merchant).await?;
            created += self.create_due(Due::RefundsNeeded, &found, method).await?;
        }
        Ok(created)
    }

    /// The candidates of `due` (`param`: its search's parameter), read
    /// from the read pool.
    async fn search_due(&self, due: Due, param: &str) -> Result<Vec<Candidate>, StoreError> {
        with_read_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            Ok(sqlx::query_as(made(due.search(d)))
                .bind(param)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Creates the tasks of those `found` that are still due on the
    /// primary (`param`: the creating statement's parameter).
    async fn create_due(
        &self,
        due: Due,
        found: &[Candidate],
        param: &str,
    ) -> Result<u64, StoreError> {
        if found.is_empty() {
            return Ok(0);
        }
        let found = serde_json::to_string(found)
            .map_err(|e| StoreError::Corrupt(format!("candidates: {e}")))?;
        on_backend!(self, |pool, d| {
            Ok(sqlx::query(made(due.create(d)))
                .bind(&found)
                .bind(param)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// Creates `task` unless the same one exists; its id when created.
    pub async fn schedule_task(&self, task: &NewTask<'_>) -> Result<Option<i64>, StoreError> {
        let due = i64::try_from(task.due_in_secs).unwrap_or(i64::MAX);
        let created: Option<i64> = on_backend!(self, |pool, d| {
            sqlx::query_scalar(made(sql(d, Statement::Insert)))
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
        Ok(created)
    }

    /// Claims up to `limit` due tasks for `owner` for `lease_secs`.
    pub async fn claim_tasks(
        &self,
        owner: &str,
        lease_secs: u64,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let lease = i64::try_from(lease_secs).unwrap_or(i64::MAX);
        let rows: Vec<outbound_tasks::TaskRow> = on_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Statement::Claim)))
                .bind(lease)
                .bind(owner)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(outbound_tasks::TaskRow::into_task)
            .collect()
    }

    /// Claims the task `id` (open, not leased) for `owner`, whether due or not.
    pub async fn claim_task(
        &self,
        id: i64,
        owner: &str,
        lease_secs: u64,
    ) -> Result<Option<Task>, StoreError> {
        let lease = i64::try_from(lease_secs).unwrap_or(i64::MAX);
        let row: Option<outbound_tasks::TaskRow> = on_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Statement::ClaimOne)))
                .bind(lease)
                .bind(owner)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(outbound_tasks::TaskRow::into_task).transpose()
    }

    /// Records a payout we are about to request, in `process` until its
    /// notify or a status query settles it. False when the order id is taken.
    pub async fn record_payout_request(
        &self,
        merchant_id: &str,
        order_id: &str,
        amount: Amount,
    ) -> Result<bool, StoreError> {
        on_backend!(self, |pool, d| {
            Ok(sqlx::query(made(payouts::insert_requested(d)))
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
        on_backend!(self, |pool, d| {
            Ok(sqlx::query(made(sql(d, Statement::Save)))
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
        let row: Option<outbound_tasks::TaskRow> = on_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Statement::ById)))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(outbound_tasks::TaskRow::into_task).transpose()
    }

    /// Every task about `subject_id` of `kind`, oldest first (operators, tests).
    pub async fn tasks_for(
        &self,
        merchant_id: &str,
        kind: TaskKind,
        subject_id: &str,
    ) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<outbound_tasks::TaskRow> = on_backend!(self, |pool, d| {
            sqlx::query_as(made(sql(d, Statement::BySubject)))
                .bind(merchant_id)
                .bind(kind.as_str())
                .bind(subject_id)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(outbound_tasks::TaskRow::into_task)
            .collect()
    }
}
