//! A task's region map: sorted, non-overlapping `[start, end)` ranges of whole pages, each
//! with a kind and a protection. Pure bookkeeping; the pages live in [`crate::pages`].
//!
//! # Invariants
//! - `regions` is sorted by `start`; regions do not overlap; `start < end`; both are page
//!   aligned.
//! - At most [`MAX_REGIONS`] regions: an operation that would make more is `ENOMEM` and
//!   changes nothing (as Linux's `vm.max_map_count`), and so is one whose memory vm's heap
//!   cannot give (the list grows fallibly).
//! - Neighbours that touch and have the same protection and kind are one region:
//!   `insert` and `protect` merge them again (so alternating `mprotect`s never grow the
//!   list beyond what the protections really differ in).

use alloc::vec::Vec;
use proto::object::Pager;
use proto::{Errno, PAGE_SIZE};

/// Where an object region's pages come from: its pager and the handle vm claimed.
pub type Source = (Pager, u64);

/// What backs a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Private anonymous memory: zero-filled on first touch, copy-on-write after fork.
    /// (`MAP_SHARED | MAP_ANONYMOUS` memory is an [`Kind::Object`] region of an anonymous
    /// object of the shm server.)
    Anon,
    /// A segment of an ELF file in the initrd: the file bytes of
    /// [`vaddr`, `vaddr + file_size`) come from `initrd[initrd_offset..]`, zeroes after.
    /// Private (COW). The fields are absolute, so splitting the region keeps them valid.
    Image {
        vaddr: u64,
        initrd_offset: u64,
        file_size: u64,
    },
    /// A frame init owns (the IPC buffer), mapped when the region was made: `frame` is vm's
    /// copy of its capability. Never paged, never copied by fork.
    Fixed { frame: u64 },
    /// A memory object another pager owns (a file, a shm object): the byte at `vaddr` is the
    /// object's byte `offset` (absolute, so splitting the region keeps them valid). Shared:
    /// writes reach the object; private: the first write copies the page into vm's own.
    /// Bytes at or past address `limit` read as zero (`u64::MAX`: no limit; private regions
    /// only: the end of an ELF segment's file part, where `.bss` starts): the page holding
    /// `limit` is always one of vm's own, a copy of the object's page with its tail cleared.
    ///
    /// `handle` is the one vm claimed for the mapping (it names it in every request to the
    /// pager; regions split from one mapping, and a fork child's copies, share it);
    /// `object` is the pager's object behind it, the same for every handle of one object
    /// (vm keeps one capability per block of it). `writable`: whether the handle lets a
    /// shared region write (its descriptor was open for writing); a shared region without
    /// it never gets `PROT_WRITE` (`EACCES` at `mmap` and `mprotect`).
    Object {
        pager: Pager,
        handle: u64,
        object: u64,
        writable: bool,
        vaddr: u64,
        offset: u64,
        shared: bool,
        limit: u64,
    },
}

impl Kind {
    /// Whether writes share pages with other address spaces instead of copying them.
    pub fn is_shared(self) -> bool {
        matches!(self, Kind::Object { shared: true, .. })
    }

    /// The memory object behind the region, as (pager, object), if it is one.
    pub fn object(self) -> Option<(Pager, u64)> {
        match self {
            Kind::Object { pager, object, .. } => Some((pager, object)),
            _ => None,
        }
    }

    /// The handle vm names the region's object by, as (pager, handle), if it is one.
    pub fn handle(self) -> Option<Source> {
        match self {
            Kind::Object { pager, handle, .. } => Some((pager, handle)),
            _ => None,
        }
    }

    /// Whether the region may be given `PROT_WRITE`: always, except a shared object region
    /// whose handle is read-only.
    pub fn may_write(self) -> bool {
        !matches!(
            self,
            Kind::Object {
                shared: true,
                writable: false,
                ..
            }
        )
    }

