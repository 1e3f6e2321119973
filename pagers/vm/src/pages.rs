//! Pages: the 4 KiB pieces of the 2 MiB chunks zero gives vm, their reference counts and free
//! lists ([`Pool`]), and which page each task has at each address ([`PageMap`]).
//!
//! A page is named by a [`PageId`]: `chunk * 512 + index`. Page 0 (the first page of the
//! first chunk) is the shared zero page: always zero, only ever mapped read-only, never
//! counted or freed.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;
use proto::CHUNK_PAGES;

pub type PageId = u32;
/// The shared zero page.
pub const ZERO_PAGE: PageId = 0;
/// "No page here" in a [`PageMap`] group.
pub const NONE: PageId = u32::MAX;
/// In a memory-object region: the page is the object's, mapped (or to be mapped again)
/// read-only from the block's frame capability. Never a pool page.
pub const BLOCK_RO: PageId = u32::MAX - 1;
/// Likewise, mapped writable (a shared mapping whose block vm reported dirty).
pub const BLOCK_RW: PageId = u32::MAX - 2;

/// Whether `p` stands for a page of a memory object's block ([`BLOCK_RO`], [`BLOCK_RW`]).
pub const fn is_block(p: PageId) -> bool {
    p == BLOCK_RO || p == BLOCK_RW
}
/// Pages per group of a [`PageMap`] (one level-3 table's span: 2 MiB).
pub const GROUP_PAGES: usize = 512;
const GROUP_SHIFT: u32 = 21;

/// The chunk a page is in, and its index there.
pub fn chunk_of(p: PageId) -> (u32, u32) {
    (p / CHUNK_PAGES as u32, p % CHUNK_PAGES as u32)
}

/// Reference counts and free pages.
///
/// # Invariants
/// - A page is on exactly one of `clean`/`dirty` iff its count is 0 (page 0 never is).
/// - Every page on `clean` is all zeroes.
#[derive(Debug, Default)]
pub struct Pool {
    refs: Vec<u32>,
    /// Free pages known to be zero (popped from the end: fresh chunks hand out ascending ids).
    clean: Vec<PageId>,
    /// Free pages that held data: zeroed when taken for a use that needs zeroes.
    dirty: Vec<PageId>,
    in_use: u64,
}

/// A page taken from the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    pub page: PageId,
    /// The page holds old data: zero it if zeroes are needed.
    pub dirty: bool,
}

impl Pool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Chunks added so far.
    pub fn chunks(&self) -> u32 {
        (self.refs.len() / CHUNK_PAGES as usize) as u32
    }

    /// Pages with a reference (not free, not the zero page).
    pub fn in_use(&self) -> u64 {
        self.in_use
    }

    /// Free pages.
    pub fn free(&self) -> usize {
        self.clean.len() + self.dirty.len()
    }

    /// Adds a zeroed chunk; returns its number. The first chunk's page 0 becomes the zero
    /// page.
    pub fn add_chunk(&mut self) -> u32 {
        let chunk = self.chunks();
        let first = chunk * CHUNK_PAGES as u32;
        self.refs.resize(self.refs.len() + CHUNK_PAGES as usize, 0);
        let skip = u32::from(chunk == 0);
        self.clean
            .extend((first + skip..first + CHUNK_PAGES as u32).rev());
        chunk
    }

    /// A free page with count 1: a clean one if `want_clean` or if there is one, else a
    /// dirty one (for pages about to be overwritten whole).
    pub fn take(&mut self, want_clean: bool) -> Option<Taken> {
        let taken = if want_clean {
            self.clean
                .pop()
                .map(|page| Taken { page, dirty: false })
                .or_else(|| self.dirty.pop().map(|page| Taken { page, dirty: true }))
        } else {
            self.dirty
                .pop()
                .map(|page| Taken { page, dirty: true })
                .or_else(|| self.clean.pop().map(|page| Taken { page, dirty: false }))
        }?;
        self.refs[taken.page as usize] = 1;
        self.in_use += 1;
        Some(taken)
    }

    pub fn count(&self, p: PageId) -> u32 {
        self.refs.get(p as usize).copied().unwrap_or(0)
    }

    /// One more reference (not for the zero page).
    pub fn share(&mut self, p: PageId) {
        if p != ZERO_PAGE
            && let Some(r) = self.refs.get_mut(p as usize)
        {
            *r += 1;
        }
    }

    /// One more reference for each page of `pages` (skipping [`NONE`] and the zero page).
    pub fn share_all(&mut self, pages: &[PageId]) {
        for &p in pages {
            if p != NONE
                && p != ZERO_PAGE
                && let Some(r) = self.refs.get_mut(p as usize)
            {
                *r += 1;
            }
        }
    }

    /// One reference fewer; the page is free (dirty) when none is left. True if freed.
    pub fn release(&mut self, p: PageId) -> bool {
        if p == ZERO_PAGE {
            return false;
        }
        match self.refs.get_mut(p as usize) {
            Some(r) if *r > 0 => {
                *r -= 1;
                if *r == 0 {
                    self.dirty.push(p);
                    self.in_use -= 1;
                    return true;
                }
                false
            }
            _ => false,
        }
    }
}

