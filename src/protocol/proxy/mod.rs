//! Proxies: proxy URIs, the choice of proxy from the environment (like curl and python-websockets),
//! and the HTTP CONNECT and SOCKS5 handshakes as sans-I/O state machines.
//!
//! Nothing here touches a socket. A connect path uses it like this:
//!
//! 1. [`ProxySetting::resolve`] says whether the target goes through a proxy (explicit, from the
//!    environment, or direct).
//! 2. The caller opens TCP to [`Proxy::host`]:[`Proxy::port`]; a failure there is reported with
//!    [`unreachable`] (`PROXY_FAILED`). For `socks5://` the caller also resolves the target's name
//!    itself and passes the address ([`ProxyTarget::ip`]); `http://` and `socks5h://` take the name.
//! 3. [`ProxyHandshake::new`], then loop: write [`ProxyHandshake::pending_output`] (and report
//!    what was written with [`ProxyHandshake::consume_output`]), feed what the proxy sends to
//!    [`ProxyHandshake::feed`], until it returns [`Status::Established`]. Its `leftover` bytes were
//!    sent by the server through the tunnel: they are the first bytes of the TLS or WebSocket stream.
//!    An EOF from the proxy before that is [`ProxyHandshake::closed_error`].
//!
//! Credentials never leave this module in text: [`Proxy`]'s `Display`/`Debug` print `***@` in their
//! place, no error message contains them, and the handshakes' `Debug` shows only their state.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::error::{Error, Result, ResultCode};

/// Longest proxy response head (status line + headers) accepted from an HTTP proxy.
pub(crate) const MAX_PROXY_RESPONSE_HEAD: usize = 16 * 1024;
/// Most header lines accepted in an HTTP proxy's response.
const MAX_PROXY_RESPONSE_HEADERS: usize = 64;

fn proxy_failed(message: impl Into<String>) -> Error {
    Error::new(ResultCode::ProxyFailed, message)
}

// ---------------------------------------------------------------------------------------------
// Proxy URIs

/// The protocol spoken to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// `http://`: HTTP/1.1 `CONNECT`, Basic authentication from the URI's user info.
    HttpConnect,
    /// `socks5://`: SOCKS5, the client resolves the target's name.
    Socks5,
    /// `socks5h://`: SOCKS5, the proxy resolves the target's name.
    Socks5h,
}

impl ProxyKind {
    pub fn scheme(self) -> &'static str {
        match self {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        }
    }
    /// True when the proxy is given the target's host name (HTTP CONNECT and `socks5h://`); false
    /// when the client must resolve it and pass an address (`socks5://`).
    pub fn proxy_resolves_names(self) -> bool {
        !matches!(self, ProxyKind::Socks5)
    }
    fn default_port(self) -> u16 {
        match self {
            ProxyKind::HttpConnect => 80,
            ProxyKind::Socks5 | ProxyKind::Socks5h => 1080,
        }
    }
}

/// User name and password for the proxy (percent-decoded bytes). `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    username: Vec<u8>,
    password: Vec<u8>,
}

