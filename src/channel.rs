//! `ControlChannelTrigger`: a channel id, a keep-alive schedule and a transport.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::event::{Event, Handler};
use crate::keepalive::KeepAlive;
use crate::runtime::{Cmd, RtShared, Runtime};
use crate::types::{EventKind, KeepAliveMode, ResourceType, Status, WebSocketState};
use crate::websocket::WebSocket;

pub const MIN_INTERVAL_MS: u32 = 100;
pub const MAX_INTERVAL_MS: u32 = 86_400_000;
pub const MAX_ID_LEN: usize = 64;

/// A control channel (Windows `ControlChannelTrigger`).
pub struct Channel {
    pub(crate) rt: Arc<RtShared>,
    id: CString,
    server_interval_ms: AtomicU32,
    network_interval_ms: AtomicU32,
    resource_type: ResourceType,
    keepalive: Mutex<Option<Arc<KeepAlive>>>,
    default_keepalive: Arc<KeepAlive>,
    pub(crate) handler: Mutex<Option<Handler>>,
    transport: Mutex<Option<Arc<WebSocket>>>,
    slot: Mutex<Option<Status>>,
    closed: AtomicBool,
}

impl Channel {
    pub fn new(rt: &Runtime, id: &str, server_interval_ms: u32, resource_type: ResourceType) -> Result<Arc<Channel>> {
        if id.is_empty() {
            return Err(Error::invalid_argument("channel id must not be empty"));
        }
        if id.chars().count() > MAX_ID_LEN {
            return Err(Error::invalid_argument(format!("channel id is longer than {MAX_ID_LEN} characters")));
        }
        if id.contains('\0') {
            return Err(Error::invalid_argument("channel id must not contain NUL"));
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&server_interval_ms) {
            return Err(Error::invalid_argument(format!(
                "server keep-alive interval {server_interval_ms} ms is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms"
            )));
        }
        let shared = rt.shared();
        if shared.is_shutting_down() {
            return Err(Error::invalid_state("the runtime is shut down"));
        }
        let id = CString::new(id).map_err(|_| Error::invalid_argument("channel id must not contain NUL"))?;
        let ch = Arc::new(Channel {
            rt: shared.clone(),
            id,
            server_interval_ms: AtomicU32::new(server_interval_ms),
            network_interval_ms: AtomicU32::new(server_interval_ms),
            resource_type,
            keepalive: Mutex::new(None),
            default_keepalive: KeepAlive::new(),
            handler: Mutex::new(None),
            transport: Mutex::new(None),
            slot: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        shared.track_channel(&ch);
        Ok(ch)
    }

    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or("")
    }
    pub fn id_cstr(&self) -> &CStr {
        &self.id
    }
    pub fn server_keepalive_interval_ms(&self) -> u32 {
        self.server_interval_ms.load(Ordering::Acquire)
    }

    /// Changes the server keep-alive interval (Windows `ServerKeepAliveIntervalInMinutes` is
    /// writable too). The network interval restarts from the new value; keep-alives are
    /// rescheduled at once.
    pub fn set_server_keepalive_interval_ms(&self, ms: u32) -> Result<()> {
        self.ensure_open()?;
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
            return Err(Error::invalid_argument(format!(
                "server keep-alive interval {ms} ms is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms"
            )));
        }
        self.server_interval_ms.store(ms, Ordering::Release);
        self.network_interval_ms.store(ms, Ordering::Release);
        self.reschedule();
        Ok(())
    }

