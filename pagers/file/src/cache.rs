//! The page cache's memory: 64 KiB block frames (`proto::object::BLOCK_SIZE`) retyped from the
//! server's untyped budget as they are first needed, each mapped read-write for good at its
//! own place in the server's address space (`FILE_CACHE_WINDOW + slot * 64 KiB`), and the
//! bookkeeping of which file block each slot holds.
//!
//! vm gets copies of a slot's frame capability (children of the server's) in `ObjectPage`
//! replies; [`Cache::revoke`] deletes them all, and with them every mapping vm made of the
//! block. The server's own mapping is made through its own capability and stays.

extern crate alloc;

use abi::Error;
use abi::object::{MapFlags, ObjectType};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use libmk::{CNode, Cap, Frame, PageTable, Untyped, VSpace};
use proto::object::{BLOCK_PAGES, BLOCK_SIZE};
use proto::startup::{FILE_CACHE_WINDOW, Startup, file_slots};

/// log2 of a block frame.
const BLOCK_BITS: u64 = 16;

/// (object, block number in the file).
pub type Key = (u64, u64);

/// One block frame of the cache.
pub struct Slot {
    pub frame: Cap<Frame>,
    pub va: u64,
    /// The file block it holds, if any.
    pub key: Option<Key>,
    /// Written (by `write` or through a shared mapping) since it was last written back.
    pub dirty: bool,
    /// Kept in memory whatever the budget says (an `ftruncate` rewriting the file).
    pub pinned: bool,
    /// When it was last used (for least-recently-used eviction).
    pub used: u64,
    /// Read ahead and not asked for since: the first hit reads the next block ahead.
    pub ahead: bool,
    /// Reserved for a block being read asynchronously (`key` is `None` meanwhile): the
    /// device writes its bytes, so nothing else may use or evict it.
    pub busy: bool,
}

/// Counters, for the console and for tests (`FileStats`: `proto::file::FileStats` says what
/// each counts).
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheStats {
    /// `ObjectPage` requests answered with a block, and the pages of file data in them.
    pub object_requests: u64,
    pub object_pages: u64,
    /// Misses that read the block from the disk.
    pub blocks_read: u64,
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    pub written_back: u64,
    pub revokes: u64,
    /// Blocks read ahead (also counted in `blocks_read`; `misses` counts the others).
    pub read_ahead: u64,
}

