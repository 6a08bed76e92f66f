//! What the learner remembers per (network, server host), and its text file format. Pure:
//! [`Memory::parse`] takes the file's text and returns the entries plus warnings for the caller
//! to log; [`Memory::to_text`] produces the text the runtime writes atomically.
//!
//! ```text
//! ctrlchan-adaptive v1
//! # network<TAB>host<TAB>interval_ms<TAB>upper_bound_ms<TAB>updated_unix
//! v4 dev=wlan0 gw=192.168.1.1 net=192.168.1.0/24<TAB>push.example.com:443<TAB>96000<TAB>120000<TAB>1767225600
//! ```
//!
//! - The first line names the format and its version; another first line (a newer version, or
//!   not this file at all) makes the whole file ignored, with a warning.
//! - One entry per line, five tab-separated fields; `upper_bound_ms` 0 = none known, otherwise
//!   it must exceed `interval_ms`. Blank lines and lines starting with `#` are skipped.
//! - Reading is tolerant: a malformed line is skipped with a warning, so is a last line without
//!   its newline (a torn write); a duplicate keeps the newer entry. At most [`MAX_FILE_BYTES`]
//!   are read and [`MAX_ENTRIES`] kept (the most recently updated); warnings are capped too.

use std::collections::BTreeMap;

use super::Remembered;

/// First line of a version 1 file.
pub(crate) const HEADER: &str = "ctrlchan-adaptive v1";
/// Bytes read from a state file at most; the rest is ignored.
pub(crate) const MAX_FILE_BYTES: usize = 1 << 20;
/// Entries kept at most (the least recently updated go first).
pub(crate) const MAX_ENTRIES: usize = 1024;
/// Longest network or host key.
pub(crate) const MAX_KEY_BYTES: usize = 255;
/// Warnings reported per parse; further problems are summed up in one more.
pub(crate) const MAX_WARNINGS: usize = 8;

/// One remembered value and when it was last updated (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub remembered: Remembered,
    pub updated_unix: u64,
}

/// Learned values by (network key, host key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    entries: BTreeMap<(String, String), Entry>,
}

/// Whether `key` can be stored: non-empty, bounded, no tab, newline or other control character,
/// and not mistaken for a comment.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && !key.starts_with('#') && !key.chars().any(char::is_control)
}

