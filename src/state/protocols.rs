//! The subprotocols a websocket offers, in the order they were added, as C strings that never
//! move (the C ABI hands out pointers to them while the websocket lives), with a membership
//! index so that offering n protocols costs O(n). Issue 13, defect 15: a linear duplicate scan
//! per add made 100 000 protocols take 7.7 s.

use std::collections::HashSet;
use std::ffi::CStr;
use std::hash::{Hash, Hasher};

use super::event::to_cstring_lossy;

/// One offered protocol. In unit tests every comparison and copy of one is counted
/// (`tests::element_ops`), so a test can tell a linear from a quadratic add without a clock.
struct Name(Box<CStr>);

#[cfg(test)]
thread_local! {
    static ELEMENT_OPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
fn counted() {
    #[cfg(test)]
    ELEMENT_OPS.with(|c| c.set(c.get() + 1));
}

impl Clone for Name {
    fn clone(&self) -> Self {
        counted();
        Name(self.0.clone())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        counted();
        self.0 == other.0
    }
}
impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        counted();
        self.0.to_bytes() == other.as_bytes()
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bytes().hash(state);
    }
}

/// Offered subprotocols (see the module doc).
#[derive(Clone, Default)]
pub(crate) struct Protocols {
    list: Vec<Name>,
    index: HashSet<Name>,
}

impl Protocols {
    /// Appends `protocol` unless it is already offered; true if it was added.
    pub fn insert(&mut self, protocol: &str) -> bool {
        let name = Name(to_cstring_lossy(protocol).into_boxed_c_str());
        if self.index.contains(&name) {
            return false;
        }
        self.list.push(name.clone());
        self.index.insert(name);
        true
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The `index`-th protocol; its address stays the same while `self` lives.
    pub fn get(&self, index: usize) -> Option<&CStr> {
        self.list.get(index).map(|n| &*n.0)
    }

    /// In preference (insertion) order.
    pub fn iter(&self) -> impl Iterator<Item = &CStr> {
        self.list.iter().map(|n| &*n.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::WsShared;
    use crate::types::WebSocketKind;

    fn element_ops() -> u64 {
        ELEMENT_OPS.with(|c| c.get())
    }

    /// Comparisons and copies of offered protocols while `n` distinct protocols are offered
    /// through the websocket's API, then each of them once more (a duplicate, ignored).
    fn cost_of_offering(n: usize) -> u64 {
        let ws = WsShared::new(WebSocketKind::Message);
        let before = element_ops();
        for round in 0..2 {
            for i in 0..n {
                if let Err(e) = ws.add_supported_protocol(&format!("p{i}")) {
                    panic!("round {round}, protocol {i}: {e:?}");
                }
            }
        }
        let cost = element_ops() - before;
        assert_eq!(ws.supported_protocol_count(), n, "duplicates are not offered twice");
        cost
    }

    /// Defect 15 regression: the work per offered protocol must not grow with the number
    /// already offered. Counts element operations, not time: a linear duplicate scan costs
    /// n^2 / 2 comparisons (2 000 -> 2 M, 8 000 -> 32 M) and fails both bounds.
    #[test]
    fn offering_protocols_is_linear() {
        let small = cost_of_offering(2_000);
        let large = cost_of_offering(8_000);
        assert!(small <= 3 * 2 * 2_000, "offering 2 000 protocols twice took {small} element operations");
        assert!(large <= 3 * 2 * 8_000, "offering 8 000 protocols twice took {large} element operations");
        // 4x the protocols: about 4x the operations when linear, 16x when quadratic.
        assert!(large <= 6 * small.max(1), "cost grew {large} / {small} for 4x the protocols");
    }

    #[test]
    fn order_and_stable_addresses() {
        let mut p = Protocols::default();
        assert!(p.is_empty());
        assert!(p.insert("chat"));
        let first = p.get(0).map(|c| c.as_ptr());
        for i in 0..1000 {
            assert!(p.insert(&format!("v{i}")));
        }
        assert!(!p.insert("chat"));
        assert_eq!(p.len(), 1001);
        assert_eq!(p.get(0).map(|c| c.as_ptr()), first, "a C string moved");
        let names: Vec<_> = p.iter().take(3).map(|c| c.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["chat", "v0", "v1"]);
    }
}
