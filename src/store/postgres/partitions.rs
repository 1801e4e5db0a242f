//! PostgreSQL's event log partitioned by month (README, "Keeping and
//! deleting data"): `events` is a table partitioned by `received_at`, one
//! partition per calendar month (`events_2027_03`), created
//! [`MONTHS_AHEAD`] ahead by `migrate` and by the service's daily
//! maintenance, so that an insert never finds no partition. There is no
//! DEFAULT partition: with one, a month could not be detached
//! `CONCURRENTLY`. Internal services read `events` by the same name and
//! columns as before; the primary key became `(id, received_at)` (a
//! partitioned table's unique keys include its partition key; ids are still
//! drawn from the one sequence, `events_id_seq`).
//!
//! **Upgrading a database made before partitioning** ([`partition_events`],
//! run by `migrate` after the SQL migrations) copies no row: the old table
//! becomes the partition of everything before a month boundary
//! (`events_before_2027_03`). What takes time runs while callbacks go on: a
//! `NOT VALID` check of that boundary, validated (a scan under a lock that
//! lets inserts through), and the unique index the new primary key needs
//! (`CREATE INDEX CONCURRENTLY`). Then one short transaction renames the old
//! table, makes the partitioned one, attaches the old table (the validated
//! check spares the attach its scan, and the matching indexes are adopted,
//! not built) and makes the months ahead: catalogue changes only, a few
//! milliseconds under the lock, which it waits for at most
//! [`LOCK_TIMEOUT`] at a time (a waiting `ACCESS EXCLUSIVE` request queues
//! the callbacks behind it) and tries again. The foreign key from
//! `callback_decisions.event_id` goes: no key can point into a table whose
//! rows retention drops by the month. An empty table (a new database) is
//! simply replaced, and its months start with the current one.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::{Connection, PgConnection, PgPool};

use crate::store::StoreError;

/// Months of partitions kept ready after the current one.
pub const MONTHS_AHEAD: u32 = 3;

/// The longest a step of the upgrade waits for its lock before it lets the
/// queued callbacks through and tries again.
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(200);

/// Tries of a locked step before the upgrade gives up (and `migrate` fails,
/// leaving the table as it was).
const LOCK_TRIES: u32 = 50;

/// Any number, the same in every instance: the upgrade's session advisory
/// lock, so that two instances starting at once do not both convert.
const UPGRADE_LOCK: i64 = 0x4650_5f70_6172_7431;

/// What the upgrade did.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The rows of the old table, now the partition of the past.
    pub rows: i64,
    /// Its name (none when the table was empty: it was replaced).
    pub old_partition: Option<String>,
    pub took: Duration,
    /// The longest the final transaction held its locks.
    pub locked: Duration,
}

/// One partition of `events`, by the range its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// `None` for the partition of everything before `upper` (an upgraded
    /// database's old table).
    pub lower: Option<DateTime<Utc>>,
    pub upper: DateTime<Utc>,
}

/// The first instant of the month of `t` (UTC).
pub fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or(t.date_naive());
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

/// The first instant of the month after the one starting at `start`.
pub fn next_month(start: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if start.month() == 12 {
        (start.year() + 1, 1)
    } else {
        (start.year(), start.month() + 1)
    };
    let day = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(start.date_naive());
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

/// The partition name of the month starting at `start`.
pub fn month_name(start: DateTime<Utc>) -> String {
    format!("events_{:04}_{:02}", start.year(), start.month())
}

/// The range a partition's name says, for the names this module gives;
/// `None` for any other.
pub fn parse_name(name: &str) -> Option<Partition> {
    let (before, rest) = match name.strip_prefix("events_before_") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix("events_")?),
    };
    let (year, month) = rest.split_once('_')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let day = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    let start = Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN));
    Some(if before {
        Partition {
            name: name.to_owned(),
            lower: None,
            upper: start,
        }
    } else {
        Partition {
            name: name.to_owned(),
            lower: Some(start),
            upper: next_month(start),
        }
    })
}

/// Whether `events` is partitioned (false on a database not yet upgraded,
/// or kept plain on purpose: `migrate --plain-events`).
pub async fn is_partitioned(conn: &mut PgConnection) -> Result<bool, StoreError> {
    let partitioned: Option<bool> =
        sqlx::query_scalar("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('events')")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(partitioned == Some(true))
}

/// The partitions of `events` this module named, oldest first; names it
/// did not give are left out (and left alone).
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Partition>, StoreError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass('events')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut partitions: Vec<Partition> = names.iter().filter_map(|n| parse_name(n)).collect();
    partitions.sort_by_key(|p| p.upper);
    Ok(partitions)
}

