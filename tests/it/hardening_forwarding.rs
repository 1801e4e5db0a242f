//! Which address a request is attributed to (`NetworkPolicy::client_ip`):
//! `X-Forwarded-For` walked from the right through trusted proxies only, ports
//! and brackets stripped, and an unreadable entry ending the walk.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};
use freedompay_receiver::config::ServerSettings;
use freedompay_receiver::http::network::NetworkPolicy;

fn policy(trusted: &[&str]) -> NetworkPolicy {
    NetworkPolicy::new(&ServerSettings {
        trusted_proxies: trusted.iter().map(|n| n.parse().unwrap()).collect(),
        ..ServerSettings::default()
    })
}

/// The client `policy` sees for a request from `peer` with these
/// `X-Forwarded-For` lines.
fn client(policy: &NetworkPolicy, peer: &str, lines: &[&str]) -> IpAddr {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
    }
    let peer: SocketAddr = peer.parse().unwrap();
    policy.client_ip(Some(peer), &headers).expect("a peer")
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

const PROXY: &str = "127.0.0.1:40000";

#[test]
fn ports_and_brackets_are_stripped() {
    let p = policy(&["127.0.0.1/32"]);
    assert_eq!(client(&p, PROXY, &["203.0.113.7:5678"]), ip("203.0.113.7"));
    assert_eq!(client(&p, PROXY, &["[2001:db8::1]:443"]), ip("2001:db8::1"));
    assert_eq!(client(&p, PROXY, &["[2001:db8::1]"]), ip("2001:db8::1"));
    assert_eq!(client(&p, PROXY, &["2001:db8::1"]), ip("2001:db8::1"));
    assert_eq!(client(&p, PROXY, &[" 203.0.113.7 "]), ip("203.0.113.7"));
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(
        client(&p, PROXY, &["::ffff:203.0.113.7"]),
        ip("203.0.113.7")
    );
}

#[test]
fn a_client_written_entry_left_of_a_ported_hop_is_not_believed() {
    let p = policy(&["127.0.0.1/32"]);
    // The proxy appended the real client with its port; the attacker wrote
    // the allowed-looking address in front.
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7, 198.51.100.1:5678"]),
        ip("198.51.100.1")
    );
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7", "[2001:db8::66]:1234"]),
        ip("2001:db8::66")
    );
}

#[test]
fn an_unreadable_entry_ends_the_walk_at_the_last_trusted_hop() {
    let p = policy(&["127.0.0.1/32", "10.0.0.0/8"]);
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7, unknown"]),
        ip("127.0.0.1")
    );
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7, _hidden, 10.0.0.2"]),
        ip("10.0.0.2")
    );
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7, 10.0.0.3, 1.2.3.4.5, 10.0.0.2"]),
        ip("10.0.0.2")
    );
    assert_eq!(client(&p, PROXY, &["203.0.113.7:port"]), ip("127.0.0.1"));
    assert_eq!(client(&p, PROXY, &["[203.0.113.7]"]), ip("127.0.0.1"));
    let mut headers = HeaderMap::new();
    headers.append(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"203.0.113.7, \xff").unwrap(),
    );
    assert_eq!(
        p.client_ip(Some(PROXY.parse().unwrap()), &headers),
        Some(ip("127.0.0.1"))
    );
}

#[test]
fn several_proxies_and_header_lines() {
    let p = policy(&["127.0.0.1/32", "10.0.0.0/8", "2001:db8:ffff::/48"]);
    assert_eq!(
        client(
            &p,
            PROXY,
            &["198.51.100.9, 203.0.113.7, 10.0.0.3, 10.0.0.2"]
        ),
        ip("203.0.113.7")
    );
    assert_eq!(
        client(
            &p,
            PROXY,
            &[
                "198.51.100.9, 203.0.113.7",
                "10.0.0.3:80",
                "[2001:db8:ffff::1]:443"
            ]
        ),
        ip("203.0.113.7")
    );
    // Empty list elements mean nothing.
    assert_eq!(
        client(&p, PROXY, &["203.0.113.7,, 10.0.0.2 ,"]),
        ip("203.0.113.7")
    );
    // Every entry a trusted proxy: the furthest one.
    assert_eq!(client(&p, PROXY, &["10.0.0.3, 10.0.0.2"]), ip("10.0.0.3"));
    // A trusted IPv6 peer, and an IPv4-mapped one.
    assert_eq!(
        client(&p, "[2001:db8:ffff::9]:1", &["203.0.113.7"]),
        ip("203.0.113.7")
    );
    assert_eq!(
        client(&p, "[::ffff:127.0.0.1]:1", &["203.0.113.7"]),
        ip("203.0.113.7")
    );
}

#[test]
fn the_header_from_an_untrusted_peer_or_without_trusted_proxies_is_ignored() {
    let p = policy(&["10.0.0.0/8"]);
    assert_eq!(
        client(&p, "198.51.100.4:999", &["203.0.113.7, 10.0.0.2"]),
        ip("198.51.100.4")
    );
    let none = policy(&[]);
    assert_eq!(
        client(&none, "198.51.100.4:999", &["203.0.113.7"]),
        ip("198.51.100.4")
    );
    assert_eq!(client(&p, "10.0.0.2:1", &[]), ip("10.0.0.2"));
    assert_eq!(p.client_ip(None, &HeaderMap::new()), None);
}
