//! Which network are we on? A stable string per network, from the text of Linux's
//! `/proc/net/route`, `/proc/net/ipv6_route` and `/proc/net/if_inet6` (the runtime reads the
//! files; everything here parses text and is tested on it).
//!
//! The key is the default route's interface and gateway plus the prefix of the local network:
//! `v4 dev=wlan0 gw=192.168.1.1 net=192.168.1.0/24` or `v6 dev=eth0 gw=fe80::1 net=2001:db8:1::/64`.
//! The host part of the local address is left out, so a new DHCP lease or IPv6 privacy address
//! on the same network keeps the key. For IPv4 the prefix is the interface's on-link route that
//! contains the gateway (the kernel adds it with the address), so no `getifaddrs` is needed.
//!
//! Learned values are also kept per server: [`host_key`] (`host:port`, lower case), because a
//! load balancer's idle timeout belongs to the server's side of the path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `RTF_UP`, `RTF_GATEWAY`, `RTF_REJECT` from `<linux/route.h>`.
const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;
/// `IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE` from `<linux/if_addr.h>`.
const IFA_F_UNUSABLE: u32 = 0x08 | 0x20 | 0x40;

/// The route packets to the internet take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    pub iface: String,
    /// None for a point-to-point link (no next hop).
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

/// `/proc/net/route` prints each address as the hex of the in-memory (network order) `u32`.
fn parse_v4_hex(s: &str) -> Option<Ipv4Addr> {
    if s.len() != 8 {
        return None;
    }
    let raw = u32::from_str_radix(s, 16).ok()?;
    Some(Ipv4Addr::from(raw.to_ne_bytes()))
}

/// `/proc/net/ipv6_route` and `/proc/net/if_inet6` print addresses as 32 hex digits.
fn parse_v6_hex(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Ipv6Addr::from(b))
}

fn usable_iface(name: &str) -> bool {
    !name.is_empty() && name != "lo" && name.len() <= 15
}

/// One IPv4 route line: (iface, destination, gateway, flags, metric, mask).
fn v4_routes(text: &str) -> impl Iterator<Item = (&str, Ipv4Addr, Ipv4Addr, u32, u32, Ipv4Addr)> {
    text.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        let flags = u32::from_str_radix(f[3], 16).ok()?;
        let metric = f[6].parse().ok()?;
        Some((f[0], parse_v4_hex(f[1])?, parse_v4_hex(f[2])?, flags, metric, parse_v4_hex(f[7])?))
    })
}

/// The IPv4 default route with the lowest metric from the text of `/proc/net/route`.
pub fn parse_route_v4(text: &str) -> Option<DefaultRoute> {
    v4_routes(text)
        .filter(|r| r.1.is_unspecified() && r.5.is_unspecified())
        .filter(|r| r.3 & RTF_UP != 0 && r.3 & RTF_REJECT == 0 && usable_iface(r.0))
        .min_by_key(|r| r.4)
        .map(|r| DefaultRoute {
            iface: r.0.to_string(),
            gateway: (r.3 & RTF_GATEWAY != 0 && !r.2.is_unspecified()).then_some(IpAddr::V4(r.2)),
            metric: r.4,
        })
}

/// The local IPv4 network of `route`: the on-link route of its interface that contains the
/// gateway (or, without a gateway, the interface's first on-link route), as (network, length).
pub fn local_prefix_v4(text: &str, route: &DefaultRoute) -> Option<(IpAddr, u8)> {
    let gw = match route.gateway {
        Some(IpAddr::V4(g)) => Some(u32::from(g)),
        _ => None,
    };
    v4_routes(text)
        .filter(|r| r.0 == route.iface && r.3 & RTF_UP != 0 && r.3 & RTF_GATEWAY == 0)
        .filter(|r| !r.5.is_unspecified())
        .find(|r| gw.is_none_or(|g| g & u32::from(r.5) == u32::from(r.1)))
        .and_then(|r| {
            let mask = u32::from(r.5);
            let len = mask.count_ones();
            // Only contiguous masks are prefixes.
            (mask.leading_ones() == len).then(|| (IpAddr::V4(Ipv4Addr::from(u32::from(r.1) & mask)), len as u8))
        })
}