/// Which page a task has at each address: groups of 512 entries, one per 2 MiB of address
/// space that has ever had a page.
///
/// The groups live in a vector, found through a sorted index; the last group found is
/// remembered, since faults and fork go through a region in address order.
///
/// # Invariants
/// - The bin keeps a level-3 translation table installed for every group that exists.
/// - `index` maps every group number to its position in `groups`, and nothing else;
///   `last`, when set, is one of `index`'s pairs.
#[derive(Debug, Default)]
pub struct PageMap {
    groups: Vec<[PageId; GROUP_PAGES]>,
    index: BTreeMap<u64, usize>,
    last: Cell<Option<(u64, usize)>>,
}

fn group_of(va: u64) -> (u64, usize) {
    (va >> GROUP_SHIFT, ((va >> 12) as usize) & (GROUP_PAGES - 1))
}

impl PageMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The position in `groups` of group number `g`.
    #[inline]
    fn find(&self, g: u64) -> Option<usize> {
        if let Some((lg, at)) = self.last.get()
            && lg == g
        {
            return Some(at);
        }
        let at = *self.index.get(&g)?;
        self.last.set(Some((g, at)));
        Some(at)
    }

    /// The page at `va`, or [`NONE`].
    #[inline]
    pub fn get(&self, va: u64) -> PageId {
        let (g, i) = group_of(va);
        self.find(g).map_or(NONE, |at| self.groups[at][i])
    }

    /// Whether the group holding `va` exists.
    pub fn has_group(&self, va: u64) -> bool {
        self.find(group_of(va).0).is_some()
    }

    /// The entry for `va`, if its group exists.
    #[inline]
    pub fn entry(&mut self, va: u64) -> Option<&mut PageId> {
        let (g, i) = group_of(va);
        let at = self.find(g)?;
        Some(&mut self.groups[at][i])
    }

    /// Sets the page at `va` (the group must exist: see [`PageMap::add_group`]).
    pub fn set(&mut self, va: u64, p: PageId) {
        if let Some(e) = self.entry(va) {
            *e = p;
        }
    }

    /// Creates the (empty) group holding `va`.
    pub fn add_group(&mut self, va: u64) {
        let g = group_of(va).0;
        if self.find(g).is_none() {
            self.groups.push([NONE; GROUP_PAGES]);
            self.index.insert(g, self.groups.len() - 1);
        }
    }

    /// The entries of the group with base address `base` (2 MiB aligned), creating it empty
    /// if missing.
    pub fn group_mut(&mut self, base: u64) -> &mut [PageId; GROUP_PAGES] {
        self.add_group(base);
        let at = self.find(group_of(base).0).unwrap_or(0);
        &mut self.groups[at]
    }

    /// Calls `f(va, page)` for every page in [`start`, `end`), from the highest address
    /// down, and clears the entries. (Freed pages go on a stack, so a range freed top down
    /// comes back from the pool bottom up, in the order it had: runs of consecutive pages
    /// stay runs, which fork maps with one call each.)
    pub fn take_range(&mut self, start: u64, end: u64, mut f: impl FnMut(u64, PageId)) {
        if start >= end {
            return;
        }
        let (g0, _) = group_of(start);
        let (g1, _) = group_of(end - 1);
        // Within one group (most `munmap`s): through the one-entry cache, not the tree.
        let one = if g0 == g1 {
            self.find(g0).map(|at| (g0, at))
        } else {
            None
        };
        let many = (g0 < g1).then(|| self.index.range(g0..=g1).rev().map(|(&g, &at)| (g, at)));
        for (g, at) in one.into_iter().chain(many.into_iter().flatten()) {
            let base = g << GROUP_SHIFT;
            let (from, to) = span(base, start, end);
            for k in (from..to).rev() {
                let e = &mut self.groups[at][k];
                if *e != NONE {
                    let p = core::mem::replace(e, NONE);
                    f(base + (k as u64) * 4096, p);
                }
            }
        }
    }

    /// Calls `f(va, page)` for every page in [`start`, `end`).
    pub fn for_each(&self, start: u64, end: u64, mut f: impl FnMut(u64, PageId)) {
        for (base, grp, from, to) in self.groups_in(start, end) {
            for (k, &p) in grp[from..to].iter().enumerate() {
                if p != NONE {
                    f(base + ((from + k) as u64) * 4096, p);
                }
            }
        }
    }

    /// The groups overlapping [`start`, `end`) as (group base address, entries from, to).
    pub fn groups_in(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, &[PageId; GROUP_PAGES], usize, usize)> {
        let (g0, g1) = if start < end {
            (group_of(start).0, group_of(end - 1).0)
        } else {
            (1, 0)
        };
        // A range within one group (most regions, at fork) goes through the one-entry
        // cache, not the tree.
        let one = if g0 == g1 {
            self.find(g0).map(|at| (g0, at))
        } else {
            None
        };
        let many = (g0 < g1).then(|| self.index.range(g0..=g1).map(|(&g, &at)| (g, at)));
        one.into_iter()
            .chain(many.into_iter().flatten())
            .map(move |(g, at)| {
                let base = g << GROUP_SHIFT;
                let (from, to) = span(base, start, end);
                (base, &self.groups[at], from, to)
            })
    }

    /// Resident pages in [`start`, `end`).
    pub fn count(&self, start: u64, end: u64) -> u64 {
        let mut n = 0;
        self.for_each(start, end, |_, _| n += 1);
        n
    }

    /// Every group's base address.
    pub fn group_bases(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.keys().map(|g| g << GROUP_SHIFT)
    }
}

