//! One adaptive channel's learner tied to its (network, server host) key and the shared
//! [`Memory`]: what the reactor keeps per channel, so that remembering, restoring and switching
//! networks happen in one tested place.

use super::store::Memory;
use super::{Learner, Outcome};

/// The learner of one channel plus where its knowledge is filed.
#[derive(Clone, Debug)]
pub struct Tracker {
    pub learner: Learner,
    host: String,
    /// None while there is no default route (offline): nothing is filed then.
    network: Option<String>,
}

impl Tracker {
    /// A tracker for `host` (see `netkey::host_key`) on `network`, starting from what `mem`
    /// remembers for that pair, else from `min_ms`.
    pub fn new(min_ms: u32, max_ms: u32, host: String, network: Option<String>, mem: &Memory) -> Self {
        let remembered = network.as_deref().and_then(|n| mem.get(n, &host));
        Tracker { learner: Learner::new(min_ms, max_ms, remembered), host, network }
    }

    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn network(&self) -> Option<&str> {
        self.network.as_deref()
    }

    /// Files the learner's current knowledge under (network, host); false when offline or the
    /// key cannot be stored. Call after every changed outcome and before a network switch.
    pub fn remember(&self, mem: &mut Memory, now_unix: u64) -> bool {
        match &self.network {
            Some(n) => mem.put(n, &self.host, self.learner.remembered(), now_unix),
            None => false,
        }
    }

    /// The default route changed: file what was learned, then continue from what is remembered
    /// for the new network (or from `min`). The same key again changes nothing.
    pub fn switch_network(&mut self, network: Option<String>, mem: &mut Memory, now_unix: u64) -> Outcome {
        if network == self.network {
            return Outcome::Unchanged;
        }
        self.remember(mem, now_unix);
        let remembered = network.as_deref().and_then(|n| mem.get(n, &self.host));
        self.network = network;
        self.learner.on_network_change(remembered)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Phase, Reason, Remembered};
    use super::*;

    const HOME: &str = "v4 dev=wlan0 gw=192.168.1.1 net=192.168.1.0/24";
    const CAFE: &str = "v4 dev=wlan0 gw=10.1.0.1 net=10.1.0.0/22";

    /// Drives `t` through a NAT with timeout `nat_ms` until settled (bounded).
    fn settle(t: &mut Tracker, nat_ms: u32, now: &mut u64) {
        for _ in 0..1_000 {
            if matches!(t.learner.phase(), Phase::Settled { .. }) {
                return;
            }
            let gap = t.learner.interval_ms();
            *now += gap as u64;
            if gap >= nat_ms {
                t.learner.on_silent_death(gap, *now);
            } else {
                t.learner.on_ack(gap, *now);
            }
        }
        panic!("not settled: {t:?}");
    }

    #[test]
    fn each_network_keeps_its_own_value_and_a_restart_resumes_it() {
        let mut mem = Memory::new();
        let mut now = 0;
        let mut t = Tracker::new(1_000, 600_000, "push.example.com:443".into(), Some(HOME.into()), &mem);
        settle(&mut t, 120_000, &mut now);
        let home = t.learner.interval_ms();
        assert!((48_000..120_000).contains(&home));
        assert!(t.remember(&mut mem, 100));

        // Off to the café: fresh start there, then settle on its shorter timeout.
        let out = t.switch_network(Some(CAFE.into()), &mut mem, 200);
        assert_eq!(out, Outcome::Changed { from_ms: home, to_ms: 1_000, reason: Reason::Network });
        settle(&mut t, 20_000, &mut now);
        let cafe = t.learner.interval_ms();
        assert!((8_000..20_000).contains(&cafe));

        // Home again: the remembered value at once, no probe; the café's is filed too.
        let probes = t.learner.probes();
        assert_eq!(t.switch_network(Some(HOME.into()), &mut mem, 300).new_interval_ms(), Some(home));
        assert_eq!(mem.get(CAFE, "push.example.com:443").map(|r| r.interval_ms), Some(cafe));
        assert_eq!(t.switch_network(Some(HOME.into()), &mut mem, 301), Outcome::Unchanged);
        assert_eq!(t.learner.probes(), probes);

        // A new runtime with the saved memory starts where this one was.
        let (restored, warnings) = Memory::parse(&mem.to_text());
        assert!(warnings.is_empty());
        let t2 = Tracker::new(1_000, 600_000, "push.example.com:443".into(), Some(HOME.into()), &restored);
        assert_eq!(t2.learner.interval_ms(), home);
        // Another server on the same network learns on its own.
        let other = Tracker::new(1_000, 600_000, "other.example.com:443".into(), Some(HOME.into()), &restored);
        assert_eq!(other.learner.interval_ms(), 1_000);
    }

    #[test]
    fn offline_files_nothing() {
        let mut mem = Memory::new();
        let mut t = Tracker::new(1_000, 60_000, "h:1".into(), None, &mem);
        assert!(!t.remember(&mut mem, 1));
        t.learner = Learner::new(1_000, 60_000, Some(Remembered { interval_ms: 30_000, upper_bound_ms: None }));
        assert_eq!(t.switch_network(Some(HOME.into()), &mut mem, 2).new_interval_ms(), Some(1_000));
        assert!(mem.is_empty());
        assert!(t.remember(&mut mem, 3));
        assert_eq!(t.switch_network(None, &mut mem, 4), Outcome::Unchanged, "offline: already at min");
        assert_eq!(mem.len(), 1);
    }
}
