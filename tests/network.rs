//! Real networks against real third-party parts on loopback: tinyproxy (HTTP CONNECT with
//! BasicAuth) and danted (SOCKS5 with username/password) from `tests/peer/proxies.py`, and the
//! Python `websockets` peer behind `ssl` (CERT_REQUIRED for mutual TLS) with trustme certificates.
//!
//! Skipped with a message when the venv or the proxies are missing, unless `CTRLCHAN_PYTHON` is
//! set (the test command), where a missing part is a failure.

use std::ffi::{c_char, c_void, CStr};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrlchan::ffi::logging::{ctrlchan_set_log_handler, LogLevel};
use ctrlchan::protocol::tls_identity::PublicKeyPin;
use ctrlchan::{
    Channel, Event, EventKind, ReconnectPolicy, ResourceType, ResultCode, Runtime, WebSocket, WebSocketKind,
    WebSocketState,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python() -> Option<String> {
    if let Ok(p) = std::env::var("CTRLCHAN_PYTHON") {
        return Some(p);
    }
    let p = format!("{ROOT}/.venv/bin/python");
    Path::new(&p).exists().then_some(p)
}

fn skip(what: &str) -> bool {
    assert!(std::env::var_os("CTRLCHAN_PYTHON").is_none(), "{what} did not start");
    eprintln!("SKIPPED: {what} unavailable (scripts/setup-venv.sh, scripts/setup-tools.sh)");
    true
}

/// A child speaking the peer process protocol: `KEY value` lines on stdout.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    lines: Vec<(String, String)>,
}

impl Proc {
    fn start(args: &[&str], until: &str) -> Option<Proc> {
        let mut child = Command::new(python()?).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take()?);
        let mut p = Proc { child, stdin, out, lines: Vec::new() };
        loop {
            let mut line = String::new();
            if p.out.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let (k, v) = line.trim_end().split_once(' ').unwrap_or((line.trim_end(), ""));
            p.lines.push((k.to_string(), v.to_string()));
            if k == until {
                return Some(p);
            }
        }
    }
    fn get(&self, key: &str) -> String {
        self.lines.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    }
    fn port(&self) -> u16 {
        self.get("PORT").parse().expect("PORT")
    }
    /// Tunnels the proxy opened so far.
    fn tunnels(&mut self) -> u32 {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "tunnels").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read");
        line.trim().strip_prefix("OK tunnels ").and_then(|n| n.parse().ok()).expect("tunnel count")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy(kind: &str) -> Option<Proc> {
    Proc::start(&[&format!("{ROOT}/tests/peer/proxies.py"), kind], "PASSWORD")
}