impl Credentials {
    pub fn username(&self) -> &[u8] {
        &self.username
    }
    pub fn password(&self) -> &[u8] {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// A parsed proxy URI: `http://[user[:password]@]host[:port]`, `socks5://…` or `socks5h://…`.
///
/// `Display` and `Debug` give `scheme://host:port`, with `***@` in place of any credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    kind: ProxyKind,
    /// Host name (lower case) or IP address, without IPv6 brackets.
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl Proxy {
    /// Parses a proxy URI.
    ///
    /// - Schemes: `http` (CONNECT), `socks5` (local DNS), `socks5h` (proxy DNS), case-insensitive.
    ///   Without `scheme://` the URI is taken as `http://` (as curl does; `http_proxy=proxy:3128`
    ///   is common in environments).
    /// - Default ports: 80 for `http` (URI semantics, as python-websockets; curl would use 1080),
    ///   1080 for SOCKS.
    /// - User info is percent-decoded; the split is at the last `@`, then at the first `:`.
    ///   For `http` the user name may not contain `:` (RFC 7617); for SOCKS5 both are at most
    ///   255 bytes and the user name is not empty (RFC 1929).
    /// - No path (a lone `/` is allowed), query or fragment.
    ///
    /// Errors are `INVALID_ARGUMENT`; their messages show the URI with its user info redacted.
    pub fn parse(uri: &str) -> Result<Proxy> {
        let shown = redact_uri(uri);
        let bad = |why: &str| Error::invalid_argument(format!("invalid proxy URI '{shown}': {why}"));
        if uri.is_empty() {
            return Err(bad("empty"));
        }
        if uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("contains spaces or control characters"));
        }
        let (kind, rest) = match scheme_end(uri) {
            None if uri.contains("://") => return Err(bad("malformed scheme")),
            None => (ProxyKind::HttpConnect, uri),
            Some(i) => {
                let scheme = &uri[..i];
                let kind = if scheme.eq_ignore_ascii_case("http") {
                    ProxyKind::HttpConnect
                } else if scheme.eq_ignore_ascii_case("socks5") {
                    ProxyKind::Socks5
                } else if scheme.eq_ignore_ascii_case("socks5h") {
                    ProxyKind::Socks5h
                } else if scheme.eq_ignore_ascii_case("https") {
                    return Err(bad("https:// proxies (TLS to the proxy) are not supported; use http:// \
                         (a wss:// connection is still TLS end to end through the tunnel)"));
                } else if scheme.to_ascii_lowercase().starts_with("socks") {
                    return Err(bad("only SOCKS5 is supported: use socks5:// or socks5h://"));
                } else {
                    return Err(bad(&format!(
                        "unsupported scheme '{}': use http://, socks5:// or socks5h://",
                        sanitize(scheme, 20)
                    )));
                };
                (kind, &uri[i + 3..])
            }
        };
        // User info runs to the last '@' (a password may hold unencoded '/', '?', '#' or '@').
        let (userinfo, rest) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, tail) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !tail.is_empty() && tail != "/" {
            return Err(bad("a proxy URI has no path, query or fragment"));
        }
        let (host, port_text) = split_host_port(hostport).map_err(&bad)?;
        let port = match port_text {
            None => kind.default_port(),
            Some(t) => match t.parse::<u16>() {
                Ok(p) if p != 0 && t.bytes().all(|b| b.is_ascii_digit()) => p,
                _ => return Err(bad("the port is not a number in 1..=65535")),
            },
        };
        let host = if host.parse::<IpAddr>().is_ok() {
            host.to_string()
        } else {
            if !valid_host_name(host) {
                return Err(bad("the host is not a valid name or IP address"));
            }
            host.to_ascii_lowercase()
        };
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, pass) = match info.find(':') {
                    Some(i) => (&info[..i], &info[i + 1..]),
                    None => (info, ""),
                };
                let username = percent_decode(user).ok_or_else(|| bad("invalid percent-encoding in the user name"))?;
                let password = percent_decode(pass).ok_or_else(|| bad("invalid percent-encoding in the password"))?;
                if username.is_empty() {
                    return Err(bad("the URI has an '@' but no user name"));
                }
                match kind {
                    ProxyKind::HttpConnect => {
                        if username.contains(&b':') {
                            return Err(bad("a Basic authentication user name cannot contain ':'"));
                        }
                    }
                    ProxyKind::Socks5 | ProxyKind::Socks5h => {
                        if username.len() > 255 || password.len() > 255 {
                            return Err(bad("SOCKS5 user names and passwords are at most 255 bytes"));
                        }
                    }
                }
                Some(Credentials { username, password })
            }
        };
        Ok(Proxy { kind, host, port, credentials })
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }
    /// Host name or IP address to connect to (no brackets). A name needs resolving.
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if self.credentials.is_some() {
            f.write_str("***@")?;
        }
        write!(f, "{}", HostPort(&self.host, self.port))
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

/// `host:port`, with brackets around an IPv6 address.
struct HostPort<'a>(&'a str, u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

/// The URI with everything between `scheme://` and the last `@` replaced by `***`.
fn redact_uri(uri: &str) -> String {
    let start = scheme_end(uri).map(|i| i + 3).unwrap_or(0);
    match uri.rfind('@') {
        Some(at) if at >= start => format!("{}***{}", &uri[..start], sanitize(&uri[at..], 300)),
        Some(at) => format!("***{}", sanitize(&uri[at..], 300)),
        None => sanitize(uri, 300),
    }
}

/// Index of the `://` after a well-formed scheme (RFC 3986: a letter, then letters, digits,
/// `+`, `-`, `.`), if there is one.
fn scheme_end(uri: &str) -> Option<usize> {
    let i = uri.find("://")?;
    let scheme = &uri.as_bytes()[..i];
    let ok = scheme.first().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(i)
}

/// At most `max` characters of `s`, control characters replaced by `?` (for error messages).
fn sanitize(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// Splits `host[:port]` / `[v6][:port]`; the host comes back without brackets.
fn split_host_port(s: &str) -> std::result::Result<(&str, Option<&str>), &'static str> {
    if s.is_empty() {
        return Err("no host");
    }
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']').ok_or("unclosed '[' in the host")?;
        let host = &inner[..close];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        let after = &inner[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(p))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("unexpected text after the IPv6 address"),
        };
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => match s.split_once(':') {
            Some(("", _)) | None => Err("no host"),
            Some((h, p)) => Ok((h, Some(p))),
        },
        _ => Err("an IPv6 address must be in brackets: [addr]:port"),
    }
}

fn valid_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !h.starts_with('.')
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

mod env;
mod machine;
pub use env::*;
pub use machine::*;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_machine;
