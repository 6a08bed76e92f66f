use super::tests::{assert_no_secret, SECRET_PASS, SECRET_USER};
use super::*;

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
    assert!(e.message.contains("longer than 16384 bytes") && e.message.contains("'HTTP/1.1 200 OK'"), "{}", e.message);
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
