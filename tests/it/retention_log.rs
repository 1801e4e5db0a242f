//! Retention of the event log (README, "Keeping and deleting data"), on
//! both backends with the real server answering callbacks meanwhile: old
//! months archived, read back and deleted (a whole partition dropped on
//! PostgreSQL where the month is one), kept rows kept, personal fields
//! replaced after their time, nothing acknowledged lost; an archive
//! directory that cannot be written stops the run before anything goes; an
//! altered archive fails `retention verify`.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use freedompay_receiver::config::RetentionSettings;
use freedompay_receiver::protocol::Status;
use freedompay_receiver::retention::{Retention, RetentionError, archive, personal};
use freedompay_receiver::store::{month_start, next_month};
use sqlx::Connection;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, freedompay};

/// A connection of the test's own to the app's database, for what the
/// test does behind the service's back (making rows old).
enum Raw {
    Pg(sqlx::PgConnection),
    Lite(sqlx::SqliteConnection),
}

impl Raw {
    async fn open(backend: Backend, url: &str) -> Raw {
        match backend {
            Backend::Postgres => Raw::Pg(sqlx::PgConnection::connect(url).await.unwrap()),
            Backend::Sqlite => Raw::Lite(sqlx::SqliteConnection::connect(url).await.unwrap()),
        }
    }

