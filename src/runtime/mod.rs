//! Layer 3, runtime ("the system" in Windows terms): one reactor thread that owns every socket
//! and one timer structure, the commands other threads send it, the event queue with a pollable
//! fd, and event routing.
//!
//! - [`reactor`]: the loop, the connection slot table and command dispatch.
//! - [`lifecycle`]: a connection's life (one enum) and the one `finish` that ends it.
//! - [`connect`]: TCP connect and the opening handshake, driven over the socket.
//! - [`admission`]: at most a few connects at once per runtime (the rest queue).
//! - [`open`]: I/O of an open connection: messages in, data and keep-alives out, close.
//! - [`schedule`]: keep-alive bookkeeping (outstanding pings, pong deadline, coalescing windows).
//! - [`adaptive`]: adaptive keep-alive on the runtime thread, the learned-value memory and its file.
//! - [`io`], [`stream`], [`sockopt`]: WouldBlock helpers, the plain/TLS byte stream, socket options.

pub(crate) mod adaptive;
pub(crate) mod adaptive_io;
pub(crate) mod admission;
pub(crate) mod connect;
pub(crate) mod io;
pub(crate) mod lifecycle;
pub(crate) mod netwatch;
pub(crate) mod open;
mod queue;
pub(crate) mod reactor;
pub mod reframed;
pub(crate) mod schedule;
mod sizes;
pub mod sockopt;
pub(crate) mod stream;
pub mod timers;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::error::{Error, Result, ResultCode};
use crate::state::{ChannelShared, Event, SlotPool, WsShared};
use crate::types::KeepAliveMode;

pub use connect::{ConnectRequest, ConnectStart};
pub(crate) use queue::EventQueue;
pub use queue::PopError;

