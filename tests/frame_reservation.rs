//! Issue 13, defect 4: a frame header claiming 1 GiB must not reserve 1 GiB before any payload
//! arrives, and a message the process cannot hold must fail its connection, not the process.
//!
//! The test re-executes this test binary as a child with an 800 MB address-space limit
//! (RLIMIT_AS) and a 2 GiB max message size; a server thread claims a 1 GiB frame and then
//! streams it. Before the fix the child aborted at the header (exit 134).

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use ctrlchan::{EventKind, Runtime, WebSocket, WebSocketKind};

const CHILD: &str = "CTRLCHAN_FRAME_RESERVATION_CHILD";

#[test]
fn a_1_gib_frame_under_an_800_mb_limit_fails_the_connection_not_the_process() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(["--exact", "a_1_gib_frame_under_an_800_mb_limit_fails_the_connection_not_the_process"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child died: {:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("CHILD OK"), "{stdout}\n{stderr}");
    eprintln!("{}", stdout.lines().find(|l| l.contains("CHILD OK")).unwrap_or_default());
}

fn child() {
    let limit = libc::rlimit { rlim_cur: 800 << 20, rlim_max: 800 << 20 };
    // SAFETY: plain syscall on a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0, "setrlimit");

    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((s, _)) = l.accept() else { return };
        let Ok(ws) = tungstenite::accept(s) else { return };
        let mut s = ws.into_inner();
        let mut header = vec![0x82u8, 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        if s.write_all(&header).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(300)); // the header alone must be harmless
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..1024 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
        std::thread::sleep(Duration::from_secs(5));
    });

    let rt = Runtime::new().expect("runtime");
    let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
    ws.set_max_message_size(2u32 << 30).expect("max message size");
    ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        let Ok(ev) = rt.next_event(Duration::from_millis(50)) else { continue };
        if !ev.is_from(&ws) {
            continue;
        }
        match ev.kind {
            EventKind::Closed | EventKind::TransportDisconnected => {
                let reason = ev.reason().to_string();
                assert!(reason.contains("cannot allocate"), "unexpected end: {ev:?}");
                println!("CHILD OK: {:?} {:?}: {reason}", ev.kind, ev.result);
                return;
            }
            EventKind::PushNotification => panic!("a 1 GiB message cannot have been delivered"),
            _ => {}
        }
    }
    panic!("no terminal event within 60 s");
}