    async fn exec(&mut self, sql: &str) {
        match self {
            Raw::Pg(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(c)
                .await
                .map(drop),
            Raw::Lite(c) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(c)
                .await
                .map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn ids(&mut self, sql: &str) -> Vec<i64> {
        self.column(sql).await
    }

    async fn texts(&mut self, sql: &str) -> Vec<String> {
        self.column(sql).await
    }

    /// The first column of `sql`'s rows.
    async fn column<T>(&mut self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + Send
            + Unpin,
    {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Pg(c) => sqlx::query_scalar(sql).fetch_all(c).await,
            Raw::Lite(c) => sqlx::query_scalar(sql).fetch_all(c).await,
        }
        .unwrap()
    }

    /// Moves the events of payments `payments` (SQL list) to `at` (plus a
    /// second per id, so that they keep their order). On PostgreSQL the
    /// months they land in get partitions first, as an older database has.
    async fn make_old(&mut self, payments: &str, at: DateTime<Utc>) {
        let start = at.format("%Y-%m-%dT%H:%M:%S").to_string();
        // Their stored decisions too: written in their event's transaction,
        // they are as old.
        let (events, decisions) = match self {
            Raw::Pg(_) => (
                format!(
                    "UPDATE events SET received_at = '{start}Z'::timestamptz + make_interval(secs => id) \
                     WHERE payment_id IN ({payments})"
                ),
                "UPDATE callback_decisions d SET created_at = e.received_at FROM events e \
                 WHERE e.id = d.event_id AND d.created_at > e.received_at",
            ),
            Raw::Lite(_) => (
                format!(
                    "UPDATE events SET received_at = strftime('%Y-%m-%dT%H:%M:%fZ', '{start}', '+' || id || ' seconds') \
                     WHERE payment_id IN ({payments})"
                ),
                "UPDATE callback_decisions SET created_at = (SELECT e.received_at FROM events e \
                 WHERE e.id = callback_decisions.event_id) WHERE created_at > (SELECT e.received_at \
                 FROM events e WHERE e.id = callback_decisions.event_id)",
            ),
        };
        self.exec(&events).await;
        self.exec(decisions).await;
    }

    /// PostgreSQL: partitions for every month from `from` up to the first
    /// one the service made, but for the months an upgraded log's old table
    /// holds (`FPR_TEST_UPGRADED_LOG`).
    async fn partitions_since(&mut self, from: DateTime<Utc>) {
        if let Raw::Pg(_) = self {
            let made = self
                .texts("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass")
                .await;
            // `events_before_YYYY_MM`: everything before that month.
            let before = made
                .iter()
                .filter_map(|name| name.strip_prefix("events_before_"))
                .filter_map(|month| {
                    chrono::NaiveDate::parse_from_str(&format!("{month}_01"), "%Y_%m_%d").ok()
                })
                .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
                .max();
            let mut start = month_start(from).max(before.unwrap_or(month_start(from)));
            while !made.contains(&format!("events_{}", start.format("%Y_%m"))) {
                let end = next_month(start);
                self.exec(&format!(
                    "CREATE TABLE events_{} PARTITION OF events FOR VALUES FROM ('{}') TO ('{}')",
                    start.format("%Y_%m"),
                    start.to_rfc3339(),
                    end.to_rfc3339()
                ))
                .await;
                start = end;
            }
        }
    }
}

fn settings(dir: &Path) -> RetentionSettings {
    RetentionSettings {
        keep_days: Some(60),
        archive_dir: Some(dir.to_owned()),
        personal_data_days: Some(10),
        batch: 4,
        in_serve: false,
        ..RetentionSettings::default()
    }
}

/// Pays orders `O-from..=O-to` (payment id = the number), each with the
/// payer's phone number.
async fn pay(app: &TestApp, from: u32, to: u32) {
    for n in from..=to {
        app.order(&format!("O-{n}"), "10", "KZT").await;
        let fields = freedompay::result(&format!("O-{n}"), &n.to_string(), "10")
            .set("pg_user_phone", "77071234567");
        app.fp
            .send("result", &fields)
            .await
            .assert_answer("result", Status::Ok);
    }
}

on_both_backends! {
    async fn old_months_are_archived_and_deleted_while_callbacks_go_on(backend) {
        let app = TestApp::spawn(backend).await;
        let archive_dir = tempfile::tempdir().unwrap();
        pay(&app, 1, 20).await;
        // A repeat of payment 1 that says something else (a conflict: kept),
        // and payment 2 waiting for its refund (its events kept). Event ids
        // grow with time, as they do when nothing is made old by hand.
        let conflicting = freedompay::result("O-1", "1", "10")
            .set("customer_ref", "other")
            .set("pg_user_phone", "77071234567");
        app.fp.send("result", &conflicting).await;
        pay(&app, 21, 30).await;
        let mut raw = Raw::open(backend, &app.db_url).await;
        raw.exec("UPDATE payments SET needs_refund = true WHERE payment_id = '2'").await;

        let now = Utc::now();
        let month_a = month_start(now - Duration::days(150)) + Duration::days(2);
        let month_b = month_start(now - Duration::days(100)) + Duration::days(2);
        raw.partitions_since(month_a).await;
        raw.make_old("'1','2','3','4','5','6','7','8','9','10'", month_a).await;
        raw.make_old("'11','12','13','14','15','16','17','18','19','20'", month_b).await;
        raw.make_old("'21','22','23','24','25'", now - Duration::days(20)).await;
        // A stored decision as old as month B (its event is recent: it goes
        // by its own age).
        match backend {
            Backend::Postgres => raw.exec("UPDATE callback_decisions SET created_at = now() - interval '100 days' WHERE subject_id = '30'").await,
            Backend::Sqlite => raw.exec("UPDATE callback_decisions SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-100 days') WHERE subject_id = '30'").await,
        }
        let kept_ids = raw.ids("SELECT id FROM events WHERE payment_id IN ('1', '2') AND (conflict OR payment_id = '2') ORDER BY id").await;
        assert_eq!(kept_ids.len(), 2);
        let old_ids = raw.ids("SELECT id FROM events WHERE payment_id IN ('1','2','3','4','5','6','7','8','9','10','11','12','13','14','15','16','17','18','19','20') ORDER BY id").await;
        assert_eq!(old_ids.len(), 21);

        // Callbacks answered while the run goes on.
        let retention = Retention::new(app.store.clone(), settings(archive_dir.path()));
        let sending = async {
            let mut acknowledged = Vec::new();
            for n in 100..160u32 {
                app.order(&format!("C-{n}"), "10", "KZT").await;
                let reply = app.fp.send("result", &freedompay::result(&format!("C-{n}"), &n.to_string(), "10")).await;
                if reply.pg_status() == Some(Status::Ok) {
                    acknowledged.push(n);
                }
            }
            acknowledged
        };
        let (report, acknowledged) = tokio::join!(retention.run(false, false), sending);
        let report = report.expect("retention runs").expect("the job was free");
        assert_eq!(acknowledged.len(), 60, "every callback during the run was answered ok");

        // Month A: 11 events, 2 kept; month B: 10 events, none kept (on
        // PostgreSQL its partition dropped whole).
        assert_eq!(report.months.len(), 2, "{}", report.render());
        let (a, b) = (&report.months[0], &report.months[1]);
        assert_eq!((a.month.rows, a.month.kept, a.archived, a.deleted, a.dropped), (11, 2, 9, 9, false));
        assert_eq!((b.month.rows, b.month.kept, b.archived, b.deleted), (10, 0, 10, 10));
        // A partition of its own, unless an upgraded log's old table holds it.
        assert_eq!(b.dropped, b.month.partition.is_some(), "{}", report.render());
        assert_eq!(
            b.month.partition.is_some(),
            backend == Backend::Postgres && std::env::var_os("FPR_TEST_UPGRADED_LOG").is_none()
        );
        if b.dropped {
            let left = raw.texts("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass").await;
            let dropped = format!("events_{}", month_b.format("%Y_%m"));
            assert!(!left.contains(&dropped), "{dropped} dropped: {left:?}");
            let tables = raw.texts(&format!("SELECT relname::text FROM pg_class WHERE relname = '{dropped}'")).await;
            assert!(tables.is_empty(), "{dropped} gone, not only detached");
        }

        // What left the table is exactly what the archives hold, and they
        // read back against their manifests.
        let mut archived = BTreeSet::new();
        for month in &report.months {
            let manifest = month.manifest.as_ref().expect("archived");
            archive::verify(manifest).expect("the archive matches its manifest");
            archived.extend(archive::ids(manifest).unwrap());
        }
        let expected: BTreeSet<i64> = old_ids.iter().copied().filter(|id| !kept_ids.contains(id)).collect();
        assert_eq!(archived, expected);
        let remaining: BTreeSet<i64> = raw.ids("SELECT id FROM events").await.into_iter().collect();
        assert!(archived.is_disjoint(&remaining), "archived rows are gone");
        for id in &kept_ids {
            assert!(remaining.contains(id), "kept event {id} is still there");
        }

        // The decisions of deleted events went with them; the old one too.
        // (SQLite: with their events; PostgreSQL: by their age, as old.)
        assert!(report.other.decisions >= 1, "{}", report.render());
        let decisions = raw.ids("SELECT event_id FROM callback_decisions WHERE event_id IS NOT NULL").await;
        assert!(decisions.iter().all(|id| !archived.contains(id)), "no decision names a deleted event");
        assert!(raw.ids("SELECT event_id FROM callback_decisions WHERE subject_id = '30'").await.is_empty());

        // Every acknowledged callback is in the log.
        for n in acknowledged {
            let found = raw.ids(&format!("SELECT id FROM events WHERE payment_id = '{n}'")).await;
            assert!(!found.is_empty(), "payment {n} was answered ok and is in the log");
        }

        // Personal fields: replaced in every event older than 10 days that
        // is left, kept in the recent ones.
        let old_fields = raw.texts(&format!(
            "SELECT {} FROM events WHERE payment_id IN ('1','2','21','22','23','24','25')",
            if backend == Backend::Postgres { "fields::text" } else { "fields" }
        )).await;
        assert_eq!(old_fields.len(), 7);
        for fields in &old_fields {
            assert!(fields.contains(personal::MARKER) && !fields.contains("77071234567"), "{fields}");
            assert!(fields.contains("pg_amount"), "amounts stay: {fields}");
        }
        let recent = raw.texts(&format!(
            "SELECT {} FROM events WHERE payment_id IN ('26','27','28','29','30')",
            if backend == Backend::Postgres { "fields::text" } else { "fields" }
        )).await;
        assert_eq!(recent.len(), 5);
        for fields in &recent {
            assert!(fields.contains("77071234567") && !fields.contains(personal::MARKER), "{fields}");
        }
        // Rewritten before they were archived: the 21 old events too.
        assert_eq!(report.expunged, 26, "{}", report.render());
        for month in &report.months {
            let manifest = month.manifest.as_ref().unwrap();
            let file = manifest.with_file_name(archive::read_manifest(manifest).unwrap().file);
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap()), &mut text).unwrap();
            assert!(!text.contains("77071234567") && text.contains(personal::MARKER), "no phone number in the archive");
        }

        // The metrics say what went, how old the log is and, on PostgreSQL,
        // how many months of partitions are ready.
        let metrics = app.fp.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for line in [
            "freedompay_retention_rows_total{action=\"archived\",table=\"events\"}",
            "freedompay_retention_rows_total{action=\"deleted\",table=\"events\"}",
            "freedompay_retention_rows_total{action=\"expunged\",table=\"events\"}",
            "freedompay_events_oldest_seconds ",
            "freedompay_event_log_bytes ",
            "freedompay_retention_last_success_timestamp_seconds ",
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }
        if backend == Backend::Postgres {
            assert!(metrics.contains("freedompay_event_partitions_ahead_months 3"), "{metrics}");
        }
        let page = app.store.overview().await.unwrap();
        assert!(page.log.bytes > 0 && page.log.oldest.is_some(), "{:?}", page.log);

        // A second run finds nothing more to do.
        let again = retention.run(false, false).await.unwrap().unwrap();
        assert!(again.months.iter().all(|m| m.deleted == 0), "{}", again.render());
        assert_eq!(again.expunged, 0);
        app.stop().await;
    }

    async fn an_archive_directory_that_cannot_be_written_stops_the_run_before_any_deletion(backend) {
        let app = TestApp::spawn(backend).await;
        pay(&app, 1, 5).await;
        let mut raw = Raw::open(backend, &app.db_url).await;
        let old = month_start(Utc::now() - Duration::days(100)) + Duration::days(2);
        raw.partitions_since(old).await;
        raw.make_old("'1','2','3','4','5'", old).await;
        // A directory under a regular file cannot be made, even by root.
        let file = tempfile::NamedTempFile::new().unwrap();
        let retention = Retention::new(app.store.clone(), settings(&file.path().join("archive")));
        let error = retention.run(false, false).await.expect_err("the run stops");
        assert!(matches!(error, RetentionError::ArchiveDir { .. }), "{error}");
        assert!(error.to_string().contains("nothing was deleted"), "{error}");
        assert_eq!(raw.ids("SELECT id FROM events").await.len(), 5, "nothing deleted");
        let fields = raw.texts(&format!(
            "SELECT {} FROM events",
            if backend == Backend::Postgres { "fields::text" } else { "fields" }
        )).await;
        assert!(fields.iter().all(|f| f.contains("77071234567")), "nothing rewritten either");
        let job = app.store.maintenance_run("retention").await.unwrap().unwrap();
        assert!(job.last_error.is_some_and(|e| e.contains("archive directory")));
        assert_eq!(job.finished_at, None);
        assert_eq!(job.lease_owner, None, "the lease is given back");
        app.stop().await;
    }
}

/// An archive altered after it was written fails `retention verify` (the
/// command exits 1 and names the file); the untouched one passes.
#[test]
fn an_altered_archive_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = archive::Writer::create(dir.path(), "2026-01").unwrap();
    for id in 1..=100 {
        let event = freedompay_receiver::store::tables::events::EventRow {
            id,
            received_at: "2026-01-05T10:00:00Z".parse().unwrap(),
            merchant_id: "545774".into(),
            kind: "result".into(),
            order_id: Some(format!("O-{id}")),
            payment_id: Some(id.to_string()),
            fields: r#"[["pg_amount","10"]]"#.into(),
            answer_status: Some("ok".into()),
            answer_description: None,
            duplicate: false,
            signature_variant: Some("standard".into()),
            key_label: Some("current".into()),
            conflict: false,
            flag: None,
        };
        writer.write(&event).unwrap();
    }
    let manifest = writer.finish().unwrap();
    let verify = |path: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
            .args(["retention", "verify"])
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = verify(dir.path());
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("100 rows"));

    let file = dir.path().join("events-2026-01.jsonl.gz");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let bad = verify(&manifest);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let said = String::from_utf8_lossy(&bad.stdout);
    assert!(said.contains("BAD") && said.contains("SHA-256"), "{said}");
    assert!(matches!(
        archive::verify(&manifest),
        Err(archive::VerifyError::Checksum { .. })
    ));
}

