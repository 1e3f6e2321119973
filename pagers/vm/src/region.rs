//! A task's region map: sorted, non-overlapping `[start, end)` ranges of whole pages, each
//! with a kind and a protection. Pure bookkeeping; the pages live in [`crate::pages`].
//!
//! # Invariants
//! - `regions` is keyed by `start`; regions do not overlap; `start < end`; both are page
//!   aligned and below `USER_END`. After each operation it is a list of at most
//!   [`LIST_MAX`] regions or a tree of more than [`LIST_BACK`] (unless the heap had no room
//!   for the other form: then only slower).
//! - `gaps` is `None` while `regions` is a list; with a tree it holds exactly the free
//!   ranges of [0, `USER_END`) between regions.
//! - `handles` counts, for each memory-object handle, the regions that name it.
//! - At most [`MAX_REGIONS`] regions: an operation that would make more is `ENOMEM` and
//!   changes nothing (as Linux's `vm.max_map_count`). vm refuses operations that would
//!   make its heap hold more once the heap runs low (`Machine::heap_low`), so that the
//!   tree's nodes always find room.
//! - Neighbours that touch and have the same protection and kind are one region:
//!   `insert` and `protect` merge them again (so alternating `mprotect`s never grow the
//!   list beyond what the protections really differ in).

use crate::gaps::{Gaps, Key};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::Bound::{self, Excluded, Included};
use core::ops::RangeBounds;
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

/// A handle as [`RegionMap::handles`] keeps it.
fn handle_key((pager, handle): Source) -> (u64, u64) {
    (pager as u64, handle)
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

/// Up to this many regions the map is a sorted list without a gap index (a task's own
/// text, data, heap and stack, and a few mappings): a tree and its gap index cost more
/// than a short list does (`mmap` in a task of a few regions: 3,534 instructions with
/// them). Past it, the tree and the gap index.
pub const LIST_MAX: usize = 32;
/// A tree that shrinks to this many regions becomes a list again (below [`LIST_MAX`], so
/// that a map near the threshold does not change form back and forth).
pub const LIST_BACK: usize = 16;

/// The regions by start address: a sorted list while there are few (at most [`LIST_MAX`]),
/// a [`Slab`] tree beyond. [`RegionMap`] changes the form after each operation
/// (`settle`); in between either form holds any number of regions.
#[derive(Clone, Debug)]
enum Tree {
    /// The list, and the index [`Tree::find`] found last while nothing changed since (as
    /// [`Slab::last`]).
    List(Vec<Region>, Cell<Option<u32>>),
    Map(Slab),
}

impl Default for Tree {
    fn default() -> Self {
        Tree::List(Vec::new(), Cell::new(None))
    }
}

/// One of two iterators (the list's and the tree's).
enum Either<A, B> {
    A(A),
    B(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for Either<A, B> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            Either::A(a) => a.next(),
            Either::B(b) => b.next(),
        }
    }
}

impl<T, A: DoubleEndedIterator<Item = T>, B: DoubleEndedIterator<Item = T>> DoubleEndedIterator
    for Either<A, B>
{
    fn next_back(&mut self) -> Option<T> {
        match self {
            Either::A(a) => a.next_back(),
            Either::B(b) => b.next_back(),
        }
    }
}

/// The index in the sorted `list` of the first region whose start lies in or past the
/// lower bound `b` (as a range's start) or past the upper bound `b` (as a range's end).
fn list_bound(list: &[Region], b: Bound<&u64>, upper: bool) -> usize {
    match (b, upper) {
        (Bound::Unbounded, false) => 0,
        (Bound::Unbounded, true) => list.len(),
        (Bound::Included(&a), false) | (Bound::Excluded(&a), true) => {
            list.partition_point(|r| r.start < a)
        }
        (Bound::Excluded(&a), false) | (Bound::Included(&a), true) => {
            list.partition_point(|r| r.start <= a)
        }
    }
}

impl Tree {
    fn len(&self) -> usize {
        match self {
            Tree::List(l, _) => l.len(),
            Tree::Map(s) => s.index.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn range<R: RangeBounds<u64>>(
        &self,
        r: R,
    ) -> impl DoubleEndedIterator<Item = (&u64, &Region)> + '_ {
        match self {
            Tree::List(l, _) => {
                let lo = list_bound(l, r.start_bound(), false);
                let hi = list_bound(l, r.end_bound(), true).max(lo);
                Either::A(l[lo..hi].iter().map(|r| (&r.start, r)))
            }
            Tree::Map(s) => Either::B(s.range(r).map(|r| (&r.start, r))),
        }
    }

    /// Every region in address order (a tree's values in order: no range bounds to
    /// compare at each step, which fork's walk over every region notices).
    fn values(&self) -> impl DoubleEndedIterator<Item = &Region> + '_ {
        match self {
            Tree::List(l, _) => Either::A(l.iter()),
            Tree::Map(s) => Either::B(s.index.values().map(|&i| s.at(i))),
        }
    }

    /// The region holding `addr`.
    fn find(&self, addr: u64) -> Option<&Region> {
        match self {
            Tree::List(l, last) => {
                if let Some(r) = last.get().and_then(|i| l.get(i as usize))
                    && r.contains(addr)
                {
                    return Some(r);
                }
                let i = l.partition_point(|r| r.start <= addr);
                let r = l[..i].last().filter(|r| r.end > addr)?;
                last.set(Some(i as u32 - 1));
                Some(r)
            }
            Tree::Map(s) => s.find(addr),
        }
    }