/// The IPv6 default route with the lowest metric from the text of `/proc/net/ipv6_route`.
pub fn parse_route_v6(text: &str) -> Option<DefaultRoute> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dest = parse_v6_hex(f[0])?;
            let dest_len = u8::from_str_radix(f[1], 16).ok()?;
            let next_hop = parse_v6_hex(f[4])?;
            let metric = u32::from_str_radix(f[5], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            let ok = dest.is_unspecified() && dest_len == 0 && flags & RTF_UP != 0 && flags & RTF_REJECT == 0;
            (ok && usable_iface(f[9])).then(|| DefaultRoute {
                iface: f[9].to_string(),
                gateway: (!next_hop.is_unspecified()).then_some(IpAddr::V6(next_hop)),
                metric,
            })
        })
        .min_by_key(|r| r.metric)
}

/// The prefix of the interface's global IPv6 address (a usable, non-temporary one first) from
/// the text of `/proc/net/if_inet6`, as (network, length).
pub fn local_prefix_v6(text: &str, iface: &str) -> Option<(IpAddr, u8)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || f[5] != iface {
                return None;
            }
            let addr = parse_v6_hex(f[0])?;
            let len = u8::from_str_radix(f[2], 16).ok().filter(|&l| l <= 128)?;
            let scope = u32::from_str_radix(f[3], 16).ok()?;
            let flags = u32::from_str_radix(f[4], 16).ok()?;
            (scope == 0 && flags & IFA_F_UNUSABLE == 0).then_some((addr, len, flags & 0x01 != 0))
        })
        .min_by_key(|&(_, _, temporary)| temporary)
        .map(|(addr, len, _)| (IpAddr::V6(mask_v6(addr, len)), len))
}

fn mask_v6(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
    Ipv6Addr::from(bits & mask)
}

/// The stable key of a network from its default route and local prefix.
pub fn network_key(route: &DefaultRoute, prefix: Option<(IpAddr, u8)>) -> String {
    let family = match route.gateway.or(prefix.map(|p| p.0)) {
        Some(IpAddr::V6(_)) => "v6",
        _ => "v4",
    };
    let gw = route.gateway.map_or_else(|| "-".to_string(), |g| g.to_string());
    let net = prefix.map_or_else(|| "-".to_string(), |(n, l)| format!("{n}/{l}"));
    format!("{family} dev={} gw={gw} net={net}", route.iface)
}

/// The IPv4 network key from the text of `/proc/net/route`, if there is a default route.
pub fn network_key_v4(route_text: &str) -> Option<String> {
    let route = parse_route_v4(route_text)?;
    Some(network_key(&route, local_prefix_v4(route_text, &route)))
}

/// The IPv6 network key from `/proc/net/ipv6_route` and `/proc/net/if_inet6`.
pub fn network_key_v6(route_text: &str, if_inet6_text: &str) -> Option<String> {
    let route = parse_route_v6(route_text)?;
    Some(network_key(&route, local_prefix_v6(if_inet6_text, &route.iface)))
}