/// Makes the partitions of the current month and the [`MONTHS_AHEAD`]
/// after it that are missing (never one before the newest existing
/// partition's end, which would overlap it). Each is made as a table of its
/// own and attached: an attach takes a lock that lets inserts go on, where
/// `CREATE TABLE … PARTITION OF` would stop them. Returns the names made.
/// One instance at a time makes them (the upgrade's advisory lock).
pub async fn ensure_ahead(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let mut conn = pool.acquire().await?;
    lock(&mut conn).await?;
    let made = make_ahead(&mut conn).await;
    unlock(&mut conn).await?;
    made
}

async fn make_ahead(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    if !is_partitioned(conn).await? {
        return Ok(Vec::new());
    }
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await?;
    let existing = list(conn).await?;
    let covered = existing.iter().map(|p| p.upper).max();
    let mut made = Vec::new();
    let mut start = month_start(now);
    for _ in 0..=MONTHS_AHEAD {
        let end = next_month(start);
        if covered.is_none_or(|c| start >= c) {
            let name = month_name(start);
            let create = format!(
                "CREATE TABLE IF NOT EXISTS {name} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            );
            sqlx::query(ddl(create)).execute(&mut *conn).await?;
            let attach = format!(
                "ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{}') TO ('{}')",
                start.to_rfc3339(),
                end.to_rfc3339()
            );
            with_lock_timeout(conn, &[attach.as_str()]).await?;
            made.push(name);
        }
        start = end;
    }
    Ok(made)
}

/// Runs `statements` in one transaction that waits at most
/// [`LOCK_TIMEOUT`] for each lock, trying again (up to [`LOCK_TRIES`]) when
/// a lock was not granted in time. Returns how long the successful
/// transaction took.
async fn with_lock_timeout(
    conn: &mut PgConnection,
    statements: &[&str],
) -> Result<Duration, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        let timeout = format!("SET LOCAL lock_timeout = '{}ms'", LOCK_TIMEOUT.as_millis());
        sqlx::query(ddl(timeout)).execute(&mut *tx).await?;
        let mut failed = None;
        for statement in statements {
            if let Err(e) = sqlx::query(ddl(statement.to_string()))
                .execute(&mut *tx)
                .await
            {
                failed = Some(e);
                break;
            }
        }
        match failed {
            None => {
                tx.commit().await?;
                return Ok(started.elapsed());
            }
            // 55P03: lock_not_available.
            Some(e) if is_lock_timeout(&e) && tries < LOCK_TRIES => {
                drop(tx);
                tokio::time::sleep(LOCK_TIMEOUT).await;
            }
            Some(e) => return Err(e.into()),
        }
    }
}

/// A statement that takes no parameters (DDL cannot): every name and bound
/// in it is made here, from dates ([`month_name`], [`parse_name`]), never
/// from input.
fn ddl(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn is_lock_timeout(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "55P03")
}

/// Upgrades a plain `events` table to the partitioned log (module docs);
/// `None` when it is partitioned already. Several instances may call it at
/// once: one converts, the others find it done.
pub async fn partition_events(pool: &PgPool) -> Result<Option<Upgrade>, StoreError> {
    let mut conn = pool.acquire().await?;
    lock(&mut conn).await?;
    let result = match convert(&mut conn).await {
        Ok(upgrade) => make_ahead(&mut conn).await.map(|_| upgrade),
        Err(e) => Err(e),
    };
    unlock(&mut conn).await?;
    result
}

