//! The peers of the fault matrix: a sequence-logging echo server that can be killed and restarted
//! on its port, and a TCP fault proxy (pass, blackhole, reset, die).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tungstenite::Message;

/// (connection number, sequence number) of every numbered message the server received.
pub type Log = Arc<Mutex<Vec<(u64, u32)>>>;

pub struct EchoServer {
    pub port: u16,
    pub log: Log,
    stop: Mutex<Arc<AtomicBool>>,
    conns: Arc<AtomicU64>,
    /// The server stops reading and answering (TCP stays up): a hung peer.
    pub hung: Arc<AtomicBool>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let s = EchoServer {
            port,
            log: Arc::default(),
            stop: Mutex::default(),
            conns: Arc::default(),
            hung: Arc::default(),
        };
        s.listen(l);
        s
    }

    fn listen(&self, l: TcpListener) {
        let stop = self.stop.lock().expect("stop").clone();
        let (log, conns, hung) = (self.log.clone(), self.conns.clone(), self.hung.clone());
        l.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let id = conns.fetch_add(1, Ordering::SeqCst) + 1;
                        let (log, stop, hung) = (log.clone(), stop.clone(), hung.clone());
                        std::thread::spawn(move || echo(s, id, log, stop, hung));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(_) => return,
                }
            }
        });
    }

    /// Closes the listener and every connection (FIN).
    pub fn kill(&self) {
        self.stop.lock().expect("stop").store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        *self.stop.lock().expect("stop") = Arc::default();
        let l = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind");
        self.listen(l);
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.lock().expect("stop").store(true, Ordering::SeqCst);
    }
}

fn echo(s: TcpStream, id: u64, log: Log, stop: Arc<AtomicBool>, hung: Arc<AtomicBool>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(10)));
    let Ok(mut ws) = tungstenite::accept(s) else { return };
    while !stop.load(Ordering::SeqCst) {
        if hung.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if let Some(seq) = std::str::from_utf8(&m.clone().into_data()).ok().and_then(|t| t.parse::<u32>().ok())
                {
                    log.lock().expect("log").push((id, seq));
                }
                let _ = ws.send(m);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        let _ = ws.flush();
    }
}

pub const PASS: u8 = 0;
pub const BLACKHOLE: u8 = 1;
pub const RESET: u8 = 2;
pub const DIE: u8 = 3;

/// A TCP proxy in front of `upstream`; `mode` applies to every connection at once.
pub struct FaultProxy {
    pub port: u16,
    pub mode: Arc<AtomicU8>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> FaultProxy {
        FaultProxy::start_on(0, upstream)
    }
    pub fn start_on(port: u16, upstream: u16) -> FaultProxy {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = l.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let m = mode.clone();
        l.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || loop {
            if m.load(Ordering::SeqCst) == DIE {
                return; // the listener closes: reconnects are refused
            }
            match l.accept() {
                Ok((c, _)) => {
                    let up = SocketAddr::from(([127, 0, 0, 1], upstream));
                    let Ok(u) = TcpStream::connect(up) else { continue };
                    let m = m.clone();
                    std::thread::spawn(move || pump(c, u, m));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        });
        FaultProxy { port, mode }
    }
}

/// One thread owns both sockets (no clones), so dropping them closes them for real.
fn pump(c: TcpStream, u: TcpStream, mode: Arc<AtomicU8>) {
    let _ = c.set_nonblocking(true);
    let _ = u.set_nonblocking(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match mode.load(Ordering::SeqCst) {
            BLACKHOLE => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            RESET => {
                let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                return; // both dropped: RST to the client
            }
            DIE => return,
            _ => {}
        }
        let mut idle = true;
        for (mut from, mut to) in [(&c, &u), (&u, &c)] {
            match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    idle = false;
                    let _ = to.set_nonblocking(false);
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    let _ = to.set_nonblocking(true);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
