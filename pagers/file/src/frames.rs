//! The target's platform under the file server's core (`file::platform`): the page cache's
//! 64 KiB block frames (`proto::object::BLOCK_SIZE`), retyped from the server's untyped
//! budget as they are first needed, each mapped read-write for good at its own place in the
//! server's address space (`FILE_CACHE_WINDOW + slot * 64 KiB`); the virtio disk
//! (`crate::disk`); the console and the heap of `rt`.
//!
//! vm gets copies of a slot's frame capability (children of the server's) in `ObjectPage`
//! replies; [`Frames::revoke`](Memory::revoke) deletes them all, and with them every
//! mapping vm made of the block. The server's own mapping is made through its own
//! capability and stays.

extern crate alloc;

use crate::disk::Disk;
use crate::server::Parked;
use abi::Error;
use abi::object::{MapFlags, ObjectType};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use file::platform::{Memory, Platform, Refused};
use libmk::{CNode, Cap, Frame, PageTable, Untyped, VSpace};
use proto::object::{BLOCK_PAGES, BLOCK_SIZE};
use proto::startup::{FILE_CACHE_WINDOW, Startup, file_slots};

/// log2 of a block frame.
const BLOCK_BITS: u64 = 16;

/// The file server as it runs: its core over the target's platform.
pub type Files = file::fs::Files<Target>;
pub type Cache = file::cache::Cache<Frames>;

/// The page cache of the startup page's budget: `cache_blocks` blocks at most (none
/// without an untyped for page tables besides the frames').
pub fn cache(st: &Startup) -> Cache {
    let budget = if st.untyped_count >= 2 {
        usize::try_from(st.cache_blocks).unwrap_or(0)
    } else {
        0
    };
    Cache::new(Frames::new(st), budget)
}

/// The target's platform.
pub struct Target;

impl Platform for Target {
    type Memory = Frames;
    type Device = Disk;
    type Waiter = Parked;

    fn log(args: core::fmt::Arguments<'_>) {
        rt::println!("{args}");
    }

    fn heap_low() -> bool {
        rt::heap::is_low()
    }
}

/// The block frames, and what making them needs.
pub struct Frames {
    /// Slot `i`'s frame, mapped at `FILE_CACHE_WINDOW + i * BLOCK_SIZE`.
    frames: Vec<Cap<Frame>>,
    cnode: Cap<CNode>,
    vspace: Cap<VSpace>,
    /// The untypeds for block frames, first to last (each used until it is full).
    frames_ut: core::ops::Range<u64>,
    tables_ut: Cap<Untyped>,
    next_slot: u64,
    slot_end: u64,
    /// Page tables installed in the server's VSpace for the window, by (level, base).
    tables: BTreeMap<(u64, u64), ()>,
    spare_table: Option<Cap<PageTable>>,
}

/// The span covered by one table of `level` (1..3).
const fn span_bits(level: u64) -> u32 {
    match level {
        1 => 39,
        2 => 30,
        _ => 21,
    }
}

impl Frames {
    /// The frames of the startup page: the untypeds from `untyped_first` for the frames
    /// and the last one for page tables.
    pub fn new(st: &Startup) -> Self {
        Self {
            frames: Vec::new(),
            cnode: Cap::from_cptr(st.slots[file_slots::CNODE]),
            vspace: Cap::from_cptr(st.slots[file_slots::VSPACE]),
            frames_ut: st.untyped_first..st.untyped_first + st.untyped_count.saturating_sub(1),
            tables_ut: Cap::from_cptr(st.untyped_first + st.untyped_count.saturating_sub(1)),
            next_slot: st.first_free_slot,
            slot_end: 1u64
                .checked_shl(u32::try_from(st.cnode_radix).unwrap_or(0))
                .unwrap_or(0),
            tables: BTreeMap::new(),
            spare_table: None,
        }
    }

    /// Slot `i`'s frame capability (vm gets copies of it).
    pub fn frame(&self, i: usize) -> Option<Cap<Frame>> {
        self.frames.get(i).copied()
    }

