//! The free gaps of a task's address space, indexed for top-down placement (`mmap(NULL)`).
//!
//! Linux finds the highest gap that fits in its maple tree, whose nodes keep the largest gap
//! below them. The standard library has no tree one can extend that way, so the gaps are kept
//! in B-trees, one per size class: class `k` holds the gaps of `2^k` to `2^(k+1) - 1` pages,
//! each keyed by its start address (so that a gap that shrinks or grows at its top, as the
//! next top-down `mmap` or the `munmap` of the region above does, changes in place). A gap of
//! a class above the request's fits unless `top` cuts it, so each such class costs one or
//! two lookups; in the request's own class the gaps are looked at from the top down until
//! one fits. A 64-bit mask says which classes hold gaps,
//! so that a lookup visits only those.
//!
//! The result is the highest fitting gap (first fit, top down), as with Linux, except in one
//! case: when more than [`SCAN`] gaps of the request's class above the answer are too small,
//! a gap of a larger class (lower down) is taken instead of looking further; only when no
//! larger class has a fitting gap is the whole class searched.

use alloc::collections::BTreeMap;
use core::cell::Cell;
use proto::PAGE_SIZE;

/// A B-tree key that can move in place: a range's start (a region's, in the region map's
/// tree; a gap's, here). A cell, so that a start can change without taking the entry out
/// of the tree and putting it back in (which costs a search, and at a leaf of the lowest
/// fill a merge and a split); the tree's order stays right because the caller moves a
/// start only where no other key lies between the old address and the new one (a B-tree
/// whose keys changed order would be wrong).
#[derive(Clone, Debug)]
pub(crate) struct Key(pub(crate) Cell<u64>);

impl Key {
    pub(crate) fn at(a: u64) -> Self {
        Key(Cell::new(a))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.get().cmp(&other.0.get())
    }
}

/// Size classes: gaps of 1 page up to 2^63 bytes.
const CLASSES: usize = 64 - PAGE_SIZE.trailing_zeros() as usize;
/// Gaps of the request's own class looked at before a larger class is preferred.
const SCAN: usize = 16;

/// The gap index: every gap `[start, end)` once, in the map of its size class.
#[derive(Clone, Debug)]
pub struct Gaps {
    /// Per class: start → end.
    classes: [BTreeMap<Key, u64>; CLASSES],
    /// Bit `k` set when class `k` holds a gap.
    nonempty: u64,
}

impl Default for Gaps {
    fn default() -> Self {
        Self {
            classes: [const { BTreeMap::new() }; CLASSES],
            nonempty: 0,
        }
    }
}

/// The class of a gap (or request) of `bytes` (at least one page).
fn class(bytes: u64) -> usize {
    let pages = (bytes / PAGE_SIZE).max(1);
    63 - pages.leading_zeros() as usize
}

impl Gaps {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the gap [`start`, `end`) (nothing if it is empty).
    pub fn add(&mut self, start: u64, end: u64) {
        if start < end {
            let k = class(end - start);
            self.classes[k].insert(Key::at(start), end);
            self.nonempty |= 1 << k;
        }
    }

    /// Takes the gap [`start`, `end`) out (it must be one).
    pub fn remove(&mut self, start: u64, end: u64) {
        if start < end {
            let k = class(end - start);
            self.classes[k].remove(&Key::at(start));
            if self.classes[k].is_empty() {
                self.nonempty &= !(1 << k);
            }
        }
    }

    /// Replaces gap `old` with `new` (either may be empty): in place when both are of one
    /// class and start or end at the same address (a gap that the next top-down `mmap`
    /// shrinks at its top, or the `munmap` of the top of the region below grows down),
    /// which costs one search and no tree node. (A gap that moves its start keeps its
    /// place among the class's gaps: the other gaps are disjoint from both.)
    pub fn replace(&mut self, old: (u64, u64), new: (u64, u64)) {
        if old.0 < old.1
            && new.0 < new.1
            && (new.0 == old.0 || new.1 == old.1)
            && class(new.1 - new.0) == class(old.1 - old.0)
            && let Some((key, end)) = self.classes[class(old.1 - old.0)]
                .range_mut(Key::at(old.0)..=Key::at(old.0))
                .next()
        {
            key.0.set(new.0);
            *end = new.1;
            return;
        }
        self.remove(old.0, old.1);
        self.add(new.0, new.1);
    }