/// Takes the upgrade's session advisory lock (one instance at a time
/// changes the partitions), waiting for it.
async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(UPGRADE_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn unlock(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(UPGRADE_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn convert(conn: &mut PgConnection) -> Result<Option<Upgrade>, StoreError> {
    if is_partitioned(conn).await? {
        return Ok(None);
    }
    let started = Instant::now();
    // At least a day away, so that no row inserted before the switch can be
    // later than the boundary its check promises.
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await?;
    let boundary = next_month(month_start(now + chrono::Duration::days(1)));
    let bound = boundary.to_rfc3339();
    let old = format!(
        "events_before_{:04}_{:02}",
        boundary.year(),
        boundary.month()
    );

    with_lock_timeout(
        conn,
        &["ALTER TABLE callback_decisions DROP CONSTRAINT IF EXISTS callback_decisions_event_id_fkey"],
    )
    .await?;
    // An empty table (a new database) is replaced, and the partitions
    // start with the current month; `Empty` when a row came meanwhile.
    let mut fresh = vec![
        SEQUENCE_FIRST,
        "LOCK TABLE events IN ACCESS EXCLUSIVE MODE",
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM events) THEN \
         RAISE EXCEPTION USING ERRCODE = 'FP001', MESSAGE = 'events is not empty'; END IF; END $$",
        "DROP TABLE events",
    ];
    fresh.extend(PARTITIONED);
    match with_lock_timeout(conn, &fresh).await {
        Ok(locked) => {
            return Ok(Some(Upgrade {
                rows: 0,
                old_partition: None,
                took: started.elapsed(),
                locked,
            }));
        }
        Err(StoreError::Database(e))
            if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("FP001") => {}
        Err(e) => return Err(e),
    }
    // A run stopped half-way may have left its check (with another
    // boundary) or an invalid index: start from nothing.
    let check = format!(
        "ALTER TABLE events ADD CONSTRAINT events_partition_bound CHECK (received_at < '{bound}') NOT VALID"
    );
    with_lock_timeout(
        conn,
        &[
            "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_partition_bound",
            check.as_str(),
        ],
    )
    .await?;
    sqlx::query("ALTER TABLE events VALIDATE CONSTRAINT events_partition_bound")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DROP INDEX CONCURRENTLY IF EXISTS events_partition_key")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE UNIQUE INDEX CONCURRENTLY events_partition_key ON events (id, received_at)",
    )
    .execute(&mut *conn)
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *conn)
        .await?;

    let rename = format!("ALTER TABLE events RENAME TO {old}");
    let pkey = format!(
        "ALTER TABLE {old} DROP CONSTRAINT events_pkey, \
         ADD CONSTRAINT {old}_pkey PRIMARY KEY USING INDEX events_partition_key"
    );
    let indexes: Vec<String> = ["events_by_payment", "events_by_order", "events_flagged"]
        .iter()
        .map(|index| {
            format!(
                "ALTER INDEX IF EXISTS {index} RENAME TO {old}{}",
                &index[6..]
            )
        })
        .collect();
    let attach = format!(
        "ALTER TABLE events ATTACH PARTITION {old} FOR VALUES FROM (MINVALUE) TO ('{bound}')"
    );
    let mut statements: Vec<&str> = vec![
        SEQUENCE_FIRST,
        "LOCK TABLE events IN ACCESS EXCLUSIVE MODE",
        rename.as_str(),
        pkey.as_str(),
    ];
    statements.extend(indexes.iter().map(String::as_str));
    statements.extend(PARTITIONED);
    statements.push(attach.as_str());
    let locked = with_lock_timeout(conn, &statements).await?;
    Ok(Some(Upgrade {
        rows,
        old_partition: Some(old),
        took: started.elapsed(),
        locked,
    }))
}

/// The first statement of a switch: the ids' sequence is locked before
/// `events` (by letting the old table go of it), in the order a callback's
/// transaction takes them (it draws its ids, then reads and writes
/// `events`): taken the other way round, a callback holding the sequence
/// and waiting for `events` and the switch holding `events` and waiting for
/// the sequence would stop each other until the lock timeout, again and
/// again under a steady load.
const SEQUENCE_FIRST: &str = "ALTER SEQUENCE events_id_seq OWNED BY NONE";

/// The partitioned table and its indexes, owning the ids' sequence.
const PARTITIONED: [&str; 5] = [
    CREATE_PARTITIONED,
    "ALTER SEQUENCE events_id_seq OWNED BY events.id",
    "CREATE INDEX events_by_payment ON events (merchant_id, payment_id)",
    "CREATE INDEX events_by_order ON events (merchant_id, order_id)",
    "CREATE INDEX events_flagged ON events (received_at) WHERE flag IS NOT NULL OR conflict",
];

/// The partitioned table: the columns of the table it replaces, in their
/// order (the migrations' `events`), with the sequence's default.
const CREATE_PARTITIONED: &str = "CREATE TABLE events (
    id                  BIGINT      NOT NULL DEFAULT nextval('events_id_seq'),
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    merchant_id         TEXT        NOT NULL,
    kind                TEXT        NOT NULL,
    order_id            TEXT        NULL,
    payment_id          TEXT        NULL,
    fields              JSONB       NOT NULL,
    answer_status       TEXT        NULL,
    answer_description  TEXT        NULL,
    duplicate           BOOLEAN     NOT NULL DEFAULT false,
    signature_variant   TEXT        NULL,
    key_label           TEXT        NULL,
    conflict            BOOLEAN     NOT NULL DEFAULT false,
    flag                TEXT        NULL,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at)";

/// Detaches a month's partition without stopping inserts into the others
/// (`DETACH … CONCURRENTLY`, outside any transaction), then drops it.
/// A detach interrupted earlier is finished first.
pub async fn detach_and_drop(pool: &PgPool, name: &str) -> Result<(), StoreError> {
    if parse_name(name).is_none() {
        return Err(StoreError::Corrupt(format!(
            "not a partition of events: {name:?}"
        )));
    }
    let mut conn = pool.acquire().await?;
    let attached: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1) \
         AND inhparent = to_regclass('events'))",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let pending: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1)), false)",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if pending {
        sqlx::query(ddl(format!(
            "ALTER TABLE events DETACH PARTITION {name} FINALIZE"
        )))
        .execute(&mut *conn)
        .await?;
    } else if attached {
        sqlx::query(ddl(format!(
            "ALTER TABLE events DETACH PARTITION {name} CONCURRENTLY"
        )))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(ddl(format!("DROP TABLE IF EXISTS {name}")))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
