//! The budget of failed signatures under a flood of forged sources, driven
//! directly: its memory stays bounded (`server.budget_max_sources`, least
//! recently seen forgotten first), IPv6 sources share a budget per network
//! (`server.ipv6_budget_prefix`), and throttling comes with a `Retry-After`.
//! That genuine callbacks are answered during such a flood is shown over HTTP
//! in `hardening_network.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use freedompay_receiver::config::ServerSettings;
use freedompay_receiver::http::network::{Charge, NetworkPolicy};

const FORGED_SOURCES: u32 = 200_000;
const CAP: usize = 10_000;

fn policy(per_minute: u32, ipv6_prefix: u8) -> NetworkPolicy {
    NetworkPolicy::new(&ServerSettings {
        invalid_signature_per_minute: per_minute,
        budget_max_sources: CAP,
        ipv6_budget_prefix: ipv6_prefix,
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..ServerSettings::default()
    })
}

fn v4(i: u32) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
}

#[test]
fn two_hundred_thousand_forged_ipv4_sources_stay_within_the_cap() {
    let p = policy(2, 64);
    let mut largest = 0;
    for i in 0..FORGED_SOURCES {
        assert_eq!(p.charge_failure(v4(i)), Charge::Within);
        largest = largest.max(p.tracked_sources());
    }
    assert_eq!(largest, CAP);
    // The most recent sources are remembered and throttled on their third
    // failure (2 a minute: one more in at most 30 s)...
    let last = v4(FORGED_SOURCES - 1);
    assert_eq!(p.charge_failure(last), Charge::Within);
    assert!(matches!(
        p.charge_failure(last),
        Charge::Throttled {
            retry_after_secs: 1..=30
        }
    ));
    // ...the oldest were forgotten: a fresh budget, no memory kept.
    assert_eq!(p.charge_failure(v4(0)), Charge::Within);
    assert_eq!(p.charge_failure(v4(0)), Charge::Within);
    assert_eq!(p.tracked_sources(), CAP);
}

#[test]
fn a_flood_from_one_ipv6_network_is_one_source() {
    let p = policy(2, 64);
    let network = 0x2001_0db8_0001_0002_u128 << 64;
    let mut throttled = 0;
    for i in 0..u128::from(FORGED_SOURCES) {
        let ip = IpAddr::V6(Ipv6Addr::from(network | (i * 0x1_0000_0001)));
        if matches!(p.charge_failure(Some(ip)), Charge::Throttled { .. }) {
            throttled += 1;
        }
    }
    assert_eq!(throttled, FORGED_SOURCES - 2);
    assert_eq!(p.tracked_sources(), 1);
    // The next /64 has a budget of its own.
    let next = IpAddr::V6(Ipv6Addr::from(network + (1 << 64)));
    assert_eq!(p.charge_failure(Some(next)), Charge::Within);
    assert_eq!(p.tracked_sources(), 2);
}

#[test]
fn the_ipv6_prefix_is_configurable_and_the_map_still_bounded() {
    // Per address (/128): 200,000 sources from one /64, within the cap.
    let p = policy(2, 128);
    let network = 0x2001_0db8_0001_0002_u128 << 64;
    for i in 0..u128::from(FORGED_SOURCES) {
        let ip = IpAddr::V6(Ipv6Addr::from(network | i));
        assert_eq!(p.charge_failure(Some(ip)), Charge::Within);
    }
    assert_eq!(p.tracked_sources(), CAP);
    // A /48 puts different /64s together.
    let wide = policy(1, 48);
    assert_eq!(
        wide.charge_failure(Some("2001:db8:1:2::1".parse().unwrap())),
        Charge::Within
    );
    assert!(matches!(
        wide.charge_failure(Some("2001:db8:1:ffff::1".parse().unwrap())),
        Charge::Throttled { .. }
    ));
}

#[test]
fn retry_after_is_the_wait_for_one_more_failure_and_zero_means_no_budget() {
    let p = policy(1, 64);
    let source = v4(7);
    assert_eq!(p.charge_failure(source), Charge::Within);
    assert!(matches!(
        p.charge_failure(source),
        Charge::Throttled {
            retry_after_secs: 59..=60
        }
    ));
    let off = policy(0, 64);
    for _ in 0..1_000 {
        assert_eq!(off.charge_failure(source), Charge::Within);
    }
    assert_eq!(off.tracked_sources(), 0);
    // No address (no peer) is never charged.
    assert_eq!(p.charge_failure(None), Charge::Within);
}
