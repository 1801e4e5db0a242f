//! Retention's statements (the job is `crate::retention`): the months of the
//! event log older than a cutoff, their rows for the archive, deleting
//! exactly the archived rows (or dropping a month's partition on
//! PostgreSQL), the other tables' old rows, the personal-data rewrite, the
//! job's lease (`tables::maintenance_runs`) and the log's size for the
//! console and the metrics.
//!
//! **Kept rows.** An event is never deleted while it may still be needed:
//! a flagged or conflicting event (an operator's evidence), or an event of a
//! payment still waiting for its refund (`needs_refund`). Such rows stay in
//! the table, and a PostgreSQL month that holds any loses its other rows one
//! batch at a time instead of as a whole partition.

use chrono::{DateTime, Utc};

use super::postgres::partitions::{self, Partition};
use super::tables::events::{self, EventRow};
use super::tables::{Dialect, made, maintenance_runs};
use super::{Store, StoreError};

/// The condition of a kept row (module docs), in terms of `e.`.
const KEPT: &str = "(e.flag IS NOT NULL OR e.conflict OR EXISTS (SELECT 1 FROM payments AS p \
     WHERE p.merchant_id = e.merchant_id AND p.payment_id = e.payment_id AND p.needs_refund))";

/// One calendar month of the log older than the cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// Its first instant (UTC).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Its rows in the log now.
    pub rows: i64,
    /// Those of them that are kept (module docs).
    pub kept: i64,
    /// Its partition on PostgreSQL, when the month is exactly one.
    pub partition: Option<String>,
}

impl Month {
    /// `2026-01`.
    pub fn label(&self) -> String {
        self.start.format("%Y-%m").to_string()
    }
}

/// The size of the log, for the console and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogSize {
    /// Bytes on disk of the events table (its partitions, indexes
    /// included) on PostgreSQL; of the whole database file on SQLite.
    pub bytes: i64,
    pub oldest: Option<DateTime<Utc>>,
    /// PostgreSQL: the partitions of `events`; 0 for a plain table.
    pub partitions: i64,
    /// PostgreSQL: whole months after the current one with a partition
    /// ready (the service keeps `partitions::MONTHS_AHEAD`).
    pub months_ahead: i64,
}

/// What the old-row cleanup of the other tables deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherRows {
    pub decisions: u64,
    pub tasks: u64,
}

/// An event's id, time and fields, for the personal-data rewrite.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventFields {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub fields: String,
}