/// `check-config` refuses retention settings that cannot be honoured: a
/// keep_days without an archive directory (nothing is deleted unarchived),
/// zero days, a batch of nothing. Off by default.
#[test]
fn retention_settings_are_checked() {
    use freedompay_receiver::config::{Settings, validate};
    let base = crate::support::base_toml("sqlite://unused.db");
    let dir = tempfile::tempdir().unwrap();
    let problems = |extra: &str| -> Vec<String> {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, format!("{base}\n[retention]\n{extra}")).unwrap();
        let settings = Settings::load_unchecked(Some(&path)).unwrap();
        validate::problems(&settings)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let off = Settings::from_toml(&base).unwrap();
    assert!(!off.retention.enabled(), "off by default");
    assert!(problems("").is_empty());
    let found = problems("keep_days = 365");
    assert!(
        found.iter().any(|p| p.contains("retention.archive_dir")),
        "{found:?}"
    );
    let found =
        problems("keep_days = 0\narchive_dir = \"/tmp\"\npersonal_data_days = 0\nbatch = 0");
    for key in [
        "retention.keep_days",
        "retention.personal_data_days",
        "retention.batch",
    ] {
        assert!(found.iter().any(|p| p.contains(key)), "{key}: {found:?}");
    }
    assert!(
        problems("keep_days = 365\narchive_dir = \"/tmp\"\npersonal_data_days = 90").is_empty()
    );
}

