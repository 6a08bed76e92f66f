//! The header's CTRLCHAN_VERSION_* macros and ctrlchan_version() agree with Cargo.toml's version.
//!
//! The macros come from `after_includes` in cbindgen.toml. After a version bump in Cargo.toml,
//! edit that line and regenerate the header (`CTRLCHAN_BLESS=1 cargo test --test header`).

use std::path::PathBuf;

fn header_define(header: &str, name: &str) -> Option<String> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name)).then(|| words.collect::<Vec<_>>().join(" "))
    })
}

#[test]
fn header_version_macros_match_cargo_toml() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/ctrlchan.h")).expect("include/ctrlchan.h is readable");
    let want = [
        ("CTRLCHAN_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("CTRLCHAN_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("CTRLCHAN_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ];
    for (name, value) in want {
        let got = header_define(&header, name);
        assert_eq!(
            got.as_deref(),
            Some(value),
            "include/ctrlchan.h: {name} should be {value} (Cargo.toml version {}): edit after_includes in \
             cbindgen.toml, then run `CTRLCHAN_BLESS=1 cargo test --test header`",
            env!("CARGO_PKG_VERSION")
        );
    }
    assert!(header_define(&header, "CTRLCHAN_VERSION_NUMBER").is_some(), "CTRLCHAN_VERSION_NUMBER is defined");
}

#[test]
fn ctrlchan_version_is_the_crate_version() {
    let p = ctrlchan::ffi::ctrlchan_version();
    assert!(!p.is_null());
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_str().expect("UTF-8");
    assert_eq!(s, env!("CARGO_PKG_VERSION"));
}
