//! The I/O half of adaptive keep-alive, kept tiny: read the network key from `/proc`, load and
//! atomically save the state file. Parsing and the learner itself are pure, in
//! [`crate::protocol::adaptive`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::protocol::adaptive::netkey;
use crate::protocol::adaptive::store::{Memory, MAX_FILE_BYTES};

/// The most any of the `/proc/net` tables is read (a router with a huge table is not ours).
const MAX_PROC_BYTES: u64 = 256 * 1024;

fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_proc(name: &str) -> String {
    read_bounded(&Path::new("/proc/net").join(name), MAX_PROC_BYTES)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The current network's key (see [`netkey`]), IPv6 first when `prefer_v6` (the connection's
/// local address is IPv6), else IPv4 first. None without a default route or off Linux.
pub(crate) fn read_network_key(prefer_v6: bool) -> Option<String> {
    let v4 = || netkey::network_key_v4(&read_proc("route"));
    let v6 = || netkey::network_key_v6(&read_proc("ipv6_route"), &read_proc("if_inet6"));
    if prefer_v6 {
        v6().or_else(v4)
    } else {
        v4().or_else(v6)
    }
}

/// Loads the state file: its entries and the warnings to log. A missing file is an empty
/// memory without warnings; an unreadable one is an empty memory with a warning.
pub(crate) fn load_state_file(path: &Path) -> (Memory, Vec<String>) {
    let bytes = match read_bounded(path, MAX_FILE_BYTES as u64 + 1) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Memory::new(), Vec::new()),
        Err(e) => return (Memory::new(), vec![format!("{}: cannot read: {e}", path.display())]),
    };
    let mut warnings = Vec::new();
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            warnings.push("not valid UTF-8; damaged characters make their lines invalid".to_string());
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    let (mem, more) = Memory::parse(&text);
    warnings.extend(more);
    let warnings = warnings.into_iter().map(|w| format!("{}: {w}", path.display())).collect();
    (mem, warnings)
}

/// The temporary file a save writes first: same directory (so the rename is atomic), hidden,
/// unique per process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Saves `mem` atomically: a temporary file in the same directory (mode 0600), flushed to disk,
/// renamed over `path`; a reader sees the old file or the new one, never a mix.
pub(crate) fn save_state_file(path: &Path, mem: &Memory) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(mem.to_text().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every file system allows it).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::adaptive::store::{HEADER, MAX_ENTRIES};
    use crate::protocol::adaptive::Remembered;

    fn tmp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctrlchan-adaptive-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let d = tmp_dir("rt");
        let path = d.join("state.txt");
        assert_eq!(load_state_file(&path), (Memory::new(), vec![]), "missing file: empty, quiet");
        let mut m = Memory::new();
        m.put(
            "v4 dev=eth0 gw=10.0.0.1 net=10.0.0.0/24",
            "h:443",
            Remembered { interval_ms: 9, upper_bound_ms: Some(20) },
            1,
        );
        save_state_file(&path, &m).unwrap();
        m.put("n", "h:1", Remembered { interval_ms: 5, upper_bound_ms: None }, 2);
        save_state_file(&path, &m).unwrap(); // over an existing file
        assert_eq!(load_state_file(&path), (m, vec![]));
        let names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec!["state.txt"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A save that cannot rename (the target is a directory) fails and cleans up.
        let blocked = d.join("dir");
        fs::create_dir(&blocked).unwrap();
        assert!(save_state_file(&blocked, &Memory::new()).is_err());
        assert!(!temp_path(&blocked).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn malformed_huge_and_binary_files_load_bounded_with_warnings() {
        let d = tmp_dir("bad");
        let path = d.join("state.txt");
        fs::write(&path, "this is not a state file\n").unwrap();
        let (m, w) = load_state_file(&path);
        assert!(m.is_empty() && w.len() == 1 && w[0].contains("state.txt: not a ctrlchan-adaptive v1 file"), "{w:?}");
        // 8 MiB: only the first MiB is read.
        let line = "v4 dev=eth0 gw=10.0.0.1 net=10.0.0.0/24\thost:443\t1000\t0\t7\n";
        let mut big = format!("{HEADER}\n");
        big += &line.repeat((8 << 20) / line.len());
        fs::write(&path, &big).unwrap();
        let (m, w) = load_state_file(&path);
        assert_eq!(m.len(), 1);
        assert!(w.iter().any(|w| w.contains("larger than")), "{w:?}");
        let many: String = (0..MAX_ENTRIES + 10).map(|i| format!("n\th{i}:1\t10\t0\t{i}\n")).collect();
        fs::write(&path, format!("{HEADER}\n{many}")).unwrap();
        assert_eq!(load_state_file(&path).0.len(), MAX_ENTRIES);
        fs::write(&path, [HEADER.as_bytes(), b"\n", &[0xff, 0xfe, b'\t', b'\n'][..]].concat()).unwrap();
        let (m, w) = load_state_file(&path);
        assert!(m.is_empty() && w.iter().any(|w| w.contains("UTF-8")), "{w:?}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_network_key_of_this_machine() {
        // Whatever the machine: no panic, and a key whenever there is a default route.
        let has_v4_default =
            read_proc("route").lines().skip(1).any(|l| l.split_whitespace().nth(1) == Some("00000000"));
        let key = read_network_key(false);
        if has_v4_default {
            let k = key.clone().unwrap();
            assert!(k.starts_with("v4 dev=") && crate::protocol::adaptive::store::valid_key(&k), "{k}");
        }
        assert_eq!(read_network_key(false), key, "stable while the network does not change");
        let _ = read_network_key(true);
    }
}