/// The entries of the group at `base` that fall in [`start`, `end`).
fn span(base: u64, start: u64, end: u64) -> (usize, usize) {
    let gend = base + (1 << GROUP_SHIFT);
    let from = ((start.max(base) - base) >> 12) as usize;
    let to = ((end.min(gend) - base).div_ceil(4096)) as usize;
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_counts_and_reuses() {
        let mut pool = Pool::new();
        assert_eq!(pool.take(true), None);
        assert_eq!(pool.add_chunk(), 0);
        assert_eq!(pool.free(), 511);
        let a = pool.take(true).unwrap();
        assert_eq!(
            a,
            Taken {
                page: 1,
                dirty: false
            }
        );
        let b = pool.take(false).unwrap();
        assert_eq!(b.page, 2);
        assert_eq!(pool.in_use(), 2);
        pool.share(a.page);
        assert_eq!(pool.count(a.page), 2);
        assert!(!pool.release(a.page));
        assert!(pool.release(a.page));
        assert_eq!(pool.in_use(), 1);
        // A dirty page goes to uses that overwrite it; clean ones to those that need zeroes.
        assert_eq!(
            pool.take(false),
            Some(Taken {
                page: 1,
                dirty: true
            })
        );
        assert_eq!(pool.take(true).unwrap().page, 3);
        // The zero page is never counted or freed.
        pool.share(ZERO_PAGE);
        assert_eq!(pool.count(ZERO_PAGE), 0);
        assert!(!pool.release(ZERO_PAGE));
        assert_eq!(pool.add_chunk(), 1);
        assert_eq!(pool.free(), 508 + 512);
    }

    #[test]
    fn pool_falls_back_to_dirty_pages() {
        let mut pool = Pool::new();
        pool.add_chunk();
        let pages: Vec<_> = (0..511).map(|_| pool.take(true).unwrap().page).collect();
        assert_eq!(pool.take(true), None);
        pool.release(pages[7]);
        assert_eq!(
            pool.take(true),
            Some(Taken {
                page: pages[7],
                dirty: true
            })
        );
    }

    #[test]
    fn page_map_ranges() {
        let mut m = PageMap::new();
        let base = 0x40_0000u64;
        assert_eq!(m.get(base), NONE);
        m.add_group(base);
        m.add_group(base + (2 << 20));
        m.set(base + 4096 * 511, 7);
        m.set(base + (2 << 20), 8);
        m.set(base + (2 << 20) + 4096, 9);
        assert_eq!(m.get(base + 4096 * 511 + 5), 7);
        assert_eq!(m.count(base, base + (4 << 20)), 3);
        assert_eq!(m.count(base + 4096 * 511, base + (2 << 20) + 1), 2);
        assert_eq!(m.count(0, 1), 0);
        let mut seen = Vec::new();
        m.take_range(base + (2 << 20), base + (4 << 20), |va, p| {
            seen.push((va, p))
        });
        assert_eq!(seen, [(base + (2 << 20) + 4096, 9), (base + (2 << 20), 8)]);
        assert_eq!(m.count(base, base + (4 << 20)), 1);
        let groups: Vec<_> = m
            .groups_in(base, base + 4096)
            .map(|g| (g.0, g.2, g.3))
            .collect();
        assert_eq!(groups, [(base, 0, 1)]);
        assert_eq!(m.groups_in(5, 5).count(), 0);
    }
}
