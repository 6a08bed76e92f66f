//! `ws://` / `wss://` URI parsing and the close-code rules of RFC 6455 (pure functions).

use tungstenite::http::Uri;

use crate::error::Error;

/// Where a websocket connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub secure: bool,
    /// Host without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

/// Parses a `ws://` or `wss://` URI.
pub fn parse_target(uri: &str) -> Result<Target, Error> {
    let parsed: Uri = uri.parse().map_err(|e| Error::invalid_argument(format!("invalid URI '{uri}': {e}")))?;
    let secure = match parsed.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("ws") => false,
        Some(s) if s.eq_ignore_ascii_case("wss") => true,
        Some(s) => return Err(Error::invalid_argument(format!("unsupported scheme '{s}': use ws:// or wss://"))),
        None => return Err(Error::invalid_argument(format!("URI '{uri}' has no scheme: use ws:// or wss://"))),
    };
    let host = parsed
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::invalid_argument(format!("URI '{uri}' has no host")))?;
    // A bracketed host must be an IPv6 literal (found by fuzzing: `ws://[].:/` gave an empty host).
    let host = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']').map(|h| (h, h.parse::<std::net::Ipv6Addr>())) {
            Some((h, Ok(_))) => h.to_string(),
            _ => return Err(Error::invalid_argument(format!("URI '{uri}' has an invalid IPv6 host"))),
        },
        None => host.to_string(),
    };
    // `Uri::port()` hides an out-of-range port (None, as if absent): read it from the authority.
    let authority = parsed.authority().map(|a| a.as_str()).unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let port_text = if host_port.starts_with('[') {
        host_port.find("]:").map(|i| &host_port[i + 2..])
    } else {
        host_port.rfind(':').map(|i| &host_port[i + 1..])
    };
    let port = match port_text {
        None => {
            if secure {
                443
            } else {
                80
            }
        }
        Some(t) => match t.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(Error::invalid_argument(format!("port '{t}' in URI '{uri}' is not in 1..=65535"))),
        },
    };
    Ok(Target { secure, host, port })
}

/// Close codes an application may send (RFC 6455 section 7.4).
pub fn may_send_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Longest close reason: a control frame payload is at most 125 bytes, 2 of them the code.
pub const MAX_CLOSE_REASON: usize = 123;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schemes_hosts_and_ports() {
        let t = parse_target("ws://example.com/feed").ok();
        assert_eq!(t, Some(Target { secure: false, host: "example.com".into(), port: 80 }));
        let t = parse_target("WSS://[::1]:9443/x?y=1").ok();
        assert_eq!(t, Some(Target { secure: true, host: "::1".into(), port: 9443 }));
        assert_eq!(parse_target("wss://h").ok().map(|t| t.port), Some(443));
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "http://x/",
            "x",
            "ws://:80/",
            "ws://h:0/",
            "ws://h:65536/",
            "ws://h:99999999/",
            "",
            "ws://[].:/90?.#1",
            "ws://[]/",
            "ws://[zz]/",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn close_code_rules() {
        for ok in [1000, 1001, 1003, 1007, 1014, 3000, 4999] {
            assert!(may_send_close_code(ok));
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535] {
            assert!(!may_send_close_code(bad));
        }
    }
}
