//! Network policy for the callback endpoints: who may call them
//! (`server.allowed_sources`), whose `X-Forwarded-For` is believed
//! (`server.trusted_proxies`), and a per-source budget of failed signatures
//! (`server.invalid_signature_per_minute`) so that a flood of forgeries cannot
//! fill the logs.
//!
//! FreedomPay publishes no source addresses (protocol reference §3.3), so the
//! allow-list is empty (everyone) by default: the signature is the real gate.
//! For the same reason the budget is only ever consulted once a signature has
//! failed: a request whose signature verifies is never throttled, whatever its
//! source has sent before (a proxy in front shares one address among everyone).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hashlink::LruCache;
use ipnet::{IpNet, Ipv6Net};
use tracing::warn;

use crate::config::ServerSettings;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// How often, at most, the log says that `X-Forwarded-For` arrives while no
/// proxy is trusted (one line a minute is enough to be noticed, a flood of
/// such requests cannot fill the log).
const FORWARDING_WARNING_EVERY: Duration = Duration::from_secs(60);

/// What charging a failed signature to its source decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charge {
    /// The source still had budget: answer the failure as usual (403).
    Within,
    /// The source is over its budget: answer 429, with `Retry-After` set to
    /// the seconds until it has budget for one more failure.
    Throttled { retry_after_secs: u64 },
}

#[derive(Debug)]
pub struct NetworkPolicy {
    allowed_sources: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    failures: FailureBudget,
    forwarding_warned: Mutex<Option<Instant>>,
}

impl NetworkPolicy {
    pub fn new(server: &ServerSettings) -> Self {
        if server.trusted_proxies.is_empty() {
            warn!(
                "server.trusted_proxies is empty: X-Forwarded-For is ignored and each request is \
                 attributed to its TCP peer; behind a reverse proxy, list the proxy there, or every \
                 source shares the proxy's address (and its budget of failed signatures)"
            );
        }
        NetworkPolicy {
            allowed_sources: server.allowed_sources.clone(),
            trusted_proxies: server.trusted_proxies.clone(),
            failures: FailureBudget::new(
                server.invalid_signature_per_minute,
                server.budget_max_sources,
                server.ipv6_budget_prefix,
            ),
            forwarding_warned: Mutex::new(None),
        }
    }

    /// The client address: the peer, or, when the peer is a trusted proxy, the
    /// first `X-Forwarded-For` entry from the right that is not itself a
    /// trusted proxy.
    ///
    /// Each proxy appends the address it received the request from, so only
    /// the entries to the right of the first untrusted one were written by
    /// proxies we trust; everything to its left is whatever the client sent.
    /// Entries may carry a port (`192.0.2.1:5678`, `[2001:db8::1]:443`) and
    /// brackets. An entry that still does not parse (`unknown`, an obfuscated
    /// name, garbage) ends the walk: the address that wrote it cannot be read,
    /// so the request is attributed to the last trusted hop reached (the peer
    /// when it is the right-most entry). Skipping it instead would let the
    /// client-written entry to its left through.
    ///
    /// Only `X-Forwarded-For` is read, not `Forwarded` (RFC 7239): a proxy
    /// writes one of them, and believing the other as well would believe a
    /// header that the client wrote and the proxy passed through untouched.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        let values = headers.get_all(X_FORWARDED_FOR);
        if self.trusted_proxies.is_empty() {
            if values.iter().next().is_some() {
                self.warn_forwarding_ignored(peer);
            }
            return Some(peer);
        }
        if !self.is_trusted_proxy(peer) {
            return Some(peer);
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let values: Vec<_> = values.iter().collect();
        let mut last_trusted = peer;
        for value in values.into_iter().rev() {
            let Ok(text) = value.to_str() else {
                return Some(last_trusted);
            };
            // Empty list elements are allowed and mean nothing (RFC 9110 §5.6.1).
            for entry in text.rsplit(',').map(str::trim).filter(|e| !e.is_empty()) {
                let Some(ip) = parse_forwarded_entry(entry) else {
                    return Some(last_trusted);
                };
                if !self.is_trusted_proxy(ip) {
                    return Some(ip);
                }
                last_trusted = ip;
            }
        }
        Some(last_trusted)
    }

    fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// `X-Forwarded-For` arrived but no proxy is trusted: say so, at most once
    /// a minute.
    fn warn_forwarding_ignored(&self, peer: IpAddr) {
        let now = Instant::now();
        let mut last = self
            .forwarding_warned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= FORWARDING_WARNING_EVERY) {
            *last = Some(now);
            warn!(
                %peer,
                "X-Forwarded-For received but server.trusted_proxies is empty: the header is \
                 ignored and the request is attributed to the peer (said at most once a minute)"
            );
        }
    }

    /// Whether `ip` may call the callback endpoints.
    pub fn is_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.allowed_sources.is_empty() {
            return true;
        }
        ip.is_some_and(|ip| self.allowed_sources.iter().any(|net| net.contains(&ip)))
    }

    /// Charges a failed signature to `ip`'s source and says whether the source
    /// is over its budget. Called on the failure path only.
    pub fn charge_failure(&self, ip: Option<IpAddr>) -> Charge {
        match ip {
            Some(ip) => self.failures.charge(ip),
            None => Charge::Within,
        }
    }

    /// How many sources the failure budget tracks now (at most
    /// `server.budget_max_sources`).
    pub fn tracked_sources(&self) -> usize {
        self.failures.len()
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port and
/// brackets. IPv4-mapped IPv6 addresses become IPv4.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let bracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    bracketed
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// A token bucket per source: `per_minute` failures a minute, bursts up to
/// the same number. IPv6 sources are keyed by their network
/// (`server.ipv6_budget_prefix`, /64 by default: one subscriber's allocation,
/// which an attacker can otherwise spread over 2^64 addresses). At most
/// `max_sources` are tracked; past that, the source seen least recently is
/// forgotten (`hashlink::LruCache`: O(1) per failure, no sweep), so memory is
/// bounded whatever the number of forged sources. Forgetting a source only
/// gives it a fresh budget of failures; it never blocks a genuine callback.
#[derive(Debug)]
struct FailureBudget {
    per_minute: f64,
    ipv6_prefix: u8,
    buckets: Mutex<LruCache<IpAddr, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl FailureBudget {
    fn new(per_minute: u32, max_sources: usize, ipv6_prefix: u8) -> Self {
        FailureBudget {
            per_minute: f64::from(per_minute),
            // A prefix past 128 would be an error from `Ipv6Net`; 128 is the
            // per-address keying such a setting asks for.
            ipv6_prefix: ipv6_prefix.min(128),
            buckets: Mutex::new(LruCache::new(max_sources.max(1))),
        }
    }

    /// The key a source is tracked under: an IPv4 address, or the IPv6
    /// network of the configured prefix.
    fn key(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                IpAddr::V6(Ipv6Net::new(v6, self.ipv6_prefix).map_or(v6, |net| net.network()))
            }
        }
    }

    fn charge(&self, ip: IpAddr) -> Charge {
        if self.per_minute <= 0.0 {
            return Charge::Within;
        }
        let key = self.key(ip);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tokens = match buckets.get(&key) {
            None => self.per_minute,
            Some(bucket) => {
                let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_minute / 60.0;
                (bucket.tokens + refill).min(self.per_minute)
            }
        };
        let (left, charge) = if tokens >= 1.0 {
            (tokens - 1.0, Charge::Within)
        } else {
            let wait = (1.0 - tokens) * 60.0 / self.per_minute;
            let retry_after_secs = wait.ceil().max(1.0) as u64;
            (tokens, Charge::Throttled { retry_after_secs })
        };
        // Inserting moves the source to the most-recent end and, at the cap,
        // evicts the least recently seen one.
        buckets.insert(
            key,
            Bucket {
                tokens: left,
                at: now,
            },
        );
        charge
    }

    fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