    fn get_mut(&mut self, start: &u64) -> Option<&mut Region> {
        self.forget();
        match self {
            Tree::List(l, _) => {
                let i = l.binary_search_by_key(start, |r| r.start).ok()?;
                l.get_mut(i)
            }
            Tree::Map(s) => s.get_mut(start),
        }
    }

    /// The region with the highest start below `addr`.
    fn last_below_mut(&mut self, addr: u64) -> Option<&mut Region> {
        self.forget();
        match self {
            Tree::List(l, _) => {
                let i = l.partition_point(|r| r.start < addr);
                l[..i].last_mut()
            }
            Tree::Map(s) => s.last_below_mut(addr),
        }
    }

    /// The positions of the last region starting below `addr` and of the first starting at
    /// or above it, for [`Tree::at`] and [`Tree::at_mut`] (valid until a region is added or
    /// removed). Positions rather than copies: a region is 80 bytes, and copying them
    /// cost an `mmap` 500 instructions.
    fn neighbours(&self, addr: u64) -> (Option<u32>, Option<u32>) {
        match self {
            Tree::List(l, _) => {
                let i = l.partition_point(|r| r.start < addr);
                let below = i.checked_sub(1).map(|j| j as u32);
                (below, (i < l.len()).then_some(i as u32))
            }
            Tree::Map(s) => s.neighbours(addr),
        }
    }

    /// The region at position `pos` from [`Tree::neighbours`].
    fn at(&self, pos: u32) -> &Region {
        match self {
            Tree::List(l, _) => &l[pos as usize],
            Tree::Map(s) => s.at(pos),
        }
    }

    /// The region at position `pos` from [`Tree::neighbours`], to change its end or
    /// protection (not its start: [`Tree::move_start`]).
    fn at_mut(&mut self, pos: u32) -> &mut Region {
        self.forget();
        match self {
            Tree::List(l, _) => &mut l[pos as usize],
            Tree::Map(s) => &mut s.slab[pos as usize],
        }
    }

    /// Makes room for `n` more regions without asking the heap again (`ENOMEM` when it has
    /// none; see [`Slab::reserve`]).
    fn reserve(&mut self, n: usize) -> Result<(), Errno> {
        match self {
            Tree::List(l, _) => l.try_reserve(n).map_err(|_| Errno::ENOMEM),
            Tree::Map(s) => s.reserve(n),
        }
    }

    /// A copy: the list, or the slab, its free slots and the tree as they are (a copy of
    /// each, no search); `ENOMEM` when the heap cannot hold the list or the slab.
    fn try_clone(&self) -> Result<Tree, Errno> {
        match self {
            Tree::List(l, _) => {
                let mut list = Vec::new();
                list.try_reserve_exact(l.len()).map_err(|_| Errno::ENOMEM)?;
                list.extend_from_slice(l);
                Ok(Tree::List(list, Cell::new(None)))
            }
            Tree::Map(s) => s.try_clone().map(Tree::Map),
        }
    }

    /// The starts of the regions `f` says yes to, found by a walk over the list or the
    /// slab's array (cheaper than a walk over the tree); in no particular order.
    fn starts_where(&self, f: impl Fn(&Region) -> bool) -> Vec<u64> {
        match self {
            Tree::List(l, _) => l.iter().filter(|r| f(r)).map(|r| r.start).collect(),
            Tree::Map(s) => s
                .slab
                .iter()
                .enumerate()
                // A free slot holds a region that is gone: only those the tree names.
                .filter(|&(i, r)| f(r) && s.index.get(&Key::at(r.start)) == Some(&(i as u32)))
                .map(|(_, r)| r.start)
                .collect(),
        }
    }

    /// Adds or replaces the region at `start` (room reserved first: [`Tree::reserve`]);
    /// the one replaced.
    fn insert(&mut self, start: u64, r: Region) -> Option<Region> {
        self.forget();
        match self {
            Tree::List(l, _) => match l.binary_search_by_key(&start, |r| r.start) {
                Ok(i) => Some(core::mem::replace(&mut l[i], r)),
                Err(i) => {
                    l.insert(i, r);
                    None
                }
            },
            Tree::Map(s) => s.insert(start, r),
        }
    }

    fn remove(&mut self, start: &u64) -> Option<Region> {
        self.forget();
        match self {
            Tree::List(l, _) => {
                let i = l.binary_search_by_key(start, |r| r.start).ok()?;
                Some(l.remove(i))
            }
            Tree::Map(s) => s.remove(start),
        }
    }

    /// Moves the start of the region at `old` to `new` (no other region may start between
    /// them): in place in a list, one slot moved in the tree (no slab change).
    fn move_start(&mut self, old: u64, new: u64) {
        self.forget();
        match self {
            Tree::List(l, _) => {
                if let Ok(i) = l.binary_search_by_key(&old, |r| r.start) {
                    l[i].start = new;
                }
            }
            Tree::Map(s) => s.move_start(old, new),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Region) -> bool) {
        self.forget();
        match self {
            Tree::List(l, _) => l.retain(|r| keep(r)),
            Tree::Map(s) => s.retain(keep),
        }
    }

    /// The form the region count calls for, if the heap has room for it (else the form
    /// stays, which is only slower). `true` when it changed.
    fn settle(&mut self) -> bool {
        match self {
            Tree::List(l, _) if l.len() > LIST_MAX => {
                match Slab::try_from_sorted(l.iter().copied(), l.len()) {
                    Ok(s) => *self = Tree::Map(s),
                    Err(_) => return false,
                }
            }
            Tree::Map(s) if s.index.len() <= LIST_BACK => {
                let mut list = Vec::new();
                if list.try_reserve_exact(LIST_MAX).is_err() {
                    return false;
                }
                list.extend(s.index.values().map(|&i| *s.at(i)));
                *self = Tree::List(list, Cell::new(None));
            }
            _ => return false,
        }
        true
    }

