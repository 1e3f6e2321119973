//! The page cache's bookkeeping: which file block each 64 KiB slot holds
//! (`proto::object::BLOCK_SIZE`), dirty, pinned, reserved for a read in flight, read ahead,
//! least recently used. The frames themselves are the platform's ([`Memory`]: on the target
//! block frames mapped in the server and given to vm, on the host memory on the heap).
//!
//! [`Cache::revoke`] takes every mapping of a slot's frame away (vm's copies of its
//! capability); the server's own access stays.

extern crate alloc;

use crate::platform::{Memory, Refused};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// (object, block number in the file).
pub type Key = (u64, u64);

/// One block frame of the cache.
pub struct Slot {
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
/// `index[k] == i` exactly when `slots[i].key == Some(k)`; `slots.len() <= budget`; slot
/// `i`'s frame is `mem`'s frame `i`.
pub struct Cache<M> {
    pub slots: Vec<Slot>,
    pub index: BTreeMap<Key, usize>,
    pub budget: usize,
    pub stats: CacheStats,
    tick: u64,
    /// The frames.
    pub mem: M,
}

impl<M: Memory> Cache<M> {
    /// A cache of `budget` blocks at most, its frames made in `mem` as first needed.
    pub fn new(mem: M, budget: usize) -> Self {
        Self {
            slots: Vec::new(),
            index: BTreeMap::new(),
            budget,
            stats: CacheStats::default(),
            tick: 0,
            mem,
        }
    }

    /// A new block frame, as a new slot; `None` when the budget is reached (or the memory
    /// is used up: the budget then shrinks to what there is).
    pub fn grow(&mut self) -> Option<usize> {
        if self.slots.len() >= self.budget {
            return None;
        }
        let i = self.slots.len();
        if !self.mem.new_frame(i) {
            self.budget = i;
            return None;
        }
        self.slots.push(Slot {
            key: None,
            dirty: false,
            pinned: false,
            used: 0,
            ahead: false,
            busy: false,
        });
        Some(i)
    }

    /// The slot holding `key`, marked as just used.
    pub fn lookup(&mut self, key: Key) -> Option<usize> {
        let i = *self.index.get(&key)?;
        self.tick += 1;
        self.slots[i].used = self.tick;
        Some(i)
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
    pub fn revoke(&mut self, i: usize) -> Result<(), Refused> {
        self.mem.revoke(i)?;
        self.stats.revokes += 1;
        Ok(())
    }

    /// Forgets what slot `i` holds (its mappings revoked first); it must be clean. Kept
    /// when the revoke fails: a mapping left would show the slot's next block.
    pub fn free(&mut self, i: usize) -> Result<(), Refused> {
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

    /// The bytes of slot `i`.
    pub fn bytes(&mut self, i: usize) -> &mut [u8] {
        self.mem.bytes(i)
    }
}