impl Memory {
    pub fn new() -> Self {
        Memory::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value remembered for this network and host.
    pub fn get(&self, network: &str, host: &str) -> Option<Remembered> {
        self.entries.get(&(network.to_string(), host.to_string())).map(|e| e.remembered)
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Entry)> {
        self.entries.iter().map(|((n, h), e)| (n.as_str(), h.as_str(), e))
    }

    /// Remembers `r` for this network and host; false (nothing stored) for an invalid key or an
    /// upper bound not above the interval. Beyond [`MAX_ENTRIES`] the oldest entry is dropped.
    pub fn put(&mut self, network: &str, host: &str, r: Remembered, updated_unix: u64) -> bool {
        if !valid_key(network) || !valid_key(host) || r.interval_ms == 0 {
            return false;
        }
        if r.upper_bound_ms.is_some_and(|b| b <= r.interval_ms) {
            return false;
        }
        self.entries.insert((network.to_string(), host.to_string()), Entry { remembered: r, updated_unix });
        self.evict();
        true
    }

    /// Drops entries beyond [`MAX_ENTRIES`], least recently updated first; how many.
    fn evict(&mut self) -> usize {
        let over = self.entries.len().saturating_sub(MAX_ENTRIES);
        if over == 0 {
            return 0;
        }
        let mut by_age: Vec<(u64, (String, String))> =
            self.entries.iter().map(|(k, e)| (e.updated_unix, k.clone())).collect();
        by_age.sort();
        for (_, k) in by_age.into_iter().take(over) {
            self.entries.remove(&k);
        }
        over
    }

    /// The file's text: header, a column comment, one line per entry in key order.
    pub fn to_text(&self) -> String {
        let mut out = format!("{HEADER}\n# network\thost\tinterval_ms\tupper_bound_ms\tupdated_unix\n");
        for ((n, h), e) in &self.entries {
            let upper = e.remembered.upper_bound_ms.unwrap_or(0);
            out += &format!("{n}\t{h}\t{}\t{upper}\t{}\n", e.remembered.interval_ms, e.updated_unix);
        }
        out
    }

    /// Reads a state file's text tolerantly: what could be read, and what was wrong with the rest.
    pub fn parse(text: &str) -> (Memory, Vec<String>) {
        let mut mem = Memory::new();
        let mut warn = Warnings::default();
        let mut text = text;
        if text.len() > MAX_FILE_BYTES {
            warn.push(format!("larger than {MAX_FILE_BYTES} bytes; the rest is ignored"));
            let mut end = MAX_FILE_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
        }
        let mut lines = text.split_inclusive('\n');
        match lines.next().map(|l| l.trim_end_matches(['\n', '\r'])) {
            Some(HEADER) => {}
            Some(first) if first.starts_with("ctrlchan-adaptive ") => {
                warn.push(format!("unsupported version {:?}; file ignored", truncate(first)));
                return (mem, warn.finish());
            }
            None => return (mem, warn.finish()),
            Some(first) => {
                warn.push(format!("not a ctrlchan-adaptive v1 file (first line {:?}); file ignored", truncate(first)));
                return (mem, warn.finish());
            }
        }
        for (i, raw) in lines.enumerate() {
            let n = i + 2;
            let Some(line) = raw.strip_suffix('\n') else {
                warn.push(format!("line {n}: no newline at the end (torn write?); ignored"));
                break;
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok((network, host, entry)) => {
                    let key = (network.to_string(), host.to_string());
                    let newer = mem.entries.get(&key).is_none_or(|old| entry.updated_unix >= old.updated_unix);
                    if newer {
                        mem.entries.insert(key, entry);
                    }
                }
                Err(why) => warn.push(format!("line {n}: {why}; ignored")),
            }
        }
        let dropped = mem.evict();
        if dropped > 0 {
            warn.push(format!("more than {MAX_ENTRIES} entries; the {dropped} least recently updated dropped"));
        }
        (mem, warn.finish())
    }
}

fn parse_line(line: &str) -> Result<(&str, &str, Entry), String> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 5 {
        return Err(format!("{} fields, expected 5", f.len()));
    }
    if !valid_key(f[0]) || !valid_key(f[1]) {
        return Err("bad network or host key".to_string());
    }
    let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| format!("{what} {:?} is not a number", truncate(s)));
    let interval = num(f[2], "interval_ms")?;
    let upper = num(f[3], "upper_bound_ms")?;
    let updated_unix = num(f[4], "updated_unix")?;
    if interval == 0 || interval > u32::MAX as u64 || upper > u32::MAX as u64 {
        return Err("interval out of range".to_string());
    }
    if upper != 0 && upper <= interval {
        return Err(format!("upper bound {upper} not above the interval {interval}"));
    }
    let remembered = Remembered { interval_ms: interval as u32, upper_bound_ms: (upper != 0).then_some(upper as u32) };
    Ok((f[0], f[1], Entry { remembered, updated_unix }))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[derive(Default)]
struct Warnings {
    list: Vec<String>,
    more: usize,
}

