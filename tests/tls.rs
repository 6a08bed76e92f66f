//! wss:// against the third-party Python `websockets` peer with a private CA (skipped with a
//! message when the test venv is missing; scripts/test-all.sh always creates it).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ctrlchan::{EventKind, ResultCode, Runtime, WebSocket, WebSocketKind};

struct Peer(Child, u16);
impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<String> {
    if let Ok(p) = std::env::var("CTRLCHAN_PYTHON") {
        return Some(p);
    }
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    std::path::Path::new(p).exists().then(|| p.to_string())
}

fn tls_peer(dir: &std::path::Path) -> Option<Peer> {
    let py = python()?;
    let root = env!("CARGO_MANIFEST_DIR");
    let st = Command::new(&py)
        .arg(format!("{root}/tests/peer/make_certs.py"))
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let mut child = Command::new(&py)
        .arg(format!("{root}/tests/peer/server.py"))
        .args(["--port", "0", "--tls-cert"])
        .arg(dir.join("server-cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("server-key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
    let port = line.trim().strip_prefix("PORT ")?.parse().ok()?;
    Some(Peer(child, port))
}

#[test]
fn wss_verifies_certificates_and_trusts_an_explicit_ca() {
    let dir = std::env::temp_dir().join(format!("ctrlchan-tls-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let Some(peer) = tls_peer(&dir) else {
        // Under the test command (which sets CTRLCHAN_PYTHON) a missing peer is a failure.
        assert!(std::env::var_os("CTRLCHAN_PYTHON").is_none(), "the TLS peer did not start");
        eprintln!("SKIPPED: no .venv with websockets/trustme (run scripts/setup-venv.sh)");
        return;
    };
    let url = format!("wss://localhost:{}/echo", peer.1);
    let rt = Runtime::new().expect("runtime");

    // System roots only: the private CA is not trusted.
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let e = ws.connect(&url, 5000).expect_err("untrusted");
    assert_eq!(e.code, ResultCode::TlsFailed, "{e}");

    // With the CA: verified, and data flows both ways.
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    let pem = std::fs::read(dir.join("ca.pem")).expect("ca");
    ws.add_trusted_ca_pem(&pem).expect("add ca");
    ws.connect(&url, 5000).expect("trusted connect");
    ws.send(b"over tls").expect("send");
    let ev = loop {
        let ev = rt.next_event(Duration::from_secs(5)).expect("event");
        if ev.kind == EventKind::PushNotification {
            break ev;
        }
    };
    assert_eq!(&ev.data[..], b"over tls");

    // Explicit, dangerous opt-out.
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.set_ignore_certificate_errors(true).expect("opt-out");
    ws.connect(&url, 5000).expect("insecure connect");

    // Bad PEM input is rejected.
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    assert_eq!(ws.add_trusted_ca_pem(b"not a pem").expect_err("bad pem").code, ResultCode::InvalidArgument);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wss peer that stops reading (the proxy in front of it is frozen with SIGSTOP): sends must
/// end in BUFFER_FULL, never in a false "connection reset", and drain once the peer reads again.
#[test]
fn wss_backpressure_gives_buffer_full_not_a_false_disconnect() {
    let dir = std::env::temp_dir().join(format!("ctrlchan-tls-bp-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let Some(peer) = tls_peer(&dir) else {
        assert!(std::env::var_os("CTRLCHAN_PYTHON").is_none(), "the TLS peer did not start");
        eprintln!("SKIPPED: no .venv with websockets/trustme (run scripts/setup-venv.sh)");
        return;
    };
    let py = python().expect("python");
    let mut proxy = Command::new(&py)
        .arg(format!("{}/tests/peer/proxy.py", env!("CARGO_MANIFEST_DIR")))
        .args(["--target-port", &peer.1.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("proxy");
    let mut line = String::new();
    BufReader::new(proxy.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
    let pport: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("proxy port");
    let proxy_pid = proxy.id() as i32;
    // Whatever happens, never leave a stopped proxy behind (it would hold the test's pipes).
    struct Thaw(Child);
    impl Drop for Thaw {
        fn drop(&mut self) {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGCONT) };
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _proxy = Thaw(proxy);

    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.add_trusted_ca_pem(&std::fs::read(dir.join("ca.pem")).expect("ca")).expect("ca");
    ws.set_outbound_buffer_limit(8 << 20).expect("limit");
    ws.connect(&format!("wss://localhost:{pport}/echo"), 5000).expect("connect");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(proxy_pid, libc::SIGSTOP) };
    let chunk = vec![b'x'; 64 * 1024];
    let mut full = false;
    for _ in 0..2000 {
        match ws.send(&chunk) {
            Ok(()) => std::thread::sleep(Duration::from_micros(200)),
            Err(e) if e.code == ResultCode::BufferFull => {
                full = true;
                break;
            }
            Err(e) => panic!("unexpected send error {e}"),
        }
    }
    assert!(full, "the outbound limit was never reached");
    // No false disconnect while the peer is merely slow.
    match rt.next_event(Duration::from_millis(500)) {
        Err(e) => assert_eq!(e.code, ResultCode::Timeout),
        Ok(ev) => assert!(
            !matches!(ev.kind, EventKind::TransportDisconnected | EventKind::Closed),
            "false disconnect: {}",
            ev.reason()
        ),
    }
    unsafe { libc::kill(proxy_pid, libc::SIGCONT) };
    ws.flush(Duration::from_secs(20)).expect("drains once the peer reads again");
    let _ = std::fs::remove_dir_all(&dir);
}
