//! Physical memory accounting at boot: RAM split into free ranges and labelled reservations,
//! with a lowest-address-first page allocator for the frames the kernel takes for itself.

use core::fmt;

use heapless::Vec;

use crate::machine::MemRange;

/// Granule of all accounting.
pub const PAGE_SIZE: u64 = 4096;
/// RAM ranges after merging.
pub const MAX_RAM_RANGES: usize = 8;
/// Reservations after merging neighbours with the same [`Use`].
pub const MAX_RESERVATIONS: usize = 32;
/// Free ranges.
pub const MAX_FREE_RANGES: usize = 64;
/// RAM ranges accepted by [`PhysMap::new`] before merging.
const MAX_RAM_INPUT: usize = 64;

/// What a reserved range holds: the kinds the boot-info page reports (`abi`), so the kernel
/// hands its accounting to the root task unchanged.
pub use abi::bootinfo::ReservedKind as Use;

/// Why a physical memory operation failed. A failed operation changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// No whole page of RAM.
    NoRam,
    /// More RAM ranges than [`MAX_RAM_RANGES`] after merging (or than 64 before).
    TooManyRamRanges,
    /// A range that wraps around the address space.
    BadRange,
    /// The operation would need more than [`MAX_FREE_RANGES`] free ranges.
    TooManyFreeRanges,
    /// The operation would need more than [`MAX_RESERVATIONS`] reservations.
    TooManyReservations,
    /// `alloc_pages(0, ..)`.
    ZeroPages,
    /// No free run of this many pages.
    OutOfMemory {
        /// Pages asked for.
        pages: u64,
    },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoRam => f.write_str("no usable RAM (not one whole page)"),
            Self::TooManyRamRanges => write!(f, "more than {MAX_RAM_RANGES} RAM ranges"),
            Self::BadRange => f.write_str("range wraps around the address space"),
            Self::TooManyFreeRanges => write!(f, "more than {MAX_FREE_RANGES} free ranges"),
            Self::TooManyReservations => write!(f, "more than {MAX_RESERVATIONS} reservations"),
            Self::ZeroPages => f.write_str("asked for zero pages"),
            Self::OutOfMemory { pages } => write!(f, "out of memory: no free run of {pages} pages"),
        }
    }
}

const fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds up, saturating at the last page boundary.
const fn page_up(addr: u64) -> u64 {
    match addr.checked_next_multiple_of(PAGE_SIZE) {
        Some(up) => up,
        None => page_down(u64::MAX),
    }
}

/// RAM, split into free ranges and labelled reservations.
///
/// # Invariants
///
/// - RAM ranges are page aligned, non-empty, sorted, and neither overlap nor touch.
/// - Free ranges and reservations are page aligned, non-empty, sorted by base and inside RAM.
/// - No two of them overlap, free or reserved: each page is free or has exactly one label
///   (the first reservation to claim it), and together they cover RAM exactly. Hence
///   `total_free() + Σ total_reserved(u) == total_ram()`.
/// - Free ranges are maximal (no two touch); touching reservations with the same label are
///   merged.
/// - A method that returns an error leaves the map unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysMap {
    ram: Vec<MemRange, MAX_RAM_RANGES>,
    free: Vec<MemRange, MAX_FREE_RANGES>,
    reserved: Vec<(MemRange, Use), MAX_RESERVATIONS>,
}

impl PhysMap {
    /// All of `ram` free. Overlapping and touching ranges are merged, then each is rounded
    /// in to whole pages; empty ranges are dropped.
    pub fn new(ram: &[MemRange]) -> Result<Self, MemoryError> {
        let mut input: Vec<MemRange, MAX_RAM_INPUT> = Vec::new();
        for &range in ram.iter().filter(|r| !r.is_empty()) {
            range.checked_end().ok_or(MemoryError::BadRange)?;
            input
                .push(range)
                .map_err(|_| MemoryError::TooManyRamRanges)?;
        }
        input.sort_unstable_by_key(|r| r.base);

        let mut merged: Vec<MemRange, MAX_RAM_INPUT> = Vec::new();
        for range in input {
            match merged.last_mut() {
                Some(last) if range.base <= last.end() => {
                    last.size = last.end().max(range.end()) - last.base;
                }
                // Cannot overflow: `merged` holds at most as many ranges as `input`.
                _ => merged
                    .push(range)
                    .map_err(|_| MemoryError::TooManyRamRanges)?,
            }
        }

        let mut pages: Vec<MemRange, MAX_RAM_RANGES> = Vec::new();
        for range in merged {
            // Only whole pages are usable.
            let (start, end) = (page_up(range.base), page_down(range.end()));
            if start < end {
                pages
                    .push(MemRange::new(start, end - start))
                    .map_err(|_| MemoryError::TooManyRamRanges)?;
            }
        }
        if pages.is_empty() {
            return Err(MemoryError::NoRam);
        }
        let mut free = Vec::new();
        // MAX_RAM_RANGES <= MAX_FREE_RANGES, so this never fails.
        free.extend_from_slice(&pages)
            .map_err(|_| MemoryError::TooManyFreeRanges)?;
        Ok(Self {
            ram: pages,
            free,
            reserved: Vec::new(),
        })
    }