    fn cap_slot(&mut self) -> Result<u64, Error> {
        if self.next_slot >= self.slot_end {
            return Err(Error::NotEnoughMemory);
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// `n` slots of the server's CNode for its own use (saved replies), taken before the
    /// cache's frames need them; `None` if there are not that many.
    pub fn reserve_slots(&mut self, n: u64) -> Option<core::ops::Range<u64>> {
        let first = self.next_slot;
        let end = first.checked_add(n).filter(|&e| e <= self.slot_end)?;
        self.next_slot = end;
        Some(first..end)
    }

    fn make_frame(&mut self) -> Result<Cap<Frame>, Error> {
        let slot = self.frames.len();
        let va = FILE_CACHE_WINDOW + slot as u64 * BLOCK_SIZE;
        self.ensure_tables(va)?;
        let cptr = self.cap_slot()?;
        // From the first untyped with room (a full one says NotEnoughMemory).
        loop {
            if self.frames_ut.is_empty() {
                self.next_slot -= 1;
                return Err(Error::NotEnoughMemory);
            }
            let ut: Cap<Untyped> = Cap::from_cptr(self.frames_ut.start);
            match ut.retype(ObjectType::Frame, BLOCK_BITS, self.cnode, cptr, 1) {
                Ok(()) => break,
                Err(Error::NotEnoughMemory) => self.frames_ut.start += 1,
                Err(e) => return Err(e),
            }
        }
        let frame: Cap<Frame> = Cap::from_cptr(cptr);
        frame.map(self.vspace, va, MapFlags::RW, 0, BLOCK_PAGES)?;
        // The disk reads and writes the frame in place (else through bounce buffers).
        if let Ok((pa, BLOCK_SIZE)) = frame.phys_addr() {
            crate::hal::add_block_frame(slot, pa);
        }
        Ok(frame)
    }

    /// Installs the level-1..3 tables covering `va` where missing (a level the server
    /// already has, from init, is `AlreadyMapped`: the table is kept for the next one).
    fn ensure_tables(&mut self, va: u64) -> Result<(), Error> {
        for level in 1..=3u64 {
            let base = va & !((1u64 << span_bits(level)) - 1);
            if self.tables.contains_key(&(level, base)) {
                continue;
            }
            let pt = match self.spare_table.take() {
                Some(pt) => pt,
                None => {
                    let cptr = self.cap_slot()?;
                    self.tables_ut
                        .retype(ObjectType::PageTable, 0, self.cnode, cptr, 1)?;
                    Cap::from_cptr(cptr)
                }
            };
            match self.vspace.map_table(pt, base, level) {
                Ok(()) => {}
                Err(Error::AlreadyMapped) => self.spare_table = Some(pt),
                Err(e) => {
                    self.spare_table = Some(pt);
                    return Err(e);
                }
            }
            self.tables.insert((level, base), ());
        }
        Ok(())
    }
}

impl Memory for Frames {
    fn new_frame(&mut self, slot: usize) -> bool {
        if slot != self.frames.len() {
            return false;
        }
        match self.make_frame() {
            Ok(frame) => {
                self.frames.push(frame);
                true
            }
            Err(e) => {
                rt::println!("file: page cache stops at {slot} blocks: {e:?}");
                false
            }
        }
    }

    fn revoke(&mut self, slot: usize) -> Result<(), Refused> {
        let frame = self.frames.get(slot).ok_or(Refused)?;
        self.cnode.revoke(frame.cptr()).map_err(|_| Refused)
    }

    fn bytes(&mut self, slot: usize) -> &mut [u8] {
        if slot >= self.frames.len() {
            return &mut [];
        }
        let va = FILE_CACHE_WINDOW + slot as u64 * BLOCK_SIZE;
        // SAFETY: slot `slot`'s frame is mapped read-write at `va` for BLOCK_SIZE bytes for
        // the server's life (`make_frame`; `frames` holds it), and only this value hands out
        // references to it, through `&mut self`, so no other reference to these bytes
        // lives. vm's mappings of the frame are in other address spaces (their writes are
        // the shared memory a mapping is).
        unsafe { core::slice::from_raw_parts_mut(va as *mut u8, BLOCK_SIZE as usize) }
    }
}
