//! An event owns only its payload (issue 13, defect 3): kept 1-byte events must not pin the
//! connection's read buffer after the connection is gone. Live heap bytes are counted by a
//! global allocator, so the figure is exact (this file is its own test binary for that).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use ctrlchan::{EventKind, Runtime, WebSocket, WebSocketKind};
use tungstenite::Message;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

const BIG: usize = 2 << 20;
const CONNS: usize = 8;

#[test]
fn kept_small_events_do_not_pin_the_read_buffer() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().take(CONNS) {
            let Ok(s) = s else { continue };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(s) else { return };
                // One big frame grows the client's read buffer, then a 1-byte message is cut from it.
                let _ = ws.send(Message::binary(vec![1u8; BIG]));
                let _ = ws.send(Message::binary(vec![2u8]));
                let _ = ws.close(None);
                let _ = ws.flush();
                std::thread::sleep(Duration::from_millis(300));
            });
        }
    });
    let rt = Runtime::new().expect("runtime");
    let base = LIVE.load(Ordering::Relaxed);
    let mut kept = Vec::new();
    for _ in 0..CONNS {
        let ws = WebSocket::new(&rt, WebSocketKind::Message).expect("ws");
        ws.set_max_message_size(8 << 20).expect("max");
        ws.connect(&format!("ws://127.0.0.1:{port}/"), 3000).expect("connect");
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let Ok(ev) = rt.next_event(Duration::from_millis(50)) else { continue };
            if ev.kind == EventKind::PushNotification && ev.data.len() == 1 {
                kept.push(ev);
                break;
            }
        }
        ws.release();
    }
    assert_eq!(kept.len(), CONNS, "every connection delivered its 1-byte message");
    // Let the runtime drop the sockets (and their buffers).
    let end = Instant::now() + Duration::from_secs(5);
    while rt.stats().connections_open > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let held = LIVE.load(Ordering::Relaxed) - base;
    println!("{CONNS} kept 1-byte events hold {held} bytes");
    assert!(held < (BIG as isize), "{CONNS} kept 1-byte events hold {held} bytes");
    drop(kept);
}
