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
use abi::object::{MapFlags, ObjectType};
use alloc::vec::Vec;
use file::platform::{Memory, Platform, Refused};
use libmk::{Cap, Frame};
use proto::Errno;
use proto::object::{BLOCK_PAGES, BLOCK_SIZE};
use proto::startup::{FILE_CACHE_WINDOW, Startup, file_slots};
use serve::{Budget, Tables};

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
    /// The untypeds (the last one kept for page tables) and the CNode's slots.
    budget: Budget,
    /// The server's own address space, where the window is.
    own: Tables,
}

impl Frames {
    /// The frames of the startup page: the untypeds from `untyped_first` for the frames
    /// and the last one for page tables.
    pub fn new(st: &Startup) -> Self {
        let mut budget = Budget::of(st, Cap::from_cptr(st.slots[file_slots::CNODE]));
        budget.keep_last_for_tables();
        Self {
            frames: Vec::new(),
            budget,
            own: Tables::new(Cap::from_cptr(st.slots[file_slots::VSPACE])),
        }
    }

    /// Slot `i`'s frame capability (vm gets copies of it).
    pub fn frame(&self, i: usize) -> Option<Cap<Frame>> {
        self.frames.get(i).copied()
    }

    /// `n` slots of the server's CNode for its own use (saved replies), taken before the
    /// cache's frames need them; `None` if there are not that many.
    pub fn reserve_slots(&mut self, n: u64) -> Option<core::ops::Range<u64>> {
        self.budget.reserve_slots(n)
    }

    fn make_frame(&mut self) -> Result<Cap<Frame>, Errno> {
        let slot = self.frames.len();
        let va = FILE_CACHE_WINDOW + slot as u64 * BLOCK_SIZE;
        self.own.ensure(va, &mut self.budget)?;
        let frame: Cap<Frame> = Cap::from_cptr(self.budget.retype(ObjectType::Frame, BLOCK_BITS)?);
        frame.map(self.own.vspace, va, MapFlags::RW, 0, BLOCK_PAGES)?;
        // The disk reads and writes the frame in place (else through bounce buffers).
        if let Ok((pa, BLOCK_SIZE)) = frame.phys_addr() {
            crate::hal::add_block_frame(slot, pa);
        }
        Ok(frame)
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
        self.budget.cnode.revoke(frame.cptr()).map_err(|_| Refused)
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