impl Warnings {
    fn push(&mut self, w: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(w);
        } else {
            self.more += 1;
        }
    }
    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("{} more problems not shown", self.more));
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "v4 dev=wlan0 gw=192.168.1.1 net=192.168.1.0/24";

    fn r(interval_ms: u32, upper: Option<u32>) -> Remembered {
        Remembered { interval_ms, upper_bound_ms: upper }
    }

    #[test]
    fn round_trip() {
        let mut m = Memory::new();
        assert!(m.put(NET, "push.example.com:443", r(96_000, Some(120_000)), 1_767_225_600));
        assert!(m.put(NET, "[2001:db8::1]:8080", r(1_000, None), 5));
        assert!(m.put("v6 dev=eth0 gw=fe80::1 net=2001:db8:1::/64", "a:1", r(7, Some(8)), 6));
        let text = m.to_text();
        assert!(text.starts_with("ctrlchan-adaptive v1\n# network\thost"));
        assert!(text.contains(&format!("{NET}\tpush.example.com:443\t96000\t120000\t1767225600\n")));
        let (back, warnings) = Memory::parse(&text);
        assert_eq!((back, warnings), (m.clone(), vec![]));
        assert_eq!(m.get(NET, "push.example.com:443"), Some(r(96_000, Some(120_000))));
        assert_eq!(m.get(NET, "other:443"), None);
    }

    #[test]
    fn put_rejects_what_the_file_could_not_hold() {
        let mut m = Memory::new();
        assert!(!m.put("a\tb", "h", r(1, None), 0));
        assert!(!m.put("n", "h\n", r(1, None), 0));
        assert!(!m.put("#n", "h", r(1, None), 0));
        assert!(!m.put("", "h", r(1, None), 0));
        assert!(!m.put(&"x".repeat(MAX_KEY_BYTES + 1), "h", r(1, None), 0));
        assert!(!m.put("n", "h", r(0, None), 0));
        assert!(!m.put("n", "h", r(10, Some(10)), 0));
        assert!(m.is_empty());
    }

    #[test]
    fn malformed_lines_are_skipped_with_a_warning_each() {
        let text = format!(
            "{HEADER}\n\
             {NET}\tgood:443\t1000\t0\t10\n\
             only\tthree\tfields\n\
             {NET}\tbad-number:443\t1e3\t0\t10\n\
             {NET}\tbad-bound:443\t1000\t900\t10\n\
             {NET}\tzero:443\t0\t0\t10\n\
             {NET}\thuge:443\t99999999999\t0\t10\n\
             \n\
             # a comment\n\
             {NET}\tgood2:443\t2000\t4000\t11\r\n"
        );
        let (m, w) = Memory::parse(&text);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(NET, "good2:443"), Some(r(2000, Some(4000))));
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].starts_with("line 3: 3 fields"), "{w:?}");
        assert!(w[1].contains("\"1e3\" is not a number"), "{w:?}");
    }

    #[test]
    fn a_foreign_or_future_file_is_ignored_whole() {
        for text in
            ["ctrlchan-adaptive v2\nx\ty\t1\t0\t1\n", "{\"json\": true}\n", "\u{feff}garbage", "v4\th\t1\t0\t1\n"]
        {
            let (m, w) = Memory::parse(text);
            assert!(m.is_empty());
            assert_eq!(w.len(), 1, "{text:?}: {w:?}");
            assert!(w[0].ends_with("file ignored"));
        }
        assert_eq!(Memory::parse(""), (Memory::new(), vec![]));
    }

    #[test]
    fn a_truncated_file_keeps_its_complete_lines() {
        let mut m = Memory::new();
        m.put(NET, "a:1", r(1000, Some(2000)), 1);
        m.put(NET, "b:1", r(120_000, None), 2);
        let text = m.to_text();
        // Every cut of the file parses; a cut inside an entry loses that entry only, never
        // yields a wrong value (the torn "120000" must not come back as "12").
        for cut in 0..text.len() {
            let (got, w) = Memory::parse(&text[..cut]);
            for (n, h, e) in got.iter() {
                assert_eq!(m.get(n, h), Some(e.remembered), "cut {cut}");
            }
            assert!(w.len() <= 1, "cut {cut}: {w:?}");
        }
        assert_eq!(Memory::parse(&text[..text.len() - 1]).0.len(), 1);
    }

    #[test]
    fn a_huge_file_is_bounded_in_bytes_entries_and_warnings() {
        let mut text = format!("{HEADER}\n");
        let mut i = 0u64;
        while text.len() < 3 * MAX_FILE_BYTES {
            text += &format!("{NET}\thost{i}:443\t{}\t0\t{i}\n", 1000 + i);
            if i % 3 == 0 {
                text += "garbage line\n";
            }
            i += 1;
        }
        let (m, w) = Memory::parse(&text);
        assert_eq!(m.len(), MAX_ENTRIES);
        assert!(w.len() <= MAX_WARNINGS + 1, "{}", w.len());
        assert!(w[0].starts_with("larger than"));
        assert!(w.last().unwrap().ends_with("more problems not shown"));
        // The most recently updated entries are the ones kept.
        let newest = m.iter().map(|(_, _, e)| e.updated_unix).max().unwrap();
        assert!(newest > 2 * MAX_ENTRIES as u64);
        assert!(m.iter().all(|(_, _, e)| e.updated_unix > newest - MAX_ENTRIES as u64));
        // Putting more never grows it beyond the bound.
        let mut m = m;
        m.put(NET, "new:1", r(5, None), u64::MAX);
        assert_eq!(m.len(), MAX_ENTRIES);
        assert_eq!(m.get(NET, "new:1"), Some(r(5, None)));
    }

    #[test]
    fn duplicates_keep_the_newer_entry() {
        let text = format!("{HEADER}\n{NET}\th:1\t1000\t0\t20\n{NET}\th:1\t5000\t0\t10\n{NET}\th:1\t3000\t0\t20\n");
        let (m, w) = Memory::parse(&text);
        assert!(w.is_empty());
        assert_eq!(m.get(NET, "h:1"), Some(r(3000, None)));
    }

    #[test]
    fn multibyte_text_cut_at_the_byte_limit_does_not_panic() {
        let text = format!("{HEADER}\n{}", "é".repeat(MAX_FILE_BYTES));
        let (m, w) = Memory::parse(&text);
        assert!(m.is_empty() && !w.is_empty());
    }
}
