//! Memory-object regions (`proto::object`): the 64 KiB block capabilities vm holds for the
//! objects of other pagers (files, shm objects), and how pages of a region come from them.
//!
//! A task's page entry in an object region is [`BLOCK_RO`] or [`BLOCK_RW`] for a page mapped
//! from the block's capability (the pager's page), or one of vm's own pages (a private
//! region's copy after a write). vm keeps one capability per block that some task maps,
//! counting the entries that name the block. When the count drops to zero the capability
//! stays a while, idle: the [`MAX_IDLE`] blocks that went idle last are kept (the oldest
//! is deleted when one more goes idle), so that mapping a file again, warm in the page
//! cache, asks the pager nothing (as Linux's page cache stays mapped in the kernel). The
//! pager may revoke its own capability at any time (eviction, write-back, truncation):
//! vm's copy and every mapping made through it go, the entries stay, and the next access
//! faults as a translation fault: vm asks for the block again. An idle capability keeps
//! nothing of the pager's from it: the pager revokes it like any other.
//!
//! # Invariants
//! - `Block::maps` is the number of page entries, over all tasks, that are [`BLOCK_RO`] or
//!   [`BLOCK_RW`] and lie in a region of the block's object at an offset in the block.
//! - A block with `maps == 0` has no record unless it holds a capability and its key is in
//!   the idle queue (except within one fault's handling); at most [`MAX_IDLE`] such.

use crate::pages::{BLOCK_RO, BLOCK_RW, NONE, PageMap, is_block};
use crate::region::{Kind, Region, Source};
use crate::{Machine, prot_flags, without_write};
use abi::object::MapFlags;
use alloc::collections::{BTreeMap, VecDeque};
use proto::object::{BLOCK_PAGES, BLOCK_SIZE, ObjectRequest, Pager};
use proto::{Errno, PAGE_SIZE};

/// A block: (pager, object, block number). By object, not handle: every mapping of one
/// object, through whichever handle, shares vm's capability of the block.
pub type BlockKey = (u64, u64, u64);

/// Blocks whose capability vm keeps while no entry names them (a CNode slot each).
pub const MAX_IDLE: usize = 256;

/// One block's capability, as vm holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// vm's copy of the block's frame capability; `None` once vm found it revoked.
    pub slot: Option<u64>,
    /// Pages of the block that hold data (the pager's valid bytes, rounded up).
    pub valid_pages: u64,
    /// Page entries naming the block.
    pub maps: u32,
    /// Whether its key is in the idle queue.
    pub idle: bool,
}

/// Every block vm holds a capability for.
#[derive(Debug, Default)]
pub struct Objects {
    blocks: BTreeMap<BlockKey, Block>,
    /// Keys of blocks that went idle (no entry names them), oldest first, at most
    /// [`MAX_IDLE`]. A key whose block is named again stays: when its turn comes, only its
    /// flag goes.
    idle: VecDeque<BlockKey>,
}

impl Objects {
    pub fn get(&self, k: &BlockKey) -> Option<&Block> {
        self.blocks.get(k)
    }

