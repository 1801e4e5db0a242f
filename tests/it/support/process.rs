//! The real binary as a separate process (for signals and captured logs).

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct ServerProcess {
    pub child: Child,
    pub base_url: String,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `serve` with `extra` TOML after a base config (SQLite in a temp
    /// dir, JSON logs to a file unless `extra` sets `[log]`, one merchant
    /// with `key`).
    pub async fn start(key: &str, extra: &str) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("receiver.db").display());
        Self::start_in(dir, &database, key, extra).await
    }

    /// As [`ServerProcess::start`], on the given database.
    pub async fn start_on(database_url: &str, key: &str, extra: &str) -> ServerProcess {
        Self::start_in(tempfile::tempdir().unwrap(), database_url, key, extra).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        database_url: &str,
        key: &str,
        extra: &str,
    ) -> ServerProcess {
        let config = dir.path().join("config.toml");
        // JSON logs unless `extra` has a `[log]` table of its own.
        let log = if extra.contains("[log]") {
            ""
        } else {
            "[log]\nformat = \"json\"\n"
        };
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"{database_url}\"\n\
                 [metrics]\nlisten = \"127.0.0.1:0\"\n{log}[[merchants]]\nid = \"545774\"\nsecret_key = \"{key}\"\n{extra}"
            ),
        )
        .unwrap();
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .env_remove("FPR_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server prints where it listens");
        let base_url = first.rsplit(' ').next().unwrap().to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:"), "{first}");
        ServerProcess {
            child,
            base_url,
            log_path,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no shutdown, no flushing, as in a crash.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("killed");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}
