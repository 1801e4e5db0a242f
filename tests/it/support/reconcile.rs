//! A receiver with a fake FreedomPay behind it, and a reconciler on the same
//! settings and database whose rounds the test runs itself. The server's own
//! reconciler is on (so redirects schedule their queries) but its first round
//! is an hour away, so rounds happen exactly when the test asks.

use freedompay_receiver::config::Settings;
use freedompay_receiver::reconcile::{Reconciler, Round};

use super::fake_freedompay::FakeFreedomPay;
use super::{Backend, KEY, TestApp, TestDb, base_toml};

pub struct Rig {
    pub app: TestApp,
    pub fake: FakeFreedomPay,
    pub settings: Settings,
    /// The settings as TOML, for commands run against the same database.
    pub toml: String,
    pub reconciler: Reconciler,
}

/// `[api]` and `[reconcile]` for tests: the fake's URL, no pacing, work due
/// at once, retries due at once.
pub fn api_toml(base_url: &str, interval_secs: u64) -> String {
    format!(
        r#"
[api]
base_url = "{base_url}"
timeout_secs = 2
pacing_ms = 0

[reconcile]
enabled = true
after_secs = 0
interval_secs = {interval_secs}
lease_secs = 2
retry_base_secs = 0
max_attempts = 4
refund_max_attempts = 3
"#
    )
}

impl Rig {
    /// `merchant` is extra TOML for the first merchant (e.g. `auto_refund = true`).
    pub async fn start(backend: Backend, merchant: &str) -> Rig {
        let fake = FakeFreedomPay::start(KEY).await;
        let db = TestDb::new(backend).await;
        let mut toml = base_toml(&db.url);
        // The first merchant's table ends before the second `[[merchants]]`.
        toml = toml.replacen(
            "\n[[merchants]]\nid = \"100200\"",
            &format!("{merchant}\n\n[[merchants]]\nid = \"100200\""),
            1,
        );
        toml.push_str(&api_toml(&fake.base_url, 3600));
        let settings = Settings::from_toml(&toml).expect("test settings are valid");
        let app = TestApp::spawn_settings(settings.clone(), Some(db)).await;
        let reconciler = Reconciler::new(&settings, app.store.clone()).expect("reconciler");
        Rig {
            app,
            fake,
            settings,
            toml,
            reconciler,
        }
    }

    pub async fn round(&self) -> Round {
        self.reconciler.round().await.expect("round")
    }

    /// Another instance on the same database.
    pub fn second_instance(&self) -> Reconciler {
        Reconciler::new(&self.settings, self.app.store.clone()).expect("reconciler")
    }
}
