//! The runtime's event queue: a FIFO with a blocking pop and an eventfd that is readable
//! exactly while events are queued, so any poll/epoll/select loop can integrate.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::state::Event;

pub struct EventQueue {
    q: Mutex<Inner>,
    cond: Condvar,
    efd: RawFd,
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
        Ok(EventQueue { q: Mutex::new(Inner { events: VecDeque::new(), closed: false }), cond: Condvar::new(), efd })
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

    pub fn len(&self) -> usize {
        self.q.lock().events.len()
    }

    /// Drops queued events and wakes every waiter; later pushes are ignored.
    pub fn close(&self) -> VecDeque<Event> {
        let mut q = self.q.lock();
        q.closed = true;
        let rest = std::mem::take(&mut q.events);
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
