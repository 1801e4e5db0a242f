//! PostgreSQL for tests: a database of its own per test on the server that
//! `scripts/test` starts, and, for outage tests, a whole throwaway cluster.

use std::process::Command;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The test server's URL (no database), from FPR_TEST_PG_URL.
pub fn server_url() -> Option<String> {
    match std::env::var("FPR_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("FPR_REQUIRE_PG").is_some() => {
            panic!(
                "FPR_REQUIRE_PG is set but FPR_TEST_PG_URL is not: PostgreSQL tests may not be skipped"
            )
        }
        _ => None,
    }
}

/// A fresh database, dropped at the end of the test.
pub struct PgDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl PgDatabase {
    /// A new database; with `FPR_TEST_UPGRADED_LOG` set, one made as the
    /// previous release left it (a plain event log, with events) and
    /// upgraded by `migrate`, its fixture events then deleted: running the
    /// whole suite so (`FPR_TEST_UPGRADED_LOG=1 scripts/test`) runs every
    /// test on an upgraded log.
    pub async fn create(server: &str) -> PgDatabase {
        let db = Self::create_empty(server).await;
        if std::env::var_os("FPR_TEST_UPGRADED_LOG").is_some() {
            db.upgrade_a_plain_log().await;
        }
        db
    }

    async fn upgrade_a_plain_log(&self) {
        use freedompay_receiver::config::DatabaseSettings;
        use freedompay_receiver::store::{EventLog, Store};
        let store = Store::connect(&DatabaseSettings {
            url: secrecy::SecretString::from(self.url.clone()),
            ..DatabaseSettings::default()
        })
        .expect("store");
        store.migrate_with(EventLog::Plain).await.expect("migrate");
        let mut c = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::query(
            "INSERT INTO events (merchant_id, kind, order_id, payment_id, fields, received_at) \
             SELECT 'fixture', 'result', 'F-' || g, 'f-' || g, '[]', now() - make_interval(days => g) \
             FROM generate_series(1, 1000) g",
        )
        .execute(&mut c)
        .await
        .expect("fixture events");
        let upgrade = store
            .migrate_with(EventLog::Partitioned)
            .await
            .expect("upgrade");
        assert!(upgrade.is_some_and(|u| u.old_partition.is_some() && u.rows == 1000));
        // Gone again, ids from 1 as on a new database: the tests see the
        // upgraded structure, not the fixture.
        sqlx::raw_sql("DELETE FROM events; ALTER SEQUENCE events_id_seq RESTART WITH 1")
            .execute(&mut c)
            .await
            .expect("fixture events deleted");
        store.close().await;
    }

    /// A new database, nothing in it.
    pub async fn create_empty(server: &str) -> PgDatabase {
        let name = format!("t_{}", uuid_like());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        PgDatabase {
            url: format!("{server}/{name}"),
            server: server.to_owned(),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Best effort, off the test's runtime (which may be shutting down).
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut admin) =
                        PgConnection::connect(&format!("{server}/postgres")).await
                    {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut admin)
                            .await;
                    }
                });
            }
        })
        .join()
        .ok();
    }
}

fn uuid_like() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A PostgreSQL cluster of the test's own, started with the same script as the
/// suite's, so that the test may stop and start it.
pub struct Cluster {
    pub url: String,
    pg_ctl: String,
    dir: String,
}

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_in("/tmp", "")
    }

    /// A cluster made in the folder `parent`, with more `initdb_args`.
    /// Tried three times: the free port the script picks may be taken by
    /// another cluster starting at the same moment.
    pub fn start_in(parent: &str, initdb_args: &str) -> Cluster {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/pg.sh");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let out = Command::new("bash")
                .env("PG_THROWAWAY_PARENT", parent)
                .env("PG_THROWAWAY_INITDB_ARGS", initdb_args)
                .arg("-c")
                .arg(format!(
                    "set -e; source {script}; pg_start_throwaway >/dev/null; \
                     echo \"$FPR_TEST_PG_URL $FPR_TEST_PG_CTL $PG_THROWAWAY_DIR\""
                ))
                .output()
                .expect("bash runs");
            let text = String::from_utf8_lossy(&out.stdout);
            let parts: Vec<&str> = text.split_whitespace().collect();
            if out.status.success() && parts.len() == 3 {
                return Cluster {
                    url: format!("{}/postgres", parts[0]),
                    pg_ctl: parts[1].to_owned(),
                    dir: parts[2].to_owned(),
                };
            }
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        panic!("cluster did not start:\n{}", failures.join("\n---\n"));
    }

    /// A streaming standby of this cluster (`pg_basebackup -R`), on a
    /// loopback port of its own.
    pub fn standby(&self) -> Cluster {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/pg.sh");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; source {script}; pg_start_standby {}; \
                 echo \"$FPR_TEST_PG_URL $FPR_TEST_PG_CTL $PG_THROWAWAY_DIR\"",
                self.port()
            ))
            .output()
            .expect("bash runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let parts: Vec<&str> = text.split_whitespace().collect();
        assert!(
            out.status.success() && parts.len() == 3,
            "standby did not start: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            url: format!("{}/postgres", parts[0]),
            pg_ctl: parts[1].to_owned(),
            dir: parts[2].to_owned(),
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|tail| tail.split('/').next())
            .and_then(|port| port.parse().ok())
            .expect("a port in the URL")
    }

    /// Runs `pg_ctl` with `args`; panics when it fails.
    pub fn pg_ctl(&self, args: &[&str]) {
        let out = Command::new(&self.pg_ctl)
            .args(args)
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Appends `line` to the server's postgresql.conf.
    pub fn configure(&self, line: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("{}/data/postgresql.conf", self.dir))
            .expect("postgresql.conf");
        writeln!(file, "{line}").expect("postgresql.conf written");
    }

    pub fn stop(&self) {
        let status = Command::new(&self.pg_ctl)
            .args(["stop", "-m", "fast", "-w"])
            .output()
            .expect("pg_ctl");
        assert!(
            status.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }

    /// Whether the server runs (`pg_ctl status`).
    pub fn running(&self) -> bool {
        Command::new(&self.pg_ctl)
            .arg("status")
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(format!("{}/server.log", self.dir)).unwrap_or_default()
    }

    pub fn start_again(&self) {
        let status = Command::new(&self.pg_ctl)
            .args(["start", "-w", "-t", "60"])
            .output()
            .expect("pg_ctl");
        assert!(
            status.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.pg_ctl)
            .args(["stop", "-m", "immediate"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
