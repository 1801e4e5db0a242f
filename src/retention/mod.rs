//! Retention (`[retention]`, README "Keeping and deleting data"): what the
//! event log keeps, archives, deletes and rewrites, run once a day inside
//! `serve` by one instance at a time (a lease in `maintenance_runs`) and on
//! demand by `freedompay-receiver retention run [--dry-run]`.
//!
//! A run, in order:
//! 1. PostgreSQL: the months of partitions ahead are made if missing (every
//!    hour in `serve`, whatever the settings: an insert must never find no
//!    partition).
//! 2. With `personal_data_days`: the personal fields ([`personal`]) of
//!    events older than that are replaced by a marker, in id order from
//!    where the last run stopped, up to `batch` per transaction (before
//!    archiving: an archive then never holds what is already past its
//!    time).
//! 3. With `keep_days` (its archive directory checked writable before step
//!    2: else the run stops, nothing changed): each calendar month entirely older than
//!    `keep_days` is archived ([`archive`]), the file read back against its
//!    manifest, then deleted: on PostgreSQL a month that is one partition
//!    and holds no kept row is detached and dropped as a whole; otherwise
//!    exactly the archived rows go, up to `batch` per transaction. Kept
//!    rows (flagged, conflicting, or of a payment waiting for its refund)
//!    stay (`store::retention`). Then stored decisions and finished status
//!    queries of that age.
//!
//! On SQLite every batch that writes holds the one write lock, so its size
//! follows how long the last ones took ([`pace`]) and a pause follows it,
//! in which the run checkpoints the WAL (`Store::checkpoint_wal`).

pub mod archive;
pub mod pace;
pub mod personal;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::RetentionSettings;
use crate::retention::pace::Pacer;
use crate::store::retention::{EventFields, Month, OtherRows};
use crate::store::tables::maintenance_runs::RETENTION;
use crate::store::{Store, StoreError, month_start};
use crate::telemetry::metrics::{RETENTION_FAILURES, RETENTION_ROWS};

/// How long a run holds the job before another instance may take it.
const LEASE_SECS: i64 = 6 * 3600;

/// How often `serve` looks whether the daily run is due (and makes the
/// partitions ahead).
const TICK: Duration = Duration::from_secs(3600);