/// # Invariants
/// `index[k] == i` exactly when `slots[i].key == Some(k)`; `slots.len() <= budget`.
pub struct Cache {
    pub slots: Vec<Slot>,
    pub index: BTreeMap<Key, usize>,
    pub budget: usize,
    pub stats: CacheStats,
    tick: u64,
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

impl Cache {
    /// The cache of the startup page's budget: `cache_blocks` blocks at most, the untypeds
    /// from `untyped_first` for the frames and the last one for page tables.
    pub fn new(st: &Startup) -> Self {
        let budget = if st.untyped_count >= 2 {
            usize::try_from(st.cache_blocks).unwrap_or(0)
        } else {
            0
        };
        Self {
            slots: Vec::new(),
            index: BTreeMap::new(),
            budget,
            stats: CacheStats::default(),
            tick: 0,
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

    fn cap_slot(&mut self) -> Result<u64, Error> {
        if self.next_slot >= self.slot_end {
            return Err(Error::NotEnoughMemory);
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// A new block frame mapped at its place, as a new slot; `None` when the budget is
    /// reached (or the untyped is used up: the budget then shrinks to what there is).
    pub fn grow(&mut self) -> Option<usize> {
        if self.slots.len() >= self.budget {
            return None;
        }
        match self.new_frame() {
            Ok(slot) => {
                self.slots.push(slot);
                Some(self.slots.len() - 1)
            }
            Err(e) => {
                rt::println!(
                    "file: page cache stops at {} blocks: {e:?}",
                    self.slots.len()
                );
                self.budget = self.slots.len();
                None
            }
        }
    }

    fn new_frame(&mut self) -> Result<Slot, Error> {
        let va = FILE_CACHE_WINDOW + self.slots.len() as u64 * BLOCK_SIZE;
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
            crate::hal::add_block_frame(self.slots.len(), pa);
        }
        Ok(Slot {
            frame,
            va,
            key: None,
            dirty: false,
            pinned: false,
            used: 0,
            ahead: false,
            busy: false,
        })
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

    /// The slot holding `key`, marked as just used.
    pub fn lookup(&mut self, key: Key) -> Option<usize> {
        let i = *self.index.get(&key)?;
        self.tick += 1;
        self.slots[i].used = self.tick;
        Some(i)
    }

    /// `n` slots of the server's CNode for its own use (saved replies), taken before the
    /// cache's frames need them; `None` if there are not that many.
    pub fn reserve_slots(&mut self, n: u64) -> Option<core::ops::Range<u64>> {
        let first = self.next_slot;
        let end = first.checked_add(n).filter(|&e| e <= self.slot_end)?;
        self.next_slot = end;
        Some(first..end)
    }

    /// A slot holding nothing and not reserved for a read in flight.
    pub fn unused(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.key.is_none() && !s.busy)
    }

    /// The least recently used slot that is neither pinned nor reserved for a read in
    /// flight (a free one first).
    pub fn victim(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.pinned && !s.busy)
            .min_by_key(|(_, s)| (s.key.is_some(), s.used))
            .map(|(i, _)| i)
    }

    /// Gives slot `i` to `key` (it must be free), marked clean and just used.
    pub fn assign(&mut self, i: usize, key: Key) {
        self.tick += 1;
        let s = &mut self.slots[i];
        s.key = Some(key);
        s.dirty = false;
        s.pinned = false;
        s.ahead = false;
        s.used = self.tick;
        self.index.insert(key, i);
    }

    /// Takes every mapping of slot `i`'s frame away (vm's copies of the capability): no task
    /// can read or write the block until vm asks the server for it again.
    pub fn revoke(&mut self, i: usize) -> Result<(), Error> {
        self.cnode.revoke(self.slots[i].frame.cptr())?;
        self.stats.revokes += 1;
        Ok(())
    }

    /// Forgets what slot `i` holds (its mappings revoked first); it must be clean. Kept
    /// when the revoke fails: a mapping left would show the slot's next block.
    pub fn free(&mut self, i: usize) -> Result<(), Error> {
        self.revoke(i)?;
        if let Some(key) = self.slots[i].key.take() {
            self.index.remove(&key);
        }
        self.slots[i].dirty = false;
        self.slots[i].pinned = false;
        self.slots[i].ahead = false;
        self.slots[i].used = 0;
        Ok(())
    }

    /// The slots holding blocks of `object`, with their block numbers.
    pub fn blocks_of(&self, object: u64) -> Vec<(u64, usize)> {
        self.index
            .range((object, 0)..=(object, u64::MAX))
            .map(|(&(_, b), &i)| (b, i))
            .collect()
    }

    /// Where slot `i`'s bytes are (for the device to read into: `fs::Files::submit_fill`).
    pub fn ptr(&self, i: usize) -> *mut u8 {
        self.slots[i].va as *mut u8
    }

    /// The bytes of slot `i`.
    pub fn bytes(&mut self, i: usize) -> &mut [u8] {
        let va = self.slots[i].va;
        // SAFETY: slot `i`'s frame is mapped read-write at `va` for BLOCK_SIZE bytes for the
        // server's life (`new_frame`), and only this cache hands out references to it,
        // through `&mut self`, so no other reference to these bytes lives. vm's mappings of
        // the frame are in other address spaces (their writes are the shared memory a
        // mapping is).
        unsafe { core::slice::from_raw_parts_mut(va as *mut u8, BLOCK_SIZE as usize) }
    }
}