thread_local! {
    static ON_RUNTIME_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// True on a reactor thread, i.e. inside an event callback.
pub fn on_runtime_thread() -> bool {
    ON_RUNTIME_THREAD.with(|c| c.get())
}

/// Fails with `INVALID_STATE` when a blocking call is made from a callback.
pub(crate) fn ensure_may_block(what: &str) -> Result<()> {
    if on_runtime_thread() {
        return Err(Error::invalid_state(format!(
            "{what} would block the runtime thread; it cannot be called from inside an event callback"
        )));
    }
    Ok(())
}

/// Default coalescing window.
pub const DEFAULT_COALESCING_MS: u32 = 3_000;
/// Default pong settle time (`Runtime::set_pong_settle`).
pub const DEFAULT_PONG_SETTLE_MS: u32 = 50;
/// Largest pong settle time accepted.
pub const MAX_PONG_SETTLE_MS: u32 = 1_000;

/// What other threads ask the reactor to do.
pub(crate) enum Cmd {
    Connect(Arc<WsShared>, ConnectStart),
    /// Queued outbound data is waiting.
    Service(Arc<WsShared>),
    Close(Arc<WsShared>, u16, String),
    /// The handle was freed: finish a graceful close in the background, without events.
    Release(Arc<WsShared>),
    EnableKeepalive(Arc<WsShared>, Arc<ChannelShared>),
    DisableKeepalive(Arc<WsShared>),
    RunKeepalive(Arc<WsShared>, KeepAliveMode, u32),
    Reschedule(Arc<WsShared>),
    /// Look at the clocks now (a test injected a suspend).
    CheckClock,
    /// An event raised on another thread, delivered from the runtime thread like all others.
    Deliver(Box<Event>),
    Shutdown,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub wakeups: AtomicU64,
    pub keepalives_sent: AtomicU64,
    pub keepalives_acked: AtomicU64,
    pub messages_received: AtomicU64,
    pub connections_open: AtomicU64,
}

/// State shared between the runtime handle, its objects and the reactor thread.
pub struct RtShared {
    waker: Arc<mio::Waker>,
    cmds: Mutex<Vec<Cmd>>,
    pub(crate) queue: EventQueue,
    shutting_down: AtomicBool,
    pub(crate) slots: Arc<SlotPool>,
    pub(crate) coalescing_ms: AtomicU32,
    pub(crate) pong_settle_ms: AtomicU32,
    pub(crate) counters: Counters,
    pub(crate) ping_seq: AtomicU64,
    /// Sleep time injected by tests (`Runtime::simulate_suspend`), in ms.
    pub(crate) injected_sleep_ms: AtomicU64,
    channels: Mutex<Vec<Weak<ChannelShared>>>,
    websockets: Mutex<Vec<Weak<WsShared>>>,
    /// Adaptive keep-alive: learned values and the state file.
    pub(crate) adaptive: Arc<adaptive::AdaptiveShared>,
}

impl RtShared {
    pub(crate) fn send(&self, cmd: Cmd) -> Result<()> {
        let mut q = self.cmds.lock();
        // Checked under the command lock: shutdown sets the flag under it too, so no command can
        // slip in behind the reactor's final drain.
        if self.is_shutting_down() && !matches!(cmd, Cmd::Shutdown | Cmd::Release(_)) {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let first = q.is_empty();
        q.push(cmd);
        drop(q);
        if first {
            self.waker
                .wake()
                .map_err(|e| Error::new(ResultCode::Io, format!("cannot wake the runtime thread: {e}")))?;
        }
        Ok(())
    }

    pub(crate) fn take_cmds(&self) -> Vec<Cmd> {
        std::mem::take(&mut *self.cmds.lock())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Starts the shutdown; true for the first caller. No command is accepted afterwards.
    pub(crate) fn begin_shutdown(&self) -> bool {
        let first = {
            let _cmds = self.cmds.lock();
            !self.shutting_down.swap(true, Ordering::AcqRel)
        };
        if first {
            // Shutdown is accepted after the flag; wake the reactor for it.
            let mut q = self.cmds.lock();
            q.push(Cmd::Shutdown);
            drop(q);
            let _ = self.waker.wake();
        }
        first
    }

    /// Creates and routes an event of `kind` for `ws` — unless the mask in force says nobody
    /// wants that kind, in which case nothing is built at all.
    pub(crate) fn emit(&self, ws: &Arc<WsShared>, kind: crate::types::EventKind, fill: impl FnOnce(&mut Event)) {
        if !ws.wants(kind) {
            return;
        }
        let mut ev = Event::new(kind, Some(ws.clone()), ws.channel());
        fill(&mut ev);
        self.deliver(ev);
    }

    /// Routes an event to exactly one place, the first that applies: the channel's handler, the
    /// websocket's handler, the runtime queue.
    pub(crate) fn deliver(&self, ev: Event) {
        let handler = ev
            .channel
            .as_ref()
            .and_then(|c| c.handler.lock().clone())
            .or_else(|| ev.websocket.as_ref().and_then(|w| w.handler.lock().clone()));
        match handler {
            Some(h) => {
                // A panicking Rust handler must not take the reactor (and every connection) down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(&ev)));
            }
            None => self.queue.push(ev),
        }
    }

    /// Once no callback can run any more: close the queue (dropping queued events outside the
    /// lock, which also breaks event -> websocket cycles) and drop every handler so that
    /// finalizers run now. Idempotent.
    pub(crate) fn release_all(&self) {
        drop(self.queue.close());
        let chans: Vec<_> = std::mem::take(&mut *self.channels.lock());
        for w in chans {
            if let Some(ch) = w.upgrade() {
                ch.replace_handler(None);
                ch.release_slot();
            }
        }
        let wss: Vec<_> = std::mem::take(&mut *self.websockets.lock());
        for w in wss {
            if let Some(ws) = w.upgrade() {
                ws.replace_handler(None);
            }
        }
    }

    /// Marks the runtime dead and releases every waiter (used only if the reactor panicked).
    fn fail_everything(&self, why: &str) {
        self.shutting_down.store(true, Ordering::Release);
        let wss: Vec<_> = self.websockets.lock().iter().filter_map(|w| w.upgrade()).collect();
        for ws in wss {
            lifecycle::force_closed(&ws, Error::new(ResultCode::Io, why));
        }
        self.release_all();
    }

    pub(crate) fn track_channel(&self, ch: &Arc<ChannelShared>) {
        track(&self.channels, ch);
    }

    pub(crate) fn track_websocket(&self, ws: &Arc<WsShared>) {
        track(&self.websockets, ws);
    }
}

fn track<T>(list: &Mutex<Vec<Weak<T>>>, item: &Arc<T>) {
    let mut v = list.lock();
    if v.len() >= 64 && v.len().is_power_of_two() {
        v.retain(|w| w.strong_count() > 0);
    }
    v.push(Arc::downgrade(item));
}

/// Creates the shared runtime state and starts its reactor thread.
pub(crate) fn start() -> Result<(Arc<RtShared>, JoinHandle<()>)> {
    let poll = mio::Poll::new().map_err(|e| Error::new(ResultCode::Io, format!("epoll_create failed: {e}")))?;
    let waker = mio::Waker::new(poll.registry(), reactor::WAKER)
        .map_err(|e| Error::new(ResultCode::Io, format!("cannot create waker: {e}")))?;
    let queue = EventQueue::new().map_err(|e| Error::new(ResultCode::Io, format!("eventfd failed: {e}")))?;
    let waker = Arc::new(waker);
    let for_queue = waker.clone();
    queue.set_waker(Box::new(move || {
        let _ = for_queue.wake();
    }));
    let shared = Arc::new(RtShared {
        waker,
        cmds: Mutex::new(Vec::new()),
        queue,
        shutting_down: AtomicBool::new(false),
        slots: Arc::new(SlotPool::default()),
        coalescing_ms: AtomicU32::new(DEFAULT_COALESCING_MS),
        pong_settle_ms: AtomicU32::new(DEFAULT_PONG_SETTLE_MS),
        counters: Counters::default(),
        ping_seq: AtomicU64::new(1),
        injected_sleep_ms: AtomicU64::new(0),
        channels: Mutex::new(Vec::new()),
        websockets: Mutex::new(Vec::new()),
        adaptive: adaptive::AdaptiveShared::new(),
    });
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("ctrlchan-rt".into())
        .spawn(move || {
            ON_RUNTIME_THREAD.with(|c| c.set(true));
            let shared = for_thread.clone();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reactor::run(for_thread, poll)));
            if r.is_err() {
                // A bug in the reactor must not leave callers waiting forever.
                shared.fail_everything("internal error: the runtime thread stopped");
            }
        })
        .map_err(|e| Error::new(ResultCode::Io, format!("cannot start the runtime thread: {e}")))?;
    Ok((shared, thread))
}