/// The pause after each batch that writes on SQLite, where a batch holds
/// the one write lock: a callback's writer that found it taken retries 1,
/// 3, 8, 18 and 33 ms after (SQLite's busy handler), so a pause this long
/// lets it in before the next batch. PostgreSQL's deletions lock only
/// their rows and need none.
const SQLITE_PAUSE: Duration = Duration::from_millis(25);

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("archive directory {dir}: {error} (nothing was deleted)")]
    ArchiveDir { dir: PathBuf, error: std::io::Error },
    #[error("archive of {month}: {error} (its rows were not deleted)")]
    Archive { month: String, error: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a month became (or would become, in a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthOutcome {
    pub month: Month,
    /// The manifest of its archive (none in a dry run or when it had no
    /// row to archive).
    pub manifest: Option<PathBuf>,
    pub archived: u64,
    pub deleted: u64,
    /// Its partition was dropped as a whole.
    pub dropped: bool,
}

/// What a run did (or would do).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub dry_run: bool,
    /// Events received before this went (`keep_days`).
    pub cutoff: Option<DateTime<Utc>>,
    /// Personal fields of events received before this were replaced.
    pub personal_before: Option<DateTime<Utc>>,
    pub months: Vec<MonthOutcome>,
    pub other: OtherRows,
    pub expunged: u64,
    /// The event id the personal-data rewrite starts after.
    pub expunge_from: i64,
    pub partitions_made: Vec<String>,
}

/// The retention job over one store.
#[derive(Clone, Debug)]
pub struct Retention {
    store: Store,
    settings: RetentionSettings,
}

impl Retention {
    pub fn new(store: Store, settings: RetentionSettings) -> Self {
        Retention { store, settings }
    }

    /// One run now (module docs), if no other instance holds the job (and,
    /// with `daily`, if the last complete run is a day old): `None` when
    /// not taken. A dry run takes nothing and changes nothing.
    pub async fn run(&self, dry_run: bool, daily: bool) -> Result<Option<Report>, RetentionError> {
        let now = Utc::now();
        let mut report = Report {
            dry_run,
            cutoff: self
                .settings
                .keep_days
                .map(|days| month_start(now - chrono::Duration::days(i64::from(days)))),
            personal_before: self
                .settings
                .personal_data_days
                .map(|days| now - chrono::Duration::days(i64::from(days))),
            ..Report::default()
        };
        if dry_run {
            self.plan(&mut report).await?;
            return Ok(Some(report));
        }
        let owner = crate::protocol::answer::fresh_salt();
        let Some(job) = self
            .store
            .claim_maintenance(RETENTION, &owner, LEASE_SECS, daily)
            .await?
        else {
            return Ok(None);
        };
        report.expunge_from = job.expunged_through;
        let result = self.work(&mut report).await;
        let error = result.as_ref().err().map(ToString::to_string);
        if error.is_some() {
            metrics::counter!(RETENTION_FAILURES).increment(1);
        }
        self.store
            .finish_maintenance(RETENTION, &owner, error.as_deref())
            .await?;
        result.map(|()| Some(report))
    }

    /// What a run would do, read only.
    async fn plan(&self, report: &mut Report) -> Result<(), RetentionError> {
        if let Some(cutoff) = report.cutoff {
            for month in self.store.retention_months(cutoff).await? {
                let goes = u64::try_from(month.rows - month.kept).unwrap_or(0);
                report.months.push(MonthOutcome {
                    dropped: month.partition.is_some() && month.kept == 0,
                    month,
                    manifest: None,
                    archived: goes,
                    deleted: goes,
                });
            }
            report.other = self.store.count_other_rows(cutoff).await?;
        }
        if let Some(job) = self.store.maintenance_run(RETENTION).await? {
            report.expunge_from = job.expunged_through;
        }
        Ok(())
    }

    async fn work(&self, report: &mut Report) -> Result<(), RetentionError> {
        report.partitions_made = self.store.ensure_partitions().await?;
        if let (Some(_), Some(dir)) = (report.cutoff, self.settings.archive_dir.as_ref()) {
            archive::check_writable(dir).map_err(|error| RetentionError::ArchiveDir {
                dir: dir.clone(),
                error,
            })?;
        }
        // Personal fields first, so that no archive ever holds them once
        // `personal_data_days` is shorter than `keep_days`.
        if let Some(before) = report.personal_before {
            report.expunged = self.expunge(before, report.expunge_from).await?;
        }
        if let (Some(cutoff), Some(dir)) = (report.cutoff, self.settings.archive_dir.as_ref()) {
            for month in self.store.retention_months(cutoff).await? {
                let outcome = self.archive_and_delete(dir, month).await?;
                report.months.push(outcome);
            }
            let mut pacer = self.pacer();
            loop {
                let started = Instant::now();
                let done = self.store.delete_other_rows(cutoff, pacer.size()).await?;
                pacer.took(started.elapsed());
                report.other.decisions += done.decisions;
                report.other.tasks += done.tasks;
                if done.decisions == 0 && done.tasks == 0 {
                    break;
                }
                self.pause().await;
            }
            count("deleted", "callback_decisions", report.other.decisions);
            count("deleted", "outbound_tasks", report.other.tasks);
        }
        tracing::info!(
            months = report.months.len(),
            archived = report.months.iter().map(|m| m.archived).sum::<u64>(),
            deleted = report.months.iter().map(|m| m.deleted).sum::<u64>(),
            decisions = report.other.decisions,
            tasks = report.other.tasks,
            expunged = report.expunged,
            "retention run complete"
        );
        Ok(())
    }

    async fn archive_and_delete(
        &self,
        dir: &std::path::Path,
        month: Month,
    ) -> Result<MonthOutcome, RetentionError> {
        let label = month.label();
        let failed = |error: String| RetentionError::Archive {
            month: label.clone(),
            error,
        };
        let mut writer = archive::Writer::create(dir, &label).map_err(|e| failed(e.to_string()))?;
        let archived = match self
            .store
            .archive_rows(&month, self.settings.batch, |row| writer.write(row))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                writer.abandon();
                return Err(failed(e.to_string()));
            }
        };
        if archived == 0 {
            writer.abandon();
            return Ok(MonthOutcome {
                month,
                manifest: None,
                archived: 0,
                deleted: 0,
                dropped: false,
            });
        }
        let manifest = writer.finish().map_err(|e| failed(e.to_string()))?;
        archive::verify(&manifest).map_err(|e| failed(e.to_string()))?;
        count("archived", "events", archived);
        tracing::info!(month = %label, rows = archived, manifest = %manifest.display(), "month archived");
        let whole = month.partition.is_some()
            && month.kept == 0
            && u64::try_from(month.rows).is_ok_and(|rows| rows == archived);
        let deleted = if whole {
            self.store.drop_month(&month).await?;
            archived
        } else {
            let ids = archive::ids(&manifest).map_err(|e| failed(e.to_string()))?;
            let (mut deleted, mut rest, mut pacer) = (0, &ids[..], self.pacer());
            while !rest.is_empty() {
                let (chunk, later) = rest.split_at(rest.len().min(pacer.size() as usize));
                let started = Instant::now();
                deleted += self.store.delete_events(&month, chunk).await?;
                pacer.took(started.elapsed());
                rest = later;
                self.pause().await;
            }
            deleted
        };
        count("deleted", "events", deleted);
        tracing::info!(month = %label, rows = deleted, partition_dropped = whole, "month deleted");
        Ok(MonthOutcome {
            month,
            manifest: Some(manifest),
            archived,
            deleted,
            dropped: whole,
        })
    }

    /// Replaces personal fields of events received before `before`, from
    /// the event after `from` on; returns how many events changed.
    async fn expunge(&self, before: DateTime<Utc>, from: i64) -> Result<u64, RetentionError> {
        let mut cursor = from;
        let mut changed_total = 0;
        let mut pacer = self.pacer();
        loop {
            let rows = self.store.events_after(cursor, pacer.size()).await?;
            // Ids grow with time: the first event received after `before`
            // ends this run (it and those after it are for a later day).
            let old: Vec<_> = rows.iter().take_while(|r| r.received_at < before).collect();
            let Some(through) = old.last().map(|r| r.id) else {
                break;
            };
            let changed: Vec<_> = old
                .iter()
                .filter_map(|r| {
                    let fields = personal::expunge(&r.fields, &self.settings.personal_fields)?;
                    Some(EventFields {
                        id: r.id,
                        received_at: r.received_at,
                        fields,
                    })
                })
                .collect();
            let started = Instant::now();
            self.store.rewrite_fields(&changed, through).await?;
            pacer.took(started.elapsed());
            self.pause().await;
            changed_total += changed.len() as u64;
            count("expunged", "events", changed.len() as u64);
            cursor = through;
            if old.len() < rows.len() {
                break;
            }
        }
        Ok(changed_total)
    }

    /// The size of the batches that write: kept under [`pace::TARGET`] on
    /// SQLite, where a batch holds the one write lock; `batch` on
    /// PostgreSQL.
    fn pacer(&self) -> Pacer {
        let sqlite = self.store.backend_name() == "sqlite";
        Pacer::new(self.settings.batch, sqlite.then_some(pace::TARGET))
    }

    /// The pause after a batch that wrote, on SQLite: the WAL checkpointed
    /// (`Store::checkpoint_wal`), then the rest of [`SQLITE_PAUSE`] for
    /// the callbacks' writer; none on PostgreSQL. A checkpoint that fails
    /// is only logged: the writer's own checkpoints still come.
    async fn pause(&self) {
        if self.store.backend_name() != "sqlite" {
            return;
        }
        let started = Instant::now();
        if let Err(e) = self.store.checkpoint_wal().await {
            tracing::warn!(error = %e, "retention: the WAL checkpoint after a batch failed; going on");
        }
        tokio::time::sleep(SQLITE_PAUSE.saturating_sub(started.elapsed())).await;
    }

    /// `serve`'s loop: every hour, the partitions ahead, and the daily run
    /// when it is due, until `stop` turns true.
    pub async fn run_daily(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        // Shown as 0 from the start, so that an alert on its increase sees
        // the first failure.
        metrics::counter!(RETENTION_FAILURES).increment(0);
        loop {
            if let Err(e) = self.store.ensure_partitions().await {
                tracing::error!(error = %e, "could not make the event log's partitions ahead");
            }
            if self.settings.enabled() && self.settings.in_serve {
                match self.run(false, true).await {
                    Ok(Some(_)) | Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "retention run failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

fn count(action: &'static str, table: &'static str, rows: u64) {
    if rows > 0 {
        metrics::counter!(RETENTION_ROWS, "action" => action, "table" => table).increment(rows);
    }
}

impl Report {
    /// The report as `retention run` prints it.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let verb = |done: &str, would: &str| {
            if self.dry_run {
                would.to_owned()
            } else {
                done.to_owned()
            }
        };
        match self.cutoff {
            Some(cutoff) => {
                let _ = writeln!(
                    out,
                    "events received before {}: {}",
                    cutoff.format("%Y-%m-%d"),
                    verb("archived and deleted", "would be archived and deleted")
                );
                if self.months.is_empty() {
                    let _ = writeln!(out, "  no month is that old");
                }
                for m in &self.months {
                    let how = if m.dropped {
                        format!(
                            "partition {} dropped",
                            m.month.partition.as_deref().unwrap_or("?")
                        )
                    } else {
                        "deleted in batches".to_owned()
                    };
                    let _ = writeln!(
                        out,
                        "  {}: {} events, {} kept (flagged or waiting for a refund); {} archived, {} {}{}",
                        m.month.label(),
                        m.month.rows,
                        m.month.kept,
                        m.archived,
                        m.deleted,
                        how,
                        m.manifest
                            .as_ref()
                            .map(|p| format!(" ({})", p.display()))
                            .unwrap_or_default()
                    );
                }
                let _ = writeln!(
                    out,
                    "  stored decisions: {}; finished status queries: {}",
                    self.other.decisions, self.other.tasks
                );
            }
            None => {
                let _ = writeln!(out, "events: kept for ever (retention.keep_days unset)");
            }
        }
        match self.personal_before {
            Some(before) if self.dry_run => {
                let _ = writeln!(
                    out,
                    "personal fields of events received before {} would be replaced (looking from event id {} on)",
                    before.format("%Y-%m-%d %H:%M"),
                    self.expunge_from + 1
                );
            }
            Some(before) => {
                let _ = writeln!(
                    out,
                    "personal fields of events received before {}: replaced in {} events",
                    before.format("%Y-%m-%d %H:%M"),
                    self.expunged
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "personal fields: kept (retention.personal_data_days unset)"
                );
            }
        }
        if !self.partitions_made.is_empty() {
            let _ = writeln!(out, "partitions made: {}", self.partitions_made.join(", "));
        }
        out
    }
}
