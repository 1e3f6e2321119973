//! The CNode slots a server keeps saved replies in (`SaveCaller`: a caller waits while the
//! server serves others), and who holds them: every client gets a bounded share, so that
//! no client can take them all.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The CNode slots saved replies go into, and who holds them: a client other than the
/// privileged one (vm, whose requests are every task's faults) holds at most `per_client`,
/// and such clients together leave `reserved` for the privileged one.
#[derive(Debug)]
pub struct ReplySlots {
    free: Vec<u64>,
    held: BTreeMap<u64, usize>,
    others: usize,
    privileged: u64,
    per_client: usize,
    others_max: usize,
}

impl ReplySlots {
    /// The slots `slots`; `privileged` (a badge) may use them all, every other badge
    /// `per_client` and all others together all but `reserved`.
    pub fn new(
        slots: impl IntoIterator<Item = u64>,
        privileged: u64,
        per_client: usize,
        reserved: usize,
    ) -> Self {
        let free: Vec<u64> = slots.into_iter().collect();
        let others_max = free.len().saturating_sub(reserved);
        Self {
            free,
            held: BTreeMap::new(),
            others: 0,
            privileged,
            per_client,
            others_max,
        }
    }

    /// Whether [`ReplySlots::take`] would give `badge` a slot.
    pub fn can_take(&self, badge: u64) -> bool {
        if self.free.is_empty() {
            return false;
        }
        badge == self.privileged
            || (self.others < self.others_max
                && self.held.get(&badge).copied().unwrap_or(0) < self.per_client)
    }

    /// A slot for a reply to `badge`, if its share allows.
    pub fn take(&mut self, badge: u64) -> Option<u64> {
        let mine = self.held.get(&badge).copied().unwrap_or(0);
        if badge != self.privileged && (mine >= self.per_client || self.others >= self.others_max) {
            return None;
        }
        let slot = self.free.pop()?;
        self.held.insert(badge, mine + 1);
        if badge != self.privileged {
            self.others += 1;
        }
        Some(slot)
    }

    /// `badge`'s reply in `slot` was sent (or dropped): the slot is free.
    pub fn give(&mut self, badge: u64, slot: u64) {
        // A slot given back twice is free once (a bounded scan: the pool is small).
        if self.free.contains(&slot) {
            return;
        }
        self.free.push(slot);
        if let Some(n) = self.held.get_mut(&badge) {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&badge);
            }
        }
        if badge != self.privileged {
            self.others = self.others.saturating_sub(1);
        }
    }

    /// Slots held now.
    pub fn held(&self) -> usize {
        self.held.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_slots_keep_a_share_for_the_privileged_client() {
        const VM: u64 = 2;
        let mut s = ReplySlots::new(100..110, VM, 3, 4);
        // One client: three at most.
        let mine: Vec<u64> = (0..3).map(|_| s.take(20).unwrap()).collect();
        assert!(!s.can_take(20) && s.can_take(21));
        assert_eq!(s.take(20), None);
        // Others together: six (ten less the four kept for vm).
        for _ in 0..3 {
            s.take(21).unwrap();
        }
        assert!(!s.can_take(22) && s.can_take(VM));
        assert_eq!(s.take(22), None);
        // vm gets the rest.
        for _ in 0..4 {
            s.take(VM).unwrap();
        }
        assert!(!s.can_take(VM));
        assert_eq!(s.take(VM), None);
        assert_eq!(s.held(), 10);
        s.give(20, mine[0]);
        assert_eq!(s.take(22), Some(mine[0]));
        s.give(22, mine[0]);
        s.give(VM, 109);
        assert_eq!(s.take(VM), Some(109));
    }

    #[test]
    fn a_slot_given_back_twice_is_free_once() {
        let mut s = ReplySlots::new(100..102, 2, 1, 0);
        let a = s.take(20).unwrap();
        s.give(20, a);
        s.give(20, a);
        assert_eq!(s.held(), 0);
        // Two slots, two different ones handed out.
        let (x, y) = (s.take(2).unwrap(), s.take(2).unwrap());
        assert_ne!(x, y);
        assert_eq!(s.take(2), None);
    }
}
