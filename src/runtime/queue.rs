//! The runtime's event queue: a FIFO with a blocking pop and an eventfd that is readable
//! exactly while events are queued, so any poll/epoll/select loop can integrate.
//!
//! Bounded without loss: when it holds `limit` events the reactor stops reading the sockets
//! whose events would come here (TCP back-pressure) and marks the queue "paused"; the pop that
//! brings it down to half the limit wakes the reactor to read them again.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::state::Event;

/// Default queue limit, in events.
pub const DEFAULT_QUEUE_LIMIT: u32 = 65_536;

pub struct EventQueue {
    q: Mutex<Inner>,
    cond: Condvar,
    efd: RawFd,
    len: AtomicUsize,
    limit: AtomicU32,
    /// Some socket was left unread because the queue was full.
    paused: AtomicBool,
    /// Set by the pop that drained below half while paused; taken by the reactor.
    resume: AtomicBool,
    wake: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

struct Inner {
    events: VecDeque<Event>,
    closed: bool,
}

/// Why `pop` returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum PopError {
    Timeout,
    Closed,
}

impl EventQueue {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall with constant flags.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EventQueue {
            q: Mutex::new(Inner { events: VecDeque::new(), closed: false }),
            cond: Condvar::new(),
            efd,
            len: AtomicUsize::new(0),
            limit: AtomicU32::new(DEFAULT_QUEUE_LIMIT),
            paused: AtomicBool::new(false),
            resume: AtomicBool::new(false),
            wake: Mutex::new(None),
        })
    }

    /// How the queue wakes the reactor when it drained below half after a pause.
    pub fn set_waker(&self, f: Box<dyn Fn() + Send + Sync>) {
        *self.wake.lock() = Some(f);
    }

    pub fn set_limit(&self, n: u32) {
        self.limit.store(n.max(1), Ordering::Release);
        self.check_resume();
    }

    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    /// At or above the limit: the reactor must not read sockets that feed the queue.
    pub fn is_full(&self) -> bool {
        self.len.load(Ordering::Acquire) >= self.limit() as usize
    }

    /// The reactor left a socket unread because the queue is full.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
        // Drained meanwhile? Then resume at once.
        self.check_resume();
    }

    /// True once after the queue drained below half following a pause.
    pub fn take_resume(&self) -> bool {
        self.resume.swap(false, Ordering::AcqRel)
    }

    fn check_resume(&self) {
        if self.paused.load(Ordering::Acquire)
            && self.len.load(Ordering::Acquire) <= (self.limit() as usize) / 2
            && self.paused.swap(false, Ordering::AcqRel)
        {
            self.resume.store(true, Ordering::Release);
            if let Some(w) = self.wake.lock().as_ref() {
                w();
            }
        }
    }

    pub fn fd(&self) -> RawFd {
        self.efd
    }

    pub fn push(&self, ev: Event) {
        let mut q = self.q.lock();
        if q.closed {
            return;
        }
        if q.events.is_empty() {
            self.signal();
        }
        q.events.push_back(ev);
        self.len.store(q.events.len(), Ordering::Release);
        drop(q);
        self.cond.notify_one();
    }

    /// Pops the oldest event, waiting up to `timeout`.
    pub fn pop(&self, timeout: Duration) -> Result<Event, PopError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut q = self.q.lock();
        loop {
            if let Some(ev) = q.events.pop_front() {
                if q.events.is_empty() {
                    self.drain();
                }
                self.len.store(q.events.len(), Ordering::Release);
                drop(q);
                self.check_resume();
                return Ok(ev);
            }
            if q.closed {
                return Err(PopError::Closed);
            }
            match deadline {
                Some(d) => {
                    if Instant::now() >= d || self.cond.wait_until(&mut q, d).timed_out() && q.events.is_empty() {
                        if q.closed {
                            return Err(PopError::Closed);
                        }
                        return Err(PopError::Timeout);
                    }
                }
                None => self.cond.wait(&mut q),
            }
        }
    }

    /// Takes the queued events of `ws` out (its handle was freed: nothing more for it). The
    /// caller drops them outside the lock.
    pub fn remove_events_of(&self, ws: &crate::state::WsShared) -> Vec<Event> {
        if self.len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut q = self.q.lock();
        let (gone, kept): (VecDeque<Event>, VecDeque<Event>) =
            std::mem::take(&mut q.events).into_iter().partition(|e| e.is_from(ws));
        q.events = kept;
        self.len.store(q.events.len(), Ordering::Release);
        if q.events.is_empty() {
            self.drain();
        }
        drop(q);
        self.check_resume();
        gone.into_iter().collect()
    }

    pub fn len(&self) -> usize {
        self.q.lock().events.len()
    }

    /// Drops queued events and wakes every waiter; later pushes are ignored.
    pub fn close(&self) -> VecDeque<Event> {
        let mut q = self.q.lock();
        q.closed = true;
        let rest = std::mem::take(&mut q.events);
        self.len.store(0, Ordering::Release);
        *self.wake.lock() = None;
        self.signal(); // readable forever after close so that pollers notice
        drop(q);
        self.cond.notify_all();
        rest
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.efd, &one as *const u64 as *const libc::c_void, 8) };
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.efd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        // SAFETY: we own the fd and close it once.
        unsafe { libc::close(self.efd) };
    }
}
