//! The page cache's blocks as the file system asks for them: lookups, misses read
//! asynchronously (the request waits, `Fail::Wait`) or synchronously, read-ahead, and the
//! completions of asynchronous reads (`file::pending` keeps their bookkeeping).

use super::*;

impl<P: Platform> Files<P> {
    /// The cache slot holding block `block` of `object`, read from the disk on a miss.
    ///
    /// When the request may wait ([`Files::can_wait`]), a block being read waits for it
    /// (`Fail::Wait`) and a miss starts an asynchronous read of it (then waits too); a miss
    /// that cannot be read that way (a file the map cannot say anything for, a block of
    /// more runs than the queue has room for) is read synchronously. A request that may
    /// not wait reads synchronously (a read of the same block in flight is then stale).
    ///
    /// Read-ahead: a miss on a block that follows a cached one (or on the first block), and
    /// a hit on a block that was read ahead, read the next block of the file too
    /// (asynchronously), when the cache has room or a clean block to give up for it.
    pub(super) fn block(&mut self, object: u64, block: u64) -> Result<usize, Fail> {
        let key = (object, block);
        if let Some(i) = self.cache.lookup(key) {
            return Ok(self.hit(object, block, i));
        }
        if self.can_wait && self.cache.budget >= ASYNC_MIN {
            if self.pending.in_flight(key) {
                return Err(Fail::Wait(key));
            }
            if let Miss::Waits(fail) = self.start_fill(object, block)? {
                return Err(fail);
            }
        }
        Ok(self.block_ahead(object, block, true)?)
    }

    /// [`Files::block`], synchronously, with read-ahead only if `ahead`: `ftruncate`'s
    /// rewrite reads exactly the blocks it keeps, and a block read ahead there would only
    /// take a slot and hide a disk error from the truncate that needs the block (the read
    /// ahead fails quietly, the next read of the block may then succeed).
    pub(super) fn block_ahead(
        &mut self,
        object: u64,
        block: u64,
        ahead: bool,
    ) -> Result<usize, Errno> {
        if let Some(i) = self.cache.lookup((object, block)) {
            if !ahead {
                self.cache.stats.hits += 1;
                self.cache.slots[i].ahead = false;
                return Ok(i);
            }
            return Ok(self.hit(object, block, i));
        }
        self.cache.stats.misses += 1;
        self.size_of(object)?;
        // A read of it in flight would bring what the disk had before this one: stale.
        self.pending.invalidate((object, block));
        let i = self.free_slot()?;
        self.fill(i, object, block)?;
        self.cache.assign(i, (object, block));
        let sequential = block == 0 || self.cache.index.contains_key(&(object, block - 1));
        if sequential && ahead {
            self.read_ahead(object, block + 1, i);
        }
        Ok(i)
    }

    /// A hit on block `block` of `object` in slot `i`: the first hit on a block read ahead
    /// reads the next one ahead.
    pub(super) fn hit(&mut self, object: u64, block: u64, i: usize) -> usize {
        self.cache.stats.hits += 1;
        if core::mem::take(&mut self.cache.slots[i].ahead) {
            self.read_ahead(object, block + 1, i);
        }
        i
    }

    /// A miss on block `block` of `object` by a request that may wait: starts reading it
    /// asynchronously (`Miss::Waits(Fail::Wait)`), or finds no room for that while reads
    /// are in flight (`Miss::Waits(Fail::WaitRoom)`), or says to read it synchronously.
    pub(super) fn start_fill(&mut self, object: u64, block: u64) -> Result<Miss, Errno> {
        self.size_of(object)?;
        let Some(runs) = self.runs_of(object, block)? else {
            return Ok(Miss::Sync);
        };
        if runs.len() > self.pending.room() {
            return Ok(if self.pending.is_empty() {
                Miss::Sync
            } else {
                Miss::Waits(Fail::WaitRoom)
            });
        }
        let i = match self.cache.unused().or_else(|| self.cache.grow()) {
            Some(i) => i,
            None if self.cache.victim().is_none() => {
                return Ok(if self.pending.is_empty() {
                    Miss::Sync
                } else {
                    Miss::Waits(Fail::WaitRoom)
                });
            }
            None => self.free_slot()?,
        };
        let sequential = block == 0 || self.cache.index.contains_key(&(object, block - 1));
        if !self.submit_fill(i, (object, block), &runs, false) {
            // The synchronous read counts the miss.
            return Ok(Miss::Sync);
        }
        self.cache.stats.misses += 1;
        if sequential {
            self.read_ahead(object, block + 1, i);
        }
        Ok(Miss::Waits(Fail::Wait((object, block))))
    }

