//! Linux cuts thread names at 15 bytes; ours fit, so `ps -L`, gdb, perf and the Python binding
//! show them whole.

use ctrlchan::Runtime;

fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let comm = entry.expect("task").path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm) {
            names.push(name.trim_end().to_string());
        }
    }
    names
}

#[test]
fn reactor_thread_is_named_ctrlchan_rt() {
    let rt = Runtime::new().expect("runtime");
    // The new thread names itself when it starts running: allow it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut names = thread_names();
    while !names.iter().any(|n| n == "ctrlchan-rt") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        names = thread_names();
    }
    assert!(names.iter().any(|n| n == "ctrlchan-rt"), "threads: {names:?}");
    rt.shutdown().expect("shutdown");
}
