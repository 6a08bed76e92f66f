//! Socket options the runtime sets on behalf of channels (HARDWARE slot).

/// HARDWARE slot: kernel keep-alive and TCP_USER_TIMEOUT so dead peers are found even while the
/// process is frozen and NAT mappings stay fresh.
pub(crate) fn arm_kernel_keepalive(fd: i32, interval_ms: u32, pong_timeout_ms: u32) -> std::io::Result<()> {
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