on_both_backends! {
    async fn serve_runs_retention_daily_on_one_instance_at_a_time(backend) {
        let archive_dir = tempfile::tempdir().unwrap();
        let dir = archive_dir.path().display().to_string();
        // The months must be old before the service starts: a database
        // with old events, then the service with retention on.
        let db = crate::support::TestDb::migrated(backend).await;
        {
            let app = TestApp::spawn_settings(
                freedompay_receiver::config::Settings::from_toml(&crate::support::base_toml(&db.url)).unwrap(),
                None,
            )
            .await;
            pay(&app, 1, 3).await;
            app.stop().await;
        }
        let mut raw = Raw::open(backend, &db.url).await;
        let old = month_start(Utc::now() - Duration::days(100)) + Duration::days(2);
        raw.partitions_since(old).await;
        raw.make_old("'1','2','3'", old).await;
        let toml = format!(
            "{}\n[retention]\nkeep_days = 60\narchive_dir = \"{dir}\"\npersonal_data_days = 10\n",
            crate::support::base_toml(&db.url)
        );
        let app = TestApp::spawn_settings(freedompay_receiver::config::Settings::from_toml(&toml).unwrap(), None).await;
        let mut finished = None;
        for _ in 0..100 {
            finished = app.store.maintenance_run("retention").await.unwrap().and_then(|r| r.finished_at);
            if finished.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(finished.is_some(), "serve ran retention at start");
        assert!(raw.ids("SELECT id FROM events").await.is_empty(), "the old month went");
        assert_eq!(archive::manifests(archive_dir.path()).unwrap().len(), 1);

        // Done for the day: the daily claim is refused until a day has
        // passed; an on-demand run may go, and while it holds the job no
        // other instance takes it.
        let store = &app.store;
        assert!(store.claim_maintenance("retention", "b", 60, true).await.unwrap().is_none());
        assert!(store.claim_maintenance("retention", "b", 60, false).await.unwrap().is_some());
        assert!(store.claim_maintenance("retention", "c", 60, false).await.unwrap().is_none(), "held by b");
        store.finish_maintenance("retention", "b", None).await.unwrap();
        assert!(store.claim_maintenance("retention", "c", 60, false).await.unwrap().is_some(), "given back");
        app.stop().await;
        drop(db);
    }
}
