//! The runtime ("the system" in Windows terms): one reactor thread that owns every socket and one
//! timer structure, an event queue with a pollable fd, and the commands other threads send it.

mod queue;
pub(crate) mod reactor;
pub mod timers;

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::channel::Channel;
use crate::error::{Error, Result, ResultCode};
use crate::event::Event;
use crate::types::{KeepAliveMode, RuntimeStats};
use crate::websocket::{ConnectRequest, WebSocket};

use queue::EventQueue;
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

/// Default maximum number of channels holding a slot in one runtime.
pub const DEFAULT_MAX_CHANNELS: u32 = 65_536;
/// Default coalescing window.
pub const DEFAULT_COALESCING_MS: u32 = 1_000;

pub(crate) enum Cmd {
    Connect(Arc<WebSocket>, Box<ConnectRequest>),
    Service(Arc<WebSocket>),
    Close(Arc<WebSocket>, u16, String),
    Abort(Arc<WebSocket>),
    EnableKeepalive(Arc<WebSocket>, Arc<Channel>),
    DisableKeepalive(Arc<WebSocket>),
    RunKeepalive(Arc<WebSocket>, KeepAliveMode, u32),
    Reschedule(Arc<WebSocket>),
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
    waker: mio::Waker,
    cmds: Mutex<Vec<Cmd>>,
    pub(crate) queue: EventQueue,
    shutting_down: AtomicBool,
    pub(crate) max_channels: AtomicU32,
    pub(crate) active_slots: AtomicU32,
    pub(crate) coalescing_ms: AtomicU32,
    pub(crate) counters: Counters,
    pub(crate) ping_seq: AtomicU64,
    channels: Mutex<Vec<Weak<Channel>>>,
    websockets: Mutex<Vec<Weak<WebSocket>>>,
}

