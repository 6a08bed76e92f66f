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

// ---------------------------------------------------------------------------------------------
// Which proxy: explicit, direct, or from the environment

/// A websocket's proxy option. The default (`ctrlchan_websocket_set_proxy` never called) is
/// [`ProxySetting::Environment`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxySetting {
    /// Choose from the environment at each connect ([`proxy_from_env`]).
    #[default]
    Environment,
    /// `""`: always connect directly, whatever the environment says.
    Direct,
    /// This proxy, always (`no_proxy` does not apply to an explicit proxy: the application asked).
    Explicit(Proxy),
}

impl ProxySetting {
    /// The value of `ctrlchan_websocket_set_proxy`: `""` = [`ProxySetting::Direct`], else a proxy
    /// URI ([`Proxy::parse`]).
    pub fn parse(text: &str) -> Result<ProxySetting> {
        if text.is_empty() {
            Ok(ProxySetting::Direct)
        } else {
            Proxy::parse(text).map(ProxySetting::Explicit)
        }
    }

    /// The proxy to use for a `ws://` (`secure` false) or `wss://` connection to `host:port`, or
    /// `None` for a direct connection. `env` looks up an environment variable ([`process_env`] in
    /// production, a map in tests). Called at every connect, so reconnects see the same choice as
    /// long as the environment does not change.
    pub fn resolve(
        &self,
        secure: bool,
        host: &str,
        port: u16,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>> {
        match self {
            ProxySetting::Environment => proxy_from_env(secure, host, port, env),
            ProxySetting::Direct => Ok(None),
            ProxySetting::Explicit(p) => Ok(Some(p.clone())),
        }
    }
}

/// The process environment, for [`ProxySetting::resolve`]. A value that is not UTF-8 counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).and_then(|v| v.into_string().ok())
}

/// Variables consulted, in order, for `ws://` targets.
pub(crate) const WS_PROXY_VARIABLES: [&str; 6] =
    ["ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
/// Variables consulted, in order, for `wss://` targets.
pub(crate) const WSS_PROXY_VARIABLES: [&str; 6] =
    ["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];

/// The proxy the environment asks for, like curl and python-websockets:
///
/// - `ws://`: `ws_proxy`, `WS_PROXY`, `http_proxy`, `HTTP_PROXY`, `all_proxy`, `ALL_PROXY`;
///   `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`.
///   The first one set to a non-empty value wins (lower case before upper case, as Python's
///   `urllib` prefers lower case). An empty value counts as unset.
/// - `HTTP_PROXY` (upper case) is ignored when `REQUEST_METHOD` is set, i.e. inside a CGI program,
///   where it could come from a request's `Proxy:` header ("httpoxy"); curl never reads it and
///   Python ignores it in that case.
/// - Then `no_proxy` (else `NO_PROXY`) may exempt the target: see [`no_proxy_matches`].
/// - Differences, on purpose: curl honours `ws_proxy`/`wss_proxy` then `http(s)_proxy` then
///   `all_proxy` as here, but never upper-case `HTTP_PROXY`; python-websockets 15+ uses
///   `wss_proxy`/`ws_proxy`, then `socks_proxy`, then `https_proxy` (also for `ws://`), then
///   `http_proxy`, and not `all_proxy`. This order keeps `ws://` on `http_proxy` and `wss://` on
///   `https_proxy`, which is what the variables' names promise.
///
/// A value that is not a valid proxy URI is `INVALID_ARGUMENT`, naming the variable (never its
/// credentials).
pub fn proxy_from_env(
    secure: bool,
    host: &str,
    port: u16,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>> {
    let names = if secure { &WSS_PROXY_VARIABLES } else { &WS_PROXY_VARIABLES };
    let cgi = env("REQUEST_METHOD").is_some();
    let found = names
        .iter()
        .filter(|n| !(cgi && **n == "HTTP_PROXY"))
        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)));
    let Some((name, value)) = found else {
        return Ok(None);
    };
    let no_proxy = ["no_proxy", "NO_PROXY"].iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()));
    if let Some(list) = no_proxy {
        if no_proxy_matches(&list, host, port) {
            return Ok(None);
        }
    }
    Proxy::parse(value.trim())
        .map(Some)
        .map_err(|e| Error::invalid_argument(format!("environment variable {name}: {}", e.message)))
}

/// True when `host:port` is exempt from proxying by a `no_proxy` list.
///
/// Entries are separated by commas (and/or white space); matching is case-insensitive and ignores
/// a trailing dot:
/// - `*` alone exempts every host;
/// - a name (`example.com`, `.example.com` or `*.example.com`, all the same) exempts that host and
///   every name below it (`www.example.com`), not `badexample.com`;
/// - an IP address (`127.0.0.1`, `::1`, `[::1]`) exempts that address, a CIDR block (`10.0.0.0/8`,
///   `fd00::/8`) every address in it; only a target given as an address matches these (no DNS);
/// - any name or address entry may carry a port (`example.com:8080`, `[::1]:8080`): then only that
///   port is exempt.
///
/// Malformed entries are skipped.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    for entry in list.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return true;
        }
        let Some((pattern, entry_port)) = split_no_proxy_entry(entry) else { continue };
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        if let Some((addr, bits)) = pattern.split_once('/') {
            let (Ok(net), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u8>()) else { continue };
            if host_ip.is_some_and(|ip| in_cidr(ip, net.to_canonical(), bits)) {
                return true;
            }
            continue;
        }
        if let Ok(ip) = pattern.parse::<IpAddr>() {
            if host_ip == Some(ip.to_canonical()) {
                return true;
            }
            continue;
        }
        let name = pattern.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if host == name
            || (host.len() > name.len() && host.ends_with(&name) && host[..host.len() - name.len()].ends_with('.'))
        {
            return true;
        }
    }
    false
}

