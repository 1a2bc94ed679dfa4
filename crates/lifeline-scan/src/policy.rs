//! Which addresses a census may connect to. A registry is untrusted input: an entry naming (or resolving to)
//! `169.254.169.254`, `127.0.0.1` or a LAN address would turn a census into a port scanner of the network it runs
//! in, so such endpoints are refused after DNS resolution unless the user passes `--allow-private`.
//!
//! Known gap (time of check vs time of use): the probe resolves the name again on its own, so a name whose DNS
//! answer changes between the two look-ups (DNS rebinding with a short TTL) can still reach a private address.
//! Closing it needs the probe to accept a pinned address; see `docs/census.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use url::{Host, Url};

/// Why an endpoint was not probed: the addresses its host resolved to and the first non-public one found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Every address the host resolved to (or the literal address), deduplicated, in resolver order.
    pub addresses: Vec<IpAddr>,
    /// The first refused address.
    pub refused: IpAddr,
    /// Which range it falls in (`loopback`, `private`, `link_local`, …; see [`non_public_range`]).
    pub range: &'static str,
}

/// The outcome of checking one endpoint's host before probing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressCheck {
    /// Every resolved address is public: probe it.
    Public,
    /// At least one address is not public: do not probe.
    Refused(Refusal),
    /// The name did not resolve (or resolution timed out): reported as `dns_failed` without probing, because
    /// nothing can be checked.
    Unresolved(String),
}

/// The range a non-public address belongs to, or `None` for a public (globally routable) address.
///
/// IPv4: `unspecified` 0.0.0.0/8, `loopback` 127/8, `private` 10/8 172.16/12 192.168/16 (RFC 1918),
/// `shared_cgnat` 100.64/10 (RFC 6598), `link_local` 169.254/16 (includes the cloud metadata address
/// 169.254.169.254), `ietf_protocol` 192.0.0/24, `documentation` 192.0.2/24 198.51.100/24 203.0.113/24,
/// `benchmarking` 198.18/15, `multicast` 224/4, `reserved` 240/4 (includes broadcast).
/// IPv6: `unspecified` ::, `loopback` ::1, `unique_local` fc00::/7 (includes AWS's fd00:ec2::254),
/// `link_local` fe80::/10, `site_local` fec0::/10, `multicast` ff00::/8, `documentation` 2001:db8::/32,
/// `discard` 100::/64; IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64 (64:ff9b::/96) and 6to4
/// (2002::/16) addresses are judged by the IPv4 address they embed; Teredo (2001::/32) is refused as `tunnel`.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// Checks `url`'s host: a literal address directly, a name through the system resolver (bounded by
/// `timeout`). With several addresses, one non-public address is enough to refuse.
pub async fn check_url(url: &Url, timeout: Duration) -> AddressCheck {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        Some(Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
        Some(Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
        Some(Host::Domain(name)) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(addrs)) => dedup(addrs),
                Ok(Err(err)) => {
                    return AddressCheck::Unresolved(format!("{name} did not resolve: {err}"))
                }
                Err(_) => {
                    return AddressCheck::Unresolved(format!(
                        "resolving {name} timed out after {timeout:?}"
                    ))
                }
            }
        }
        None => return AddressCheck::Unresolved("the URL has no host".to_owned()),
    };
    if addresses.is_empty() {
        return AddressCheck::Unresolved("the name resolved to no address".to_owned());
    }
    check_addresses(addresses)
}

/// The decision for a set of resolved addresses (see [`check_url`]).
pub fn check_addresses(addresses: Vec<IpAddr>) -> AddressCheck {
    let first_bad = addresses
        .iter()
        .find_map(|ip| non_public_range(*ip).map(|range| (*ip, range)));
    match first_bad {
        Some((refused, range)) => AddressCheck::Refused(Refusal {
            addresses,
            refused,
            range,
        }),
        None => AddressCheck::Public,
    }
}

fn dedup(addrs: impl Iterator<Item = SocketAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        if !out.contains(&addr.ip()) {
            out.push(addr.ip());
        }
    }
    out
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (100, 64..=127, _) => "shared_cgnat",
        (169, 254, _) => "link_local",
        (192, 0, 0) => "ietf_protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (mapped) reaches the IPv4 address; ::a.b.c.d (the deprecated compatible form) is never
    // used on the wire, so it is refused even when the embedded address is public.
    if seg[..5] == [0, 0, 0, 0, 0] && seg[5] == 0xffff {
        return non_public_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return Some(non_public_v4(embedded_v4(seg[6], seg[7])).unwrap_or("ipv4_compatible"));
    }
    // NAT64 well-known prefix (RFC 6052): the gateway forwards to the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(embedded_v4(seg[6], seg[7]));
    }
    // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 tunnels to AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return non_public_v4(embedded_v4(seg[1], seg[2]));
    }
    Some(match seg[0] {
        0xfc00..=0xfdff => "unique_local",
        0xfe80..=0xfebf => "link_local",
        0xfec0..=0xfeff => "site_local",
        0xff00..=0xffff => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2001 if seg[1] == 0 => "tunnel",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard",
        _ => return None,
    })
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("0.0.0.0", Some("unspecified")),
            ("127.0.0.1", Some("loopback")),
            ("127.45.3.9", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared_cgnat")),
            ("100.127.255.254", Some("shared_cgnat")),
            ("100.128.0.1", None),
            ("169.254.169.254", Some("link_local")),
            ("192.0.0.8", Some("ietf_protocol")),
            ("192.0.2.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved")),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fd00:ec2::254", Some("unique_local")),
            ("fc00::1", Some("unique_local")),
            ("fe80::1", Some("link_local")),
            ("fec0::1", Some("site_local")),
            ("ff02::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("2001:0:4136:e378::1", Some("tunnel")),
            ("100::1", Some("discard")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link_local")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("loopback")),
            ("::8.8.8.8", Some("ipv4_compatible")),
            ("64:ff9b::a9fe:a9fe", Some("link_local")),
            ("64:ff9b::808:808", None),
            ("2002:c0a8:0101::1", Some("private")),
            ("2002:0808:0808::1", None),
            ("2606:4700:4700::1111", None),
        ];
        for (ip, want) in table {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public_range(parsed), *want, "{ip}");
        }
    }

    #[test]
    fn one_private_address_among_public_ones_refuses() {
        let addrs = vec!["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        match check_addresses(addrs) {
            AddressCheck::Refused(r) => {
                assert_eq!(r.refused, "10.0.0.1".parse::<IpAddr>().unwrap());
                assert_eq!(r.range, "private");
                assert_eq!(r.addresses.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            check_addresses(vec!["8.8.8.8".parse().unwrap()]),
            AddressCheck::Public
        );
    }

    #[tokio::test]
    async fn literal_and_resolved_loopback_are_refused() {
        let t = Duration::from_secs(5);
        for url in [
            "http://127.0.0.1:9/mcp",
            "http://[::1]:9/mcp",
            "http://localhost:9/mcp",
            "http://2130706433/",
        ] {
            let url = Url::parse(url).unwrap();
            match check_url(&url, t).await {
                AddressCheck::Refused(r) => assert_eq!(r.range, "loopback", "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unresolvable_name_is_unresolved() {
        let url = Url::parse("http://no-such-host.invalid/mcp").unwrap();
        assert!(matches!(
            check_url(&url, Duration::from_secs(5)).await,
            AddressCheck::Unresolved(_)
        ));
    }
}
