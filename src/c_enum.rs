//! `c_enum!`: everything a C enum needs besides its definition, derived from that one definition.
//!
//! Each enum of the C ABI is written once, as a plain `#[repr(u32)]` enum with an explicit value
//! per variant, so that cbindgen sees it and prints the C enum. `#[macro_rules_derive(c_enum!)]`
//! on it adds, from the same tokens:
//! - `TryFrom<u32>`: a value that is no variant is an [`UnknownValue`] error, never undefined
//!   behaviour (the C ABI takes enum arguments as raw `u32` and maps this to `INVALID_ARGUMENT`),
//!   and `From<Enum> for u32`;
//! - `VARIANTS`: every variant in declaration order;
//! - `name()` / `name_cstr()`: the stable upper-case name, the variant in SCREAMING_SNAKE_CASE
//!   (`InvalidArgument` -> `"INVALID_ARGUMENT"`), which is how cbindgen spells the C enumerator
//!   after its `CTRLCHAN_<ENUM>_` prefix (tests/header.rs checks this against the header).

use std::fmt;

/// A `u32` that is the value of no variant of the enum `type_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownValue {
    /// The Rust name of the enum, such as `"WebSocketKind"`.
    pub type_name: &'static str,
    pub value: u32,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a valid {}", self.value, self.type_name)
    }
}

impl std::error::Error for UnknownValue {}

/// Length of the CamelCase identifier `ident` once written in SCREAMING_SNAKE_CASE: one `_`
/// before every upper-case letter but the first.
pub(crate) const fn screaming_snake_len(ident: &str) -> usize {
    let b = ident.as_bytes();
    let mut len = b.len();
    let mut i = 1;
    while i < b.len() {
        if b[i].is_ascii_uppercase() {
            len += 1;
        }
        i += 1;
    }
    len
}

/// The CamelCase identifier `ident` in SCREAMING_SNAKE_CASE followed by a NUL byte.
/// `N` must be `screaming_snake_len(ident) + 1`; evaluated at compile time by `c_enum!`.
pub(crate) const fn screaming_snake_nul<const N: usize>(ident: &str) -> [u8; N] {
    let b = ident.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    let mut j = 0;
    while i < b.len() {
        if i > 0 && b[i].is_ascii_uppercase() {
            out[j] = b'_';
            j += 1;
        }
        out[j] = b[i].to_ascii_uppercase();
        j += 1;
        i += 1;
    }
    out
}

/// See the module documentation. Expects `= <literal>` on every variant.
macro_rules! c_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Name:ident {
            $(
                $(#[$variant_meta:meta])*
                $Variant:ident = $value:literal
            ),* $(,)?
        }
    ) => {
        impl $Name {
            /// Every variant, in declaration order.
            pub const VARIANTS: &'static [$Name] = &[$($Name::$Variant),*];

            /// Stable upper-case name of the variant, such as `"INVALID_ARGUMENT"`.
            pub fn name(self) -> &'static str {
                // The names are ASCII by construction, so this never yields "".
                self.name_cstr().to_str().unwrap_or("")
            }

            /// [`Self::name`] as a NUL-terminated static string (for the C ABI).
            pub fn name_cstr(self) -> &'static ::std::ffi::CStr {
                match self {
                    $($Name::$Variant => {
                        const LEN: usize = $crate::c_enum::screaming_snake_len(stringify!($Variant)) + 1;
                        const BYTES: [u8; LEN] = $crate::c_enum::screaming_snake_nul::<LEN>(stringify!($Variant));
                        const NAME: &::std::ffi::CStr = match ::std::ffi::CStr::from_bytes_with_nul(&BYTES) {
                            Ok(name) => name,
                            Err(_) => panic!("an identifier has no NUL byte"),
                        };
                        NAME
                    })*
                }
            }
        }

        impl ::std::convert::From<$Name> for u32 {
            fn from(v: $Name) -> u32 {
                v as u32
            }
        }

        impl ::std::convert::TryFrom<u32> for $Name {
            type Error = $crate::c_enum::UnknownValue;

            fn try_from(value: u32) -> ::std::result::Result<Self, $crate::c_enum::UnknownValue> {
                match value {
                    $($value => Ok($Name::$Variant),)*
                    _ => Err($crate::c_enum::UnknownValue { type_name: stringify!($Name), value }),
                }
            }
        }
    };
}

pub(crate) use c_enum;

#[cfg(test)]
mod tests {
    use crate::error::ResultCode;
    use crate::types::{EventKind, KeepAliveMode, MessageType, ResourceType, Status, WebSocketKind, WebSocketState};

    /// Every variant converts to its value and back, and the value after the last is rejected.
    fn round_trips<T>(variants: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + TryFrom<u32, Error = super::UnknownValue> + Into<u32>,
    {
        for &v in variants {
            assert_eq!(T::try_from(v.into()), Ok(v));
        }
        let past = variants.len() as u32;
        assert!(variants.iter().all(|&v| v.into() < past), "values are 0..n");
        let err = T::try_from(past).expect_err("one past the last value is unknown");
        assert_eq!(err.value, past);
        assert!(T::try_from(u32::MAX).is_err());
    }

    #[test]
    fn every_enum_round_trips_through_u32() {
        round_trips(ResultCode::VARIANTS);
        round_trips(WebSocketKind::VARIANTS);
        round_trips(MessageType::VARIANTS);
        round_trips(ResourceType::VARIANTS);
        round_trips(Status::VARIANTS);
        round_trips(KeepAliveMode::VARIANTS);
        round_trips(EventKind::VARIANTS);
        round_trips(WebSocketState::VARIANTS);
    }

    #[test]
    fn names_are_screaming_snake_case() {
        assert_eq!(ResultCode::Ok.name(), "OK");
        assert_eq!(ResultCode::InvalidArgument.name(), "INVALID_ARGUMENT");
        assert_eq!(ResultCode::Io.name(), "IO");
        assert_eq!(ResultCode::MessageTooLarge.name(), "MESSAGE_TOO_LARGE");
        assert_eq!(MessageType::Utf8.name(), "UTF8");
        assert_eq!(ResourceType::RequestHardwareSlot.name(), "REQUEST_HARDWARE_SLOT");
        assert_eq!(EventKind::Keepalive.name(), "KEEPALIVE");
        assert_eq!(KeepAliveMode::UnsolicitedPong.name(), "UNSOLICITED_PONG");
        assert_eq!(Status::HardwareSlotRequested.name_cstr(), c"HARDWARE_SLOT_REQUESTED");
        assert_eq!(WebSocketState::Closing.name_cstr().to_bytes(), WebSocketState::Closing.name().as_bytes());
    }

    #[test]
    fn unknown_values_say_what_they_are() {
        let err = WebSocketKind::try_from(7).expect_err("7 is no websocket kind");
        assert_eq!(err, super::UnknownValue { type_name: "WebSocketKind", value: 7 });
        assert_eq!(err.to_string(), "7 is not a valid WebSocketKind");
    }
}