struct Certs {
    dir: PathBuf,
}
impl Certs {
    fn make(tag: &str) -> Option<Certs> {
        let dir = std::env::temp_dir().join(format!("ctrlchan-net-{tag}-{}", std::process::id()));
        let st = Command::new(python()?)
            .arg(format!("{ROOT}/tests/peer/make_certs.py"))
            .arg(&dir)
            .arg("--client")
            .stdout(Stdio::null())
            .status()
            .ok()?;
        st.success().then_some(Certs { dir })
    }
    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }
    fn read(&self, f: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(f)).expect("cert file")
    }
}
impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The websockets peer; `tls`: wss with these certificates; `mtls`: and CERT_REQUIRED.
fn peer(tls: Option<&Certs>, mtls: bool) -> Option<Proc> {
    let server = format!("{ROOT}/tests/peer/server.py");
    let mut args = vec![server, "--port".into(), "0".into()];
    if let Some(c) = tls {
        args.extend(["--tls-cert".into(), c.path("server-cert.pem"), "--tls-key".into(), c.path("server-key.pem")]);
        if mtls {
            args.extend(["--tls-client-ca".into(), c.path("ca.pem")]);
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start(&refs, "PORT")
}

/// Connects `ws` to the peer's /echo and checks one message both ways.
fn echo(rt: &Runtime, ws: &WebSocket, url: &str) {
    ws.connect(url, 10_000).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    ws.send(b"through").expect("send");
    let ev = next(rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(10));
    assert_eq!(&ev.data[..], b"through");
}

fn next(rt: &Runtime, want: impl Fn(&Event) -> bool, within: Duration) -> Event {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rt.next_event(left).unwrap_or_else(|e| panic!("no matching event within {within:?}: {e}"));
        if want(&ev) {
            return ev;
        }
    }
}

fn new_ws(rt: &Arc<Runtime>, proxy_uri: &str) -> Arc<WebSocket> {
    let ws = WebSocket::new(rt, WebSocketKind::Message).expect("ws");
    ws.set_proxy(proxy_uri).expect("proxy");
    ws
}

#[test]
fn ws_and_wss_through_tinyproxy_with_basic_auth() {
    let (Some(mut tp), Some(certs)) = (proxy("tinyproxy"), Certs::make("tp")) else {
        skip("tinyproxy or the venv");
        return;
    };
    let (Some(plain), Some(secure)) = (peer(None, false), peer(Some(&certs), false)) else {
        skip("the websockets peer");
        return;
    };
    // The log handler is process-wide: other tests' lines mix in, so only this test's are checked.
    assert_eq!(
        ctrlchan_set_log_handler(LogLevel::Debug as u32, Some(on_log), std::ptr::null_mut(), None),
        ResultCode::Ok
    );
    let rt = Runtime::new().expect("runtime");
    let uri = tp.get("URI");
    let password = tp.get("PASSWORD");
    assert!(!password.is_empty() && uri.contains(&password), "the proxy URI carries its credentials");
    let before = tp.tunnels();
    echo(&rt, &new_ws(&rt, &uri), &format!("ws://127.0.0.1:{}/echo", plain.port()));
    assert_eq!(tp.tunnels(), before + 1, "the ws connection went through the proxy");

    // wss: TLS inside the tunnel, verified against the server's name (localhost), not the proxy's.
    let ws = new_ws(&rt, &uri);
    ws.add_trusted_ca_pem(&certs.read("ca.pem")).expect("ca");
    echo(&rt, &ws, &format!("wss://localhost:{}/echo", secure.port()));
    assert_eq!(tp.tunnels(), before + 2);
    assert!(ws.with_peer_tls(|t| t.is_some_and(|t| t.version.to_str() == Ok("TLSv1.3"))));

    // Both tunnels were logged, naming the proxy without its credentials.
    let lines = LOG_LINES.lock().map(|v| v.clone()).unwrap_or_default();
    let proxy_shown = format!("http://***@127.0.0.1:{}", tp.port());
    for target in [format!("127.0.0.1:{}", plain.port()), format!("localhost:{}", secure.port())] {
        let want = format!("tunnel to {target} through the proxy {proxy_shown} established");
        assert!(lines.iter().any(|l| l.contains(&want)), "no '{want}' in {lines:?}");
    }
    assert!(lines.iter().all(|l| !l.contains(&password)), "a log line shows the proxy password: {lines:?}");
}

static LOG_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_log(_: *mut c_void, _: LogLevel, _: *const c_char, message: *const c_char) {
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    LOG_LINES.lock().map(|mut v| v.push(m)).unwrap_or(());
}

#[test]
fn socks5_and_socks5h_through_danted() {
    let Some(mut d) = proxy("danted") else {
        skip("danted or the venv");
        return;
    };
    let Some(plain) = peer(None, false) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let uri = d.get("URI");
    let before = d.tunnels();
    // socks5://: the client resolves localhost and hands the proxy 127.0.0.1.
    let local = uri.replacen("socks5h://", "socks5://", 1);
    echo(&rt, &new_ws(&rt, &local), &format!("ws://localhost:{}/echo", plain.port()));
    // socks5h://: the proxy resolves the name.
    let remote = local.replacen("socks5://", "socks5h://", 1);
    echo(&rt, &new_ws(&rt, &remote), &format!("ws://localhost:{}/echo", plain.port()));
    assert_eq!(d.tunnels(), before + 2);

    // Wrong password: PROXY_FAILED, no password in the message.
    let ws = new_ws(&rt, &url_with_password(&local, "not-the-password"));
    let e = ws.connect(&format!("ws://127.0.0.1:{}/echo", plain.port()), 10_000).expect_err("wrong password");
    assert_eq!(e.code, ResultCode::ProxyFailed, "{e}");
    assert!(!e.message.contains("not-the-password"), "{e}");
}

fn url_with_password(uri: &str, password: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("scheme");
    let (userinfo, host) = rest.rsplit_once('@').expect("userinfo");
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn wrong_credentials_and_a_dead_proxy_are_proxy_failed_without_credentials() {
    let Some(tp) = proxy("tinyproxy") else {
        skip("tinyproxy or the venv");
        return;
    };
    let Some(plain) = peer(None, false) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let url = format!("ws://127.0.0.1:{}/echo", plain.port());
    let ws = new_ws(&rt, &url_with_password(&tp.get("URI"), "s3cret-wrong"));
    let e = ws.connect(&url, 10_000).expect_err("407");
    assert_eq!(e.code, ResultCode::ProxyFailed, "{e}");
    // tinyproxy answers a CONNECT with wrong credentials 401 (others 407): its status line shows.
    assert!(e.message.contains("HTTP/1.0 401") || e.message.contains(" 407 "), "the proxy's status line: {e}");
    assert!(e.http_status == 401 || e.http_status == 407, "{e:?}");
    assert!(!e.message.contains("s3cret-wrong") && !e.message.contains(&tp.get("PASSWORD")), "{e}");

    // A proxy port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let ws = new_ws(&rt, &format!("http://user:hunter2@127.0.0.1:{port}"));
    let e = ws.connect(&url, 10_000).expect_err("dead proxy");
    assert_eq!(e.code, ResultCode::ProxyFailed, "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
    let ws = new_ws(&rt, &format!("socks5://127.0.0.1:{port}"));
    assert_eq!(ws.connect(&url, 10_000).expect_err("dead socks").code, ResultCode::ProxyFailed);

    // Set after connect: INVALID_STATE; a malformed URI: INVALID_ARGUMENT without its password.
    assert_eq!(ws.set_proxy("").expect_err("after connect").code, ResultCode::InvalidState);
    let fresh = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let e = fresh.set_proxy("ftp://u:topsecret@127.0.0.1:1").expect_err("scheme");
    assert_eq!(e.code, ResultCode::InvalidArgument);
    assert!(!e.message.contains("topsecret"), "{e}");
}

/// The only test that touches the process environment (the others set the proxy explicitly,
/// which the environment never overrides).
#[test]
fn environment_proxy_no_proxy_and_direct() {
    let Some(mut tp) = proxy("tinyproxy") else {
        skip("tinyproxy or the venv");
        return;
    };
    let Some(plain) = peer(None, false) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let url = format!("ws://127.0.0.1:{}/echo", plain.port());
    let env_ws = || WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    std::env::set_var("ws_proxy", tp.get("URI"));
    std::env::remove_var("no_proxy");
    std::env::remove_var("NO_PROXY");
    let t0 = tp.tunnels();
    echo(&rt, &env_ws(), &url);
    assert_eq!(tp.tunnels(), t0 + 1, "ws_proxy from the environment was used");

    // "" forces direct.
    echo(&rt, &new_ws(&rt, ""), &url);
    assert_eq!(tp.tunnels(), t0 + 1, "direct");

    // no_proxy: IP, CIDR.
    for np in ["127.0.0.1", "127.0.0.0/8", "example.com, 127.0.0.1"] {
        std::env::set_var("no_proxy", np);
        echo(&rt, &env_ws(), &url);
        assert_eq!(tp.tunnels(), t0 + 1, "no_proxy={np} exempts the target");
    }
    std::env::set_var("no_proxy", "localhost.example");
    echo(&rt, &env_ws(), &url);
    assert_eq!(tp.tunnels(), t0 + 2, "a no_proxy entry for another host does not");
    std::env::remove_var("no_proxy");
    std::env::remove_var("ws_proxy");
    // wss:// reads wss_proxy/https_proxy, not ws_proxy.
    std::env::set_var("https_proxy", "http://127.0.0.1:1");
    let ws = env_ws();
    let e = ws.connect("wss://localhost:1/", 5_000).expect_err("https_proxy is dead");
    assert_eq!(e.code, ResultCode::ProxyFailed, "{e}");
    std::env::remove_var("https_proxy");
}

#[test]
fn reconnects_go_through_the_same_proxy() {
    let Some(mut tp) = proxy("tinyproxy") else {
        skip("tinyproxy or the venv");
        return;
    };
    let Some(plain) = peer(None, false) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let t0 = tp.tunnels();
    let ws = new_ws(&rt, &tp.get("URI"));
    let ch = Channel::new(&rt, "via-proxy", 60_000, ResourceType::RequestSoftwareSlot).expect("channel");
    ch.using_transport(&ws).expect("transport");
    ch.set_reconnect_policy(Some(ReconnectPolicy {
        initial_delay_ms: 50,
        max_delay_ms: 200,
        multiplier_percent: 150,
        jitter_percent: 0,
        max_attempts: 3,
    }))
    .expect("policy");
    // The peer drops TCP after 300 ms: a loss that is retried, through the proxy again.
    ws.connect(&format!("ws://127.0.0.1:{}/drop?after_ms=300", plain.port()), 10_000).expect("connect");
    ch.wait_for_push_enabled().expect("push");
    next(&rt, |e| e.kind == EventKind::Reconnecting, Duration::from_secs(10));
    next(&rt, |e| e.kind == EventKind::Reset, Duration::from_secs(10));
    assert!(tp.tunnels() >= t0 + 2, "the reconnect opened a second tunnel");
    let _ = ch.close();
}

#[test]
fn a_407_is_not_retried_but_an_unreachable_proxy_is() {
    use ctrlchan::protocol::reconnect::connect_error_is_retried;
    let e = ctrlchan::Error::new(ResultCode::ProxyFailed, "cannot reach the proxy");
    assert!(connect_error_is_retried(&e));
    assert!(!connect_error_is_retried(&e.clone().with_http_status(407)));
    assert!(!connect_error_is_retried(&e.clone().with_http_status(403)));
    assert!(connect_error_is_retried(&e.with_http_status(502)));
}

fn pin_of_pem(pem: &[u8]) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(pem).next().expect("cert").expect("pem");
    PublicKeyPin::of_certificate(&der).expect("pin").to_string()
}

#[test]
fn pins_client_certificates_and_the_peer_certificate() {
    let Some(certs) = Certs::make("tls") else {
        skip("the venv (trustme)");
        return;
    };
    let (Some(secure), Some(mutual)) = (peer(Some(&certs), false), peer(Some(&certs), true)) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let ca = certs.read("ca.pem");
    let server_pin = pin_of_pem(&certs.read("server-cert.pem"));
    let wss = |p: &Proc| format!("wss://localhost:{}/echo", p.port());
    let tls_ws = || {
        let ws = new_ws(&rt, "");
        ws.add_trusted_ca_pem(&ca).expect("ca");
        ws
    };

    // Right pin (among others): connects; the peer certificate is the server's leaf.
    let ws = tls_ws();
    ws.add_pinned_public_key(&format!("sha256//{};{server_pin}", "A".repeat(43) + "=")).expect("pins");
    echo(&rt, &ws, &wss(&secure));
    let der = ws.with_peer_tls(|t| t.map(|t| t.certificate.to_vec())).expect("peer cert");
    assert_eq!(PublicKeyPin::of_certificate(&der.into()).expect("pin").to_string(), server_pin);
    ws.with_peer_tls(|t| {
        let t = t.expect("tls");
        assert_eq!(t.version.to_str(), Ok("TLSv1.3"));
        assert!(t.cipher_suite.to_str().is_ok_and(|s| s.starts_with("TLS_")), "{:?}", t.cipher_suite);
    });

    // Wrong pin: verification passes, the pin does not.
    let ws = tls_ws();
    ws.add_pinned_public_key(&pin_of_pem(&certs.read("client-cert.pem"))).expect("pin");
    let e = ws.connect(&wss(&secure), 10_000).expect_err("wrong pin");
    assert_eq!(e.code, ResultCode::TlsFailed, "{e}");
    assert!(e.message.contains("pinned"), "{e}");
    assert!(ws.with_peer_tls(|t| t.is_none()));

    // A bad pin: INVALID_ARGUMENT at once.
    assert_eq!(tls_ws().add_pinned_public_key("sha1//abc").expect_err("bad").code, ResultCode::InvalidArgument);

    // Mutual TLS: without a client certificate the server refuses; with one it accepts.
    let ws = tls_ws();
    let e = ws.connect(&wss(&mutual), 10_000).expect_err("no client cert");
    assert!(matches!(e.code, ResultCode::TlsFailed | ResultCode::HandshakeFailed), "{e}");
    let ws = tls_ws();
    ws.set_client_certificate_pem(&certs.read("client-cert.pem"), &certs.read("client-key.pem")).expect("identity");
    echo(&rt, &ws, &wss(&mutual));

    // A key that is not the certificate's: INVALID_ARGUMENT before any connect.
    let ws = tls_ws();
    let e = ws
        .set_client_certificate_pem(&certs.read("client-cert.pem"), &certs.read("other-key.pem"))
        .expect_err("mismatch");
    assert_eq!(e.code, ResultCode::InvalidArgument, "{e}");
    assert_eq!(ws.state(), WebSocketState::New);
}

/// The unbuffered TLS stream: records reassembled across reads, big writes pushed back and resumed.
#[test]
fn wss_carries_large_messages_both_ways_through_a_proxy() {
    let (Some(tp), Some(certs)) = (proxy("tinyproxy"), Certs::make("big")) else {
        skip("tinyproxy or the venv");
        return;
    };
    let Some(secure) = peer(Some(&certs), false) else {
        skip("the websockets peer");
        return;
    };
    let rt = Runtime::new().expect("runtime");
    let ws = new_ws(&rt, &tp.get("URI"));
    ws.add_trusted_ca_pem(&certs.read("ca.pem")).expect("ca");
    ws.connect(&format!("wss://localhost:{}/echo", secure.port()), 10_000).expect("connect");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..2 {
        ws.send(&big).expect("send");
    }
    for _ in 0..2 {
        let ev = next(&rt, |e| e.kind == EventKind::PushNotification, Duration::from_secs(20));
        assert_eq!(ev.data.len(), big.len());
        assert!(ev.data[..] == big[..], "echoed intact");
    }
    let _ = ws.close(1000, "done");
}
