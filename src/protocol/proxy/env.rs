//! Which proxy a connection uses: explicit setting or the environment (curl's rules).

use super::*;

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