    /// The object offset of address `va` of an object region.
    pub fn object_offset(self, va: u64) -> Option<u64> {
        match self {
            Kind::Object { vaddr, offset, .. } => Some(offset.wrapping_add(va.wrapping_sub(vaddr))),
            _ => None,
        }
    }

    /// The address from which an object region reads as zero (`u64::MAX` for none).
    pub fn limit(self) -> u64 {
        match self {
            Kind::Object { limit, .. } => limit,
            _ => u64::MAX,
        }
    }

    /// Whether vm supplies the region's pages on demand.
    pub fn is_paged(self) -> bool {
        !matches!(self, Kind::Fixed { .. })
    }
}

/// The most regions a task may have (Linux's default `vm.max_map_count`).
pub const MAX_REGIONS: usize = 65530;
/// Room the list keeps beyond its length: the two splits of one operation.
const SPARE: usize = 2;

/// One region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    /// `proto::prot` bits.
    pub prot: u64,
    pub kind: Kind,
}

impl Region {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }

    /// Whether `next` continues this region: it starts where this one ends, with the same
    /// protection and kind (kinds hold absolute addresses and offsets, so equal kinds
    /// describe one mapping).
    fn joins(&self, next: &Region) -> bool {
        self.end == next.start && self.prot == next.prot && self.kind == next.kind
    }
}

/// Rounds up to a page; `None` on overflow.
pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

/// The page-rounded end of [`addr`, `addr + len`) when it is within user space; `None`
/// on overflow or past `USER_END`.
pub fn range_end(addr: u64, len: u64) -> Option<u64> {
    addr.checked_add(len)
        .and_then(page_up)
        .filter(|&e| e <= proto::USER_END)
}

pub fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// The region map of one task.
#[derive(Clone, Debug, Default)]
pub struct RegionMap {
    regions: Vec<Region>,
}

