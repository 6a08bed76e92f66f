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