/// `(pattern, port)` of one `no_proxy` entry; `None` when malformed.
fn split_no_proxy_entry(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(inner) = entry.strip_prefix('[') {
        let close = inner.find(']')?;
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((&inner[..close], port));
    }
    if entry.contains('/') || entry.parse::<IpAddr>().is_ok() {
        return Some((entry, None));
    }
    match entry.split_once(':') {
        Some((h, p)) if !p.contains(':') => Some((h, Some(p.parse::<u16>().ok()?))),
        Some(_) => None,
        None => Some((entry, None)),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The error for a proxy that cannot be reached (TCP connect refused, timed out, name not
/// resolved): `PROXY_FAILED`, naming the proxy without its credentials.
pub fn unreachable(proxy: &Proxy, cause: &dyn fmt::Display) -> Error {
    proxy_failed(format!("cannot reach the proxy {proxy}: {cause}"))
}

// ---------------------------------------------------------------------------------------------
// The tunnel's target

/// The server to reach through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    addr: TargetAddr,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TargetAddr {
    Ip(IpAddr),
    Name(String),
}

impl ProxyTarget {
    /// The host of a ws/wss URI (brackets allowed around IPv6) and its port. An IP literal becomes
    /// an address; anything else must be a plausible host name (no spaces, controls, `/`, `@`, at
    /// most 255 bytes).
    pub fn from_host(host: &str, port: u16) -> Result<ProxyTarget> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ProxyTarget { addr: TargetAddr::Ip(ip), port });
        }
        if bare.is_empty()
            || bare.len() > 255
            || bare.bytes().any(|b| b.is_ascii_control() || matches!(b, b' ' | b'/' | b'@' | b':' | b'[' | b']'))
        {
            return Err(Error::invalid_argument(format!(
                "'{}' is not a host name a proxy can be asked for",
                sanitize(host, 100)
            )));
        }
        Ok(ProxyTarget { addr: TargetAddr::Name(bare.to_string()), port })
    }
    /// An address resolved by the client (what `socks5://` needs).
    pub fn ip(addr: SocketAddr) -> ProxyTarget {
        ProxyTarget { addr: TargetAddr::Ip(addr.ip()), port: addr.port() }
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The host name, when the target is one (not an address).
    pub fn name(&self) -> Option<&str> {
        match &self.addr {
            TargetAddr::Name(n) => Some(n),
            TargetAddr::Ip(_) => None,
        }
    }
}

impl fmt::Display for ProxyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            TargetAddr::Ip(ip) => write!(f, "{}", SocketAddr::new(*ip, self.port)),
            TargetAddr::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handshakes

/// Result of feeding bytes to a [`ProxyHandshake`].
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// Write any [`ProxyHandshake::pending_output`], then read more.
    NeedMore,
    /// The tunnel is open. `leftover`: bytes that followed the proxy's answer; they came from the
    /// server through the tunnel and must be handed to the next layer (TLS or WebSocket) first.
    Established { leftover: Vec<u8> },
}

/// A proxy handshake in progress: HTTP CONNECT or SOCKS5, sans-I/O.
///
/// `Debug` shows the state only: the output buffer may hold credentials.
pub struct ProxyHandshake {
    /// The proxy, redacted, for messages.
    proxy: String,
    target: ProxyTarget,
    credentials: Option<Credentials>,
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// Bytes received in all (for messages).
    received: usize,
    state: State,
    failure: Option<Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// HTTP: waiting for the response head; the first `scanned` bytes of `buf` hold no end of head.
    HttpHead {
        scanned: usize,
    },
    /// SOCKS5: greeting sent, waiting for the method choice.
    SocksMethod,
    /// SOCKS5: user/password sent (RFC 1929), waiting for its status.
    SocksAuth,
    /// SOCKS5: CONNECT sent, waiting for the reply.
    SocksReply,
    Established,
    Failed,
}

impl fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandshake")
            .field("proxy", &self.proxy)
            .field("target", &self.target)
            .field("state", &self.state)
            .field("pending_output", &self.pending_output().len())
            .field("received", &self.received)
            .finish()
    }
}

const SOCKS_NO_AUTH: u8 = 0x00;
const SOCKS_USER_PASS: u8 = 0x02;
const SOCKS_NO_ACCEPTABLE: u8 = 0xFF;

