//! Every checked-in corpus file (fuzz/corpus/<target>/*) through its target, as a plain test:
//! the smoke run when cargo-fuzz is not installed, and the regression run for saved crashes.

use std::path::Path;

fn run(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("read corpus file");
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
    eprintln!("{target}: {n} inputs");
}

#[test]
fn handshake() {
    run("handshake", ctrlchan_fuzz::handshake);
}
#[test]
fn uri() {
    run("uri", ctrlchan_fuzz::uri);
}
#[test]
fn proxy() {
    run("proxy", ctrlchan_fuzz::proxy);
}
#[test]
fn adaptive_store() {
    run("adaptive_store", ctrlchan_fuzz::adaptive_store);
}
#[test]
fn reframe() {
    run("reframe", ctrlchan_fuzz::reframe);
}
#[test]
fn connection() {
    run("connection", ctrlchan_fuzz::connection);
}
#[test]
fn ffi_calls() {
    run("ffi_calls", ctrlchan_fuzz::ffi_calls);
}
#[test]
fn reactor() {
    run("reactor", ctrlchan_fuzz::reactor);
}
