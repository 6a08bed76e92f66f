use super::*;
use std::collections::HashMap;

pub(super) const SECRET_USER: &str = "alice";
pub(super) const SECRET_PASS: &str = "s3cr3t";

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| map.get(name).cloned()
}

pub(super) fn assert_no_secret(text: &str) {
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
