//! Test support: a real server on a loopback port against a real database
//! (SQLite file or PostgreSQL database of its own), and a client that signs
//! callbacks the way FreedomPay does.

pub mod fake_freedompay;
pub mod freedompay;
pub mod haproxy;
pub mod pg;
pub mod process;
pub mod reconcile;

use std::net::SocketAddr;

use freedompay_receiver::config::Settings;
use freedompay_receiver::protocol::Amount;
use freedompay_receiver::server::run;
use freedompay_receiver::store::{NewOrder, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use freedompay::FreedomPay;

pub const MERCHANT: &str = "545774";
pub const KEY: &str = "test-secret-key-0001";
pub const PREVIOUS_KEY: &str = "previous-secret-key-0000";
pub const PAYOUT_KEY: &str = "payout-secret-key-0001";

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<pg::PgDatabase>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("receiver.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Backend::Postgres => {
                let db =
                    pg::PgDatabase::create(&pg::server_url().expect("PostgreSQL configured")).await;
                TestDb {
                    url: db.url.clone(),
                    _dir: None,
                    _pg: Some(db),
                }
            }
        }
    }
}

impl TestDb {
    /// A new database with every migration applied (on PostgreSQL, the
    /// event log partitioned), nothing in it, never analysed.
    pub async fn migrated(backend: Backend) -> TestDb {
        let db = TestDb::new(backend).await;
        let store = Store::connect(&freedompay_receiver::config::DatabaseSettings {
            url: secrecy::SecretString::from(db.url.clone()),
            ..Default::default()
        })
        .expect("store");
        store.migrate().await.expect("migrate");
        store.close().await;
        db
    }

    /// A PostgreSQL database with nothing in it, whatever
    /// `FPR_TEST_UPGRADED_LOG` says (for the tests of upgrades themselves).
    pub async fn empty_postgres() -> TestDb {
        let db =
            pg::PgDatabase::create_empty(&pg::server_url().expect("PostgreSQL configured")).await;
        TestDb {
            url: db.url.clone(),
            _dir: None,
            _pg: Some(db),
        }
    }
}

/// The settings every test starts from: one merchant with rotation and payout keys.
pub fn base_toml(database_url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_timeout_secs = 5

[database]
url = "{database_url}"
max_connections = 8

[metrics]
listen = "server"

[[merchants]]
id = "{MERCHANT}"
secret_key = "{KEY}"
previous_secret_key = "{PREVIOUS_KEY}"
payout_secret_key = "{PAYOUT_KEY}"

[[merchants]]
id = "100200"
secret_key = "second-merchant-key"
"#
    )
}

/// A running receiver.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub fp: FreedomPay,
    pub db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _db: Option<TestDb>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with extra TOML appended to the base settings.
    pub async fn spawn_with(backend: Backend, extra: impl FnOnce(&mut String)) -> TestApp {
        let db = TestDb::new(backend).await;
        let mut toml = base_toml(&db.url);
        extra(&mut toml);
        let settings = Settings::from_toml(&toml).expect("test settings are valid");
        Self::spawn_settings(settings, Some(db)).await
    }

    pub async fn spawn_settings(settings: Settings, db: Option<TestDb>) -> TestApp {
        let db_url = secrecy::ExposeSecret::expose_secret(&settings.database.url).to_owned();
        let store = Store::connect(&settings.database).expect("store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            run(settings, listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let app = TestApp {
            addr,
            store,
            fp: FreedomPay::new(addr),
            db_url,
            shutdown: Some(tx),
            server: Some(server),
            _db: db,
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.fp.http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Inserts an order as the merchant's internal services would.
    pub async fn order(&self, order_id: &str, amount: &str, currency: &str) {
        self.store
            .insert_order(
                MERCHANT,
                &NewOrder {
                    order_id,
                    amount: amount.parse::<Amount>().unwrap(),
                    currency,
                    expires_at: None,
                },
            )
            .await
            .expect("order inserted");
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// Runs each listed test on SQLite and on PostgreSQL, as `name::sqlite` and
/// `name::postgres`. Without a PostgreSQL server the postgres half is skipped,
/// unless FPR_REQUIRE_PG is set (as `scripts/test` and CI do), then it fails.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = $crate::support::Backend::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::pg::server_url().is_none() {
                    eprintln!("skipped: no PostgreSQL (run ./scripts/test)");
                    return;
                }
                let $backend = $crate::support::Backend::Postgres;
                $body
            }
        }
    )*};
}