    fn reschedule(&self) {
        if let Some(ws) = self.transport() {
            if ws.state() == WebSocketState::Open {
                let _ = self.rt.send(Cmd::Reschedule(ws));
            }
        }
    }
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }
    /// min(server interval, network interval): the interval keep-alives follow.
    pub fn current_keepalive_interval_ms(&self) -> u32 {
        self.network_interval_ms.load(Ordering::Acquire).min(self.server_interval_ms.load(Ordering::Acquire))
    }
    pub(crate) fn effective_interval(&self) -> Duration {
        Duration::from_millis(self.current_keepalive_interval_ms() as u64)
    }
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::invalid_state("the channel is closed"));
        }
        Ok(())
    }

    /// The keep-alive task in force: the one set, or a default PING task.
    pub fn keepalive_task(&self) -> Arc<KeepAlive> {
        self.keepalive.lock().clone().unwrap_or_else(|| self.default_keepalive.clone())
    }

    pub fn set_keepalive(&self, task: Option<Arc<KeepAlive>>) -> Result<()> {
        self.ensure_open()?;
        *self.keepalive.lock() = task;
        Ok(())
    }

    pub fn set_handler(&self, h: Option<Handler>) -> Result<()> {
        if h.is_some() {
            self.ensure_open()?;
            if self.rt.is_shutting_down() {
                return Err(Error::invalid_state("the runtime is shut down"));
            }
        }
        let old = std::mem::replace(&mut *self.handler.lock(), h);
        drop(old);
        Ok(())
    }

    pub fn transport(&self) -> Option<Arc<WebSocket>> {
        self.transport.lock().clone()
    }

    /// Binds `ws` as this channel's transport. Call before connecting it; after a transport
    /// closed or was lost, call again with a new websocket (a RESET event is delivered).
    pub fn using_transport(self: &Arc<Self>, ws: &Arc<WebSocket>) -> Result<()> {
        self.ensure_open()?;
        if !Arc::ptr_eq(&ws.rt, &self.rt) {
            return Err(Error::invalid_argument("the websocket belongs to another runtime"));
        }
        if ws.state() != WebSocketState::New {
            return Err(Error::invalid_state("using_transport must be called before the websocket connects"));
        }
        let mut t = self.transport.lock();
        let mut replaced = false;
        if let Some(old) = t.as_ref() {
            if Arc::ptr_eq(old, ws) {
                return Ok(());
            }
            match old.state() {
                WebSocketState::Closed => replaced = true,
                WebSocketState::New => {}
                _ => return Err(Error::invalid_state("the channel's current transport is still active")),
            }
        }
        {
            let mut bound = ws.channel.lock();
            if let Some(other) = bound.upgrade() {
                if !Arc::ptr_eq(&other, self) {
                    return Err(Error::invalid_state("the websocket is already the transport of another channel"));
                }
            }
            *bound = Arc::downgrade(self);
        }
        if let Some(old) = t.replace(ws.clone()) {
            let mut b = old.channel.lock();
            if b.upgrade().is_some_and(|c| Arc::ptr_eq(&c, self)) {
                *b = std::sync::Weak::new();
            }
        }
        drop(t);
        self.release_slot();
        if replaced {
            let ev = Event::new(EventKind::Reset, Some(ws.clone()), Some(self.clone()))
                .with_reason("the channel is using a new transport");
            // Callbacks only ever run on the runtime thread, never inside the caller's call.
            let _ = self.rt.send(Cmd::Deliver(Box::new(ev)));
        }
        Ok(())
    }

    /// Registers the channel for keep-alives and push delivery; call after connect.
    pub fn wait_for_push_enabled(self: &Arc<Self>) -> Result<Status> {
        if self.rt.is_shutting_down() {
            return Ok(Status::ServiceUnavailable);
        }
        self.ensure_open()?;
        let ws = match self.transport() {
            Some(ws) => ws,
            None => return Ok(Status::TransportDisconnected),
        };
        let mut slot = self.slot.lock();
        // close() flips `closed` under this lock: a channel closed meanwhile gets no slot.
        self.ensure_open()?;
        if let Some(s) = *slot {
            if ws.state() == WebSocketState::Open {
                return Ok(s);
            }
        }
        let fd = {
            let g = ws.inner.lock();
            if g.state != WebSocketState::Open {
                return Ok(Status::TransportDisconnected);
            }
            g.fd
        };
        if slot.is_none() {
            let max = self.rt.max_channels.load(Ordering::Acquire);
            let taken = self.rt.active_slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                if n >= max {
                    None
                } else {
                    Some(n + 1)
                }
            });
            if taken.is_err() {
                return Ok(Status::PolicyError);
            }
        }
        let status = if self.resource_type == ResourceType::RequestHardwareSlot {
            let ka = self.keepalive_task();
            // The fd is only valid while the websocket lock is held (the reactor clears it
            // under the same lock before closing the socket).
            let mut g = ws.inner.lock();
            let _ = fd;
            match arm_kernel_keepalive(g.fd, self.current_keepalive_interval_ms(), ka.pong_timeout_ms()) {
                Ok(()) => {
                    g.hardware_keepalive = true;
                    Status::HardwareSlotAllocated
                }
                Err(_) => Status::SoftwareSlotAllocated,
            }
        } else {
            Status::SoftwareSlotAllocated
        };
        // Still under the slot lock, so a concurrent close() queues its DisableKeepalive after this.
        if let Err(e) = self.rt.send(Cmd::EnableKeepalive(ws, self.clone())) {
            drop(slot);
            let _ = self.rt.active_slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            if self.rt.is_shutting_down() {
                return Ok(Status::ServiceUnavailable);
            }
            return Err(e);
        }
        *slot = Some(status);
        Ok(status)
    }

    pub(crate) fn release_slot(&self) {
        if self.slot.lock().take().is_some() {
            let _ = self.rt.active_slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    pub fn slot_status(&self) -> Option<Status> {
        *self.slot.lock()
    }

    /// Lowers the network keep-alive interval (halves it, not below 100 ms).
    pub fn decrease_network_keepalive_interval(&self) -> Result<()> {
        self.ensure_open()?;
        let _ = self
            .network_interval_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some((v / 2).max(MIN_INTERVAL_MS)));
        self.reschedule();
        Ok(())
    }

    pub fn flush_transport(&self, timeout: Duration) -> Result<()> {
        self.ensure_open()?;
        match self.transport() {
            Some(ws) => ws.flush(timeout),
            None => Err(Error::invalid_state("the channel has no transport")),
        }
    }

    pub(crate) fn run_keepalive_now(&self, mode: KeepAliveMode, pong_timeout_ms: u32) -> Result<()> {
        self.ensure_open()?;
        let ws = self.transport().ok_or_else(|| Error::invalid_state("the channel has no transport"))?;
        match ws.state() {
            WebSocketState::Open => {}
            WebSocketState::Closing | WebSocketState::Closed => return Err(Error::closed("the transport is closed")),
            _ => return Err(Error::invalid_state("the transport is not connected")),
        }
        self.rt.send(Cmd::RunKeepalive(ws, mode, pong_timeout_ms))
    }

    /// Stops keep-alives and releases the slot. The transport stays open (the app owns it).
    pub fn close(&self) -> Result<()> {
        {
            let mut slot = self.slot.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            if slot.take().is_some() {
                let _ = self.rt.active_slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
        if let Some(ws) = self.transport.lock().take() {
            {
                let mut b = ws.channel.lock();
                *b = std::sync::Weak::new();
            }
            let _ = self.rt.send(Cmd::DisableKeepalive(ws));
        }
        let h = self.handler.lock().take();
        drop(h);
        Ok(())
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if self.slot.get_mut().take().is_some() {
            let _ = self.rt.active_slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// HARDWARE slot: kernel keep-alive and TCP_USER_TIMEOUT so dead peers are found even while the
/// process is frozen and NAT mappings stay fresh.
fn arm_kernel_keepalive(fd: i32, interval_ms: u32, pong_timeout_ms: u32) -> std::io::Result<()> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    let idle = (interval_ms.div_ceil(1000)).clamp(1, 32_767) as libc::c_int;
    let intvl = (pong_timeout_ms.div_ceil(1000)).clamp(1, 32_767) as libc::c_int;
    let cnt: libc::c_int = 3;
    let user_timeout = interval_ms.saturating_add(pong_timeout_ms.saturating_mul(3)) as libc::c_uint;
    let one: libc::c_int = 1;
    set_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, &one)?;
    set_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, &idle)?;
    set_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, &intvl)?;
    set_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &cnt)?;
    set_opt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, &user_timeout)?;
    Ok(())
}

fn set_opt<T>(fd: i32, level: libc::c_int, name: libc::c_int, v: &T) -> std::io::Result<()> {
    // SAFETY: `v` points to a live value of the size we pass; fd validity is checked by the kernel.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads back the kernel keep-alive settings of a socket (for tests and diagnostics).
pub fn kernel_keepalive_settings(fd: i32) -> Option<(bool, i32, i32, i32, u32)> {
    fn get<T: Default>(fd: i32, level: libc::c_int, name: libc::c_int) -> Option<T> {
        let mut v = T::default();
        let mut len = std::mem::size_of::<T>() as libc::socklen_t;
        // SAFETY: `v` is a live, writable value of `len` bytes.
        let r = unsafe { libc::getsockopt(fd, level, name, &mut v as *mut T as *mut libc::c_void, &mut len) };
        (r == 0).then_some(v)
    }
    Some((
        get::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0,
        get::<libc::c_int>(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)?,
        get::<libc::c_int>(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL)?,
        get::<libc::c_int>(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT)?,
        get::<libc::c_uint>(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)?,
    ))
}