    /// Labels `range` as used by `what`. The range is rounded out to whole pages and clipped
    /// to RAM (parts outside RAM are ignored). Pages already reserved keep their first label
    /// and are counted once.
    pub fn reserve(&mut self, range: MemRange, what: Use) -> Result<(), MemoryError> {
        if range.is_empty() {
            return Ok(());
        }
        let end = range.checked_end().ok_or(MemoryError::BadRange)?;
        let (start, end) = (page_down(range.base), page_up(end));

        // Build the new lists aside and commit only if both fit.
        let mut free: Vec<MemRange, MAX_FREE_RANGES> = Vec::new();
        let mut reserved = self.reserved.clone();
        for &f in &self.free {
            let Some(taken) = f.intersection(MemRange::new(start, end - start)) else {
                free.push(f).map_err(|_| MemoryError::TooManyFreeRanges)?;
                continue;
            };
            let before = MemRange::new(f.base, taken.base - f.base);
            let after = MemRange::new(taken.end(), f.end() - taken.end());
            for rest in [before, after].into_iter().filter(|r| !r.is_empty()) {
                free.push(rest)
                    .map_err(|_| MemoryError::TooManyFreeRanges)?;
            }
            insert_reservation(&mut reserved, taken, what)?;
        }
        self.free = free;
        self.reserved = reserved;
        Ok(())
    }

    /// Takes the lowest free run of `count` pages for `what`, and returns its base.
    pub fn alloc_pages(&mut self, count: u64, what: Use) -> Result<u64, MemoryError> {
        if count == 0 {
            return Err(MemoryError::ZeroPages);
        }
        let oom = MemoryError::OutOfMemory { pages: count };
        let size = count.checked_mul(PAGE_SIZE).ok_or(oom)?;
        // Free ranges are maximal, so the lowest run starts at the start of a free range.
        let base = self.free.iter().find(|f| f.size >= size).ok_or(oom)?.base;
        self.reserve(MemRange::new(base, size), what)?;
        Ok(base)
    }

    /// Free ranges: page aligned, sorted, non-overlapping.
    pub fn free(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.free.iter().copied()
    }

    /// Reservations with their labels: page aligned, sorted, non-overlapping.
    pub fn reserved(&self) -> impl Iterator<Item = (MemRange, Use)> + '_ {
        self.reserved.iter().copied()
    }

    /// RAM ranges as accounted: merged and rounded in to whole pages.
    pub fn ram(&self) -> impl Iterator<Item = MemRange> + '_ {
        self.ram.iter().copied()
    }

    /// Bytes of RAM in whole pages.
    pub fn total_ram(&self) -> u64 {
        self.ram.iter().map(|r| r.size).sum()
    }

    /// Bytes free.
    pub fn total_free(&self) -> u64 {
        self.free.iter().map(|r| r.size).sum()
    }

    /// Bytes reserved for `what`.
    pub fn total_reserved(&self, what: Use) -> u64 {
        self.reserved
            .iter()
            .filter(|(_, u)| *u == what)
            .map(|(r, _)| r.size)
            .sum()
    }
}

