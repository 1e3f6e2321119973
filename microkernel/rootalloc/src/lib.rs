//! A root task's allocators (init's and ktest's): slots of its CNode, objects from the
//! untyped memory the kernel gave it, and virtual addresses (with their translation tables)
//! in its own VSpace.
//!
//! Allocations are either *global* (kept for good: the page tables of init's VSpace, the
//! scratch untyped) or *scoped*: between [`Alloc::begin_scope`] and [`Alloc::end_scope`]
//! every object comes from one scratch untyped, and ending the scope deletes every slot the
//! scope used and revokes the scratch untyped, which gives all its memory back (the kernel
//! restarts an untyped's watermark when its last child goes).
//!
//! ```text
//!   0x0000_0010_0000_0000  VA_BASE: pages handed out by `va_reserve`, one guard page after
//!                          each allocation, never reused
//!   0x0000_0040_0000_0000  init's stack top, boot info, IPC buffer (the kernel's)
//! ```

#![no_std]

extern crate alloc as liballoc;

use abi::Error;
use abi::bootinfo::BootInfo;
use abi::object::{MapFlags, ObjectType, init_slots};
use libmk::{CNode, Cap, Frame, PageTable, Untyped, VSpace};

/// init's CNode, VSpace and TCB as typed handles.
pub const CNODE: Cap<CNode> = Cap::from_cptr(init_slots::CNODE);
pub const VSPACE: Cap<VSpace> = Cap::from_cptr(init_slots::VSPACE);

/// Bytes in a page.
pub const PAGE: u64 = 4096;
/// First virtual address `va_reserve` hands out.
pub const VA_BASE: u64 = 0x0000_0010_0000_0000;
/// Slots in init's CNode this allocator manages at most.
const MAX_SLOTS: usize = 4096;
/// The scratch untyped's size: the largest of these a boot untyped can hold.
const SCRATCH_BITS: [u32; 4] = [23, 22, 21, 20];

/// Translation tables known to be installed in one VSpace: (level, base of the region the
/// table covers).
#[derive(Clone, Copy)]
pub struct Tables {
    known: [(u8, u64); 64],
    len: usize,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            known: [(0, 0); 64],
            len: 0,
        }
    }
}

impl Tables {
    fn has(&self, level: u8, base: u64) -> bool {
        self.known[..self.len].contains(&(level, base))
    }

    fn add(&mut self, level: u8, base: u64) {
        if self.len < self.known.len() {
            self.known[self.len] = (level, base);
            self.len += 1;
        }
    }
}

/// log2 of the span a table of `level` (1..=3) covers.
pub const fn table_span_bits(level: u8) -> u32 {
    match level {
        1 => 39,
        2 => 30,
        _ => 21,
    }
}

/// Base of the region the level-`level` table covering `va` maps.
pub const fn table_base(va: u64, level: u8) -> u64 {
    va & !((1u64 << table_span_bits(level)) - 1)
}

/// A bitmap of CNode slots.
#[derive(Clone, Copy)]
struct SlotSet([u64; MAX_SLOTS / 64]);

impl SlotSet {
    fn get(&self, s: usize) -> bool {
        self.0[s / 64] & (1 << (s % 64)) != 0
    }
    /// The lowest slot below `limit` not in the set: a look at one word per 64 slots, not
    /// one per slot (init takes slots for every task it makes, with thousands in use).
    fn first_clear(&self, limit: usize) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)
            .map(|(i, w)| i * 64 + w.trailing_ones() as usize)
            .filter(|&s| s < limit)
    }

    fn set(&mut self, s: usize, v: bool) {
        if v {
            self.0[s / 64] |= 1 << (s % 64);
        } else {
            self.0[s / 64] &= !(1 << (s % 64));
        }
    }
}

/// Where a new page table comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The boot untyped memory, for good.
    Global,
    /// The current scope's scratch untyped.
    Scope,
}

pub struct Alloc {
    pub info: &'static BootInfo,
    slot_count: usize,
    used: SlotSet,
    scoped: SlotSet,
    /// Bytes used of each boot untyped (by the list's index), as this allocator counts them.
    boot_used: [u64; abi::bootinfo::MAX_UNTYPED],
    scratch: Option<(Cap<Untyped>, u32)>,
    in_scope: bool,
    va_next: u64,
    init_tables: Tables,
}

