//! `healthcheck`: exit 0 when `GET /readyz` on the configured `server.listen`
//! answers 200, else 1, with the reason on one line. It is the container's
//! health check, so it needs no shell, curl or CA store: plain HTTP to the
//! local listener (an unspecified address such as 0.0.0.0 is reached on
//! loopback), no proxy. Every failure is exit 1, configuration included:
//! Docker reserves exit code 2 of a health check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{EXIT_FAILURE, runtime};
use crate::api::client::{build_http_client, with_causes};
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

pub fn run(path: Option<&Path>, args: &HealthcheckArgs) -> ExitCode {
    match check(path, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn check(path: Option<&Path>, args: &HealthcheckArgs) -> Result<(), String> {
    let settings = Settings::load_unchecked(path).map_err(|e| e.to_string())?;
    let listen: SocketAddr = settings.server.listen.parse().map_err(|_| {
        format!(
            "server.listen: {:?} is not an address",
            settings.server.listen
        )
    })?;
    let url = format!("http://{}/readyz", reachable(listen));
    // Plain HTTP only: no CA certificates are loaded, so the check works
    // where the system has none.
    let client = build_http_client(
        reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([])
            .timeout(Duration::from_secs(args.timeout_secs.max(1))),
    )
    .map_err(|e| e.to_string())?;
    let status = runtime()
        .block_on(async { client.get(&url).send().await.map(|r| r.status()) })
        .map_err(|e| format!("{url}: {}", with_causes(&e)))?;
    if status == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// The address to connect to for a listener on `listen`: an unspecified
/// address is served on loopback too.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}
