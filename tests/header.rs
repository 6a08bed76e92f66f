//! Fails when include/ctrlchan.h differs from what cbindgen generates from the sources now.
//! Regenerate with `CTRLCHAN_BLESS=1 cargo test --test header`.

use std::path::PathBuf;

#[test]
fn header_is_up_to_date() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = root.join("include").join("ctrlchan.h");
    if std::env::var_os("CTRLCHAN_BLESS").is_some() {
        std::fs::create_dir_all(root.join("include")).expect("create include/");
        std::fs::write(&path, &generated).expect("write include/ctrlchan.h");
        return;
    }
    let current = std::fs::read(&path).unwrap_or_default();
    assert!(
        current == generated,
        "include/ctrlchan.h is stale: run `CTRLCHAN_BLESS=1 cargo test --test header` and commit the result"
    );
}

const HEADER: &str = include_str!("../include/ctrlchan.h");

/// Every macro in the header is `CTRLCHAN_`-prefixed, so none collides with the user's names
/// (a new `pub const` in the core shows up here: exclude it in cbindgen.toml).
#[test]
fn every_macro_is_prefixed() {
    let defines: Vec<&str> = HEADER.lines().filter_map(|l| l.trim_start().strip_prefix("#define ")).collect();
    assert!(defines.len() > 1, "the header defines its include guard and the limits");
    for d in defines {
        assert!(d.starts_with("CTRLCHAN_"), "unprefixed macro in include/ctrlchan.h: #define {d}");
    }
}

/// The enumerators of `enum <c_name>` in the header, as (name after the prefix, value).
fn c_enumerators(c_name: &str, prefix: &str) -> Vec<(String, u32)> {
    let start = HEADER.find(&format!("enum {c_name}\n")).unwrap_or_else(|| panic!("enum {c_name} in the header"));
    let body = &HEADER[start..];
    let body = &body[..body.find("};").expect("the enum ends")];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .map(|l| {
            let (name, value) = l.trim_end_matches(',').split_once(" = ").expect("NAME = value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// Each Rust enum's `TryFrom<u32>` and `name()` (from `c_enum!`) agree with the C enum cbindgen
/// printed: the same values, and names spelled as the enumerators after their prefix.
#[test]
fn enum_names_and_values_match_the_header() {
    fn check<T: Copy + TryFrom<u32>>(c_name: &str, prefix: &str, variants: &[T], name: fn(T) -> &'static str) {
        let in_header = c_enumerators(c_name, prefix);
        assert_eq!(in_header.len(), variants.len(), "{c_name}: variant count");
        for (c_variant, value) in in_header {
            let v = T::try_from(value).unwrap_or_else(|_| panic!("{c_name}: {value} converts"));
            assert_eq!(name(v), c_variant, "{c_name} = {value}");
        }
    }
    use ctrlchan::*;
    check("ctrlchan_result", "CTRLCHAN_RESULT_", ResultCode::VARIANTS, ResultCode::name);
    check("ctrlchan_websocket_kind", "CTRLCHAN_WEBSOCKET_KIND_", WebSocketKind::VARIANTS, WebSocketKind::name);
    check("ctrlchan_message_type", "CTRLCHAN_MESSAGE_TYPE_", MessageType::VARIANTS, MessageType::name);
    check("ctrlchan_resource_type", "CTRLCHAN_RESOURCE_TYPE_", ResourceType::VARIANTS, ResourceType::name);
    check("ctrlchan_status", "CTRLCHAN_STATUS_", Status::VARIANTS, Status::name);
    check("ctrlchan_keepalive_mode", "CTRLCHAN_KEEPALIVE_MODE_", KeepAliveMode::VARIANTS, KeepAliveMode::name);
    check("ctrlchan_event_kind", "CTRLCHAN_EVENT_KIND_", EventKind::VARIANTS, EventKind::name);
    check("ctrlchan_websocket_state", "CTRLCHAN_WEBSOCKET_STATE_", WebSocketState::VARIANTS, WebSocketState::name);
}