impl Alloc {
    pub fn new(info: &'static BootInfo) -> Self {
        let slot_count = 1usize
            .checked_shl(u32::try_from(info.cnode_radix).unwrap_or(0))
            .unwrap_or(0)
            .min(MAX_SLOTS);
        let mut used = SlotSet([0; MAX_SLOTS / 64]);
        let first_free = usize::try_from(info.first_free_slot)
            .unwrap_or(MAX_SLOTS)
            .min(slot_count);
        for s in 0..first_free {
            used.set(s, true);
        }
        Self {
            info,
            slot_count,
            used,
            scoped: SlotSet([0; MAX_SLOTS / 64]),
            boot_used: [0; abi::bootinfo::MAX_UNTYPED],
            scratch: None,
            in_scope: false,
            va_next: VA_BASE,
            init_tables: Tables::default(),
        }
    }

    /// How many slots of init's CNode this allocator may hand out (the CNode's size).
    pub fn slot_count(&self) -> u64 {
        self.slot_count as u64
    }

    fn take_slot(&mut self, scoped: bool) -> Result<u64, Error> {
        let s = self
            .used
            .first_clear(self.slot_count)
            .ok_or(Error::NotEnoughMemory)?;
        self.used.set(s, true);
        self.scoped.set(s, scoped);
        Ok(s as u64)
    }

    /// An empty slot of init's CNode; scoped slots are emptied and freed at the scope's end.
    pub fn slot(&mut self) -> Result<u64, Error> {
        self.take_slot(self.in_scope)
    }

    /// `n` consecutive empty slots (scoped).
    pub fn slots(&mut self, n: usize) -> Result<u64, Error> {
        let start = (0..self.slot_count.saturating_sub(n))
            .find(|&s| (s..s + n).all(|t| !self.used.get(t)))
            .ok_or(Error::NotEnoughMemory)?;
        for t in start..start + n {
            self.used.set(t, true);
            self.scoped.set(t, true);
        }
        Ok(start as u64)
    }

    /// Which slots are in use now (for [`Alloc::taken_since`]).
    pub fn used_slots(&self) -> [u64; MAX_SLOTS / 64] {
        self.used.0
    }

    /// The slots taken since `before` ([`Alloc::used_slots`]) and still in use.
    pub fn taken_since(&self, before: &[u64; MAX_SLOTS / 64]) -> liballoc::vec::Vec<u64> {
        let mut taken = liballoc::vec::Vec::new();
        for (i, (&now, &was)) in self.used.0.iter().zip(before).enumerate() {
            let mut new = now & !was;
            while new != 0 {
                let bit = new.trailing_zeros();
                taken.push((i * 64) as u64 + u64::from(bit));
                new &= new - 1;
            }
        }
        taken
    }

    /// Gives back a slot (the caller emptied it).
    pub fn free_slot(&mut self, s: u64) {
        if let Ok(s) = usize::try_from(s)
            && s < self.slot_count
        {
            self.used.set(s, false);
            self.scoped.set(s, false);
        }
    }

    /// One object of `ty` from the boot untyped memory, into a global slot: tries each RAM
    /// untyped with room (by this allocator's count; on `NotEnoughMemory` the next).
    pub fn retype_global(&mut self, ty: ObjectType, size_bits: u64) -> Result<u64, Error> {
        let bits = ty.object_bits(size_bits).ok_or(Error::InvalidArgument)?;
        let size = 1u64 << bits;
        let slot = self.take_slot(false)?;
        let info = self.info;
        for (i, ut) in info
            .untyped()
            .iter()
            .enumerate()
            .filter(|(_, u)| u.device == 0)
        {
            let (ut_slot, ut_size) = (ut.slot, 1u64.checked_shl(ut.size_bits as u32).unwrap_or(0));
            let start = self.boot_used[i].next_multiple_of(size);
            if start + size > ut_size {
                continue;
            }
            match Cap::<Untyped>::from_cptr(ut_slot).retype(ty, size_bits, CNODE, slot, 1) {
                Ok(()) => {
                    self.boot_used[i] = start + size;
                    return Ok(slot);
                }
                Err(Error::NotEnoughMemory) => self.boot_used[i] = ut_size,
                Err(e) => {
                    self.free_slot(slot);
                    return Err(e);
                }
            }
        }
        self.free_slot(slot);
        Err(Error::NotEnoughMemory)
    }

    /// Bytes of the boot RAM untyped memory not yet handed out by [`Alloc::retype_global`]
    /// (alignment may make a little of it unusable).
    pub fn free_bytes(&self) -> u64 {
        self.info
            .untyped()
            .iter()
            .enumerate()
            .filter(|(_, u)| u.device == 0)
            .map(|(i, u)| {
                1u64.checked_shl(u.size_bits as u32)
                    .unwrap_or(0)
                    .saturating_sub(self.boot_used[i])
            })
            .sum()
    }

