//! HAProxy in front of a primary and its standby, on loopback ports, as
//! production has one; the test moves its backend as Patroni's health
//! checks would, through the runtime API on a loopback admin socket.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

pub struct Proxy {
    /// Where the service connects.
    pub port: u16,
    admin: u16,
    pid_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Proxy {
    /// Starts HAProxy sending to `first`, with `second` in maintenance.
    pub fn start(first: u16, second: u16) -> Proxy {
        let haproxy = std::env::var("FPR_TEST_HAPROXY").unwrap_or_else(|_| "haproxy".into());
        let dir = tempfile::tempdir().expect("temp dir");
        let (port, admin) = (free_port(), free_port());
        let pid_file = dir.path().join("haproxy.pid");
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n  stats socket ipv4@127.0.0.1:{admin} level admin\n\
                 defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n\
                 listen postgres\n  bind 127.0.0.1:{port}\n\
                 \x20 server pg1 127.0.0.1:{first}\n  server pg2 127.0.0.1:{second} disabled\n"
            ),
        )
        .expect("haproxy.cfg");
        let out = Command::new(haproxy)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-p")
            .arg(&pid_file)
            .output()
            .expect("haproxy runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "haproxy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Proxy {
            port,
            admin,
            pid_file,
            _dir: dir,
        }
    }

    /// One runtime API command; its answer.
    pub fn command(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.admin)).expect("admin socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("command sent");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    /// Sends new connections to `to` (`pg1` or `pg2`) and cuts every
    /// session of the other, as `on-marked-down shutdown-sessions` does
    /// when a health check marks the old primary down.
    pub fn point_at(&self, to: &str) {
        let from = if to == "pg1" { "pg2" } else { "pg1" };
        self.command(&format!("set server postgres/{to} state ready"));
        self.command(&format!("set server postgres/{from} state maint"));
        self.command(&format!("shutdown sessions server postgres/{from}"));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            for pid in pid.split_whitespace() {
                let _ = Command::new("kill").arg(pid).output();
            }
        }
    }
}