    /// Blocks vm holds (for tests and counters).
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Idle blocks vm keeps a capability for (their slots are a cache, not in use).
    pub fn idle(&self) -> usize {
        self.blocks
            .values()
            .filter(|b| b.maps == 0 && b.slot.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Asks the pager for the block (through handle `src`): its capability and valid
    /// pages. The record takes the new capability (an old one is deleted, and its mappings
    /// with it).
    pub fn fetch<M: Machine>(
        &mut self,
        m: &mut M,
        k: BlockKey,
        (pager, handle): Source,
        write: bool,
    ) -> Result<(u64, u64), Errno> {
        let (valid, cap) = m.pager_page(
            k,
            pager,
            ObjectRequest::Page {
                handle,
                block: k.2,
                write,
            },
        )?;
        let Some(slot) = cap else {
            return Err(Errno::EIO);
        };
        let valid_pages = valid.min(BLOCK_SIZE).div_ceil(PAGE_SIZE);
        let b = self.blocks.entry(k).or_insert(Block {
            slot: None,
            valid_pages,
            maps: 0,
            idle: false,
        });
        if let Some(old) = b.slot.replace(slot) {
            m.drop_frame(old);
        }
        b.valid_pages = valid_pages;
        Ok((slot, valid_pages))
    }

    /// The block's capability and valid pages, asking the pager (through `src`) if vm has
    /// none; whether the pager's answer is fresh (asking again would not help).
    pub fn cap<M: Machine>(
        &mut self,
        m: &mut M,
        k: BlockKey,
        src: Source,
        write: bool,
    ) -> Result<(u64, u64, bool), Errno> {
        match self.blocks.get(&k) {
            Some(&Block {
                slot: Some(s),
                valid_pages,
                ..
            }) => Ok((s, valid_pages, false)),
            _ => self
                .fetch(m, k, src, write)
                .map(|(slot, valid)| (slot, valid, true)),
        }
    }

    /// Deletes vm's capability of the block (it was revoked, or is about to be replaced).
    pub fn forget<M: Machine>(&mut self, m: &mut M, k: BlockKey) {
        if let Some(b) = self.blocks.get_mut(&k)
            && let Some(s) = b.slot.take()
        {
            m.drop_frame(s);
        }
        self.settle(m, k);
    }

    /// `n` more entries name the block.
    pub fn add_maps(&mut self, k: BlockKey, n: u32) {
        if let Some(b) = self.blocks.get_mut(&k) {
            b.maps += n;
        }
    }

    /// `n` entries fewer name the block; its capability goes with the last.
    pub fn unref<M: Machine>(&mut self, m: &mut M, k: BlockKey, n: u32) {
        if let Some(b) = self.blocks.get_mut(&k) {
            b.maps = b.maps.saturating_sub(n);
        }
        self.settle(m, k);
    }

    /// If no entry names the block: keeps its capability idle (the oldest idle one goes
    /// when there are more than [`MAX_IDLE`]), or drops the record when it has none.
    pub fn settle<M: Machine>(&mut self, m: &mut M, k: BlockKey) {
        let Some(b) = self.blocks.get_mut(&k) else {
            return;
        };
        if b.maps > 0 {
            return;
        }
        if b.slot.is_none() {
            self.blocks.remove(&k);
            return;
        }
        if b.idle {
            return;
        }
        b.idle = true;
        self.idle.push_back(k);
        while self.idle.len() > MAX_IDLE {
            let Some(old) = self.idle.pop_front() else {
                break;
            };
            self.drop_idle(m, old);
        }
    }

    /// `k` leaves the idle queue: its capability and record go if no entry names it.
    fn drop_idle<M: Machine>(&mut self, m: &mut M, k: BlockKey) {
        let Some(b) = self.blocks.get_mut(&k) else {
            return;
        };
        if !b.idle {
            return;
        }
        b.idle = false;
        if b.maps == 0 {
            if let Some(s) = b.slot {
                m.drop_frame(s);
            }
            self.blocks.remove(&k);
        }
    }
}

/// The block key of address `va` of object region `r`, the region's source (pager and
/// handle) and the page's index in the block.
pub fn block_key(r: &Region, va: u64) -> Option<(BlockKey, Source, u64)> {
    let (pager, object) = r.kind.object()?;
    let src = r.kind.handle()?;
    let off = r.kind.object_offset(va)?;
    Some((
        (pager as u64, object, off / BLOCK_SIZE),
        src,
        (off % BLOCK_SIZE) / PAGE_SIZE,
    ))
}

/// The addresses of `r` that hold pages of the same block as `va`: [`lo`, `hi`).
pub fn block_span(r: &Region, va: u64) -> (u64, u64) {
    let index = block_key(r, va).map_or(0, |b| b.2);
    let base = va - index * PAGE_SIZE;
    (base.max(r.start), (base + BLOCK_SIZE).min(r.end))
}

/// Makes sure the level-3 tables and page groups of [`lo`, `hi`) exist (a block spans at
/// most two 2 MiB groups).
pub fn groups<M: Machine>(
    m: &mut M,
    space: &mut M::Space,
    pages: &mut PageMap,
    lo: u64,
    hi: u64,
) -> Result<(), Errno> {
    for a in [lo, hi - PAGE_SIZE] {
        if !pages.has_group(a) {
            m.tables(space, a)?;
            pages.add_group(a);
        }
    }
    Ok(())
}

/// Maps the pages of `va`'s block in region `r` of a task (`pages`, `space`) from the
/// block's capability, read-only: the run of entries around `va` that are not private
/// copies, within the block's valid pages. Asks the pager for the block when vm has no
/// capability or finds it revoked (for writing if `write`). `EFAULT` when `va` lies past the
/// object's data. Whether the pager was just asked for the block (with `write`, it counts
/// the block as written: no `ObjectDirty` is needed).
pub fn map_block<M: Machine>(
    m: &mut M,
    objects: &mut Objects,
    space: &mut M::Space,
    pages: &mut PageMap,
    r: &Region,
    va: u64,
    write: bool,
) -> Result<bool, Errno> {
    let (k, src, idx) = block_key(r, va).ok_or(Errno::EINVAL)?;
    let (lo, hi) = block_span(r, va);
    groups(m, space, pages, lo, hi)?;
    let ro = without_write(prot_flags(r.prot));
    let base = va - idx * PAGE_SIZE;
    let open = |p| p == NONE || is_block(p);
    // A capability vm held may be stale (the object grew, or the pager revoked it): vm
    // asks once more (a fault handled again after the answer asks again only if the pager
    // took the block back meanwhile; an answer that says the page lies past the object's
    // data is final).
    let mut asked_again = false;
    loop {
        let (slot, valid, fresh) = objects.cap(m, k, src, write)?;
        if idx >= valid {
            if !fresh && !asked_again {
                objects.forget(m, k);
                asked_again = true;
                continue;
            }
            objects.settle(m, k);
            return Err(Errno::EFAULT);
        }
        // The page holding the region's limit is never the object's (see `tail_page`).
        let top = hi
            .min(base + valid * PAGE_SIZE)
            .min(crate::region::page_down(r.kind.limit()));
        let mut s = va;
        while s > lo && open(pages.get(s - PAGE_SIZE)) {
            s -= PAGE_SIZE;
        }
        let mut e = va + PAGE_SIZE;
        while e < top && open(pages.get(e)) {
            e += PAGE_SIZE;
        }
        let (first, n) = ((s - base) / PAGE_SIZE, (e - s) / PAGE_SIZE);
        let mapped = m.map_frame(space, slot, first, s, n, ro).or_else(|err| {
            // Some of the run is still mapped (access taken away and given back): map it
            // afresh, unless the capability itself is gone.
            m.frame_pages(slot).map_err(|_| err)?;
            m.unmap(space, s, e - s);
            m.map_frame(space, slot, first, s, n, ro)
        });
        if mapped.is_err() && (!asked_again || m.frame_pages(slot).is_err()) {
            // The pager revoked the block (even one just answered: it may have evicted it
            // before vm heard the answer, which then is no answer at all): ask for it again.
            objects.forget(m, k);
            asked_again = true;
            continue;
        }
        if let Err(err) = mapped {
            objects.settle(m, k);
            return Err(err);
        }
        let mut new_entries = 0;
        let mut a = s;
        while a < e {
            if let Some(entry) = pages.entry(a) {
                if *entry == NONE {
                    new_entries += 1;
                }
                *entry = BLOCK_RO;
            }
            a += PAGE_SIZE;
        }
        objects.add_maps(k, new_entries);
        return Ok(fresh);
    }
}

/// The page at `va` of private object region `r` when it holds or lies past the region's
/// limit: one of vm's own, a copy of the object's page with the bytes from the limit on
/// cleared (all zero past it), recorded in `pages`. [`crate::WAIT`] while the pager's
/// answer is awaited; another error when no page or table is to be had, or the object has
/// no data there (the caller kills with `BUS`).
pub fn tail_page<M: Machine>(
    m: &mut M,
    pool: &mut crate::pages::Pool,
    objects: &mut Objects,
    space: &mut M::Space,
    pages: &mut PageMap,
    r: &Region,
    va: u64,
) -> Result<crate::pages::PageId, Errno> {
    let limit = r.kind.limit();
    groups(m, space, pages, va, va + PAGE_SIZE)?;
    let new = crate::take_page(m, pool, true).ok_or(Errno::ENOMEM)?;
    if va < limit {
        let copied = copy_block_page(m, objects, r, va, new);
        if let Some(k) = block_key(r, va) {
            objects.settle(m, k.0);
        }
        if let Err(e) = copied {
            pool.release(new);
            return Err(e);
        }
        m.zero_tail(new, limit - va);
    }
    pages.set(va, new);
    Ok(new)
}

/// A page of vm's own holding a copy of the object's page at `va` of region `r` (see
/// [`copy_block_page`]); the page goes back to the pool on any error ([`crate::WAIT`]
/// included), `ENOMEM` when there is none.
pub fn own_copy<M: Machine>(
    m: &mut M,
    pool: &mut crate::pages::Pool,
    objects: &mut Objects,
    r: &Region,
    va: u64,
) -> Result<crate::pages::PageId, Errno> {
    let new = crate::take_page(m, pool, false).ok_or(Errno::ENOMEM)?;
    copy_block_page(m, objects, r, va, new).inspect_err(|_| {
        pool.release(new);
    })?;
    Ok(new)
}

/// Copies the object's page at `va` of region `r` to vm's page `new`, asking the pager for
/// the block if vm holds no capability for it, and once more if the one it held was
/// revoked. `EFAULT` when the object has no data there; [`crate::WAIT`] while the pager's
/// answer is awaited.
pub fn copy_block_page<M: Machine>(
    m: &mut M,
    objects: &mut Objects,
    r: &Region,
    va: u64,
    new: crate::pages::PageId,
) -> Result<(), Errno> {
    let (k, src, idx) = block_key(r, va).ok_or(Errno::EINVAL)?;
    let mut asked_again = false;
    loop {
        let (slot, valid, _) = objects.cap(m, k, src, false)?;
        if idx >= valid {
            return Err(Errno::EFAULT);
        }
        match m.copy_from_frame(new, slot, idx) {
            Ok(()) => return Ok(()),
            Err(e) if asked_again && m.frame_pages(slot).is_ok() => return Err(e),
            Err(_) => {
                // Revoked (even a capability just answered: the pager may have evicted the
                // block before vm heard the answer): ask again.
                objects.forget(m, k);
                asked_again = true;
            }
        }
    }
}

/// Takes every page entry of object region `r` out of `pages`: block entries drop their
/// block's count, private copies go to `release`.
pub fn take_pages<M: Machine>(
    m: &mut M,
    objects: &mut Objects,
    pages: &mut PageMap,
    r: &Region,
    mut release: impl FnMut(u32),
) {
    let mut run: Option<(BlockKey, u32)> = None;
    pages.take_range(r.start, r.end, |va, p| {
        if !is_block(p) {
            release(p);
            return;
        }
        let Some((k, _, _)) = block_key(r, va) else {
            return;
        };
        match run.as_mut() {
            Some((rk, n)) if *rk == k => *n += 1,
            _ => {
                if let Some((rk, n)) = run.replace((k, 1)) {
                    objects.unref(m, rk, n);
                }
            }
        }
    });
    if let Some((rk, n)) = run {
        objects.unref(m, rk, n);
    }
}

/// The `ObjectSync` for the blocks of [`start`, `end`) of shared object region `r` (none for
/// other regions, or when the range misses `r`).
pub fn sync_request(r: &Region, start: u64, end: u64) -> Option<(Pager, ObjectRequest)> {
    let Kind::Object {
        pager,
        handle,
        shared: true,
        ..
    } = r.kind
    else {
        return None;
    };
    let (start, end) = (start.max(r.start), end.min(r.end));
    if start >= end {
        return None;
    }
    let first = r.kind.object_offset(start).unwrap_or(0) / BLOCK_SIZE;
    let last = r.kind.object_offset(end - 1).unwrap_or(0) / BLOCK_SIZE;
    Some((
        pager,
        ObjectRequest::Sync {
            handle,
            first,
            count: last - first + 1,
        },
    ))
}

/// `ObjectSync` for the blocks of [`start`, `end`) of shared object region `r` (nothing for
/// other regions); [`crate::WAIT`] while the answer is awaited.
pub fn sync<M: Machine>(m: &mut M, r: &Region, start: u64, end: u64) -> Result<(), Errno> {
    match sync_request(r, start, end) {
        Some((pager, req)) => m.pager_call(pager, req).map(|_| ()),
        None => Ok(()),
    }
}

/// The rights of a block entry in a region with rights `flags`.
pub fn block_flags(p: u32, flags: MapFlags) -> MapFlags {
    if p == BLOCK_RW {
        flags
    } else {
        without_write(flags)
    }
}

const _: () = assert!(BLOCK_PAGES * PAGE_SIZE == BLOCK_SIZE);