    /// Every gap, by class and then by end address (for tests and checks).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.classes
            .iter()
            .flat_map(|c| c.iter().map(|(start, &end)| (start.0.get(), end)))
    }

    pub fn len(&self) -> usize {
        self.classes.iter().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.nonempty == 0
    }

    /// The highest address `a` with [`a`, `a + len`) inside a gap and inside [`bottom`,
    /// `top`) (see the module comment for the one exception).
    pub fn place_top_down(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        if len == 0 || bottom >= top {
            return None;
        }
        let fit = |start: u64, end: u64| {
            let hi = end.min(top);
            let lo = start.max(bottom);
            (hi > lo && hi - lo >= len).then(|| hi - len)
        };
        let k = class(len);
        // Classes above the request's: their highest gap starting below `top` fits unless
        // `top` or `bottom` cuts it; if `top` does, the next one down lies wholly below it.
        let mut best: Option<u64> = None;
        let mut above = self.nonempty & !((2u64 << k) - 1);
        while above != 0 {
            let c = above.trailing_zeros() as usize;
            above &= above - 1;
            if let Some(a) = self.classes[c]
                .range(..Key::at(top))
                .rev()
                .take(2)
                .find_map(|(start, &end)| fit(start.0.get(), end))
            {
                best = best.max(Some(a));
            }
        }
        // The request's own class: from the top down, while its gaps can still beat the
        // best found so far.
        for (i, (start, &end)) in self.classes[k].range(..Key::at(top)).rev().enumerate() {
            let start = start.0.get();
            // Gaps are disjoint: a lower start means a lower end.
            if best.is_some_and(|b| end.min(top) < b + len) {
                break;
            }
            if i >= SCAN && best.is_some() {
                break;
            }
            if let Some(a) = fit(start, end) {
                return best.max(Some(a));
            }
            if start <= bottom {
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    #[test]
    fn classes_by_pages() {
        assert_eq!(class(P), 0);
        assert_eq!(class(2 * P), 1);
        assert_eq!(class(3 * P), 1);
        assert_eq!(class(4 * P), 2);
        assert_eq!(class(1 << 47), 35);
    }

    #[test]
    fn highest_fit_below_top() {
        let mut g = Gaps::new();
        g.add(0, 10 * P);
        g.add(20 * P, 23 * P);
        g.add(30 * P, 31 * P);
        g.add(40 * P, 48 * P);
        assert_eq!(g.len(), 4);
        assert_eq!(g.place_top_down(P, 0, 100 * P), Some(47 * P));
        assert_eq!(g.place_top_down(8 * P, 0, 100 * P), Some(40 * P));
        assert_eq!(g.place_top_down(9 * P, 0, 100 * P), Some(P));
        assert_eq!(g.place_top_down(3 * P, 0, 40 * P), Some(20 * P));
        assert_eq!(g.place_top_down(11 * P, 0, 100 * P), None);
        // `bottom` and `top` cut gaps.
        assert_eq!(g.place_top_down(9 * P, 2 * P, 100 * P), None);
        // A gap reaching past `top` is cut there.
        assert_eq!(g.place_top_down(2 * P, 0, 45 * P), Some(43 * P));
        // The gap holding `top` comes first.
        assert_eq!(g.place_top_down(P, 0, 45 * P), Some(44 * P));
        g.remove(40 * P, 48 * P);
        assert_eq!(g.place_top_down(P, 0, 100 * P), Some(30 * P));
        g.remove(30 * P, 31 * P);
        g.remove(20 * P, 23 * P);
        g.remove(0, 10 * P);
        assert!(g.is_empty());
        assert_eq!(g.place_top_down(P, 0, 100 * P), None);
    }

    #[test]
    fn many_small_gaps_above_do_not_hide_a_fit() {
        // 100 gaps of 2 pages (class 1) above one of 3 pages (class 1 too), then nothing
        // else: the scan must go past its limit rather than answer "no room".
        let mut g = Gaps::new();
        for i in 0..100u64 {
            let s = (1000 + 4 * i) * P;
            g.add(s, s + 2 * P);
        }
        g.add(10 * P, 13 * P);
        assert_eq!(g.place_top_down(3 * P, 0, 1 << 40), Some(10 * P));
        // With a larger gap lower down, that one is taken after the scan limit.
        g.add(0, 8 * P);
        assert_eq!(g.place_top_down(3 * P, 0, 1 << 40), Some(5 * P));
    }

    /// The index against a brute-force search over a list of gaps, with random requests.
    #[test]
    fn agrees_with_a_brute_force_search() {
        let mut seed = 0x1234_5678_u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for _ in 0..200 {
            let mut g = Gaps::new();
            let mut list = alloc::vec::Vec::new();
            let mut at = 0;
            for _ in 0..next(12) {
                at += (1 + next(20)) * P;
                let len = (1 + next(20)) * P;
                g.add(at, at + len);
                list.push((at, at + len));
                at += len;
            }
            for _ in 0..20 {
                let len = (1 + next(24)) * P;
                let bottom = next(100) * P;
                let top = bottom + (1 + next(400)) * P;
                let want = list
                    .iter()
                    .filter_map(|&(s, e)| {
                        let hi = e.min(top);
                        let lo = s.max(bottom);
                        (hi > lo && hi - lo >= len).then(|| hi - len)
                    })
                    .max();
                // Few gaps per class here: the scan limit never applies.
                assert_eq!(
                    g.place_top_down(len, bottom, top),
                    want,
                    "len {len:#x} in [{bottom:#x}, {top:#x}) of {list:x?}"
                );
            }
        }
    }
}
