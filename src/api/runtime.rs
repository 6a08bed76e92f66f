//! `Runtime`: the handle of one reactor thread and everything it hosts.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, Result, ResultCode};
use crate::runtime::{ensure_may_block, on_runtime_thread, PopError, RtShared};
use crate::state::Event;
use crate::types::RuntimeStats;

/// A runtime: create one per process (or per subsystem); it hosts any number of channels.
pub struct Runtime {
    shared: Arc<RtShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runtime {
    pub fn new() -> Result<Arc<Runtime>> {
        let (shared, thread) = crate::runtime::start()?;
        Ok(Arc::new(Runtime { shared, thread: Mutex::new(Some(thread)) }))
    }

    pub(crate) fn shared(&self) -> &Arc<RtShared> {
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
        self.shared.slots.max.store(max, Ordering::Release);
        Ok(())
    }

    pub fn max_channels(&self) -> u32 {
        self.shared.slots.max.load(Ordering::Acquire)
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

    pub fn pong_settle_ms(&self) -> u32 {
        self.shared.pong_settle_ms.load(Ordering::Acquire)
    }

    /// The longest single wait after a burst of keep-alive pings (default 50; 0 disables; at
    /// most 1000): the runtime thread sleeps, then reads what arrived in one pass, and repeats
    /// while most of the burst's pongs are out, so that they cost a few wake-ups instead of one
    /// per arrival (`protocol::settle`). Data and commands wait at most `ms` meanwhile.
    pub fn set_pong_settle(&self, ms: u32) -> Result<()> {
        if ms > crate::runtime::MAX_PONG_SETTLE_MS {
            return Err(Error::invalid_argument("pong settle time must be at most 1000 ms"));
        }
        self.shared.pong_settle_ms.store(ms, Ordering::Release);
        Ok(())
    }

    /// Bounds the runtime queue (default 65 536 events). When full, the runtime stops reading
    /// the sockets whose events would go there until the app drained it below half.
    pub fn set_event_queue_limit(&self, max_events: u32) -> Result<()> {
        if max_events == 0 {
            return Err(Error::invalid_argument("the event queue limit must be at least 1"));
        }
        self.shared.queue.set_limit(max_events);
        Ok(())
    }

    pub fn event_queue_limit(&self) -> u32 {
        self.shared.queue.limit()
    }

    /// For tests: behaves as if the machine had just been suspended for `ms` (the resume probe
    /// runs, reason LOW_POWER_EXIT).
    pub fn simulate_suspend(&self, ms: u32) -> Result<()> {
        self.shared.injected_sleep_ms.fetch_add(ms as u64, Ordering::AcqRel);
        self.shared.send(crate::runtime::Cmd::CheckClock)
    }

    /// Names the file where learned adaptive keep-alive intervals are kept across runs (None:
    /// in memory only) and loads it at once. A missing file is created on the first save; a
    /// malformed one is ignored with a warning ([`Runtime::adaptive_warnings`]) and replaced on
    /// the next save. Saved off the runtime thread at most every 10 s, and at shutdown.
    pub fn set_state_file(&self, path: Option<&std::path::Path>) -> Result<()> {
        self.shared.adaptive.set_state_file(path.filter(|p| !p.as_os_str().is_empty()).map(|p| p.to_path_buf()));
        Ok(())
    }

    pub fn state_file(&self) -> Option<std::path::PathBuf> {
        self.shared.adaptive.state_file()
    }

    /// Warnings about the state file (malformed, unreadable, cannot save), oldest first; also
    /// written to stderr until the crate has a log facade.
    pub fn adaptive_warnings(&self) -> Vec<String> {
        self.shared.adaptive.warnings()
    }

    pub fn stats(&self) -> RuntimeStats {
        let c = &self.shared.counters;
        RuntimeStats {
            wakeups: c.wakeups.load(Ordering::Relaxed),
            keepalives_sent: c.keepalives_sent.load(Ordering::Relaxed),
            keepalives_acked: c.keepalives_acked.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            connections_open: c.connections_open.load(Ordering::Relaxed),
            channels_active: self.shared.slots.active.load(Ordering::Relaxed) as u64,
        }
    }

    /// Closes every connection, stops the reactor and joins it. From inside a callback the
    /// shutdown is started but not joined, and `INVALID_STATE` is returned.
    pub fn shutdown(&self) -> Result<()> {
        self.shared.begin_shutdown();
        if on_runtime_thread() {
            return Err(Error::invalid_state(
                "runtime shutdown requested from inside a callback: started, but not joined",
            ));
        }
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        // Learned intervals are kept: the last changes are saved now, synchronously.
        self.shared.adaptive.final_save();
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