    /// Starts a scope: makes the scratch untyped if there is none yet.
    pub fn begin_scope(&mut self) -> Result<(), Error> {
        self.scoped = SlotSet([0; MAX_SLOTS / 64]);
        self.in_scope = true;
        if self.scratch.is_some() {
            return Ok(());
        }
        let mut last = Error::NotEnoughMemory;
        for bits in SCRATCH_BITS {
            match self.retype_global(ObjectType::Untyped, u64::from(bits)) {
                Ok(slot) => {
                    self.scratch = Some((Cap::from_cptr(slot), bits));
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The scratch untyped of the current scope (for tests of untyped operations).
    pub fn scratch(&self) -> Option<(Cap<Untyped>, u32)> {
        self.scratch
    }

    /// Ends a scope: deletes every slot it used (newest first) and revokes the scratch
    /// untyped. Returns the first error; if the revoke failed the scratch untyped is dropped
    /// and the next scope makes a new one.
    pub fn end_scope(&mut self) -> Result<(), Error> {
        self.in_scope = false;
        let mut first = Ok(());
        for s in (0..self.slot_count).rev() {
            if self.scoped.get(s) {
                let r = CNODE.delete(s as u64);
                if first.is_ok() {
                    first = r;
                }
                self.used.set(s, false);
                self.scoped.set(s, false);
            }
        }
        if let Some((ut, _)) = self.scratch
            && let Err(e) = CNODE.revoke(ut.cptr())
        {
            self.scratch = None;
            if first.is_ok() {
                first = Err(e);
            }
        }
        first
    }

    /// One object of `ty` from the scratch untyped, in a scoped slot.
    pub fn obj<K>(&mut self, ty: ObjectType, size_bits: u64) -> Result<Cap<K>, Error> {
        let (ut, _) = self.scratch.ok_or(Error::NotEnoughMemory)?;
        let slot = self.take_slot(true)?;
        match ut.retype(ty, size_bits, CNODE, slot, 1) {
            Ok(()) => Ok(Cap::from_cptr(slot)),
            Err(e) => {
                self.free_slot(slot);
                Err(e)
            }
        }
    }

    /// Makes sure the level-1..3 tables covering `va` exist in `vspace`, installing new
    /// PageTables from `source` where `known` does not list one. A table the kernel says is
    /// already there (`AlreadyMapped`) is recorded and the new one deleted.
    pub fn ensure_tables(
        &mut self,
        vspace: Cap<VSpace>,
        va: u64,
        known: &mut Tables,
        source: Source,
    ) -> Result<(), Error> {
        for level in 1..=3u8 {
            let base = table_base(va, level);
            if known.has(level, base) {
                continue;
            }
            let pt: Cap<PageTable> = match source {
                Source::Global => Cap::from_cptr(self.retype_global(ObjectType::PageTable, 0)?),
                Source::Scope => self.obj(ObjectType::PageTable, 0)?,
            };
            match vspace.map_table(pt, base, u64::from(level)) {
                Ok(()) => known.add(level, base),
                Err(Error::AlreadyMapped) => {
                    known.add(level, base);
                    if CNODE.delete(pt.cptr()).is_ok() {
                        self.free_slot(pt.cptr());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reserves `pages` pages of init's address space (tables installed, nothing mapped),
    /// followed by an unmapped guard page.
    pub fn va_reserve(&mut self, pages: u64) -> Result<u64, Error> {
        let va = self.va_next;
        self.va_next += (pages + 1) * PAGE;
        let mut tables = self.init_tables;
        let mut at = va;
        let mut result = Ok(());
        while at < va + pages * PAGE && result.is_ok() {
            result = self.ensure_tables(VSPACE, at, &mut tables, Source::Global);
            at = table_base(at, 3) + (1 << table_span_bits(3));
        }
        self.init_tables = tables;
        result.map(|()| va)
    }

    /// A new frame of `2^bits` bytes (scoped) mapped whole in init's VSpace with `flags`.
    pub fn mapped_frame(&mut self, bits: u64, flags: MapFlags) -> Result<(Cap<Frame>, u64), Error> {
        let frame: Cap<Frame> = self.obj(ObjectType::Frame, bits)?;
        let pages = (1u64 << bits) / PAGE;
        let va = self.va_reserve(pages)?;
        frame.map(VSPACE, va, flags, 0, pages)?;
        Ok((frame, va))
    }
}