impl RegionMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter()
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Index of the first region whose end is above `addr`.
    fn first_ending_after(&self, addr: u64) -> usize {
        self.regions.partition_point(|r| r.end <= addr)
    }

    /// The regions that overlap [`start`, `end`), in address order (found by binary
    /// search: no walk over the whole list).
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Region> {
        let from = self.first_ending_after(start);
        self.regions[from..]
            .iter()
            .take_while(move |r| r.start < end)
    }

    /// The region holding `addr`.
    pub fn find(&self, addr: u64) -> Option<&Region> {
        let i = self.first_ending_after(addr);
        self.regions.get(i).filter(|r| r.start <= addr)
    }

    /// Whether no region overlaps [`start`, `end`).
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        let i = self.first_ending_after(start);
        self.regions.get(i).is_none_or(|r| r.start >= end)
    }

    /// Whether regions cover every byte of [`start`, `end`).
    pub fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for r in &self.regions[self.first_ending_after(start)..] {
            if at >= end {
                break;
            }
            if r.start > at {
                return false;
            }
            at = r.end;
        }
        at >= end
    }

    /// Adds a region where none is, merged with equal neighbours; `EINVAL` if it overlaps
    /// one or is malformed, `ENOMEM` past [`MAX_REGIONS`] or when the heap has no room.
    pub fn insert(&mut self, r: Region) -> Result<(), Errno> {
        if r.start >= r.end
            || !r.start.is_multiple_of(PAGE_SIZE)
            || !r.end.is_multiple_of(PAGE_SIZE)
            || !self.is_free(r.start, r.end)
        {
            return Err(Errno::EINVAL);
        }
        // Merging with a neighbour adds no region (and with two takes one away).
        let i = self.first_ending_after(r.start);
        let left = i.checked_sub(1).and_then(|j| self.regions.get(j));
        let joins = usize::from(left.is_some_and(|l| l.joins(&r)))
            + usize::from(self.regions.get(i).is_some_and(|n| r.joins(n)));
        self.room_for(1, 1usize.saturating_sub(joins))?;
        self.regions.insert(i, r);
        self.merge_around(r.start, r.end);
        Ok(())
    }

    /// `ENOMEM` unless the list may end `net` regions longer (within [`MAX_REGIONS`]) and
    /// the heap gives it room for `more` now, so that adding them on the way cannot fail.
    /// The list keeps room for [`SPARE`] more than it holds, so that an operation that
    /// splits only to merge again (no net growth) never needs the heap.
    fn room_for(&mut self, more: usize, net: usize) -> Result<(), Errno> {
        if self.regions.len() + net > MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        self.regions
            .try_reserve(more.max(net + SPARE))
            .map_err(|_| Errno::ENOMEM)
    }

    /// How many regions splitting at `start` and `end` adds (0, 1 or 2).
    pub fn splits(&self, start: u64, end: u64) -> usize {
        [start, end]
            .iter()
            .filter(|&&a| self.find(a).is_some_and(|r| r.start < a))
            .count()
    }

    /// By how many regions [`RegionMap::protect`] would make the list longer (0 if it
    /// makes it shorter or keeps it): the pieces it cuts and merges, counted without
    /// changing anything.
    fn protect_growth(&self, start: u64, end: u64, prot: u64) -> usize {
        let lo = self.first_ending_after(start).saturating_sub(1);
        let hi = self.regions.partition_point(|r| r.start <= end);
        let old = hi.saturating_sub(lo);
        let mut new = 0usize;
        let mut prev: Option<Region> = None;
        for r in self.regions.get(lo..hi).unwrap_or(&[]) {
            let cuts = [
                (r.start, r.end.min(start), r.prot),
                (r.start.max(start), r.end.min(end), prot),
                (r.start.max(end), r.end, r.prot),
            ];
            for (s, e, p) in cuts {
                if s >= e {
                    continue;
                }
                let piece = Region {
                    start: s,
                    end: e,
                    prot: p,
                    ..*r
                };
                match prev.as_mut() {
                    Some(q) if q.joins(&piece) => q.end = e,
                    _ => {
                        new += 1;
                        prev = Some(piece);
                    }
                }
            }
        }
        new.saturating_sub(old)
    }

    /// Merges the regions touching [`start`, `end`) (and their outer neighbours) that
    /// continue one another.
    fn merge_around(&mut self, start: u64, end: u64) {
        let first = self.first_ending_after(start).saturating_sub(1);
        let last = self.regions.partition_point(|r| r.start <= end);
        if last <= first + 1 {
            return;
        }
        // One pass over the window: `w` is the region being extended; what merges into it
        // is dropped at the end with one move of the rest of the list.
        let mut w = first;
        for i in first + 1..last {
            let r = self.regions[i];
            if self.regions[w].joins(&r) {
                self.regions[w].end = r.end;
            } else {
                w += 1;
                self.regions[w] = r;
            }
        }
        self.regions.drain(w + 1..last);
    }

    /// A copy of the regions `keep` says yes to (for fork, in one go: sorted and merged
    /// already); `ENOMEM` when the heap has no room for it.
    pub fn try_clone_filtered(&self, keep: impl Fn(&Region) -> bool) -> Result<Self, Errno> {
        let mut regions = Vec::new();
        regions
            .try_reserve_exact(self.regions.iter().filter(|r| keep(r)).count() + SPARE)
            .map_err(|_| Errno::ENOMEM)?;
        regions.extend(self.regions.iter().filter(|r| keep(r)).copied());
        Ok(Self { regions })
    }

    /// Splits the region strictly containing `addr` (if any) into two at `addr`.
    fn split_at(&mut self, addr: u64) {
        let i = self.first_ending_after(addr);
        if let Some(r) = self.regions.get_mut(i)
            && r.start < addr
        {
            let mut upper = *r;
            r.end = addr;
            upper.start = addr;
            self.regions.insert(i + 1, upper);
        }
    }

    /// The index range of the regions inside [`start`, `end`) after splitting at both ends.
    fn carve(&mut self, start: u64, end: u64) -> core::ops::Range<usize> {
        self.split_at(start);
        self.split_at(end);
        let from = self.first_ending_after(start);
        let to = self.regions.partition_point(|r| r.start < end);
        from..to.max(from)
    }

    /// Removes every part of a region in [`start`, `end`), splitting regions at the ends;
    /// `removed` sees each removed piece. `ENOMEM` (and nothing changes) when a split would
    /// pass [`MAX_REGIONS`] or the heap has no room (a hole in one region); removing whole
    /// regions never fails.
    pub fn remove_range(
        &mut self,
        start: u64,
        end: u64,
        mut removed: impl FnMut(&Region),
    ) -> Result<(), Errno> {
        if start >= end {
            return Ok(());
        }
        // Splitting adds regions that are then removed again, except for a hole in one
        // region: its two ends stay.
        let hole = self
            .find(start)
            .is_some_and(|r| r.start < start && r.end > end);
        self.room_for(self.splits(start, end), usize::from(hole))?;
        let range = self.carve(start, end);
        for r in self.regions.drain(range) {
            removed(&r);
        }
        Ok(())
    }

    /// Removes the regions `keep` says no to.
    pub fn retain(&mut self, keep: impl FnMut(&Region) -> bool) {
        self.regions.retain(keep);
    }

    /// Sets the protection of [`start`, `end`), splitting regions; `ENOMEM` (and nothing
    /// changes) unless regions cover all of it. `changed` sees each region after the change.
    pub fn protect(
        &mut self,
        start: u64,
        end: u64,
        prot: u64,
        mut changed: impl FnMut(&Region),
    ) -> Result<(), Errno> {
        if !self.is_covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        if start >= end {
            return Ok(());
        }
        let splits = self.splits(start, end);
        let grows = self.protect_growth(start, end, prot);
        self.room_for(splits, grows)?;
        let range = self.carve(start, end);
        for r in &mut self.regions[range] {
            r.prot = prot;
            changed(r);
        }
        self.merge_around(start, end);
        Ok(())
    }

    /// The highest `len`-byte free range that ends at or below `top` and starts at or above
    /// `bottom` (first fit, top down).
    pub fn place_top_down(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        let mut hole_end = top;
        let below_top = self.regions.partition_point(|r| r.start < top);
        for r in self.regions[..below_top].iter().rev() {
            let hole_start = r.end.max(bottom);
            if hole_end >= hole_start && hole_end - hole_start >= len {
                return Some(hole_end - len);
            }
            hole_end = hole_end.min(r.start);
            if hole_end <= bottom {
                return None;
            }
        }
        (hole_end >= bottom && hole_end - bottom >= len).then(|| hole_end - len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    fn anon(start: u64, end: u64) -> Region {
        Region {
            start,
            end,
            prot: 3,
            kind: Kind::Anon,
        }
    }

    fn spans(m: &RegionMap) -> Vec<(u64, u64, u64)> {
        m.iter().map(|r| (r.start, r.end, r.prot)).collect()
    }

    #[test]
    fn insert_find_and_overlap() {
        let mut m = RegionMap::new();
        m.insert(anon(10 * P, 20 * P)).unwrap();
        m.insert(anon(30 * P, 40 * P)).unwrap();
        m.insert(Region {
            prot: 1,
            ..anon(20 * P, 30 * P)
        })
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.insert(anon(15 * P, 16 * P)), Err(Errno::EINVAL));
        assert_eq!(m.insert(anon(5 * P, 11 * P)), Err(Errno::EINVAL));
        assert_eq!(m.insert(anon(5 * P, 5 * P)), Err(Errno::EINVAL));
        assert_eq!(m.insert(anon(5 * P + 1, 6 * P)), Err(Errno::EINVAL));
        assert_eq!(m.find(10 * P).map(|r| r.start), Some(10 * P));
        assert_eq!(m.find(20 * P - 1).map(|r| r.start), Some(10 * P));
        assert_eq!(m.find(20 * P).map(|r| r.start), Some(20 * P));
        assert_eq!(m.find(40 * P), None);
        assert_eq!(m.find(9 * P), None);
        assert!(m.is_free(0, 10 * P));
        assert!(!m.is_free(0, 10 * P + 1));
        assert!(m.is_covered(10 * P, 40 * P));
        assert!(!m.is_covered(9 * P, 40 * P));
    }

    #[test]
    fn remove_splits() {
        let mut m = RegionMap::new();
        m.insert(anon(10 * P, 20 * P)).unwrap();
        m.insert(anon(30 * P, 40 * P)).unwrap();
        let mut removed = Vec::new();
        m.remove_range(15 * P, 35 * P, |r| removed.push((r.start, r.end)))
            .unwrap();
        assert_eq!(removed, [(15 * P, 20 * P), (30 * P, 35 * P)]);
        assert_eq!(spans(&m), [(10 * P, 15 * P, 3), (35 * P, 40 * P, 3)]);
        // A hole in the middle of one region.
        m.remove_range(11 * P, 12 * P, |_| {}).unwrap();
        assert_eq!(
            spans(&m),
            [
                (10 * P, 11 * P, 3),
                (12 * P, 15 * P, 3),
                (35 * P, 40 * P, 3)
            ]
        );
        // Nothing there: nothing happens.
        m.remove_range(50 * P, 60 * P, |_| panic!()).unwrap();
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn protect_splits_and_needs_cover() {
        let mut m = RegionMap::new();
        m.insert(anon(10 * P, 20 * P)).unwrap();
        m.insert(anon(20 * P, 30 * P)).unwrap();
        assert_eq!(m.protect(5 * P, 12 * P, 1, |_| {}), Err(Errno::ENOMEM));
        assert_eq!(m.protect(25 * P, 31 * P, 1, |_| {}), Err(Errno::ENOMEM));
        assert_eq!(m.len(), 1);
        let mut n = 0;
        m.protect(15 * P, 25 * P, 1, |r| {
            n += 1;
            assert_eq!(r.prot, 1);
        })
        .unwrap();
        // The two touching regions were merged when inserted: one region changed.
        assert_eq!(n, 1);
        assert_eq!(
            spans(&m),
            [
                (10 * P, 15 * P, 3),
                (15 * P, 25 * P, 1),
                (25 * P, 30 * P, 3)
            ]
        );
    }

    #[test]
    fn equal_neighbours_merge() {
        let mut m = RegionMap::new();
        m.insert(anon(10 * P, 20 * P)).unwrap();
        m.insert(anon(20 * P, 30 * P)).unwrap();
        m.insert(anon(5 * P, 10 * P)).unwrap();
        assert_eq!(spans(&m), [(5 * P, 30 * P, 3)]);
        // Alternating protections split; putting them back merges everything again.
        for i in 0..25 {
            if i % 2 == 1 {
                m.protect((5 + i) * P, (6 + i) * P, 1, |_| {}).unwrap();
            }
        }
        assert_eq!(m.len(), 25);
        for i in 0..25 {
            if i % 2 == 1 {
                m.protect((5 + i) * P, (6 + i) * P, 3, |_| {}).unwrap();
            }
        }
        assert_eq!(spans(&m), [(5 * P, 30 * P, 3)]);
        // Different kinds or protections stay apart; so do regions that do not touch.
        let image = Region {
            start: 40 * P,
            end: 41 * P,
            prot: 3,
            kind: Kind::Image {
                vaddr: 40 * P,
                initrd_offset: 0,
                file_size: 10,
            },
        };
        m.insert(anon(30 * P, 31 * P)).unwrap();
        m.insert(image).unwrap();
        m.insert(anon(41 * P, 42 * P)).unwrap();
        m.insert(Region {
            prot: 1,
            ..anon(42 * P, 43 * P)
        })
        .unwrap();
        assert_eq!(
            spans(&m),
            [
                (5 * P, 31 * P, 3),
                (40 * P, 41 * P, 3),
                (41 * P, 42 * P, 3),
                (42 * P, 43 * P, 1)
            ]
        );
        // A split image region merges back (its fields are absolute).
        m.protect(40 * P, 41 * P, 1, |_| {}).unwrap();
        m.protect(40 * P, 41 * P, 3, |_| {}).unwrap();
        assert_eq!(m.len(), 4);
        // munmap of a hole, then mapping it again with the same attributes: one region.
        m.remove_range(10 * P, 12 * P, |_| {}).unwrap();
        assert_eq!(m.len(), 5);
        m.insert(anon(10 * P, 12 * P)).unwrap();
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn region_count_is_limited() {
        let mut m = RegionMap::new();
        // Alternating protections over one big region, up to the limit.
        let n = MAX_REGIONS as u64;
        m.insert(anon(P, (n + 10) * P)).unwrap();
        for i in (1..n).step_by(2) {
            m.protect(i * P, (i + 1) * P, 1, |_| {}).unwrap();
        }
        // One split more than allowed: refused, nothing changes.
        assert_eq!(m.len(), MAX_REGIONS);
        let before = spans(&m);
        assert_eq!(
            m.protect(n * P + P, n * P + 2 * P, 1, |_| {}),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            m.remove_range(n * P + P, n * P + 2 * P, |_| {}),
            Err(Errno::ENOMEM)
        );
        assert_eq!(
            m.insert(anon((n + 20) * P, (n + 21) * P)),
            Err(Errno::ENOMEM)
        );
        assert_eq!(spans(&m), before);
        // Changes that do not add regions still work: removing the last region's tail,
        // and a protection that merges three regions into one.
        m.remove_range(n * P + 5 * P, (n + 10) * P, |_| {}).unwrap();
        assert_eq!(m.len(), MAX_REGIONS);
        m.protect(2 * P, 3 * P, 1, |_| {}).unwrap();
        assert_eq!(m.len(), MAX_REGIONS - 2);
        m.insert(anon((n + 20) * P, (n + 21) * P)).unwrap();
        // At the limit, changes that merge as much as they split still work: the whole
        // range back to one protection, and a region that joins its neighbour.
        m.insert(anon((n + 30) * P, (n + 31) * P)).unwrap();
        assert_eq!(m.len(), MAX_REGIONS);
        m.insert(anon((n + 31) * P, (n + 32) * P)).unwrap();
        assert_eq!(m.len(), MAX_REGIONS);
        m.protect(P, (n + 5) * P, 3, |_| {}).unwrap();
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn placement_top_down_first_fit() {
        let mut m = RegionMap::new();
        let top = 100 * P;
        assert_eq!(m.place_top_down(10 * P, P, top), Some(90 * P));
        m.insert(anon(90 * P, 100 * P)).unwrap();
        assert_eq!(m.place_top_down(10 * P, P, top), Some(80 * P));
        m.insert(anon(60 * P, 85 * P)).unwrap();
        // The 5-page hole at 85..90 is too small for 10 pages but fits 5.
        assert_eq!(m.place_top_down(10 * P, P, top), Some(50 * P));
        assert_eq!(m.place_top_down(5 * P, P, top), Some(85 * P));
        // Regions above the top do not matter.
        m.insert(anon(200 * P, 300 * P)).unwrap();
        assert_eq!(m.place_top_down(5 * P, P, top), Some(85 * P));
        // No room: ENOMEM for the caller.
        assert_eq!(m.place_top_down(60 * P, P, top), None);
        assert_eq!(m.place_top_down(59 * P, P, top), Some(P));
        m.insert(anon(P, 60 * P)).unwrap();
        assert_eq!(m.place_top_down(P, P, top), Some(89 * P));
        m.insert(anon(85 * P, 90 * P)).unwrap();
        assert_eq!(m.place_top_down(P, P, top), None);
    }
}