    /// Forgets [`Tree::find`]'s last answer (before a change).
    fn forget(&self) {
        match self {
            Tree::List(_, last) => last.set(None),
            Tree::Map(s) => s.last.set(None),
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Tree::List(..))
    }
}

/// Many regions by start address: a B-tree of small entries (start → slot) over a slab of
/// regions. A region is 80 bytes, and a B-tree moves a node's values on every insertion and
/// removal: with the regions themselves in the tree, that copying was most of an `mmap`.
#[derive(Clone, Debug, Default)]
struct Slab {
    index: BTreeMap<Key, u32>,
    slab: Vec<Region>,
    /// Slots of `slab` no entry names.
    free: Vec<u32>,
    /// The slot [`Slab::find`] found last, while nothing changed since: page faults come
    /// in runs in one region, and this saves them the tree search (forgotten by every
    /// change, so that it never names a freed or moved region).
    last: Cell<Option<u32>>,
    /// Two neighbours [`Slab::neighbours`] found or kept: the slots of a region and of the
    /// one right after it (`None`: none after it). Runs of `mmap`s and `munmap`s work next
    /// to one place (top-down placement puts each new region right below the last), and
    /// this saves them the tree searches. Kept by changes that keep the two next to each
    /// other (ends, [`Slab::move_start`], an insertion or removal elsewhere); an insertion
    /// between them keeps the lower one and the new one.
    pair: Cell<Option<(u32, Option<u32>)>>,
}

impl Slab {
    /// See [`Tree::neighbours`].
    fn neighbours(&self, addr: u64) -> (Option<u32>, Option<u32>) {
        if let Some((lo, hi)) = self.pair.get()
            && self.at(lo).start < addr
            && hi.is_none_or(|h| self.at(h).start >= addr)
        {
            return (Some(lo), hi);
        }
        let below = self
            .index
            .range(..Key::at(addr))
            .next_back()
            .map(|(_, &i)| i);
        let above = self.index.range(Key::at(addr)..).next().map(|(_, &i)| i);
        self.pair.set(below.map(|lo| (lo, above)));
        (below, above)
    }

    fn at(&self, slot: u32) -> &Region {
        &self.slab[slot as usize]
    }

    /// The region holding `addr`.
    fn find(&self, addr: u64) -> Option<&Region> {
        if let Some(i) = self.last.get()
            && self.at(i).contains(addr)
        {
            return Some(self.at(i));
        }
        let (_, &i) = self.index.range(..=Key::at(addr)).next_back()?;
        let r = self.at(i);
        if r.contains(addr) {
            self.last.set(Some(i));
            Some(r)
        } else {
            None
        }
    }

    fn get_mut(&mut self, start: &u64) -> Option<&mut Region> {
        self.last.set(None);
        let i = *self.index.get(&Key::at(*start))?;
        self.slab.get_mut(i as usize)
    }

    /// The region with the highest start below `addr`.
    fn last_below_mut(&mut self, addr: u64) -> Option<&mut Region> {
        self.last.set(None);
        let (_, &i) = self.index.range(..Key::at(addr)).next_back()?;
        self.slab.get_mut(i as usize)
    }