impl Store {
    /// The months with events received before `cutoff` (a month start),
    /// oldest first, with their kept rows counted.
    pub async fn retention_months(&self, cutoff: DateTime<Utc>) -> Result<Vec<Month>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Counted {
            month: String,
            rows: i64,
            kept: i64,
        }
        let counted: Vec<Counted> =
            with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
                let month = match d {
                    Dialect::Postgres => "to_char(e.received_at AT TIME ZONE 'UTC', 'YYYY-MM')",
                    Dialect::Sqlite => "substr(e.received_at, 1, 7)",
                };
                let sql = format!(
                    "SELECT {month} AS month, count(*) AS rows, \
                 sum(CASE WHEN {KEPT} THEN 1 ELSE 0 END) AS kept \
                 FROM events AS e WHERE e.received_at < {} GROUP BY 1 ORDER BY 1",
                    time_param(d, 1)
                );
                sqlx::query_as(made(sql))
                    .bind(time_arg(d, cutoff))
                    .fetch_all(pool)
                    .await?
            });
        let partitions = self.partitions().await?;
        let mut months = Vec::with_capacity(counted.len());
        for c in counted {
            let start = parse_month(&c.month)?;
            let end = partitions::next_month(start);
            let partition = partitions
                .iter()
                .find(|p| p.lower == Some(start) && p.upper == end)
                .map(|p| p.name.clone());
            months.push(Month {
                start,
                end,
                rows: c.rows,
                kept: c.kept,
                partition,
            });
        }
        Ok(months)
    }

    /// The partitions of `events` (PostgreSQL; none on SQLite or for a
    /// plain table).
    pub async fn partitions(&self) -> Result<Vec<Partition>, StoreError> {
        match self {
            Store::Postgres(s) => {
                let mut conn = s.pool().acquire().await?;
                partitions::list(&mut conn).await
            }
            Store::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// Makes the months of partitions ahead that are missing (PostgreSQL).
    pub async fn ensure_partitions(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Postgres(s) => partitions::ensure_ahead(s.pool()).await,
            Store::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// Hands every row of `month` that is not kept to `sink`, in id order;
    /// returns how many. Reads only, `page` rows at a time, each page a
    /// short read of its own: one long read of a month would keep SQLite's
    /// WAL from being checkpointed for the whole archive (the WAL grows and
    /// every callback's commit gets slower) and PostgreSQL's vacuum from
    /// cleaning any table meanwhile.
    pub async fn archive_rows(
        &self,
        month: &Month,
        page: u32,
        mut sink: impl FnMut(&EventRow) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let mut rows = 0;
        let mut after = i64::MIN;
        loop {
            let found = with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
                let sql = events::where_(
                    d,
                    &format!(
                        "e.received_at >= {} AND e.received_at < {} AND e.id > {} AND NOT {KEPT} \
                         ORDER BY e.id LIMIT {}",
                        time_param(d, 1),
                        time_param(d, 2),
                        d.param(3),
                        d.param(4),
                    ),
                );
                sqlx::query_as::<_, EventRow>(made(sql))
                    .bind(time_arg(d, month.start))
                    .bind(time_arg(d, month.end))
                    .bind(after)
                    .bind(i64::from(page.max(1)))
                    .fetch_all(pool)
                    .await?
            });
            let Some(last) = found.last() else {
                return Ok(rows);
            };
            after = last.id;
            for row in &found {
                sink(row).map_err(|e| StoreError::Archive(e.to_string()))?;
                rows += 1;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Deletes the events `ids` of `month` (those an archive holds) in one
    /// transaction; returns how many went. Kept rows are never deleted, even
    /// if named. On SQLite the stored decisions that name them go first, in
    /// the same transaction (its foreign key, looked up by
    /// `callback_decisions_by_event`); PostgreSQL has no such key, and its
    /// decisions go by age ([`Store::delete_other_rows`]: a decision is
    /// written in its event's transaction, with the same time).
    pub async fn delete_events(&self, month: &Month, ids: &[i64]) -> Result<u64, StoreError> {
        let ids_text = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let deleted = with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let in_ids = match d {
                Dialect::Postgres => "= ANY(string_to_array($1, ',')::bigint[])",
                Dialect::Sqlite => "IN (SELECT value FROM json_each('[' || ?1 || ']'))",
            };
            let decisions = format!("DELETE FROM callback_decisions WHERE event_id {in_ids}");
            let events = format!(
                "DELETE FROM events AS e WHERE e.id {in_ids} AND e.received_at >= {} \
                 AND e.received_at < {} AND NOT {KEPT}",
                time_param(d, 2),
                time_param(d, 3)
            );
            let mut tx = pool.begin().await?;
            if d == Dialect::Sqlite {
                sqlx::query(made(decisions))
                    .bind(&ids_text)
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query(made(events))
                .bind(&ids_text)
                .bind(time_arg(d, month.start))
                .bind(time_arg(d, month.end))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(deleted)
    }

    /// SQLite: copies into the database file what the WAL holds, as far as
    /// readers allow, waiting for no one (`PRAGMA wal_checkpoint(PASSIVE)`
    /// takes no write lock); nothing on PostgreSQL. The retention run calls
    /// it in its pause after each batch: otherwise the callbacks' writer, at
    /// its commit that crosses SQLite's automatic checkpoint threshold,
    /// would copy every page the batches wrote, and every callback would
    /// wait for it (a 273.5 ms stall in one benchmark run).
    pub async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        if let Store::Sqlite(s) = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(s.pool())
                .await?;
        }
        Ok(())
    }

    /// Drops a month's partition as a whole (PostgreSQL): detached without
    /// stopping inserts into the others, then dropped.
    pub async fn drop_month(&self, month: &Month) -> Result<(), StoreError> {
        let (Store::Postgres(s), Some(name)) = (self, &month.partition) else {
            return Err(StoreError::Corrupt(format!(
                "month {} is not a partition",
                month.label()
            )));
        };
        partitions::detach_and_drop(s.pool(), name).await
    }

    /// Deletes the stored decisions created before `cutoff` and the
    /// finished status queries last changed before it: on SQLite up to
    /// `batch` of each (the caller repeats until nothing is left: a batch
    /// holds the one write lock); on PostgreSQL all at once (a deletion locks
    /// only its rows, and each batch would read the table again). Refund
    /// tasks stay: each one's key is what makes a refund happen once.
    pub async fn delete_other_rows(
        &self,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<OtherRows, StoreError> {
        let (decisions, tasks) = with_dialect!(
            self,
            Dialect::Postgres,
            Dialect::Sqlite,
            |pool, d| {
                let (decisions, tasks) = match d {
                    Dialect::Postgres => (
                        "DELETE FROM callback_decisions WHERE created_at < $1::timestamptz AND $2::int8 > 0",
                        "DELETE FROM outbound_tasks WHERE state <> 'open' AND task <> 'refund' \
                     AND updated_at < $1::timestamptz AND $2::int8 > 0",
                    ),
                    Dialect::Sqlite => (
                        "DELETE FROM callback_decisions WHERE rowid IN (SELECT rowid FROM \
                     callback_decisions WHERE created_at < ?1 LIMIT ?2)",
                        "DELETE FROM outbound_tasks WHERE id IN (SELECT id FROM outbound_tasks \
                     WHERE state <> 'open' AND task <> 'refund' AND updated_at < ?1 LIMIT ?2)",
                    ),
                };
                let decisions = sqlx::query(decisions)
                    .bind(time_arg(d, cutoff))
                    .bind(i64::from(batch))
                    .execute(pool)
                    .await?
                    .rows_affected();
                let tasks = sqlx::query(tasks)
                    .bind(time_arg(d, cutoff))
                    .bind(i64::from(batch))
                    .execute(pool)
                    .await?
                    .rows_affected();
                (decisions, tasks)
            }
        );
        Ok(OtherRows { decisions, tasks })
    }

    /// What [`Store::delete_other_rows`] would delete now.
    pub async fn count_other_rows(&self, cutoff: DateTime<Utc>) -> Result<OtherRows, StoreError> {
        let (decisions, tasks): (i64, i64) =
            with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
                let sql = format!(
                    "SELECT (SELECT count(*) FROM callback_decisions WHERE created_at < {p}), \
                 (SELECT count(*) FROM outbound_tasks WHERE state <> 'open' AND task <> 'refund' \
                 AND updated_at < {p})",
                    p = time_param(d, 1)
                );
                sqlx::query_as(made(sql))
                    .bind(time_arg(d, cutoff))
                    .fetch_one(pool)
                    .await?
            });
        Ok(OtherRows {
            decisions: u64::try_from(decisions).unwrap_or(0),
            tasks: u64::try_from(tasks).unwrap_or(0),
        })
    }

    /// Up to `limit` events after id `after`, in id order, for the
    /// personal-data rewrite.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventFields>, StoreError> {
        let rows = with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let sql = match d {
                Dialect::Postgres => {
                    "SELECT id, received_at, fields::text AS fields FROM events WHERE id > $1 ORDER BY id LIMIT $2"
                }
                Dialect::Sqlite => {
                    "SELECT id, received_at, fields FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
                }
            };
            sqlx::query_as(sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Writes rewritten fields of events (one transaction) and moves the
    /// job's expunge cursor to `through`.
    pub async fn rewrite_fields(
        &self,
        rewritten: &[EventFields],
        through: i64,
    ) -> Result<(), StoreError> {
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            let mut tx = pool.begin().await?;
            for row in rewritten {
                // PostgreSQL: the time names the row's partition.
                let update = match d {
                    Dialect::Postgres => sqlx::query(
                        "UPDATE events SET fields = $2::jsonb WHERE id = $1 AND received_at = $3::timestamptz",
                    )
                    .bind(row.id)
                    .bind(&row.fields)
                    .bind(time_arg(d, row.received_at)),
                    Dialect::Sqlite => sqlx::query("UPDATE events SET fields = ?2 WHERE id = ?1")
                        .bind(row.id)
                        .bind(&row.fields),
                };
                update.execute(&mut *tx).await?;
            }
            sqlx::query(made(maintenance_runs::expunged_through(d)))
                .bind(maintenance_runs::RETENTION)
                .bind(through)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Takes the job `name` for `owner` for `lease_secs` (creating its row
    /// the first time) when no other instance holds it and, with
    /// `daily`, its last complete run ended a day ago or more. Returns the
    /// job's row when taken.
    pub async fn claim_maintenance(
        &self,
        name: &str,
        owner: &str,
        lease_secs: i64,
        daily: bool,
    ) -> Result<Option<maintenance_runs::MaintenanceRun>, StoreError> {
        let row = with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            sqlx::query(made(maintenance_runs::create(d)))
                .bind(name)
                .execute(pool)
                .await?;
            sqlx::query_as(made(maintenance_runs::claim(d, daily)))
                .bind(name)
                .bind(owner)
                .bind(lease_secs)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Ends `owner`'s run of `name`: complete (`error` None: `finished_at`
    /// is now) or stopped by `error`; the lease is given back either way.
    pub async fn finish_maintenance(
        &self,
        name: &str,
        owner: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            sqlx::query(made(maintenance_runs::finish(d)))
                .bind(name)
                .bind(owner)
                .bind(error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The job `name`'s row, if it ever ran.
    pub async fn maintenance_run(
        &self,
        name: &str,
    ) -> Result<Option<maintenance_runs::MaintenanceRun>, StoreError> {
        let row = with_dialect!(self, Dialect::Postgres, Dialect::Sqlite, |pool, d| {
            sqlx::query_as(made(maintenance_runs::select(d)))
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// The log's size, oldest event and partitions.
    pub async fn log_size(&self) -> Result<LogSize, StoreError> {
        match self {
            Store::Postgres(s) => {
                let pool = s.read_pool();
                let mut conn = pool.acquire().await?;
                let list = partitions::list(&mut conn).await?;
                let bytes: i64 = sqlx::query_scalar(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c \
                     WHERE c.oid = to_regclass('events') OR c.oid IN \
                     (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass('events'))",
                )
                .fetch_one(&mut *conn)
                .await?;
                let oldest: Option<DateTime<Utc>> =
                    sqlx::query_scalar("SELECT received_at FROM events ORDER BY id LIMIT 1")
                        .fetch_optional(&mut *conn)
                        .await?;
                let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
                    .fetch_one(&mut *conn)
                    .await?;
                let current_end = partitions::next_month(partitions::month_start(now));
                let covered = list.iter().map(|p| p.upper).max();
                let months_ahead = covered.map(|c| months_between(current_end, c)).unwrap_or(0);
                Ok(LogSize {
                    bytes,
                    oldest,
                    partitions: i64::try_from(list.len()).unwrap_or(i64::MAX),
                    months_ahead,
                })
            }
            Store::Sqlite(s) => {
                let pool = s.read_pool();
                let bytes: i64 = sqlx::query_scalar(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                )
                .fetch_one(pool)
                .await?;
                let oldest: Option<DateTime<Utc>> =
                    sqlx::query_scalar("SELECT received_at FROM events ORDER BY id LIMIT 1")
                        .fetch_optional(pool)
                        .await?;
                Ok(LogSize {
                    bytes,
                    oldest,
                    partitions: 0,
                    months_ahead: 0,
                })
            }
        }
    }
}

/// Whole months from `from` to `to` (both month starts); 0 when `to` is
/// not after `from`.
fn months_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    use chrono::Datelike;
    let months = (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month());
    months.max(0)
}

fn parse_month(text: &str) -> Result<DateTime<Utc>, StoreError> {
    chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| StoreError::Corrupt(format!("event month {text:?}")))
}

/// A time parameter: `timestamptz` on PostgreSQL; on SQLite the text the
/// database's own clock writes (`strftime('%Y-%m-%dT%H:%M:%fZ')`), so that
/// text comparison orders it with stored times.
fn time_param(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Postgres => format!("${n}::timestamptz"),
        Dialect::Sqlite => format!("?{n}"),
    }
}

fn time_arg(d: Dialect, t: DateTime<Utc>) -> String {
    match d {
        Dialect::Postgres => t.to_rfc3339(),
        Dialect::Sqlite => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}
