//! Network policy for the callback endpoints: who may call them
//! (`server.allowed_sources`), whose `X-Forwarded-For` is believed
//! (`server.trusted_proxies`), and a per-source budget of failed signatures
//! (`server.invalid_signature_per_minute`) so that a flood of forgeries cannot
//! fill the logs or burn CPU on hashing.
//!
//! FreedomPay publishes no source addresses (protocol reference §3.3), so the
//! allow-list is empty (everyone) by default: the signature is the real gate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Sources tracked by the failure budget at most; beyond it, sources back at
/// full budget are forgotten first.
const MAX_TRACKED_SOURCES: usize = 10_000;

#[derive(Debug)]
pub struct NetworkPolicy {
    allowed_sources: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    failures: FailureBudget,
}

impl NetworkPolicy {
    pub fn new(
        allowed_sources: Vec<IpNet>,
        trusted_proxies: Vec<IpNet>,
        failures_per_minute: u32,
    ) -> Self {
        NetworkPolicy {
            allowed_sources,
            trusted_proxies,
            failures: FailureBudget::new(failures_per_minute),
        }
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip();
        if !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.is_trusted_proxy(*ip))
                .unwrap_or(peer),
        )
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Whether `ip` may call the callback endpoints.
    pub fn is_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.allowed_sources.is_empty() {
            return true;
        }
        ip.is_some_and(|ip| self.allowed_sources.iter().any(|net| net.contains(&ip)))
    }

    /// Whether `ip` has used up its budget of failed signatures.
    pub fn is_throttled(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.failures.is_exhausted(ip))
    }

    /// Charges a failed signature to `ip`.
    pub fn record_failure(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.failures.charge(ip);
        }
    }
}

/// A token bucket per source: `per_minute` failures a minute, bursts up to
/// the same number. A bucket that may be inspected without being charged,
/// which is why this is not a general-purpose rate-limiting crate.
#[derive(Debug)]
struct FailureBudget {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl FailureBudget {
    fn new(per_minute: u32) -> Self {
        FailureBudget {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn tokens(&self, stored: Option<&(f64, Instant)>, now: Instant) -> f64 {
        match stored {
            None => self.per_minute,
            Some((tokens, at)) => {
                let refill = now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0;
                (tokens + refill).min(self.per_minute)
            }
        }
    }

    fn is_exhausted(&self, ip: IpAddr) -> bool {
        if self.per_minute <= 0.0 {
            return false;
        }
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        self.tokens(buckets.get(&ip), Instant::now()) < 1.0
    }

    fn charge(&self, ip: IpAddr) {
        if self.per_minute <= 0.0 {
            return;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_SOURCES {
            let full = self.per_minute;
            buckets.retain(|_, (tokens, at)| {
                let refill = now.duration_since(*at).as_secs_f64() * full / 60.0;
                *tokens + refill < full
            });
        }
        let tokens = self.tokens(buckets.get(&ip), now);
        buckets.insert(ip, ((tokens - 1.0).max(0.0), now));
    }
}
