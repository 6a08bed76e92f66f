//! What makes every channel probe at once: a network change (Linux rtnetlink: address, link and
//! route groups, read on the reactor thread) or a resume from suspend (CLOCK_BOOTTIME advanced
//! more than CLOCK_MONOTONIC: the difference is time the machine slept).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// A non-blocking rtnetlink socket subscribed to link, address and route changes.
pub(crate) struct NetWatch {
    fd: RawFd,
}

const GROUPS: u32 = (libc::RTMGRP_LINK
    | libc::RTMGRP_IPV4_IFADDR
    | libc::RTMGRP_IPV6_IFADDR
    | libc::RTMGRP_IPV4_ROUTE
    | libc::RTMGRP_IPV6_ROUTE) as u32;

impl NetWatch {
    /// Opens the socket; `None` where rtnetlink is unavailable (the runtime then only watches the
    /// clock).
    pub fn open() -> Option<NetWatch> {
        // SAFETY: plain syscalls; the address struct is zeroed and fully initialised below.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return None;
            }
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            addr.nl_groups = GROUPS;
            let r = libc::bind(
                fd,
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            if r != 0 {
                libc::close(fd);
                return None;
            }
            Some(NetWatch { fd })
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Reads every pending notification; true if one of them is a link, address or route change.
    /// Bounded: at most 256 datagrams per call (the rest wait for the next readable event).
    pub fn drain(&self) -> bool {
        let mut changed = false;
        let mut buf = [0u8; 8192];
        for _ in 0..256 {
            // SAFETY: reads into a live buffer of the given length from our own socket.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // ENOBUFS: we missed notifications; something changed.
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    changed = true;
                    continue;
                }
                break;
            }
            if n == 0 {
                break;
            }
            changed |= is_change(&buf[..n as usize]);
        }
        changed
    }
}

impl Drop for NetWatch {
    fn drop(&mut self) {
        // SAFETY: we own the fd and close it once.
        unsafe { libc::close(self.fd) };
    }
}

/// Whether a netlink datagram holds a link, address or route notification.
pub(crate) fn is_change(mut data: &[u8]) -> bool {
    // struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if matches!(
            kind,
            libc::RTM_NEWLINK
                | libc::RTM_DELLINK
                | libc::RTM_NEWADDR
                | libc::RTM_DELADDR
                | libc::RTM_NEWROUTE
                | libc::RTM_DELROUTE
        ) {
            return true;
        }
        if len < 16 || len > data.len() {
            break;
        }
        let step = (len + 3) & !3;
        data = data.get(step..).unwrap_or(&[]);
    }
    false
}

/// CLOCK_BOOTTIME - CLOCK_MONOTONIC: grows exactly by the time the machine was suspended.
pub(crate) fn sleep_offset() -> Duration {
    fn read(clock: libc::clockid_t) -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: writes into a live timespec.
        let r = unsafe { libc::clock_gettime(clock, &mut ts) };
        if r != 0 {
            return Duration::ZERO;
        }
        Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
    }
    read(libc::CLOCK_BOOTTIME).saturating_sub(read(libc::CLOCK_MONOTONIC))
}

/// A jump of the sleep offset this large means the machine slept (smaller ones are noise).
pub(crate) const SUSPEND_THRESHOLD: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, payload: usize) -> Vec<u8> {
        let len = 16 + payload;
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0u8; 10]);
        v.extend(std::iter::repeat_n(0u8, payload));
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn recognises_change_messages_in_a_batch() {
        let mut batch = msg(libc::NLMSG_NOOP as u16, 5);
        assert!(!is_change(&batch));
        batch.extend(msg(libc::RTM_DELADDR, 8));
        assert!(is_change(&batch));
        assert!(!is_change(&[1, 2, 3]));
        let mut bogus = msg(libc::NLMSG_NOOP as u16, 0);
        bogus[0] = 0; // zero length must not loop
        assert!(!is_change(&bogus));
    }

    #[test]
    fn sleep_offset_is_steady_while_awake() {
        let a = sleep_offset();
        std::thread::sleep(Duration::from_millis(20));
        let b = sleep_offset();
        assert!(b.saturating_sub(a) < SUSPEND_THRESHOLD);
    }
}