/// Inserts `range` (which overlaps no reservation) in base order, merging it with touching
/// neighbours of the same label.
fn insert_reservation(
    reserved: &mut Vec<(MemRange, Use), MAX_RESERVATIONS>,
    range: MemRange,
    what: Use,
) -> Result<(), MemoryError> {
    let at = reserved
        .iter()
        .position(|(r, _)| r.base > range.base)
        .unwrap_or(reserved.len());
    let joins_before =
        at > 0 && reserved[at - 1].1 == what && reserved[at - 1].0.end() == range.base;
    let joins_after =
        at < reserved.len() && reserved[at].1 == what && reserved[at].0.base == range.end();
    match (joins_before, joins_after) {
        (true, true) => {
            let after = reserved.remove(at).0;
            reserved[at - 1].0.size += range.size + after.size;
        }
        (true, false) => reserved[at - 1].0.size += range.size,
        (false, true) => {
            reserved[at].0.base = range.base;
            reserved[at].0.size += range.size;
        }
        (false, false) => reserved
            .insert(at, (range, what))
            .map_err(|_| MemoryError::TooManyReservations)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;

    const MIB: u64 = 1 << 20;
    const ALL_USES: [Use; 5] = [
        Use::Kernel,
        Use::DeviceTree,
        Use::Initrd,
        Use::Firmware,
        Use::BootAlloc,
    ];

    fn mr(base: u64, size: u64) -> MemRange {
        MemRange::new(base, size)
    }

    /// Checks every invariant in the type's doc comment.
    fn check_invariants(map: &PhysMap) {
        let ram: Vec<_> = map.ram().collect();
        assert!(!ram.is_empty());
        for pair in ram.windows(2) {
            assert!(pair[0].end() < pair[1].base, "RAM sorted, apart: {pair:?}");
        }
        let mut all: Vec<(MemRange, Option<Use>)> = map.free().map(|r| (r, None)).collect();
        all.extend(map.reserved().map(|(r, u)| (r, Some(u))));
        for (r, _) in &all {
            assert!(r.is_aligned(PAGE_SIZE) && !r.is_empty(), "{r:?}");
            assert!(
                ram.iter().any(|ram| ram.contains_range(*r)),
                "{r:?} inside RAM"
            );
        }
        for list in [
            map.free().collect::<Vec<_>>(),
            map.reserved().map(|(r, _)| r).collect(),
        ] {
            for pair in list.windows(2) {
                assert!(pair[0].end() <= pair[1].base, "sorted: {pair:?}");
            }
        }
        for pair in map.free().collect::<Vec<_>>().windows(2) {
            assert!(
                pair[0].end() < pair[1].base,
                "free ranges are maximal: {pair:?}"
            );
        }
        for pair in map.reserved().collect::<Vec<_>>().windows(2) {
            assert!(
                pair[0].0.end() < pair[1].0.base || pair[0].1 != pair[1].1,
                "merged: {pair:?}"
            );
        }
        all.sort_by_key(|(r, _)| r.base);
        for pair in all.windows(2) {
            assert!(!pair[0].0.overlaps(pair[1].0), "no overlap: {pair:?}");
        }
        let reserved: u64 = ALL_USES.iter().map(|&u| map.total_reserved(u)).sum();
        assert_eq!(map.total_free() + reserved, map.total_ram());
    }

    #[test]
    fn new_merges_sorts_and_rounds_in() {
        let map = PhysMap::new(&[
            mr(0x8000_0000, 16 * MIB),
            mr(0x4000_0800, 0x2000), // rounds in to [0x4000_1000, 0x4000_2000)
            mr(0x4000_2800, 0x800),  // touches the previous one: merged, then rounded
            mr(0x8000_0000, 8 * MIB), // inside the first
            mr(0x8100_0000, 0x10),   // touches the first; the partial page is dropped
            mr(0x9000_0000, 0),
            mr(0xa000_0100, 0x100), // no whole page
        ])
        .unwrap();
        let ram: Vec<_> = map.ram().collect();
        assert_eq!(ram, [mr(0x4000_1000, 0x2000), mr(0x8000_0000, 16 * MIB)]);
        assert_eq!(map.free().collect::<Vec<_>>(), ram);
        assert_eq!(map.total_ram(), 16 * MIB + 0x2000);
        assert_eq!(map.total_free(), map.total_ram());
        check_invariants(&map);
    }

    #[test]
    fn new_rejects_no_ram_and_bad_ranges() {
        assert_eq!(PhysMap::new(&[]), Err(MemoryError::NoRam));
        assert_eq!(PhysMap::new(&[mr(0x1001, 0xfff)]), Err(MemoryError::NoRam));
        assert_eq!(
            PhysMap::new(&[mr(u64::MAX - 10, 20)]),
            Err(MemoryError::BadRange)
        );
        let many: Vec<_> = (0..9).map(|i| mr(i * 0x10_0000, 0x1000)).collect();
        assert_eq!(PhysMap::new(&many), Err(MemoryError::TooManyRamRanges));
        let touching: Vec<_> = (0..20).map(|i| mr(i * 0x1000, 0x1000)).collect();
        assert_eq!(PhysMap::new(&touching).unwrap().ram().count(), 1);
        // RAM up to the top of the address space.
        let top = PhysMap::new(&[mr(u64::MAX - 0x2fff, 0x2fff)]).unwrap();
        assert_eq!(top.total_ram(), 0x2000);
    }

    #[test]
    fn boot_sequence() {
        // QEMU virt, 512 MiB: kernel at the bottom, the DTB and initrd above it.
        let mut map = PhysMap::new(&[mr(0x4000_0000, 512 * MIB)]).unwrap();
        map.reserve(mr(0x4008_0000, 0x5_4321), Use::Kernel).unwrap();
        map.reserve(mr(0x4800_0000, 0x1388), Use::Initrd).unwrap();
        map.reserve(mr(0x5fe0_0000, 0x1d32), Use::DeviceTree)
            .unwrap();
        assert_eq!(map.total_reserved(Use::Kernel), 0x5_5000);
        assert_eq!(map.total_reserved(Use::Initrd), 0x2000);
        assert_eq!(map.total_reserved(Use::DeviceTree), 0x2000);
        check_invariants(&map);

        // Lowest first: below the kernel.
        assert_eq!(map.alloc_pages(1, Use::BootAlloc), Ok(0x4000_0000));
        assert_eq!(map.alloc_pages(0x7f, Use::BootAlloc), Ok(0x4000_1000));
        // [0x4000_0000, 0x4008_0000) is now BootAlloc, merged into one reservation.
        assert_eq!(
            map.reserved().next(),
            Some((mr(0x4000_0000, 0x8_0000), Use::BootAlloc))
        );
        // The next allocation goes above the kernel.
        assert_eq!(map.alloc_pages(2, Use::BootAlloc), Ok(0x400d_5000));
        check_invariants(&map);
        assert_eq!(
            map.free().collect::<Vec<_>>(),
            [
                mr(0x400d_7000, 0x4800_0000 - 0x400d_7000),
                mr(0x4800_2000, 0x5fe0_0000 - 0x4800_2000),
                mr(0x5fe0_2000, 0x6000_0000 - 0x5fe0_2000),
            ]
        );
    }

    #[test]
    fn reserve_clips_to_ram_and_counts_overlap_once() {
        let mut map =
            PhysMap::new(&[mr(0x4000_0000, 16 * MIB), mr(0x8000_0000, 16 * MIB)]).unwrap();
        // Entirely outside RAM: nothing happens.
        map.reserve(mr(0x1000_0000, MIB), Use::Firmware).unwrap();
        assert_eq!(map.total_free(), map.total_ram());
        // Straddling the start of RAM and spanning both banks.
        map.reserve(mr(0x3fff_0000, 0x2_0000), Use::Firmware)
            .unwrap();
        assert_eq!(map.total_reserved(Use::Firmware), 0x1_0000);
        map.reserve(
            mr(0x40f0_0000, 0x8000_0000 + MIB - 0x40f0_0000),
            Use::Kernel,
        )
        .unwrap();
        assert_eq!(map.total_reserved(Use::Kernel), 2 * MIB);
        // Overlapping an earlier reservation: the earlier label keeps its pages.
        map.reserve(mr(0x4000_8000, 0x1_0000), Use::Initrd).unwrap();
        assert_eq!(map.total_reserved(Use::Firmware), 0x1_0000);
        assert_eq!(map.total_reserved(Use::Initrd), 0x8000);
        // Reserving the same thing twice changes nothing.
        let before = map.clone();
        map.reserve(mr(0x4000_8000, 0x1_0000), Use::Initrd).unwrap();
        assert_eq!(map, before);
        // Empty ranges are ignored; a wrapping range is an error and changes nothing.
        map.reserve(mr(0x4100_0000, 0), Use::Kernel).unwrap();
        assert_eq!(
            map.reserve(mr(u64::MAX, 2), Use::Kernel),
            Err(MemoryError::BadRange)
        );
        assert_eq!(map, before);
        // Up to the very top of the address space.
        map.reserve(mr(u64::MAX - 0x10, 0x10), Use::Kernel).unwrap();
        assert_eq!(map, before);
        check_invariants(&map);
    }

    #[test]
    fn allocation_failures_change_nothing() {
        let mut map = PhysMap::new(&[mr(0x4000_0000, 0x10_000)]).unwrap();
        let before = map.clone();
        assert_eq!(
            map.alloc_pages(0, Use::BootAlloc),
            Err(MemoryError::ZeroPages)
        );
        assert_eq!(
            map.alloc_pages(17, Use::BootAlloc),
            Err(MemoryError::OutOfMemory { pages: 17 })
        );
        assert_eq!(
            map.alloc_pages(u64::MAX, Use::BootAlloc),
            Err(MemoryError::OutOfMemory { pages: u64::MAX })
        );
        assert_eq!(map, before);
        assert_eq!(map.alloc_pages(16, Use::BootAlloc), Ok(0x4000_0000));
        assert_eq!(map.total_free(), 0);
        assert_eq!(
            map.alloc_pages(1, Use::BootAlloc),
            Err(MemoryError::OutOfMemory { pages: 1 })
        );
        check_invariants(&map);
    }

    #[test]
    fn capacity_overflow_is_an_error() {
        // Every other page reserved: 33 separate reservations do not fit.
        let mut map = PhysMap::new(&[mr(0, 0x1000 * 200)]).unwrap();
        let uses = [Use::Kernel, Use::Firmware];
        for i in 0..32 {
            map.reserve(mr(0x2000 * i, 0x1000), uses[i as usize % 2])
                .unwrap();
        }
        let before = map.clone();
        assert_eq!(
            map.reserve(mr(0x2000 * 32, 0x1000), Use::Kernel),
            Err(MemoryError::TooManyReservations)
        );
        assert_eq!(map, before);
        // Filling gaps next to same-label neighbours merges instead of adding entries.
        map.reserve(mr(0x1000, 0x1000), Use::Firmware).unwrap();
        map.reserve(mr(0x3000, 0x1000), Use::Firmware).unwrap();
        assert_eq!(map.reserved().next(), Some((mr(0, 0x1000), Use::Kernel)));
        assert_eq!(
            map.reserved().nth(1),
            Some((mr(0x1000, 0x3000), Use::Firmware))
        );
        assert_eq!(map.reserved().count(), 32);
        check_invariants(&map);

        // Filling the gap between two same-label neighbours merges three into one.
        let mut map = PhysMap::new(&[mr(0, 0x1000 * 8)]).unwrap();
        map.reserve(mr(0, 0x1000), Use::Firmware).unwrap();
        map.reserve(mr(0x2000, 0x1000), Use::Firmware).unwrap();
        map.reserve(mr(0x1000, 0x1000), Use::Firmware).unwrap();
        assert_eq!(
            map.reserved().collect::<Vec<_>>(),
            [(mr(0, 0x3000), Use::Firmware)]
        );
        check_invariants(&map);

        // 65 free ranges do not fit either: holes punched with the same label merge
        // nothing, since free pages separate them.
        let mut map = PhysMap::new(&[mr(0, 0x1000 * 400)]).unwrap();
        let mut result = Ok(());
        for i in 0..70 {
            result = map.reserve(mr(0x1000 + 0x3000 * i, 0x1000), Use::Firmware);
            if result.is_err() {
                break;
            }
        }
        // Reservations run out first (32), before free ranges (64).
        assert_eq!(result, Err(MemoryError::TooManyReservations));
        check_invariants(&map);
    }

    #[test]
    fn free_range_capacity() {
        // 8 RAM ranges, each split in several places, with alternating labels so that
        // reservations stay within 32 while free ranges pass 64.
        let ram: Vec<_> = (0..8).map(|i| mr(i * 0x100_0000, 0x1000 * 64)).collect();
        let mut map = PhysMap::new(&ram).unwrap();
        let mut error = None;
        'outer: for k in 0..16u64 {
            for i in 0..8u64 {
                if let Err(e) = map.reserve(
                    mr(i * 0x100_0000 + 0x1000 + 0x3000 * k, 0x1000),
                    Use::Firmware,
                ) {
                    error = Some(e);
                    break 'outer;
                }
            }
        }
        assert!(error.is_some());
        check_invariants(&map);
    }

    /// xorshift64, fixed seed.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// A page-by-page model of the map: `None` is free, `Some(u)` reserved for `u`.
    struct Model {
        banks: Vec<MemRange>,
        pages: Vec<Vec<Option<Use>>>,
    }

    impl Model {
        fn new(banks: &[MemRange]) -> Self {
            let pages = banks
                .iter()
                .map(|b| std::vec![None; (b.size / PAGE_SIZE) as usize])
                .collect();
            Self {
                banks: Vec::from(banks),
                pages,
            }
        }
        fn reserve(&mut self, range: MemRange, what: Use) {
            let (start, end) = (page_down(range.base), page_up(range.end()));
            for (bank, pages) in self.banks.iter().zip(&mut self.pages) {
                for (i, page) in pages.iter_mut().enumerate() {
                    let addr = bank.base + PAGE_SIZE * i as u64;
                    if addr >= start && addr < end && page.is_none() {
                        *page = Some(what);
                    }
                }
            }
        }
        fn alloc(&mut self, count: u64, what: Use) -> Option<u64> {
            for (bank, pages) in self.banks.iter().zip(&mut self.pages) {
                let mut run = 0;
                for i in 0..pages.len() {
                    run = if pages[i].is_none() { run + 1 } else { 0 };
                    if run == count as usize {
                        let first = i + 1 - run;
                        pages[first..=i].iter_mut().for_each(|p| *p = Some(what));
                        return Some(bank.base + PAGE_SIZE * first as u64);
                    }
                }
            }
            None
        }
        /// Every page's state according to the map.
        fn check(&self, map: &PhysMap) {
            for (bank, pages) in self.banks.iter().zip(&self.pages) {
                for (i, page) in pages.iter().enumerate() {
                    let addr = bank.base + PAGE_SIZE * i as u64;
                    let state = match map.reserved().find(|(r, _)| r.contains(addr)) {
                        Some((_, u)) => Some(u),
                        None => {
                            assert!(
                                map.free().any(|f| f.contains(addr)),
                                "{addr:#x} neither free nor reserved"
                            );
                            None
                        }
                    };
                    assert_eq!(state, *page, "page {addr:#x}");
                }
            }
        }
    }

    #[test]
    fn random_reservations_keep_the_invariants() {
        let banks = [
            mr(0x4000_0000, 0x1000 * 2048),
            mr(0x4100_0000, 0x1000 * 512),
        ];
        let mut failures = 0;
        for seed in 1..=20u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut map = PhysMap::new(&banks).unwrap();
            let mut model = Model::new(&banks);
            for _ in 0..60 {
                let what = ALL_USES[(rng.next() % 5) as usize];
                let before = map.clone();
                let ok = if rng.next().is_multiple_of(3) {
                    let count = 1 + rng.next() % 64;
                    match map.alloc_pages(count, what) {
                        Ok(base) => {
                            assert_eq!(Some(base), model.alloc(count, what), "lowest run first");
                            true
                        }
                        Err(MemoryError::OutOfMemory { .. }) => {
                            assert_eq!(model.alloc(count, what), None);
                            true
                        }
                        Err(_) => false,
                    }
                } else {
                    // Anywhere from below the first bank to above the second, unaligned.
                    let base = 0x3ff0_0000 + rng.next() % 0x140_0000;
                    let size = rng.next() % (0x1000 * 96);
                    match map.reserve(mr(base, size), what) {
                        Ok(()) => {
                            model.reserve(mr(base, size), what);
                            true
                        }
                        Err(_) => false,
                    }
                };
                if !ok {
                    failures += 1;
                    assert_eq!(map, before, "a failed operation changes nothing");
                }
                check_invariants(&map);
            }
            model.check(&map);
        }
        // Some runs must hit the capacity limits, or the rollback path goes untested.
        assert!(failures > 0);
    }

    #[test]
    fn display_texts() {
        assert_eq!(
            std::format!("{}", MemoryError::TooManyReservations),
            "more than 32 reservations"
        );
        assert_eq!(
            std::format!("{}", MemoryError::OutOfMemory { pages: 3 }),
            "out of memory: no free run of 3 pages"
        );
    }
}