    /// Makes room for `n` more regions without asking the heap again (`ENOMEM` when it has
    /// none): spare slab slots, and a free list as long as the slab, so that adding them and
    /// removing any later allocates nothing but tree nodes (which vm's low-water check on
    /// its heap covers). A doubling the heap cannot give becomes a small step.
    fn reserve(&mut self, n: usize) -> Result<(), Errno> {
        let need = n.saturating_sub(self.free.len());
        if self.slab.capacity() - self.slab.len() < need {
            self.slab
                .try_reserve(need)
                .or_else(|_| self.slab.try_reserve_exact(need))
                .map_err(|_| Errno::ENOMEM)?;
        }
        let cap = self.slab.capacity();
        if self.free.capacity() < cap {
            self.free
                .try_reserve_exact(cap - self.free.len())
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// See [`Tree::try_clone`].
    fn try_clone(&self) -> Result<Slab, Errno> {
        let mut slab = Vec::new();
        let mut free = Vec::new();
        slab.try_reserve_exact(self.slab.len())
            .map_err(|_| Errno::ENOMEM)?;
        free.try_reserve_exact(self.slab.len())
            .map_err(|_| Errno::ENOMEM)?;
        slab.extend_from_slice(&self.slab);
        free.extend_from_slice(&self.free);
        Ok(Slab {
            index: self.index.clone(),
            slab,
            free,
            last: Cell::new(None),
            pair: Cell::new(None),
        })
    }

    /// A tree of the `n` regions `sorted` yields (by start), in one pass (the slab in
    /// address order, the tree from its sorted keys); `ENOMEM` when the heap cannot hold
    /// the slab.
    fn try_from_sorted(sorted: impl Iterator<Item = Region>, n: usize) -> Result<Slab, Errno> {
        let mut slab = Vec::new();
        let mut free = Vec::new();
        slab.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        free.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
        slab.extend(sorted.take(n));
        // A key changes only as `Key` says.
        #[allow(clippy::mutable_key_type)]
        let index = slab
            .iter()
            .enumerate()
            .map(|(i, r)| (Key::at(r.start), i as u32))
            .collect();
        Ok(Slab {
            index,
            slab,
            free,
            last: Cell::new(None),
            pair: Cell::new(None),
        })
    }

    /// Adds or replaces the region at `start` (room reserved first: [`Slab::reserve`]);
    /// the one replaced.
    fn insert(&mut self, start: u64, r: Region) -> Option<Region> {
        self.last.set(None);
        if let Some(old) = self.get_mut(&start) {
            return Some(core::mem::replace(old, r));
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = r;
                slot
            }
            None => {
                self.slab.push(r);
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(Key::at(start), slot);
        if let Some((lo, hi)) = self.pair.get()
            && self.at(lo).start < start
            && hi.is_none_or(|h| self.at(h).start > start)
        {
            self.pair.set(Some((lo, Some(slot))));
        }
        None
    }

    fn remove(&mut self, start: &u64) -> Option<Region> {
        self.last.set(None);
        let slot = self.index.remove(&Key::at(*start))?;
        self.free.push(slot);
        if let Some((lo, hi)) = self.pair.get()
            && (lo == slot || hi == Some(slot))
        {
            self.pair.set(None);
        }
        Some(*self.at(slot))
    }

    /// The key changes in place (see [`Key`]): taking it out and putting the new one in
    /// cost 800 to 1,100 instructions at 16,000 regions, as the B-tree merged and split a
    /// leaf at its lowest fill again at each step of a run of top-down `mmap`s.
    fn move_start(&mut self, old: u64, new: u64) {
        self.last.set(None);
        if let Some((key, &slot)) = self.index.get_key_value(&Key::at(old)) {
            key.0.set(new);
            self.slab[slot as usize].start = new;
        }
    }

    /// The regions whose start is in `r`, in address order.
    fn range<R: RangeBounds<u64>>(&self, r: R) -> impl DoubleEndedIterator<Item = &Region> + '_ {
        let key = |b: Bound<&u64>| b.map(|&a| Key::at(a));
        self.index
            .range((key(r.start_bound()), key(r.end_bound())))
            .map(|(_, &i)| self.at(i))
    }

    fn retain(&mut self, mut keep: impl FnMut(&Region) -> bool) {
        self.last.set(None);
        self.pair.set(None);
        let (slab, free) = (&self.slab, &mut self.free);
        self.index.retain(|_, &mut i| {
            let k = keep(&slab[i as usize]);
            if !k {
                free.push(i);
            }
            k
        });
    }
}

/// The region map of one task: the regions in a B-tree by start address, and the free gaps
/// between them in a [`Gaps`] index, so that finding, adding, cutting and placing a region
/// costs a few tree operations whatever the task's region count (a sorted list moved every
/// region behind the change: 760,000 instructions per `mmap` at 8,000 regions). Up to
/// [`LIST_MAX`] regions they are a sorted list instead, without a gap index: placement
/// looks at the gaps between them from the top down.
#[derive(Clone, Debug)]
pub struct RegionMap {
    regions: Tree,
    /// The free ranges of [0, `USER_END`) between regions, while `regions` is a tree
    /// (`None` while it is a list).
    gaps: Option<Gaps>,
    /// How many regions name each memory-object handle, (pager, handle) → count (none
    /// for a handle no region names): whether a task still maps a handle is one lookup,
    /// not a walk over its regions ([`RegionMap::maps_handle`]).
    handles: BTreeMap<(u64, u64), u32>,
}

/// The end of the address range the gaps cover.
const SPACE_END: u64 = proto::USER_END;

impl Default for RegionMap {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionMap {
    pub fn new() -> Self {
        Self {
            regions: Tree::default(),
            gaps: None,
            handles: BTreeMap::new(),
        }
    }

    /// Whether a region names handle `h`.
    pub fn maps_handle(&self, h: Source) -> bool {
        self.handles.contains_key(&handle_key(h))
    }

    /// The handles regions name, each once, in no particular order.
    pub fn handles(&self) -> impl Iterator<Item = Source> + '_ {
        self.handles
            .keys()
            .filter_map(|&(p, h)| Pager::try_from(p).ok().map(|p| (p, h)))
    }

    /// Counts a region of `kind` in ([`RegionMap::handles`]) or out.
    fn count(&mut self, kind: Kind, added: bool) {
        let Some(h) = kind.handle() else { return };
        let key = handle_key(h);
        if added {
            *self.handles.entry(key).or_insert(0) += 1;
        } else if let Some(n) = self.handles.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.handles.remove(&key);
            }
        }
    }

    /// The tree's insertion and removal, counting handles: every region comes and goes
    /// through these.
    fn tree_insert(&mut self, start: u64, r: Region) {
        self.count(r.kind, true);
        if let Some(old) = self.regions.insert(start, r) {
            self.count(old.kind, false);
        }
    }

    fn tree_remove(&mut self, start: &u64) -> Option<Region> {
        let r = self.regions.remove(start)?;
        self.count(r.kind, false);
        Some(r)
    }

    /// The gap index's changes (nothing while the regions are a list).
    fn gap_add(&mut self, start: u64, end: u64) {
        if let Some(g) = &mut self.gaps {
            g.add(start, end);
        }
    }

    fn gap_remove(&mut self, start: u64, end: u64) {
        if let Some(g) = &mut self.gaps {
            g.remove(start, end);
        }
    }

    fn gap_replace(&mut self, old: (u64, u64), new: (u64, u64)) {
        if let Some(g) = &mut self.gaps {
            g.replace(old, new);
        }
    }