impl ProxyHandshake {
    /// Starts the handshake with `proxy` for a tunnel to `target`; the first bytes to send are in
    /// [`pending_output`](Self::pending_output).
    ///
    /// `socks5://` needs an address target ([`ProxyTarget::ip`]): a name is `INVALID_ARGUMENT`
    /// (resolve it first, or use `socks5h://`).
    pub fn new(proxy: &Proxy, target: &ProxyTarget) -> Result<ProxyHandshake> {
        let (out, state) = match proxy.kind() {
            ProxyKind::HttpConnect => (http_connect_request(proxy, target), State::HttpHead { scanned: 0 }),
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                if let (ProxyKind::Socks5, Some(name)) = (proxy.kind(), target.name()) {
                    return Err(Error::invalid_argument(format!(
                        "socks5:// resolves names locally: resolve '{name}' first, or use socks5h://"
                    )));
                }
                // Greeting (RFC 1928 §3): version 5 and the methods offered: "no authentication"
                // always, "username/password" (RFC 1929) too when the URI has credentials.
                let greeting = if proxy.credentials().is_some() {
                    vec![5, 2, SOCKS_NO_AUTH, SOCKS_USER_PASS]
                } else {
                    vec![5, 1, SOCKS_NO_AUTH]
                };
                (greeting, State::SocksMethod)
            }
        };
        Ok(ProxyHandshake {
            proxy: proxy.to_string(),
            target: target.clone(),
            credentials: proxy.credentials().cloned(),
            out,
            out_pos: 0,
            buf: Vec::new(),
            received: 0,
            state,
            failure: None,
        })
    }

    /// Bytes to write to the proxy now; empty when the handshake waits for input (or is over).
    pub fn pending_output(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or(&[])
    }

    /// Records that the first `n` bytes of [`pending_output`](Self::pending_output) were written
    /// (more than pending is clamped).
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// True once [`Status::Established`] was returned.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Feeds bytes read from the proxy (any split, down to one byte at a time).
    ///
    /// Errors are `PROXY_FAILED` (refusal, wrong credentials, a malformed or oversized answer),
    /// and the same error again on every later call; feeding after `Established` is
    /// `INVALID_STATE`.
    pub fn feed(&mut self, input: &[u8]) -> Result<Status> {
        match self.state {
            State::Failed => {
                return Err(self.failure.clone().unwrap_or_else(|| proxy_failed("the proxy handshake failed")))
            }
            State::Established => return Err(Error::invalid_state("the proxy tunnel is already established")),
            _ => {}
        }
        self.buf.extend_from_slice(input);
        self.received += input.len();
        match self.step() {
            Ok(status) => Ok(status),
            Err(e) => {
                self.state = State::Failed;
                self.buf = Vec::new();
                self.out = Vec::new();
                self.out_pos = 0;
                self.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The error for an EOF from the proxy before the tunnel was established (`PROXY_FAILED`).
    pub fn closed_error(&self) -> Error {
        if let Some(e) = &self.failure {
            return e.clone();
        }
        proxy_failed(format!(
            "the proxy {} closed the connection during the {} handshake for {} (after {} bytes from it)",
            self.proxy,
            self.protocol_name(),
            self.target,
            self.received
        ))
    }

    fn protocol_name(&self) -> &'static str {
        match self.state {
            State::HttpHead { .. } => "HTTP CONNECT",
            _ => "SOCKS5",
        }
    }

    /// Advances over buffered input as far as it goes.
    fn step(&mut self) -> Result<Status> {
        loop {
            match self.state {
                State::HttpHead { scanned } => return self.step_http(scanned),
                State::SocksMethod => {
                    let [version, method] = match self.buf.get(..2) {
                        Some(&[v, m]) => [v, m],
                        _ => return Ok(Status::NeedMore),
                    };
                    self.check_socks_version(version)?;
                    self.buf.drain(..2);
                    match method {
                        SOCKS_NO_AUTH => self.send_socks_connect(),
                        SOCKS_USER_PASS => match &self.credentials {
                            Some(c) => {
                                let mut req = Vec::with_capacity(3 + c.username.len() + c.password.len());
                                req.push(1); // sub-negotiation version (RFC 1929)
                                req.push(c.username.len() as u8);
                                req.extend_from_slice(&c.username);
                                req.push(c.password.len() as u8);
                                req.extend_from_slice(&c.password);
                                self.out.extend_from_slice(&req);
                                self.state = State::SocksAuth;
                            }
                            None => {
                                return Err(proxy_failed(format!(
                                    "the SOCKS5 proxy {} chose username/password authentication, which was \
                                     not offered: put user:password in the proxy URI",
                                    self.proxy
                                )))
                            }
                        },
                        SOCKS_NO_ACCEPTABLE => {
                            return Err(proxy_failed(if self.credentials.is_some() {
                                format!(
                                    "the SOCKS5 proxy {} accepts none of the offered authentication methods \
                                     (no authentication, username/password)",
                                    self.proxy
                                )
                            } else {
                                format!(
                                    "the SOCKS5 proxy {} requires authentication: put user:password in the \
                                     proxy URI",
                                    self.proxy
                                )
                            }))
                        }
                        m => {
                            return Err(proxy_failed(format!(
                                "the SOCKS5 proxy {} chose authentication method 0x{m:02x}, which was not offered",
                                self.proxy
                            )))
                        }
                    }
                }
                State::SocksAuth => {
                    // [version 1, status]. Some servers answer version 5 here: only the status counts.
                    let status = match self.buf.get(..2) {
                        Some(&[_, s]) => s,
                        _ => return Ok(Status::NeedMore),
                    };
                    self.buf.drain(..2);
                    if status != 0 {
                        return Err(proxy_failed(format!(
                            "the SOCKS5 proxy {} rejected the user name and password (status 0x{status:02x})",
                            self.proxy
                        )));
                    }
                    self.send_socks_connect();
                }
                State::SocksReply => {
                    // [5, REP, RSV, ATYP, BND.ADDR, BND.PORT] (RFC 1928 §6)
                    let Some(&version) = self.buf.first() else { return Ok(Status::NeedMore) };
                    self.check_socks_version(version)?;
                    let Some(&rep) = self.buf.get(1) else { return Ok(Status::NeedMore) };
                    if rep != 0 {
                        return Err(proxy_failed(format!(
                            "the SOCKS5 proxy {} could not open the tunnel to {}: {} (reply 0x{rep:02x})",
                            self.proxy,
                            self.target,
                            socks_reply_text(rep)
                        )));
                    }
                    let Some(&atyp) = self.buf.get(3) else { return Ok(Status::NeedMore) };
                    let total = match atyp {
                        1 => 4 + 4 + 2,
                        4 => 4 + 16 + 2,
                        3 => match self.buf.get(4) {
                            Some(&len) => 4 + 1 + usize::from(len) + 2,
                            None => return Ok(Status::NeedMore),
                        },
                        t => {
                            return Err(proxy_failed(format!(
                                "the SOCKS5 proxy {} answered with unknown address type 0x{t:02x}",
                                self.proxy
                            )))
                        }
                    };
                    if self.buf.len() < total {
                        return Ok(Status::NeedMore);
                    }
                    let leftover = self.buf.split_off(total);
                    self.buf = Vec::new();
                    self.state = State::Established;
                    return Ok(Status::Established { leftover });
                }
                State::Established | State::Failed => return Ok(Status::NeedMore),
            }
        }
    }

    fn check_socks_version(&self, version: u8) -> Result<()> {
        if version == 5 {
            return Ok(());
        }
        let hint = if version == b'H' { " (it looks like an HTTP proxy: use http://)" } else { "" };
        Err(proxy_failed(format!("{} is not a SOCKS5 proxy: its answer starts with 0x{version:02x}{hint}", self.proxy)))
    }

    /// Queues the CONNECT request (RFC 1928 §4) and waits for the reply.
    fn send_socks_connect(&mut self) {
        let mut req = vec![5, 1, 0];
        match &self.target.addr {
            TargetAddr::Ip(IpAddr::V4(a)) => {
                req.push(1);
                req.extend_from_slice(&a.octets());
            }
            TargetAddr::Ip(IpAddr::V6(a)) => {
                req.push(4);
                req.extend_from_slice(&a.octets());
            }
            TargetAddr::Name(n) => {
                // `ProxyTarget::from_host` bounds names to 255 bytes.
                req.push(3);
                req.push(n.len() as u8);
                req.extend_from_slice(n.as_bytes());
            }
        }
        req.extend_from_slice(&self.target.port.to_be_bytes());
        self.out.extend_from_slice(&req);
        self.state = State::SocksReply;
    }

    fn step_http(&mut self, mut scanned: usize) -> Result<Status> {
        loop {
            let from = scanned.min(self.buf.len()).saturating_sub(3);
            let Some(end) = find_head_end(&self.buf, from) else {
                if self.buf.len() > MAX_PROXY_RESPONSE_HEAD {
                    return Err(self.head_too_large());
                }
                self.state = State::HttpHead { scanned: self.buf.len() };
                return Ok(Status::NeedMore);
            };
            if end > MAX_PROXY_RESPONSE_HEAD {
                return Err(self.head_too_large());
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_PROXY_RESPONSE_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let code = match response.parse(&self.buf[..end]) {
                Ok(httparse::Status::Complete(_)) => response.code.unwrap_or(0),
                Ok(httparse::Status::Partial) => {
                    return Err(proxy_failed(format!("the proxy {} sent a malformed response head", self.proxy)))
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(proxy_failed(format!(
                        "the proxy {} sent more than {MAX_PROXY_RESPONSE_HEADERS} header lines",
                        self.proxy
                    )))
                }
                Err(e) => {
                    return Err(proxy_failed(format!(
                        "the proxy {} sent a malformed response ({e}): {}",
                        self.proxy,
                        first_line(&self.buf)
                    )))
                }
            };
            let status_line = format!(
                "HTTP/1.{} {} {}",
                response.version.unwrap_or(1),
                code,
                sanitize(response.reason.unwrap_or(""), 200)
            );
            let status_line = status_line.trim_end();
            match code {
                // Interim answers (100 Continue, 102, 103) come before the real one: skip them.
                100..=199 if code != 101 => {
                    self.buf.drain(..end);
                    scanned = 0;
                    continue;
                }
                // A 2xx answer to CONNECT has no body whatever its headers say (RFC 9110 §9.3.6):
                // everything after the head is the server's.
                200..=299 => {
                    let leftover = self.buf.split_off(end);
                    self.buf = Vec::new();
                    self.state = State::Established;
                    return Ok(Status::Established { leftover });
                }
                401 | 407 => {
                    let (wants, hint) = if self.credentials.is_some() {
                        ("rejected the credentials", "")
                    } else {
                        ("wants credentials", " (put user:password in the proxy URI)")
                    };
                    return Err(proxy_failed(format!(
                        "the proxy {} {wants} for the tunnel to {}{hint}: {status_line}",
                        self.proxy, self.target
                    )));
                }
                _ => {
                    return Err(proxy_failed(format!(
                        "the proxy {} refused the tunnel to {}: {status_line}",
                        self.proxy, self.target
                    )))
                }
            }
        }
    }

    fn head_too_large(&self) -> Error {
        proxy_failed(format!(
            "the proxy {} sent a response head longer than {MAX_PROXY_RESPONSE_HEAD} bytes: {}",
            self.proxy,
            first_line(&self.buf)
        ))
    }
}

/// Index just past the blank line that ends an HTTP head (`\r\n\r\n`, or bare `\n\n`), searching
/// from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The first line of a response, printable and bounded, for messages.
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = &line[..line.len().min(200)];
    let text = String::from_utf8_lossy(line);
    format!("'{}'", sanitize(text.trim_end_matches('\r'), 200))
}

fn socks_reply_text(rep: u8) -> &'static str {
    match rep {
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by the proxy's rules",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// `CONNECT host:port HTTP/1.1` with `Host` and, when the proxy URI has credentials,
/// `Proxy-Authorization: Basic` (RFC 7617).
fn http_connect_request(proxy: &Proxy, target: &ProxyTarget) -> Vec<u8> {
    let authority = match &target.addr {
        TargetAddr::Ip(ip) => SocketAddr::new(*ip, target.port).to_string(),
        TargetAddr::Name(n) => format!("{n}:{}", target.port),
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(c) = proxy.credentials() {
        let mut pair = Vec::with_capacity(c.username.len() + 1 + c.password.len());
        pair.extend_from_slice(&c.username);
        pair.push(b':');
        pair.extend_from_slice(&c.password);
        req.extend_from_slice(b"Proxy-Authorization: Basic ");
        req.extend_from_slice(data_encoding::BASE64.encode(&pair).as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET_USER: &str = "alice";
    const SECRET_PASS: &str = "s3cr3t";

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| map.get(name).cloned()
    }

    fn assert_no_secret(text: &str) {
        for s in [SECRET_USER, SECRET_PASS, "YWxpY2U6czNjcjN0" /* base64 of alice:s3cr3t */] {
            assert!(!text.contains(s), "'{s}' leaked into: {text}");
        }
    }

    fn parse_err(uri: &str) -> Error {
        match Proxy::parse(uri) {
            Ok(p) => panic!("'{uri}' parsed as {p}"),
            Err(e) => {
                assert_eq!(e.code, ResultCode::InvalidArgument, "{e}");
                assert_no_secret(&e.message);
                e
            }
        }
    }

    // --- URIs

    #[test]
    fn parses_http_with_percent_encoded_credentials() {
        let p = Proxy::parse("http://us%40er:p%3Ass%2F@Proxy.Example:3128").expect("valid");
        assert_eq!(p.kind(), ProxyKind::HttpConnect);
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        let c = p.credentials().expect("credentials");
        assert_eq!((c.username(), c.password()), (&b"us@er"[..], &b"p:ss/"[..]));
    }

    #[test]
    fn parses_schemes_ports_and_hosts() {
        let cases: &[(&str, ProxyKind, &str, u16)] = &[
            ("socks5://127.0.0.1:1080", ProxyKind::Socks5, "127.0.0.1", 1080),
            ("SOCKS5H://[::1]:9050/", ProxyKind::Socks5h, "::1", 9050),
            ("socks5h://gw", ProxyKind::Socks5h, "gw", 1080),
            ("http://gw", ProxyKind::HttpConnect, "gw", 80),
            ("HTTP://gw:8080/", ProxyKind::HttpConnect, "gw", 8080),
            ("proxy.corp:3128", ProxyKind::HttpConnect, "proxy.corp", 3128),
            ("http://[fe80::1]", ProxyKind::HttpConnect, "fe80::1", 80),
        ];
        for (uri, kind, host, port) in cases {
            let p = Proxy::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!((p.kind(), p.host(), p.port()), (*kind, *host, *port), "{uri}");
            assert!(p.credentials().is_none());
        }
        assert!(ProxyKind::Socks5h.proxy_resolves_names() && ProxyKind::HttpConnect.proxy_resolves_names());
        assert!(!ProxyKind::Socks5.proxy_resolves_names());
    }

    #[test]
    fn user_without_password_and_password_with_at_sign() {
        let p = Proxy::parse("socks5://bob@h:1").expect("valid");
        assert_eq!(p.credentials().map(|c| (c.username(), c.password())), Some((&b"bob"[..], &b""[..])));
        let p = Proxy::parse("http://bob:a@b@h:1").expect("valid");
        assert_eq!(p.credentials().map(|c| c.password()), Some(&b"a@b"[..]));
        assert_eq!(p.host(), "h");
    }

    #[test]
    fn display_and_debug_redact_credentials() {
        let p = Proxy::parse(&format!("http://{SECRET_USER}:{SECRET_PASS}@proxy:3128")).expect("valid");
        assert_eq!(p.to_string(), "http://***@proxy:3128");
        assert_no_secret(&format!("{p:?}"));
        assert_no_secret(&format!("{:?}", p.credentials()));
        assert_no_secret(&format!("{:?}", ProxySetting::Explicit(p.clone())));
        assert_eq!(Proxy::parse("socks5h://[::1]:1").expect("valid").to_string(), "socks5h://[::1]:1");
    }

    #[test]
    fn rejects_bad_uris_without_leaking_credentials() {
        let cred = format!("{SECRET_USER}:{SECRET_PASS}@");
        let cases = [
            (format!("https://{cred}proxy:443"), "https:// proxies"),
            (format!("socks4://{cred}proxy:1080"), "only SOCKS5"),
            (format!("ftp://{cred}proxy:21"), "unsupported scheme 'ftp'"),
            (format!("http://{cred}proxy:0"), "port"),
            (format!("http://{cred}proxy:65536"), "port"),
            (format!("http://{cred}proxy:+80"), "port"),
            (format!("http://{cred}proxy:"), "port"),
            (format!("http://{cred}proxy:80/path"), "no path"),
            (format!("http://{cred}proxy:80?q"), "no path"),
            (format!("http://{cred}:80"), "no host"),
            (format!("http://{cred}"), "no host"),
            (format!("http://{cred}::1:80"), "brackets"),
            (format!("http://{cred}[::1"), "unclosed"),
            (format!("http://{cred}[nothost]:1"), "IPv6"),
            (format!("http://{cred}bad_h*st:1"), "not a valid name"),
            (format!("http://{cred}pro xy:1"), "spaces"),
            (format!("http://{SECRET_USER}:{SECRET_PASS}%zz@proxy:1"), "percent-encoding in the password"),
            (format!("http://{SECRET_USER}%4@proxy:1"), "percent-encoding in the user name"),
            (format!("http://:{SECRET_PASS}@proxy:1"), "no user name"),
            (format!("http://{SECRET_USER}%3Ax:{SECRET_PASS}@proxy:1"), "cannot contain ':'"),
            (format!("socks5://{}:{SECRET_PASS}@proxy:1", "u".repeat(256)), "255 bytes"),
            (String::new(), "empty"),
            (format!("{cred}proxy://x"), "malformed scheme"),
            (format!("{SECRET_USER}:{SECRET_PASS}@proxy:99999"), "the port is not a number"),
        ];
        for (uri, want) in &cases {
            let e = parse_err(uri);
            assert!(e.message.contains(want), "'{want}' not in: {}", e.message);
        }
        // The redacted URI is shown so the user can see which one was wrong.
        assert!(parse_err(&cases[0].0).message.contains("https://***@proxy:443"));
    }

    #[test]
    fn setting_parse_empty_is_direct() {
        assert_eq!(ProxySetting::parse("").expect("ok"), ProxySetting::Direct);
        assert!(matches!(ProxySetting::parse("socks5://h:1"), Ok(ProxySetting::Explicit(_))));
        assert_eq!(ProxySetting::parse("bogus://x").map_err(|e| e.code), Err(ResultCode::InvalidArgument));
        assert_eq!(ProxySetting::default(), ProxySetting::Environment);
    }

    // --- Environment

    fn from_env(secure: bool, host: &str, port: u16, vars: &[(&str, &str)]) -> Option<String> {
        proxy_from_env(secure, host, port, &env_of(vars)).expect("valid environment").map(|p| p.to_string())
    }

    #[test]
    fn env_precedence_ws_and_wss() {
        let all = [
            ("ws_proxy", "http://ws:1"),
            ("WS_PROXY", "http://WS:1"),
            ("wss_proxy", "http://wss:1"),
            ("WSS_PROXY", "http://WSS:1"),
            ("http_proxy", "http://http:1"),
            ("HTTP_PROXY", "http://HTTP:1"),
            ("https_proxy", "http://https:1"),
            ("HTTPS_PROXY", "http://HTTPS:1"),
            ("all_proxy", "socks5h://all:1"),
            ("ALL_PROXY", "socks5h://ALL:1"),
        ];
        // Remove variables one by one in precedence order: each step falls to the next.
        let ws_order = ["ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
        let wss_order = ["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
        for (secure, order) in [(false, ws_order), (true, wss_order)] {
            let mut vars: Vec<(&str, &str)> = all.to_vec();
            for name in order {
                let want = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).expect("listed");
                let got = from_env(secure, "server", 443, &vars).expect("a proxy");
                assert_eq!(got, Proxy::parse(want).expect("valid").to_string(), "secure={secure}, expecting {name}");
                vars.retain(|(k, _)| *k != name);
            }
            assert_eq!(from_env(secure, "server", 443, &vars), None, "secure={secure}: nothing left for it");
        }
        assert_eq!(WS_PROXY_VARIABLES, ws_order);
        assert_eq!(WSS_PROXY_VARIABLES, wss_order);
    }

    #[test]
    fn env_empty_values_count_as_unset() {
        let vars = [("https_proxy", ""), ("HTTPS_PROXY", "http://upper:1"), ("wss_proxy", "  ")];
        assert_eq!(from_env(true, "s", 443, &vars).as_deref(), Some("http://upper:1"));
        assert_eq!(from_env(false, "s", 80, &[("http_proxy", "")]), None);
    }

    #[test]
    fn env_cgi_ignores_upper_case_http_proxy() {
        let vars = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://attacker:1")];
        assert_eq!(from_env(false, "s", 80, &vars), None);
        let vars = [("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://attacker:1"), ("http_proxy", "http://ok:1")];
        assert_eq!(from_env(false, "s", 80, &vars).as_deref(), Some("http://ok:1"));
        assert_eq!(from_env(false, "s", 80, &[("HTTP_PROXY", "http://upper:1")]).as_deref(), Some("http://upper:1"));
    }

    #[test]
    fn env_no_proxy_and_upper_case_no_proxy() {
        let base = [("https_proxy", "http://p:1")];
        fn with<'a>(base: &[(&'a str, &'a str)], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
            let mut v = base.to_vec();
            v.push(extra);
            v
        }
        let with = |extra| with(&base, extra);
        assert_eq!(from_env(true, "api.example.com", 443, &with(("no_proxy", "example.com"))), None);
        assert_eq!(from_env(true, "api.example.com", 443, &with(("NO_PROXY", ".example.com"))), None);
        assert!(from_env(true, "api.example.org", 443, &with(("no_proxy", "example.com"))).is_some());
        // Lower case wins when both are set.
        let vars = [("https_proxy", "http://p:1"), ("no_proxy", "other.com"), ("NO_PROXY", "example.com")];
        assert!(from_env(true, "example.com", 443, &vars).is_some());
    }

    #[test]
    fn env_invalid_value_names_the_variable_not_the_secret() {
        let value = format!("https://{SECRET_USER}:{SECRET_PASS}@proxy:1");
        let e = proxy_from_env(true, "s", 443, &env_of(&[("HTTPS_PROXY", &value)])).expect_err("invalid");
        assert_eq!(e.code, ResultCode::InvalidArgument);
        assert!(e.message.contains("HTTPS_PROXY"), "{}", e.message);
        assert_no_secret(&e.message);
        // An exempt host never looks at the value.
        let vars = [("HTTPS_PROXY", value.as_str()), ("no_proxy", "*")];
        assert_eq!(proxy_from_env(true, "s", 443, &env_of(&vars)).map_err(|e| e.code), Ok(None));
    }

    #[test]
    fn setting_resolve_explicit_direct_environment() {
        let env = env_of(&[("https_proxy", "http://envproxy:1"), ("no_proxy", "*")]);
        let explicit = ProxySetting::parse("socks5h://mine:1").expect("valid");
        assert_eq!(
            explicit.resolve(true, "s", 443, &env).expect("ok").map(|p| p.to_string()).as_deref(),
            Some("socks5h://mine:1")
        );
        assert_eq!(ProxySetting::Direct.resolve(true, "s", 443, &env_of(&[("https_proxy", "http://p:1")])), Ok(None));
        assert_eq!(ProxySetting::Environment.resolve(true, "s", 443, &env), Ok(None));
        let env = env_of(&[("https_proxy", "http://envproxy:1")]);
        assert!(ProxySetting::Environment.resolve(true, "s", 443, &env).expect("ok").is_some());
    }

    // --- no_proxy

    #[test]
    fn no_proxy_names() {
        for list in ["example.com", ".example.com", "*.example.com", "EXAMPLE.com.", "other, example.com"] {
            assert!(no_proxy_matches(list, "example.com", 443), "{list}");
            assert!(no_proxy_matches(list, "www.Example.COM.", 443), "{list}");
            assert!(no_proxy_matches(list, "a.b.example.com", 443), "{list}");
            assert!(!no_proxy_matches(list, "badexample.com", 443), "{list}");
            assert!(!no_proxy_matches(list, "example.com.evil", 443), "{list}");
            assert!(!no_proxy_matches(list, "com", 443), "{list}");
        }
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(no_proxy_matches("a b\tlocalhost", "localhost", 1));
        assert!(!no_proxy_matches("", "localhost", 1));
        assert!(!no_proxy_matches(" , ,", "localhost", 1));
        assert!(!no_proxy_matches("*.", "localhost", 1));
    }

    #[test]
    fn no_proxy_addresses_and_cidr() {
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1", 80));
        assert!(!no_proxy_matches("127.0.0.1", "127.0.0.2", 80));
        assert!(no_proxy_matches("::1", "[::1]", 80));
        assert!(no_proxy_matches("[::1]", "::1", 80));
        assert!(no_proxy_matches("10.0.0.0/8", "10.200.3.4", 80));
        assert!(!no_proxy_matches("10.0.0.0/8", "11.0.0.1", 80));
        assert!(no_proxy_matches("192.168.1.0/24", "192.168.1.255", 80));
        assert!(!no_proxy_matches("192.168.1.0/24", "192.168.2.1", 80));
        assert!(no_proxy_matches("0.0.0.0/0", "8.8.8.8", 80));
        assert!(no_proxy_matches("10.1.2.3/32", "10.1.2.3", 80));
        assert!(no_proxy_matches("fd00::/8", "[fd12:3456::1]", 80));
        assert!(!no_proxy_matches("fd00::/8", "fe80::1", 80));
        assert!(no_proxy_matches("10.0.0.0/8", "::ffff:10.0.0.1", 80), "IPv4-mapped IPv6 counts as IPv4");
        assert!(!no_proxy_matches("10.0.0.0/8", "fd00::1", 80));
        // Address entries never match names (no DNS here).
        assert!(!no_proxy_matches("127.0.0.1, 127.0.0.0/8", "localhost", 80));
    }

    #[test]
    fn no_proxy_ports_and_malformed_entries() {
        assert!(no_proxy_matches("example.com:8080", "api.example.com", 8080));
        assert!(!no_proxy_matches("example.com:8080", "api.example.com", 443));
        assert!(no_proxy_matches("[::1]:9000", "::1", 9000));
        assert!(!no_proxy_matches("[::1]:9000", "::1", 9001));
        assert!(no_proxy_matches("127.0.0.1:80", "127.0.0.1", 80));
        assert!(!no_proxy_matches("127.0.0.1:80", "127.0.0.1", 81));
        // Malformed entries are skipped, later ones still count.
        for bad in ["a:b:c", "10.0.0.0/99", "10.0.0.0/x", "host:port", "[::1", "[::1]x", "[::1]:99999"] {
            assert!(!no_proxy_matches(bad, "10.0.0.1", 80), "{bad}");
            assert!(no_proxy_matches(&format!("{bad},10.0.0.1"), "10.0.0.1", 80), "{bad}");
        }
    }

    // --- Handshake driver for the tests: sends everything pending, then feeds the next chunk.

    struct Run {
        sent: Vec<u8>,
        result: Result<Status>,
        /// Server bytes not fed (they arrived after the tunnel opened).
        unfed: Vec<u8>,
    }

    fn drive(hs: &mut ProxyHandshake, from_proxy: &[u8], chunk: usize) -> Run {
        let mut sent = Vec::new();
        let mut pos = 0;
        loop {
            // Write in two pieces to exercise partial writes.
            let pending = hs.pending_output().to_vec();
            let half = pending.len() / 2;
            sent.extend_from_slice(&pending[..half]);
            hs.consume_output(half);
            sent.extend_from_slice(hs.pending_output());
            let n = hs.pending_output().len();
            hs.consume_output(n);
            assert!(hs.pending_output().is_empty());
            if pos >= from_proxy.len() {
                return Run { sent, result: Ok(Status::NeedMore), unfed: Vec::new() };
            }
            let end = (pos + chunk).min(from_proxy.len());
            let r = hs.feed(&from_proxy[pos..end]);
            pos = end;
            match r {
                Ok(Status::NeedMore) => continue,
                other => {
                    if other.is_ok() {
                        sent.extend_from_slice(hs.pending_output());
                    }
                    return Run { sent, result: other, unfed: from_proxy[pos..].to_vec() };
                }
            }
        }
    }

    /// Runs a handshake at every chunk size from 1 to the whole input.
    fn every_split(make: impl Fn() -> ProxyHandshake, from_proxy: &[u8], check: impl Fn(usize, Run)) {
        for chunk in 1..=from_proxy.len().max(1) {
            let mut hs = make();
            check(chunk, drive(&mut hs, from_proxy, chunk));
        }
    }

    fn established(chunk: usize, run: &Run) -> Vec<u8> {
        match &run.result {
            Ok(Status::Established { leftover }) => {
                let mut tunnel = leftover.clone();
                tunnel.extend_from_slice(&run.unfed);
                tunnel
            }
            other => panic!("chunk {chunk}: {other:?}"),
        }
    }

    fn failed(chunk: usize, run: &Run) -> String {
        match &run.result {
            Err(e) => {
                assert_eq!(e.code, ResultCode::ProxyFailed, "chunk {chunk}: {e}");
                assert_no_secret(&e.message);
                e.message.clone()
            }
            other => panic!("chunk {chunk}: expected a failure, got {other:?}"),
        }
    }

    fn http_proxy() -> Proxy {
        Proxy::parse(&format!("http://{SECRET_USER}:{SECRET_PASS}@127.0.0.1:8888")).expect("valid")
    }

    fn target(host: &str, port: u16) -> ProxyTarget {
        ProxyTarget::from_host(host, port).expect("valid target")
    }

    // --- HTTP CONNECT

    #[test]
    fn http_connect_request_bytes() {
        let hs = ProxyHandshake::new(&http_proxy(), &target("echo.example", 443)).expect("new");
        assert_eq!(
            hs.pending_output(),
            &b"CONNECT echo.example:443 HTTP/1.1\r\nHost: echo.example:443\r\n\
               Proxy-Authorization: Basic YWxpY2U6czNjcjN0\r\n\r\n"[..]
        );
        assert_no_secret(&format!("{hs:?}"));
        let anon = Proxy::parse("http://p:1").expect("valid");
        let hs = ProxyHandshake::new(&anon, &target("[::1]", 8080)).expect("new");
        assert_eq!(hs.pending_output(), &b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"[..]);
        let hs = ProxyHandshake::new(&anon, &ProxyTarget::ip("10.0.0.1:80".parse().expect("addr"))).expect("new");
        assert!(hs.pending_output().starts_with(b"CONNECT 10.0.0.1:80 HTTP/1.1\r\n"));
    }

    #[test]
    fn http_connect_success_keeps_tunnel_bytes_in_every_split() {
        let tunnel = b"\x16\x03\x01 server bytes right after the head";
        for head in [
            &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nProxy-agent: tinyproxy\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 204 No Content\n\n",
        ] {
            let input = [head, &tunnel[..]].concat();
            every_split(
                || ProxyHandshake::new(&http_proxy(), &target("s", 443)).expect("new"),
                &input,
                |chunk, run| {
                    assert_eq!(established(chunk, &run), tunnel, "chunk {chunk}");
                    assert!(run.sent.starts_with(b"CONNECT s:443 HTTP/1.1\r\n"));
                },
            );
        }
    }

    #[test]
    fn http_connect_refusals_carry_the_status_line() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
                "rejected the credentials for the tunnel to s:443: HTTP/1.1 407 Proxy Authentication Required",
            ),
            (b"HTTP/1.1 401 Unauthorized\r\n\r\n", "HTTP/1.1 401 Unauthorized"),
            (
                b"HTTP/1.0 403 Access violation\r\nContent-Length: 10\r\n\r\n0123456789",
                "refused the tunnel to s:443: HTTP/1.0 403 Access violation",
            ),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "HTTP/1.1 502 Bad Gateway"),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "HTTP/1.1 101 Switching Protocols"),
            (b"HTTP/1.1 302 Found\r\nLocation: x\r\n\r\n", "HTTP/1.1 302 Found"),
            (b"HTTP/1.1 500 \r\n\r\n", "HTTP/1.1 500"),
        ];
        for (input, want) in cases {
            every_split(
                || ProxyHandshake::new(&http_proxy(), &target("s", 443)).expect("new"),
                input,
                |chunk, run| {
                    let m = failed(chunk, &run);
                    assert!(m.contains(want), "chunk {chunk}: '{want}' not in: {m}");
                    assert!(m.contains("http://***@127.0.0.1:8888"), "{m}");
                },
            );
        }
        // Without credentials a 407 says how to give them.
        let mut hs = ProxyHandshake::new(&Proxy::parse("http://p:1").expect("valid"), &target("s", 1)).expect("new");
        let e = hs.feed(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").expect_err("refused");
        assert!(e.message.contains("put user:password in the proxy URI"), "{}", e.message);
        // The failure sticks.
        assert_eq!(hs.feed(b"more"), Err(e.clone()));
        assert_eq!(hs.closed_error(), e);
    }

    #[test]
    fn http_connect_malformed_and_oversized_heads() {
        let make = || ProxyHandshake::new(&http_proxy(), &target("s", 443)).expect("new");
        for input in [&b"garbage\r\n\r\n"[..], b"HTTP/1.1 abc\r\n\r\n", b"SSH-2.0-OpenSSH\r\n\r\n", b"\r\n\r\n"] {
            every_split(make, input, |chunk, run| {
                let m = failed(chunk, &run);
                assert!(m.contains("malformed"), "{m}");
            });
        }
        let many: Vec<u8> =
            [&b"HTTP/1.1 200 OK\r\n"[..], &b"X: y\r\n".repeat(MAX_PROXY_RESPONSE_HEADERS + 1), b"\r\n"].concat();
        let m = failed(0, &drive(&mut make(), &many, many.len()));
        assert!(m.contains("header lines"), "{m}");

        // Exactly the limit without an end: still waiting; one byte more: refused.
        let filler: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-Pad: aaaaaaaaaaaaaa\r\n".repeat(2000)].concat();
        let mut hs = make();
        assert_eq!(hs.feed(&filler[..MAX_PROXY_RESPONSE_HEAD]), Ok(Status::NeedMore));
        let e = hs.feed(&filler[MAX_PROXY_RESPONSE_HEAD..MAX_PROXY_RESPONSE_HEAD + 1]).expect_err("too large");
        assert_eq!(e.code, ResultCode::ProxyFailed);
        assert!(
            e.message.contains("longer than 16384 bytes") && e.message.contains("'HTTP/1.1 200 OK'"),
            "{}",
            e.message
        );
        // A complete head that ends past the limit, in one read, is refused too.
        let big: Vec<u8> = [&filler[..MAX_PROXY_RESPONSE_HEAD], b"\r\n\r\n"].concat();
        let m = failed(0, &drive(&mut make(), &big, big.len()));
        assert!(m.contains("longer than"), "{m}");
        // And byte by byte (the scan stays linear: this would take minutes if quadratic).
        let m = failed(1, &drive(&mut make(), &big, 1));
        assert!(m.contains("longer than"), "{m}");
    }

    #[test]
    fn http_connect_eof_and_state_errors() {
        let mut hs = ProxyHandshake::new(&http_proxy(), &target("s", 443)).expect("new");
        assert_eq!(hs.feed(b"HTTP/1.1 2"), Ok(Status::NeedMore));
        let e = hs.closed_error();
        assert_eq!(e.code, ResultCode::ProxyFailed);
        assert!(
            e.message.contains("closed the connection during the HTTP CONNECT handshake for s:443 (after 10 bytes"),
            "{}",
            e.message
        );
        assert_eq!(hs.feed(b"00 OK\r\n\r\n"), Ok(Status::Established { leftover: vec![] }));
        assert!(hs.is_established());
        assert_eq!(hs.feed(b"x").map_err(|e| e.code), Err(ResultCode::InvalidState));
        // Over-consuming output is clamped.
        let mut hs = ProxyHandshake::new(&http_proxy(), &target("s", 443)).expect("new");
        hs.consume_output(usize::MAX / 2);
        assert!(hs.pending_output().is_empty());
    }

    #[test]
    fn targets_are_validated() {
        for bad in ["", "a b", "a\r\nX: y", "a/b", "user@host", "a:b", &"x".repeat(256)] {
            let e = ProxyTarget::from_host(bad, 1).expect_err(bad);
            assert_eq!(e.code, ResultCode::InvalidArgument);
        }
        assert_eq!(target("[2001:db8::1]", 443).to_string(), "[2001:db8::1]:443");
        assert_eq!(target("Host.Example", 80).name(), Some("Host.Example"));
    }

    // --- SOCKS5

    fn socks(uri: &str) -> Proxy {
        Proxy::parse(uri).expect("valid")
    }

    #[test]
    fn socks5_no_auth_ipv4() {
        let proxy = socks("socks5://127.0.0.1:1080");
        let t = ProxyTarget::ip("127.0.0.1:8765".parse().expect("addr"));
        let from_proxy = [&[5u8, 0][..], &[5, 0, 0, 1, 10, 0, 0, 9, 0x1f, 0x90], b"tunnel!"].concat();
        every_split(
            || ProxyHandshake::new(&proxy, &t).expect("new"),
            &from_proxy,
            |chunk, run| {
                assert_eq!(established(chunk, &run), b"tunnel!");
                assert_eq!(run.sent, [&[5u8, 1, 0][..], &[5, 1, 0, 1, 127, 0, 0, 1, 0x22, 0x3d]].concat());
            },
        );
    }

    #[test]
    fn socks5h_user_password_domain() {
        let proxy = socks(&format!("socks5h://{SECRET_USER}:{SECRET_PASS}@[::1]:1080"));
        let t = target("echo.example", 443);
        // The proxy picks user/password, accepts it (version byte 1), and reports a domain bound address.
        let from_proxy = [&[5u8, 2][..], &[1, 0], &[5, 0, 0, 3, 4], b"bind", &[0x01, 0xbb], b"\x16\x03\x03"].concat();
        let mut want_sent = vec![5u8, 2, 0, 2, 1, 5];
        want_sent.extend_from_slice(SECRET_USER.as_bytes());
        want_sent.push(6);
        want_sent.extend_from_slice(SECRET_PASS.as_bytes());
        want_sent.extend_from_slice(&[5, 1, 0, 3, 12]);
        want_sent.extend_from_slice(b"echo.example");
        want_sent.extend_from_slice(&[0x01, 0xbb]);
        every_split(
            || ProxyHandshake::new(&proxy, &t).expect("new"),
            &from_proxy,
            |chunk, run| {
                assert_eq!(established(chunk, &run), b"\x16\x03\x03");
                assert_eq!(run.sent, want_sent, "chunk {chunk}");
            },
        );
        let hs = ProxyHandshake::new(&proxy, &t).expect("new");
        assert_no_secret(&format!("{hs:?}"));
    }

    #[test]
    fn socks5_ipv6_target_and_bound_address() {
        let proxy = socks("socks5://[::1]:1080");
        let t = ProxyTarget::ip("[2001:db8::7]:80".parse().expect("addr"));
        let mut reply = vec![5u8, 0, 0, 4];
        reply.extend_from_slice(&[0u8; 16]);
        reply.extend_from_slice(&[0, 80]);
        let from_proxy = [&[5u8, 0][..], &reply].concat();
        every_split(
            || ProxyHandshake::new(&proxy, &t).expect("new"),
            &from_proxy,
            |chunk, run| {
                assert_eq!(established(chunk, &run), b"");
                let mut want = vec![5u8, 1, 0, 5, 1, 0, 4];
                want.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>().expect("ip").octets());
                want.extend_from_slice(&[0, 80]);
                assert_eq!(run.sent, want);
            },
        );
    }

    #[test]
    fn socks5_server_may_skip_auth_even_when_offered() {
        let proxy = socks(&format!("socks5h://{SECRET_USER}:{SECRET_PASS}@p:1"));
        let from_proxy = [&[5u8, 0][..], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]].concat();
        let mut hs = ProxyHandshake::new(&proxy, &target("s", 1)).expect("new");
        let run = drive(&mut hs, &from_proxy, 1);
        assert_eq!(established(1, &run), b"");
        assert_eq!(run.sent, [&[5u8, 2, 0, 2][..], &[5, 1, 0, 3, 1, b's', 0, 1]].concat());
    }

    #[test]
    fn socks5_every_reply_code() {
        let proxy = socks("socks5h://p:1080");
        let codes: &[(u8, &str)] = &[
            (1, "general SOCKS server failure"),
            (2, "connection not allowed by the proxy's rules"),
            (3, "network unreachable"),
            (4, "host unreachable"),
            (5, "connection refused"),
            (6, "TTL expired"),
            (7, "command not supported"),
            (8, "address type not supported"),
            (9, "unassigned reply code"),
            (0xff, "unassigned reply code"),
        ];
        for (code, text) in codes {
            let from_proxy = [&[5u8, 0][..], &[5, *code, 0, 1, 0, 0, 0, 0, 0, 0]].concat();
            every_split(
                || ProxyHandshake::new(&proxy, &target("s.example", 443)).expect("new"),
                &from_proxy,
                |chunk, run| {
                    let m = failed(chunk, &run);
                    let want = format!(
                        "the SOCKS5 proxy socks5h://p:1080 could not open the tunnel to s.example:443: {text} (reply 0x{code:02x})"
                    );
                    assert_eq!(m, want, "chunk {chunk}");
                },
            );
        }
    }

    #[test]
    fn socks5_authentication_failures() {
        let with_creds = socks(&format!("socks5h://{SECRET_USER}:{SECRET_PASS}@p:1"));
        let anon = socks("socks5h://p:1");
        let cases: &[(&Proxy, &[u8], &str)] = &[
            (&with_creds, &[5, 2, 1, 1], "rejected the user name and password (status 0x01)"),
            (&with_creds, &[5, 2, 5, 0xff], "rejected the user name and password (status 0xff)"),
            (&with_creds, &[5, 0xff], "accepts none of the offered authentication methods"),
            (&anon, &[5, 0xff], "requires authentication: put user:password in the proxy URI"),
            (&anon, &[5, 2], "chose username/password authentication, which was not offered"),
            (&with_creds, &[5, 1], "chose authentication method 0x01, which was not offered"),
            (
                &anon,
                b"HTTP/1.1 400 Bad Request\r\n\r\n",
                "is not a SOCKS5 proxy: its answer starts with 0x48 (it looks like an HTTP proxy",
            ),
            (&anon, &[4, 0], "is not a SOCKS5 proxy: its answer starts with 0x04"),
            (&anon, &[5, 0, 4, 0], "is not a SOCKS5 proxy"),
            (&anon, &[5, 0, 5, 0, 0, 9], "unknown address type 0x09"),
        ];
        for (proxy, from_proxy, want) in cases {
            every_split(
                || ProxyHandshake::new(proxy, &target("s", 1)).expect("new"),
                from_proxy,
                |chunk, run| {
                    let m = failed(chunk, &run);
                    assert!(m.contains(want), "chunk {chunk}: '{want}' not in: {m}");
                },
            );
        }
    }

    #[test]
    fn socks5_local_dns_needs_an_address_and_eof_is_reported() {
        let e = ProxyHandshake::new(&socks("socks5://p:1"), &target("name.example", 1)).expect_err("needs address");
        assert_eq!(e.code, ResultCode::InvalidArgument);
        assert!(e.message.contains("resolve 'name.example' first"), "{}", e.message);
        let mut hs = ProxyHandshake::new(&socks("socks5h://p:1"), &target("name.example", 1)).expect("new");
        assert_eq!(hs.feed(&[5]), Ok(Status::NeedMore));
        let e = hs.closed_error();
        assert_eq!(e.code, ResultCode::ProxyFailed);
        assert!(e.message.contains("during the SOCKS5 handshake for name.example:1 (after 1 bytes"), "{}", e.message);
        let u = unreachable(&http_proxy(), &"connection refused");
        assert_eq!(u.code, ResultCode::ProxyFailed);
        assert_eq!(u.message, "cannot reach the proxy http://***@127.0.0.1:8888: connection refused");
    }
}
