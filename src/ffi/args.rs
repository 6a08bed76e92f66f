//! Checks for the non-handle arguments of exports: strings, byte buffers, out-pointers and enums.
//! Each check turns a bad value into `INVALID_ARGUMENT` with a message naming the argument.

use std::ffi::{c_char, CStr};

use crate::{Error, KeepAliveMode, MessageType, ResourceType, WebSocketKind};

/// Borrows a required NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} must not be NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string (documented in the header).
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))
}

/// Borrows an optional string argument (NULL = None).
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    unsafe { str_arg(p, what) }.map(Some)
}

/// Borrows a byte buffer argument; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes_arg<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!("{what} length {len} is too large")));
    }
    // SAFETY: the caller promises `len` readable bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Checks an out-pointer.
pub(crate) fn out_arg<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    if p.is_null() {
        return Err(Error::invalid_argument(format!("{what} must not be NULL")));
    }
    // SAFETY: non-NULL, and the caller promises it points to writable storage for a T.
    Ok(unsafe { &mut *p })
}

/// A getter's whole body: looks up the live `handle` as a `T`, and writes what `pick` reads from
/// it to `*out` (`INVALID_HANDLE` for a dead or wrong-type handle, `INVALID_ARGUMENT` for a NULL
/// `out`). A pointer written by `pick` must point into the object, which the registry keeps alive.
pub(crate) fn get_into<T: super::handles::Castable, V>(
    handle: *const T::Handle,
    out: *mut V,
    pick: impl FnOnce(&T) -> V,
) -> Result<(), Error> {
    let object = super::handles::get::<T>(handle)?;
    *out_arg(out, "out")? = pick(&object);
    Ok(())
}

/// Enum arguments arrive as raw integers so that an out-of-range value from C is reported as
/// `INVALID_ARGUMENT` instead of being undefined behaviour. The newtype is invisible to cbindgen,
/// which prints it with the enum's C name (the rename in cbindgen.toml); `get` decodes it with
/// the enum's `TryFrom<u32>` (see `c_enum!`).
macro_rules! enum_arg {
    ($Arg:ident => $Enum:ty, $c_name:literal) => {
        #[doc = concat!("A `", $c_name, "` argument as the raw value C passed.")]
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug)]
        pub struct $Arg(pub u32);

        impl $Arg {
            pub(crate) fn get(self) -> Result<$Enum, Error> {
                <$Enum>::try_from(self.0)
                    .map_err(|e| Error::invalid_argument(format!("{} is not a valid {}", e.value, $c_name)))
            }
        }
    };
}

enum_arg!(WebSocketKindArg => WebSocketKind, "ctrlchan_websocket_kind");
enum_arg!(MessageTypeArg => MessageType, "ctrlchan_message_type");
enum_arg!(ResourceTypeArg => ResourceType, "ctrlchan_resource_type");
enum_arg!(KeepAliveModeArg => KeepAliveMode, "ctrlchan_keepalive_mode");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResultCode;

    #[test]
    fn enum_args_decode_known_values_and_reject_others() {
        assert_eq!(WebSocketKindArg(1).get(), Ok(WebSocketKind::Stream));
        assert_eq!(MessageTypeArg(0).get(), Ok(MessageType::Binary));
        assert_eq!(ResourceTypeArg(1).get(), Ok(ResourceType::RequestHardwareSlot));
        assert_eq!(KeepAliveModeArg(1).get(), Ok(KeepAliveMode::UnsolicitedPong));
        let err = KeepAliveModeArg(2).get().expect_err("2 is no keep-alive mode");
        assert_eq!(err.code, ResultCode::InvalidArgument);
        assert_eq!(err.message, "2 is not a valid ctrlchan_keepalive_mode");
        assert!(WebSocketKindArg(u32::MAX).get().is_err());
    }
}