    /// After each change: the regions in the form their number calls for, with the gap
    /// index when they are a tree.
    fn settle(&mut self) {
        if self.regions.settle() {
            self.rebuild_gaps();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The regions that overlap [`start`, `end`), in address order (found by a tree
    /// search: no walk over the whole map).
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Region> {
        let from = match self.regions.range(..=start).next_back() {
            Some((&s, r)) if r.end > start => s,
            _ => start,
        };
        self.regions.range(from..end.max(from)).map(|(_, r)| r)
    }

    /// The region holding `addr`.
    pub fn find(&self, addr: u64) -> Option<&Region> {
        self.regions.find(addr)
    }

    /// Whether no region overlaps [`start`, `end`).
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_none()
    }

    /// Whether regions cover every byte of [`start`, `end`).
    pub fn is_covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for r in self.overlapping(start, end) {
            if r.start > at {
                return false;
            }
            at = r.end;
        }
        at >= end
    }

    /// Adds a region where none is, merged with equal neighbours; `EINVAL` if it overlaps
    /// one or is malformed, `ENOMEM` past [`MAX_REGIONS`]. (vm's heap: the caller refuses a
    /// new region when it runs low, `Machine::heap_low`.)
    pub fn insert(&mut self, r: Region) -> Result<(), Errno> {
        if r.start >= r.end
            || !r.start.is_multiple_of(PAGE_SIZE)
            || !r.end.is_multiple_of(PAGE_SIZE)
            || r.end > SPACE_END
        {
            return Err(Errno::EINVAL);
        }
        // The neighbours: the region below (it must end by `r.start`) and the one above
        // (it must start at `r.end` or later). Two lookups decide everything.
        let (lp, rp) = self.regions.neighbours(r.start);
        let (left, right) = (
            lp.map(|p| self.regions.at(p)),
            rp.map(|p| self.regions.at(p)),
        );
        // The gap the region goes into, from the end of the region below to the start of
        // the one above.
        let (below, above) = (
            left.map_or(0, |l| l.end),
            right.map_or(SPACE_END, |n| n.start),
        );
        if below > r.start || above < r.end {
            return Err(Errno::EINVAL);
        }
        let right_end = right.map_or(0, |n| n.end);
        let joins_left = lp.filter(|_| left.is_some_and(|l| l.joins(&r)));
        let joins_right = right.is_some_and(|n| r.joins(n));
        if joins_left.is_none() && !joins_right && self.regions.len() >= MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        self.regions.reserve(1)?;
        // The gap becomes the parts on either side of the region.
        self.gap_replace((below, above), (below, r.start));
        self.gap_add(r.end, above);
        match (joins_left, joins_right) {
            (Some(l), true) => {
                // (In a list, taking out the one above moves none below it.)
                self.tree_remove(&above);
                self.regions.at_mut(l).end = right_end;
            }
            (Some(l), false) => self.regions.at_mut(l).end = r.end,
            // The region above grows down (as top-down `mmap`s do, one after another).
            (None, true) => self.regions.move_start(above, r.start),
            (None, false) => self.tree_insert(r.start, r),
        }
        self.settle();
        Ok(())
    }

    /// How many regions splitting at `start` and `end` adds (0, 1 or 2).
    pub fn splits(&self, start: u64, end: u64) -> usize {
        [start, end]
            .iter()
            .filter(|&&a| self.find(a).is_some_and(|r| r.start < a))
            .count()
    }

    /// The regions from the one ending at or holding `start` to the one starting at or
    /// holding `end`: what an operation on [`start`, `end`) and its merges can touch.
    fn window(&self, start: u64, end: u64) -> impl Iterator<Item = &Region> {
        let from = self
            .regions
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        self.regions.range(from..=end).map(|(_, r)| r)
    }

    /// By how many regions [`RegionMap::protect`] would make the map larger (0 if it
    /// makes it smaller or keeps it): the pieces it cuts and merges, counted without
    /// changing anything.
    fn protect_growth(&self, start: u64, end: u64, prot: u64) -> usize {
        let mut old = 0usize;
        let mut new = 0usize;
        let mut prev: Option<Region> = None;
        for r in self.window(start, end) {
            old += 1;
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
    /// continue one another. Gaps do not change: merged regions touch.
    fn merge_around(&mut self, start: u64, end: u64) {
        let mut at = self
            .regions
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        // `at`: the region being extended; each step looks at the one right after it.
        loop {
            let next = self.regions.range((Excluded(at), Included(end))).next();
            let Some((k, r)) = next.map(|(&k, &r)| (k, r)) else {
                break;
            };
            match self.regions.get_mut(&at) {
                Some(into) if into.joins(&r) => {
                    into.end = r.end;
                    self.tree_remove(&k);
                }
                _ => at = k,
            }
        }
    }

    /// A copy of the regions `keep` says yes to (for fork); `ENOMEM` when the heap cannot
    /// hold it. The map and its gap index are copied as they are, and then the few regions
    /// `keep` says no to (a task's fixed frames) are taken out as `munmap` would, each
    /// with a few tree operations: a fork of 8,000 regions spent 330 instructions per
    /// region building the copy anew.
    pub fn try_clone_filtered(&self, keep: impl Fn(&Region) -> bool) -> Result<Self, Errno> {
        let mut copy = RegionMap {
            regions: self.regions.try_clone()?,
            gaps: self.gaps.clone(),
            handles: self.handles.clone(),
        };
        for start in self.regions.starts_where(|r| !keep(r)) {
            if let Some(end) = copy.find(start).map(|r| r.end) {
                // A whole region: never a hole, so never ENOMEM.
                copy.remove_range(start, end, |_| {})?;
            }
        }
        Ok(copy)
    }

    /// Makes the gap index anew from the regions (none for a list).
    fn rebuild_gaps(&mut self) {
        if self.regions.is_list() {
            self.gaps = None;
            return;
        }
        let mut gaps = Gaps::new();
        let mut at = 0;
        for r in self.regions.values() {
            gaps.add(at, r.start);
            at = r.end;
        }
        gaps.add(at, SPACE_END);
        self.gaps = Some(gaps);
    }

    /// Splits the region strictly containing `addr` (if any) into two at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some(r) = self.regions.last_below_mut(addr) else {
            return;
        };
        if r.end > addr {
            let mut upper = *r;
            r.end = addr;
            upper.start = addr;
            self.tree_insert(addr, upper);
        }
    }

    /// Splits the regions holding `start` and `end`, so that every region is either inside
    /// [`start`, `end`) or outside it.
    fn carve(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
    }

    /// Removes every part of a region in [`start`, `end`), splitting regions at the ends;
    /// `removed` sees each removed piece. `ENOMEM` (and nothing changes) when a hole in one
    /// region would pass [`MAX_REGIONS`]; removing whole regions never fails.
    pub fn remove_range(
        &mut self,
        start: u64,
        end: u64,
        mut removed: impl FnMut(&Region),
    ) -> Result<(), Errno> {
        if start >= end {
            return Ok(());
        }
        if self.remove_one_inside(start, end, &mut removed) {
            self.settle();
            return Ok(());
        }
        // Splitting adds regions that are then removed again, except for a hole in one
        // region: its two ends stay.
        let hole = self
            .find(start)
            .is_some_and(|r| r.start < start && r.end > end);
        if hole && self.regions.len() >= MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        if self.is_free(start, end) {
            return Ok(());
        }
        self.regions.reserve(self.splits(start, end))?;
        self.carve(start, end);
        // The free range around what goes: from the end of the region below `start` to the
        // start of the one at or above `end` (the gaps there join the removed pieces).
        let below = self
            .regions
            .range(..start)
            .next_back()
            .map_or(0, |(_, l)| l.end);
        // The gap right below the first piece stays and grows (in place, when it can);
        // the others join it.
        let mut first: Option<(u64, u64)> = None;
        let mut at = below;
        loop {
            let next = self.regions.range(start..end).next().map(|(&k, _)| k);
            let Some(k) = next else { break };
            if let Some(r) = self.tree_remove(&k) {
                match first {
                    None => first = Some((below, r.start)),
                    Some(_) => self.gap_remove(at, r.start),
                }
                at = r.end;
                removed(&r);
            }
        }
        let above = self
            .regions
            .range(end..)
            .next()
            .map_or(SPACE_END, |(&s, _)| s);
        self.gap_remove(at, above);
        self.gap_replace(first.unwrap_or((below, below)), (below, above));
        self.settle();
        Ok(())
    }

    /// The common `munmap`s, with two or three lookups instead of the general carving:
    /// [`start`, `end`) holds all of one region and part of no other, or lies inside one
    /// region (its top, its bottom, or a hole in it). `false` (nothing changed) otherwise.
    fn remove_one_inside(
        &mut self,
        start: u64,
        end: u64,
        removed: &mut impl FnMut(&Region),
    ) -> bool {
        // `r`: the last region starting below `end`; `above`: where the next one starts.
        let (pos, next) = self.regions.neighbours(end);
        let Some(pos) = pos else {
            return false;
        };
        let r = self.regions.at(pos);
        if r.end <= start {
            return false; // nothing there (the general path says so too)
        }
        // What goes: all of `r` or the range inside it (one copy of a region: each costs).
        let piece = Region {
            start: start.max(r.start),
            end: end.min(r.end),
            ..*r
        };
        let r = (r.start, r.end);
        let above = next.map_or(SPACE_END, |n| self.regions.at(n).start);
        if r.0 >= start && r.1 <= end {
            // All of `r`, if nothing below it reaches into the range.
            let below = self
                .regions
                .range(..r.0)
                .next_back()
                .map_or(0, |(_, l)| l.end);
            if below > start {
                return false;
            }
            self.tree_remove(&r.0);
            self.gap_remove(r.1, above);
            self.gap_replace((below, r.0), (below, above));
            removed(&piece);
            return true;
        }
        if r.0 > start || r.1 < end {
            return false;
        }
        match (r.0 == start, r.1 == end) {
            (false, true) => {
                // Its top: the gap above grows down.
                self.regions.at_mut(pos).end = start;
                self.gap_replace((end, above), (start, above));
            }
            (true, false) => {
                // Its bottom: the gap below grows up, and the rest starts at `end`.
                let below = self
                    .regions
                    .range(..r.0)
                    .next_back()
                    .map_or(0, |(_, l)| l.end);
                self.regions.move_start(r.0, end);
                self.gap_replace((below, start), (below, end));
            }
            _ => {
                // A hole: one region more.
                if self.regions.len() >= MAX_REGIONS || self.regions.reserve(1).is_err() {
                    return false; // the general path answers ENOMEM
                }
                self.regions.at_mut(pos).end = start;
                self.tree_insert(
                    end,
                    Region {
                        start: end,
                        end: r.1,
                        ..piece
                    },
                );
                self.gap_add(start, end);
            }
        }
        removed(&piece);
        true
    }

    /// Removes the regions `keep` says no to.
    pub fn retain(&mut self, mut keep: impl FnMut(&Region) -> bool) {
        let mut gone = Vec::new();
        self.regions.retain(|r| {
            let k = keep(r);
            if !k {
                gone.push(r.kind);
            }
            k
        });
        for kind in gone {
            self.count(kind, false);
        }
        self.regions.settle();
        self.rebuild_gaps();
    }

    /// Sets the protection of [`start`, `end`), splitting regions; `ENOMEM` (and nothing
    /// changes) unless regions cover all of it, or when the map would pass [`MAX_REGIONS`].
    /// `changed` sees each region after the change.
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
        let grows = self.protect_growth(start, end, prot);
        if self.regions.len() + grows > MAX_REGIONS {
            return Err(Errno::ENOMEM);
        }
        self.regions.reserve(self.splits(start, end))?;
        self.carve(start, end);
        let mut at = start;
        loop {
            let next = self.regions.range(at..end).next().map(|(&k, _)| k);
            let Some(k) = next else { break };
            if let Some(r) = self.regions.get_mut(&k) {
                r.prot = prot;
                changed(r);
                at = r.end;
            }
        }
        self.merge_around(start, end);
        self.settle();
        Ok(())
    }