/// The per-server part of the key: `host:port` (`[v6]:port`), host in lower case without a
/// trailing dot; characters that could break the state file (whitespace, controls) become `_`.
pub fn host_key(host: &str, port: u16) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    let h: String =
        h.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c.to_ascii_lowercase() }).collect();
    if h.contains(':') {
        format!("[{h}]:{port}")
    } else {
        format!("{h}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hex /proc/net/route prints for `a` on this machine's byte order.
    fn hex4(a: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(a))
    }

    /// (iface, destination, gateway, flags, metric, mask) of one /proc/net/route line.
    type Line<'a> = (&'a str, [u8; 4], [u8; 4], u32, u32, [u8; 4]);

    fn route_table(lines: &[Line]) -> String {
        let mut t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n".to_string();
        for (dev, dst, gw, flags, metric, mask) in lines {
            t += &format!(
                "{dev}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
                hex4(*dst),
                hex4(*gw),
                hex4(*mask)
            );
        }
        t
    }

    #[test]
    fn v4_key_from_default_route_and_link_route() {
        let t = route_table(&[
            ("eth0", [10, 9, 0, 0], [0; 4], 0x1, 0, [255, 255, 0, 0]),
            ("wlan0", [0; 4], [192, 168, 1, 1], 0x3, 600, [0; 4]),
            ("eth0", [0; 4], [10, 9, 0, 1], 0x3, 100, [0; 4]),
            ("wlan0", [192, 168, 1, 0], [0; 4], 0x1, 600, [255, 255, 255, 0]),
        ]);
        let r = parse_route_v4(&t).unwrap();
        assert_eq!(r, DefaultRoute { iface: "eth0".into(), gateway: Some("10.9.0.1".parse().unwrap()), metric: 100 });
        assert_eq!(network_key_v4(&t).unwrap(), "v4 dev=eth0 gw=10.9.0.1 net=10.9.0.0/16");
    }

    #[test]
    fn the_kernels_own_text() {
        // Verbatim from a little-endian Linux box (trailing padding included).
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT       \n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                \n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                \n";
        if cfg!(target_endian = "little") {
            assert_eq!(network_key_v4(t).unwrap(), "v4 dev=eth0 gw=192.0.2.1 net=192.0.2.0/24");
        }
        let r6 = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        let a6 = "00000000000000000000000000000001 01 80 10 80       lo\n\
                  fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                  fd000000000000000000000000000002 04 40 00 82     eth0\n";
        assert_eq!(network_key_v6(r6, a6).unwrap(), "v6 dev=eth0 gw=fd00::1 net=fd00::/64");
    }

    #[test]
    fn host_part_and_lease_changes_keep_the_key() {
        let a = "20010db8000100000000000000000005 02 40 00 80 wlan0\n";
        let b = "20010db80001000012345678abcdef01 02 40 00 01 wlan0\n"; // temporary (privacy) address
        assert_eq!(local_prefix_v6(a, "wlan0"), local_prefix_v6(b, "wlan0"));
        assert_eq!(local_prefix_v6(a, "wlan0").unwrap().0.to_string(), "2001:db8:1::");
        // A permanent address wins over a temporary one; tentative, deprecated, link-local and
        // other interfaces are skipped.
        let both = format!("{b}fe800000000000000000000000000001 02 40 20 80 wlan0\n{a}");
        assert_eq!(local_prefix_v6(&both, "wlan0").unwrap().1, 64);
        let skipped = "20010db8000200000000000000000001 02 40 00 40 wlan0\n\
                       20010db8000300000000000000000001 02 40 00 20 wlan0\n\
                       20010db8000400000000000000000001 03 40 00 80 eth1\n";
        assert_eq!(local_prefix_v6(skipped, "wlan0"), None);
    }

    #[test]
    fn no_default_route_or_garbage_gives_none() {
        let only_link = route_table(&[("eth0", [10, 0, 0, 0], [0; 4], 0x1, 0, [255, 0, 0, 0])]);
        assert_eq!(parse_route_v4(&only_link), None);
        let down_or_reject = route_table(&[
            ("eth0", [0; 4], [10, 0, 0, 1], 0x2, 0, [0; 4]),
            ("eth1", [0; 4], [10, 0, 0, 1], 0x203, 0, [0; 4]),
            ("lo", [0; 4], [0; 4], 0x1, 0, [0; 4]),
        ]);
        assert_eq!(parse_route_v4(&down_or_reject), None);
        for junk in ["", "\n\n", "Iface\nnot a route line\neth0 zz yy", "\u{0}\u{1}"] {
            assert_eq!(network_key_v4(junk), None);
            assert_eq!(network_key_v6(junk, junk), None);
        }
    }

    #[test]
    fn point_to_point_has_no_gateway() {
        let t = route_table(&[("ppp0", [0; 4], [0; 4], 0x1, 0, [0; 4])]);
        assert_eq!(network_key_v4(&t).unwrap(), "v4 dev=ppp0 gw=- net=-");
        let t = route_table(&[
            ("tun0", [0; 4], [0; 4], 0x1, 0, [0; 4]),
            ("tun0", [10, 8, 0, 0], [0; 4], 0x1, 0, [255, 255, 255, 0]),
        ]);
        assert_eq!(network_key_v4(&t).unwrap(), "v4 dev=tun0 gw=- net=10.8.0.0/24");
    }

    #[test]
    fn host_keys_are_normalised() {
        assert_eq!(host_key("Push.Example.COM.", 443), "push.example.com:443");
        assert_eq!(host_key("[2001:DB8::1]", 8080), "[2001:db8::1]:8080");
        assert_eq!(host_key("2001:db8::1", 8080), "[2001:db8::1]:8080");
        assert_eq!(host_key("a\tb\nc", 80), "a_b_c:80");
    }
}