impl RtShared {
    pub(crate) fn send(&self, cmd: Cmd) -> Result<()> {
        let mut q = self.cmds.lock();
        // Checked under the command lock: shutdown sets the flag under it too, so no command can
        // slip in behind the reactor's final drain.
        if self.is_shutting_down() && !matches!(cmd, Cmd::Shutdown | Cmd::Abort(_)) {
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

    /// Routes an event: channel handler, else websocket handler, else the runtime queue.
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
    /// lock, which also breaks event -> websocket -> runtime cycles) and drop every handler so that
    /// finalizers run now. Idempotent.
    pub(crate) fn release_all(&self) {
        drop(self.queue.close());
        let chans: Vec<_> = std::mem::take(&mut *self.channels.lock());
        for w in chans {
            if let Some(ch) = w.upgrade() {
                let h = ch.handler.lock().take();
                drop(h);
                ch.release_slot();
            }
        }
        let wss: Vec<_> = std::mem::take(&mut *self.websockets.lock());
        for w in wss {
            if let Some(ws) = w.upgrade() {
                let h = ws.handler.lock().take();
                drop(h);
            }
        }
    }

    /// Marks the runtime dead and releases every waiter (used only if the reactor panicked).
    fn fail_everything(&self, why: &str) {
        self.shutting_down.store(true, Ordering::Release);
        let wss: Vec<_> = self.websockets.lock().iter().filter_map(|w| w.upgrade()).collect();
        for ws in wss {
            ws.force_closed(why);
        }
        self.release_all();
    }

    pub(crate) fn track_channel(&self, ch: &Arc<Channel>) {
        let mut v = self.channels.lock();
        if v.len() >= 64 && v.len().is_power_of_two() {
            v.retain(|w| w.strong_count() > 0);
        }
        v.push(Arc::downgrade(ch));
    }

    pub(crate) fn track_websocket(&self, ws: &Arc<WebSocket>) {
        let mut v = self.websockets.lock();
        if v.len() >= 64 && v.len().is_power_of_two() {
            v.retain(|w| w.strong_count() > 0);
        }
        v.push(Arc::downgrade(ws));
    }
}

/// A runtime: create one per process (or per subsystem); it hosts any number of channels.
pub struct Runtime {
    shared: Arc<RtShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runtime {
    pub fn new() -> Result<Arc<Runtime>> {
        let poll = mio::Poll::new().map_err(|e| Error::new(ResultCode::Io, format!("epoll_create failed: {e}")))?;
        let waker = mio::Waker::new(poll.registry(), reactor::WAKER)
            .map_err(|e| Error::new(ResultCode::Io, format!("cannot create waker: {e}")))?;
        let queue = EventQueue::new().map_err(|e| Error::new(ResultCode::Io, format!("eventfd failed: {e}")))?;
        let shared = Arc::new(RtShared {
            waker,
            cmds: Mutex::new(Vec::new()),
            queue,
            shutting_down: AtomicBool::new(false),
            max_channels: AtomicU32::new(DEFAULT_MAX_CHANNELS),
            active_slots: AtomicU32::new(0),
            coalescing_ms: AtomicU32::new(DEFAULT_COALESCING_MS),
            counters: Counters::default(),
            ping_seq: AtomicU64::new(1),
            channels: Mutex::new(Vec::new()),
            websockets: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ctrlchan-reactor".into())
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
        Ok(Arc::new(Runtime { shared, thread: Mutex::new(Some(thread)) }))
    }

    pub fn shared(&self) -> &Arc<RtShared> {
        &self.shared
    }

    /// Next queued event (events of channels/websockets without a handler).
    pub fn next_event(&self, timeout: Duration) -> Result<Event> {
        ensure_may_block("ctrlchan_runtime_next_event")?;
        match self.shared.queue.pop(timeout) {
            Ok(ev) => Ok(ev),
            Err(PopError::Timeout) => Err(Error::new(ResultCode::Timeout, "no event within the timeout")),
            Err(PopError::Closed) => Err(Error::closed("the runtime is shut down")),
        }
    }

    /// An fd that is readable while events are queued.
    pub fn event_fd(&self) -> RawFd {
        self.shared.queue.fd()
    }

    pub fn queued_events(&self) -> usize {
        self.shared.queue.len()
    }

    pub fn set_max_channels(&self, max: u32) -> Result<()> {
        if max == 0 {
            return Err(Error::invalid_argument("max_channels must be at least 1"));
        }
        self.shared.max_channels.store(max, Ordering::Release);
        Ok(())
    }

    pub fn max_channels(&self) -> u32 {
        self.shared.max_channels.load(Ordering::Acquire)
    }

    pub fn coalescing_window_ms(&self) -> u32 {
        self.shared.coalescing_ms.load(Ordering::Acquire)
    }

    pub fn set_coalescing_window(&self, ms: u32) -> Result<()> {
        if ms > 3_600_000 {
            return Err(Error::invalid_argument("coalescing window must be at most 3 600 000 ms"));
        }
        self.shared.coalescing_ms.store(ms, Ordering::Release);
        Ok(())
    }

    pub fn stats(&self) -> RuntimeStats {
        let c = &self.shared.counters;
        RuntimeStats {
            wakeups: c.wakeups.load(Ordering::Relaxed),
            keepalives_sent: c.keepalives_sent.load(Ordering::Relaxed),
            keepalives_acked: c.keepalives_acked.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            connections_open: c.connections_open.load(Ordering::Relaxed),
            channels_active: self.shared.active_slots.load(Ordering::Relaxed) as u64,
        }
    }

    /// Closes every connection, stops the reactor and joins it. From inside a callback the
    /// shutdown is started but not joined, and `INVALID_STATE` is returned.
    pub fn shutdown(&self) -> Result<()> {
        let first = {
            let _cmds = self.shared.cmds.lock();
            !self.shared.shutting_down.swap(true, Ordering::AcqRel)
        };
        if first {
            let _ = self.shared.send(Cmd::Shutdown);
        }
        if on_runtime_thread() {
            return Err(Error::invalid_state(
                "runtime shutdown requested from inside a callback: started, but not joined",
            ));
        }
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        // The reactor already did this on its way out; again in case it never started.
        self.shared.release_all();
        Ok(())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