    /// The highest `len`-byte free range that ends at or below `top` and starts at or above
    /// `bottom` (first fit, top down; see [`Gaps::place_top_down`]).
    pub fn place_top_down(&self, len: u64, bottom: u64, top: u64) -> Option<u64> {
        if let Some(g) = &self.gaps {
            return g.place_top_down(len, bottom, top);
        }
        // A list: its gaps from the top down, the highest that fits.
        if len == 0 || bottom >= top {
            return None;
        }
        let fit = |lo: u64, hi: u64| {
            let (a, b) = (lo.max(bottom), hi.min(top));
            (b > a && b - a >= len).then(|| b - len)
        };
        let mut hi = SPACE_END;
        for r in self.regions.values().rev() {
            if let Some(a) = fit(r.end, hi) {
                return Some(a);
            }
            if r.end <= bottom {
                return None;
            }
            hi = r.start;
        }
        fit(0, hi)
    }

    /// Checks the invariants (tests).
    #[cfg(test)]
    pub fn check(&self) {
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut at = 0;
        let mut prev: Option<&Region> = None;
        for (&k, r) in self.regions.range(..) {
            assert_eq!(k, r.start);
            assert!(r.start < r.end && r.start >= at, "{r:?} after {at:#x}");
            if let Some(p) = prev {
                assert!(!p.joins(r), "{p:?} and {r:?} should be one");
            }
            if r.start > at {
                gaps.push((at, r.start));
            }
            at = r.end;
            prev = Some(r);
        }
        if at < SPACE_END {
            gaps.push((at, SPACE_END));
        }
        let mut handles: BTreeMap<(u64, u64), u32> = BTreeMap::new();
        for r in self.iter() {
            if let Some(h) = r.kind.handle() {
                *handles.entry(handle_key(h)).or_insert(0) += 1;
            }
        }
        assert_eq!(handles, self.handles);
        match &self.gaps {
            Some(g) => {
                assert!(!self.regions.is_list());
                assert!(self.len() > LIST_BACK, "a tree of {} regions", self.len());
                let mut indexed: Vec<(u64, u64)> = g.iter().collect();
                indexed.sort_unstable();
                assert_eq!(indexed, gaps);
            }
            None => {
                assert!(self.regions.is_list());
                assert!(self.len() <= LIST_MAX, "a list of {} regions", self.len());
            }
        }
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

    /// Thousands of random inserts, removals, protections and placements over 256 pages,
    /// against a model that holds each page's (protection, kind): after every operation the
    /// regions are the model's maximal runs of equal pages, the gap index matches
    /// (`check`), and placement finds the highest free run.
    #[test]
    fn random_operations_match_a_page_model() {
        random_operations(256, 20_000, 0x9e37_79b9_7f4a_7c15, 0);
        // Hundreds of regions: the tree and its gap index.
        let (to_tree, _) = random_operations(4096, 20_000, 0x0123_4567_89ab_cdef, 0);
        assert!(to_tree > 0);
    }

    /// The same over 512 pages, in phases that add (inserts and protections) and then take
    /// away (removals), so that the map grows past [`LIST_MAX`] into a
    /// tree and shrinks back to a list again and again; placement is checked for a free
    /// fit no higher than the highest (a tree's gap index may take a lower one, see
    /// [`Gaps::place_top_down`]) and for the highest while the map is a list.
    #[test]
    fn random_operations_across_list_and_tree() {
        let (to_tree, to_list) = random_operations(512, 40_000, 0x2545_f491_4f6c_dd1d, 2_000);
        assert!(to_tree >= 5 && to_list >= 5, "{to_tree} {to_list}");
    }

    /// `steps` random operations over `n` pages against the page model (see above); with
    /// `phase` > 0 the mix changes every `phase` steps between growing and shrinking.
    /// Returns how often the map became a tree and a list.
    fn random_operations(n: u64, steps: usize, seed: u64, phase: usize) -> (usize, usize) {
        const N_MAX: u64 = 1 << 20;
        let n = n.min(N_MAX);
        let image = Kind::Image {
            vaddr: 0,
            initrd_offset: 0,
            file_size: 0,
        };
        let mut seed = seed;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        #[allow(non_snake_case)]
        let N = n;
        let mut m = RegionMap::new();
        let mut model: Vec<Option<(u64, Kind)>> = alloc::vec![None; N as usize];
        let (mut to_tree, mut to_list) = (0, 0);
        for step in 0..steps {
            let a = next(N);
            let b = (a + 1 + next(16)).min(N);
            let (start, end) = (a * P, b * P);
            let pages = a as usize..b as usize;
            let was_list = m.regions.is_list();
            // Growing: inserts and protections; shrinking: removals.
            let op = match (phase, (step / phase.max(1)) % 2) {
                (0, _) => next(4),
                (_, 0) => [0, 0, 0, 2, 2, 3][next(6) as usize],
                _ => [1, 1, 1, 1, 2, 3][next(6) as usize],
            };
            match op {
                0 => {
                    let kind = match next(4) {
                        0 => Kind::Anon,
                        1 => image,
                        // Object regions of two handles (their fields absolute, as
                        // `Kind::Object` says): the handle counts are checked.
                        h => Kind::Object {
                            pager: Pager::Shm,
                            handle: h,
                            object: h,
                            writable: true,
                            vaddr: 0,
                            offset: 0,
                            shared: true,
                            limit: u64::MAX,
                        },
                    };
                    let prot = 1 + next(3);
                    let free = model[pages.clone()].iter().all(Option::is_none);
                    let r = m.insert(Region {
                        start,
                        end,
                        prot,
                        kind,
                    });
                    assert_eq!(r.is_ok(), free, "step {step}: insert {a}..{b}");
                    if free {
                        model[pages].fill(Some((prot, kind)));
                    }
                }
                1 => {
                    let mut gone = 0;
                    m.remove_range(start, end, |r| gone += r.len() / P).unwrap();
                    let held = model[pages.clone()].iter().filter(|p| p.is_some()).count();
                    assert_eq!(gone, held as u64, "step {step}: remove {a}..{b}");
                    model[pages].fill(None);
                }
                2 => {
                    let prot = 1 + next(3);
                    let covered = model[pages.clone()].iter().all(Option::is_some);
                    let r = m.protect(start, end, prot, |_| {});
                    assert_eq!(r.is_ok(), covered, "step {step}: protect {a}..{b}");
                    if covered {
                        for p in &mut model[pages] {
                            *p = p.map(|(_, k)| (prot, k));
                        }
                    }
                }
                _ => {
                    let len = (1 + next(8)) * P;
                    let top = (1 + next(N)) * P;
                    let want = (0..=top / P)
                        .rev()
                        .filter(|&s| s * P + len <= top)
                        .find(|&s| (s..s + len / P).all(|p| p < N && model[p as usize].is_none()))
                        .map(|s| s * P);
                    // Above the model's pages all is free.
                    let got = m.place_top_down(len, 0, top);
                    if m.regions.is_list() {
                        assert_eq!(got, want, "step {step}: place {len:#x} below {top:#x}");
                    } else {
                        assert_eq!(got.is_some(), want.is_some(), "step {step}");
                        if let Some(g) = got {
                            assert!(g <= want.unwrap_or(0) && g + len <= top, "step {step}");
                            assert!(m.is_free(g, g + len), "step {step}: {g:#x}");
                        }
                    }
                }
            }
            match (was_list, m.regions.is_list()) {
                (true, false) => to_tree += 1,
                (false, true) => to_list += 1,
                _ => {}
            }
            m.check();
            let mut runs: Vec<(u64, u64, u64)> = Vec::new();
            for (i, p) in model.iter().enumerate() {
                let Some((prot, kind)) = *p else { continue };
                let i = i as u64;
                match runs.last_mut() {
                    Some(last)
                        if last.1 == i * P
                            && last.2 == prot
                            && model[i as usize - 1].map(|(_, k)| k) == Some(kind) =>
                    {
                        last.1 = (i + 1) * P
                    }
                    _ => runs.push((i * P, (i + 1) * P, prot)),
                }
            }
            assert_eq!(spans(&m), runs, "step {step}");
        }
        (to_tree, to_list)
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

/// regionbench's steps on the host, for a profile of the region map alone (ignored; run
/// with `cargo test --release -p vm --lib profile_ -- --ignored` under
/// `valgrind --tool=callgrind --toggle-collect='vm::region::profile::mmaps'`): 20,000 times
/// 32 one-page top-down `mmap`s and their `munmap`s, in a map of a few regions and in one
/// of 32,000 (16,000 pairs that do not merge, as regionbench makes them).
#[cfg(test)]
mod profile {
    use super::*;
    const P: u64 = PAGE_SIZE;

    #[test]
    #[ignore]
    fn profile_small_map() {
        profile(0);
    }

    #[test]
    #[ignore]
    fn profile_large_map() {
        profile(16_000);
    }

    fn profile(n: usize) {
        let mut m = RegionMap::new();
        let a = |s: u64, e: u64, prot: u64| Region {
            start: s,
            end: e,
            prot,
            kind: Kind::Anon,
        };
        m.insert(Region {
            kind: Kind::Image {
                vaddr: 0x40_0000,
                initrd_offset: 0,
                file_size: 1,
            },
            ..a(0x40_0000, 0x41_0000, 5)
        })
        .unwrap();
        m.insert(a(0x41_0000, 0x42_0000, 3)).unwrap();
        m.insert(a(
            proto::MMAP_TOP + 0x1000_0000,
            proto::MMAP_TOP + 0x1001_0000,
            3,
        ))
        .unwrap();
        for _ in 0..n {
            let s = m
                .place_top_down(2 * P, proto::USER_MIN, proto::MMAP_TOP)
                .unwrap();
            m.insert(a(s, s + 2 * P, 3)).unwrap();
            m.protect(s + P, s + 2 * P, 0, |_| {}).unwrap();
        }
        for _ in 0..20_000 {
            mmaps(&mut m);
        }
    }

    #[inline(never)]
    fn mmaps(m: &mut RegionMap) {
        let mut pages = [0u64; 32];
        for p in &mut pages {
            *p = mmap1(m);
        }
        for &p in &pages {
            munmap1(m, p);
        }
    }

    #[inline(never)]
    fn mmap1(m: &mut RegionMap) -> u64 {
        let s = m
            .place_top_down(P, proto::USER_MIN, proto::MMAP_TOP)
            .unwrap();
        m.insert(Region {
            start: s,
            end: s + P,
            prot: 3,
            kind: Kind::Anon,
        })
        .unwrap();
        s
    }

    #[inline(never)]
    fn munmap1(m: &mut RegionMap, p: u64) {
        m.remove_range(p, p + P, |_| {}).unwrap();
    }
}