    /// Where block `block` of `object` lies on the disk, as runs of (first sector, sectors)
    /// whose bytes fill it from its start (the rest of it is past the FAT file's end:
    /// zeroes). `None` when it cannot be read as runs: no bytes on the disk, or a file the
    /// map cannot say anything for.
    pub(super) fn runs_of(
        &mut self,
        object: u64,
        block: u64,
    ) -> Result<Option<Vec<(u64, u64)>>, Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let start = block.checked_mul(BS).ok_or(Errno::EFAULT)?;
        let end = o.disk_len.min(o.size).min(start.saturating_add(BS));
        if end <= start {
            return Ok(None);
        }
        let sectors = ((end - start) as usize).next_multiple_of(SECTOR);
        extents::extents(&self.volumes, &self.geo, o, start, sectors)
    }

    /// Submits the asynchronous read of `key` into free slot `i` (reserved until it ends),
    /// one request per run; false (nothing in flight, the slot free) if none could be
    /// submitted.
    pub(super) fn submit_fill(
        &mut self,
        i: usize,
        key: Key,
        runs: &[(u64, u64)],
        ahead: bool,
    ) -> bool {
        let Some(id) = self.pending.start(key, i, runs.len(), ahead) else {
            return false;
        };
        // Bytes past the runs (past the FAT file's end) read as zero; the runs' bytes come
        // from the disk (the tail of the last sector is cleared when the read ends). Only the
        // part no run covers is cleared: clearing all 64 KiB cost 2,000 instructions a page
        // of a cold file fault.
        let covered = runs.iter().fold(0u64, |t, &(_, n)| {
            t.saturating_add(n.saturating_mul(SECTOR as u64))
        });
        let covered = covered.min(BS) as usize;
        self.cache.bytes(i)[covered..].fill(0);
        self.cache.slots[i].busy = true;
        let mut at = 0usize;
        let mut submitted = 0;
        for &(sector, n) in runs {
            let len = n as usize * SECTOR;
            let ok = at + len <= BS as usize
                && self
                    .volumes
                    .device(|d: &mut BlockDev<P::Device>| {
                        // SAFETY: bytes `at .. at + len` lie in slot `i`'s frame (checked
                        // above); the slot is reserved (`busy`) until this fill's
                        // completions are collected, so nothing reads, writes, evicts or
                        // hands out its bytes meanwhile.
                        unsafe { d.submit_read(sector, i, at, len, id) }
                    })
                    .is_ok();
            if !ok {
                break;
            }
            submitted += 1;
            at += len;
        }
        // The parts that could not be submitted count as failed reads.
        for _ in submitted..runs.len() {
            if let Some(f) = self.pending.part_done(id, false) {
                // None was submitted: nothing in flight.
                self.cache.slots[f.slot].busy = false;
                return false;
            }
        }
        true
    }

    /// The disk's completed asynchronous reads: each finished block is put in the cache
    /// (or thrown away: failed, stale), and its waiters are handed back, each with the
    /// error to answer (`EIO`: the read of the block it waits for failed) or `None`: run
    /// it again.
    pub fn completions(&mut self) -> Vec<(P::Waiter, Option<Errno>)> {
        self.collect();
        core::mem::take(&mut self.ready)
    }

    /// Puts the blocks whose reads ended in the cache (or frees their slots), and their
    /// waiters in `ready`.
    fn collect(&mut self) {
        let done = self.volumes.device(|d: &mut BlockDev<P::Device>| {
            d.disk
                .try_borrow_mut()
                .map(|mut d| d.take_done())
                .unwrap_or_default()
        });
        for (id, result) in done {
            let Some(f) = self.pending.part_done(id, result.is_ok()) else {
                continue;
            };
            self.finish(&f);
            let err = (!f.ok && !f.stale).then_some(Errno::EIO);
            self.ready.extend(f.waiters.into_iter().map(|w| (w, err)));
            self.ready.extend(f.others.into_iter().map(|w| (w, None)));
        }
    }

    /// `p` waits for what `on` says (a block in flight, room); `Err(p)` if it cannot.
    pub fn park(&mut self, on: Fail, p: P::Waiter) -> Result<(), P::Waiter> {
        match on {
            Fail::Wait(key) => self.pending.wait(key, p),
            Fail::WaitRoom => self.pending.wait_any(p),
            Fail::WaitPipe(id) => self.wait_pipe(id, p),
            Fail::No(_) => Err(p),
        }
    }

    /// Whether completed reads wait to be collected by [`Files::completions`].
    pub fn has_completions(&self) -> bool {
        self.done.load(Ordering::Relaxed) || !self.ready.is_empty()
    }

    /// Waits until an asynchronous read ends (`Disk::wait_read`); false if none can.
    fn wait_read(&mut self) -> bool {
        self.volumes.device(|d: &mut BlockDev<P::Device>| {
            d.disk.try_borrow_mut().is_ok_and(|mut d| d.wait_read())
        })
    }

    /// Waits for every asynchronous read in flight (`Disk::quiesce`).
    pub fn quiesce(&mut self) {
        self.volumes.device(|d: &mut BlockDev<P::Device>| {
            if let Ok(mut d) = d.disk.try_borrow_mut() {
                d.quiesce();
            }
        });
    }

    /// The disk's interrupt arrived.
    pub fn interrupt(&mut self) {
        self.volumes.device(|d: &mut BlockDev<P::Device>| {
            if let Ok(mut d) = d.disk.try_borrow_mut() {
                d.interrupt();
            }
        });
    }

    /// A fill ended: its block goes into the cache when it was read whole, is not stale,
    /// and nothing else put it there meanwhile; otherwise its slot is free again.
    pub(super) fn finish(&mut self, f: &Finished<P::Waiter>) {
        let i = f.slot;
        self.cache.slots[i].busy = false;
        let (object, block) = f.key;
        let valid = match self.objects.get(&object) {
            Some(o) if !o.lost => o.disk_len.min(o.size).saturating_sub(block * BS).min(BS),
            _ => return,
        };
        if !f.ok || f.stale || self.cache.index.contains_key(&f.key) {
            return;
        }
        // The rest of the last sector lies past the end of the file.
        self.cache.bytes(i)[valid as usize..].fill(0);
        self.cache.assign(i, f.key);
        self.cache.slots[i].ahead = f.ahead;
        self.cache.stats.blocks_read += 1;
        if f.ahead {
            self.cache.stats.read_ahead += 1;
        }
    }

    /// Reads block `block` of `object` into free slot `i`: the bytes the FAT file has (as
    /// one request per run of consecutive clusters, `fs::extents`), zeroes after them.
    pub(super) fn fill(&mut self, i: usize, object: u64, block: u64) -> Result<(), Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let start = block * BS;
        let end = o.disk_len.min(o.size).min(start + BS);
        let bytes = self.cache.bytes(i);
        if end <= start {
            bufio::zero(bytes);
            return Ok(());
        }
        let want = (end - start) as usize;
        // Whole sectors (the rest of the last one is past the end: cleared below).
        let sectors = want.next_multiple_of(SECTOR);
        match extents::read(&self.volumes, &self.geo, o, start, &mut bytes[..sectors])? {
            Done::Mapped => bytes[want..].fill(0),
            Done::Crate => {
                bytes.fill(0);
                let n = read_at(&self.volumes, o.raw, start, &mut bytes[..want])?;
                if n != want {
                    return Err(Errno::EIO);
                }
            }
        }
        self.cache.stats.blocks_read += 1;
        Ok(())
    }

    /// Reads block `block` of `object` ahead into the cache, asynchronously, if it has bytes
    /// on the disk, is neither cached nor being read, the disk queue has room, and a slot is
    /// free (or can be made, or holds a clean block other than `keep`, the one just asked
    /// for): never more than this one block, never a write-back, never a wait. Caches of
    /// fewer than [`READ_AHEAD_MIN`] blocks read nothing ahead.
    pub(super) fn read_ahead(&mut self, object: u64, block: u64, keep: usize) {
        let Some(o) = self.objects.get(&object) else {
            return;
        };
        let key = (object, block);
        let start = block.saturating_mul(BS);
        if start >= o.disk_len.min(o.size)
            || self.cache.budget < READ_AHEAD_MIN
            || self.cache.index.contains_key(&key)
            || self.pending.in_flight(key)
            || self.pending.room() == 0
        {
            return;
        }
        let Ok(Some(runs)) = self.runs_of(object, block) else {
            return;
        };
        if runs.len() > self.pending.room() {
            return;
        }
        let i = if let Some(i) = self.cache.unused() {
            i
        } else if let Some(i) = self.cache.grow() {
            i
        } else {
            match self.cache.victim() {
                Some(i) if i != keep && !self.cache.slots[i].dirty => {
                    if self.cache.free(i).is_err() {
                        return;
                    }
                    self.cache.stats.evicted += 1;
                    i
                }
                _ => return,
            }
        };
        // A read that cannot start leaves the slot free: the block is read when asked for.
        self.submit_fill(i, key, &runs, true);
    }

    /// A cache slot holding nothing: a new frame within the budget, else the least recently
    /// used block, written back first if dirty.
    pub(super) fn free_slot(&mut self) -> Result<usize, Errno> {
        if let Some(i) = self.cache.unused() {
            return Ok(i);
        }
        if let Some(i) = self.cache.grow() {
            return Ok(i);
        }
        let i = loop {
            if let Some(i) = self.cache.victim() {
                break i;
            }
            // Every slot is pinned or reserved by a read in flight: a synchronous request
            // waits for one of those reads to end (its slot then holds a block to evict).
            if self.pending.is_empty() || !self.wait_read() {
                return Err(Errno::ENOMEM);
            }
            self.collect();
        };
        if self.cache.slots[i].dirty {
            // A failure is the writer's (`write_back_or_drop`), not this caller's.
            let _ = self.write_back_or_drop(i);
        }
        self.cache.free(i).map_err(|_| Errno::EIO)?;
        self.cache.stats.evicted += 1;
        Ok(i)
    }
}
