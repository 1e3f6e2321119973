//! Memory objects: handles given to tasks (`GetObject`), claimed by vm, and vm's requests
//! for their blocks (`ObjectPage`, `ObjectDirty`, `ObjectSync`, `ObjectRelease`).

use super::*;

impl<P: Platform> Files<P> {
    /// `GetObject` by task `pid`: a new handle on the descriptor's file, bound to `pid`, as
    /// writable as the descriptor → (handle, size). `EACCES` for a descriptor not open for
    /// reading (a mapping always reads) and for `writable` on one not open for writing;
    /// `EMFILE` when `pid` holds too many handles vm has not claimed.
    pub fn get_object(&mut self, pid: u64, fd: u64, writable: bool) -> Result<(u64, u64), Errno> {
        let d = self.fd(pid, fd)?;
        if !d.readable() || (writable && !d.writable()) {
            return Err(Errno::EACCES);
        }
        let (object, may_write) = (d.object, d.writable());
        // One handle per mapping: a task's mappings of files (ENOMEM, as mmap past its
        // mappings) and everyone's (ENFILE) are limited, so that the table fits the heap.
        // (init's handles map programs for every task: only the global limit.)
        if pid != proto::pid::INIT && self.handles.owned_by(pid) >= MAX_TASK_HANDLES {
            return Err(Errno::ENOMEM);
        }
        if self.handles.len() >= MAX_HANDLES || P::heap_low() {
            return Err(Errno::ENFILE);
        }
        // init loads programs: not one somebody may be writing (POSIX `execve`'s
        // `ETXTBSY`; init then takes the initrd's copy).
        if pid == pid::INIT && self.writers(object) {
            return Err(Errno::ETXTBSY);
        }
        // A new mapping sees zeroes past the end of the file, whatever another wrote there.
        let size = self.size_of(object)?;
        self.clear_past(object, size);
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let handle = self.handles.give(pid, object, may_write)?;
        o.handles += 1;
        Ok((handle, o.size))
    }

    /// `Window`: a handle for the runtime's window on `fd` (`GetObject`, as writable as
    /// the descriptor), whose mappings map whole blocks (`object_page`).
    pub fn get_window(&mut self, pid: u64, fd: u64) -> Result<(u64, u64), Errno> {
        let writable = self.fd(pid, fd)?.writable();
        let (handle, size) = self.get_object(pid, fd, writable)?;
        self.handles.set_whole(handle);
        Ok((handle, size))
    }

    /// Whether a descriptor open for writing or a writable handle (a shared writable
    /// mapping, or one about to be made) names `object`.
    pub(super) fn writers(&self, object: u64) -> bool {
        self.objects.get(&object).is_some_and(|o| o.writers > 0)
            || self.handles.writable_on(object, pid::INIT)
    }

    /// `ObjectClaim` (vm's): vm takes `handle` for task `pid`'s mapping. `EBADF` unless it
    /// is `pid`'s and unclaimed.
    pub fn claim(&mut self, handle: u64, pid: u64) -> Result<Claimed, Errno> {
        self.handles.claim(handle, pid)
    }

    /// `ObjectPage`: the slot holding the block, and how many of its bytes are file data.
    /// `EFAULT` when the block lies wholly past the end of the file; `EBADF` for a handle vm
    /// has not claimed, `EACCES` for `write` through a read-only one.
    pub fn object_page(
        &mut self,
        handle: u64,
        block: u64,
        write: bool,
    ) -> Result<(usize, u64), Fail> {
        let h = if write {
            self.handles.claimed_for_write(handle)?
        } else {
            self.handles.claimed(handle)?
        };
        let object = h.object;
        if Self::is_buffer(object) {
            // An `O_DIRECT` buffer: one block, the task's to write (never written back);
            // gone with its descriptor.
            return match self.buffer_slot(object) {
                Some(i) if block == 0 => Ok((i, BS)),
                _ => Err(Errno::EFAULT.into()),
            };
        }
        let size = self.size_of(object)?;
        let start = block.checked_mul(BS).ok_or(Errno::EFAULT)?;
        // A window may fault in a block a growth reservation holds past the size.
        let reach = if h.whole {
            self.reach(object, size)
        } else {
            size
        };
        if start >= reach {
            return Err(Errno::EFAULT.into());
        }
        let i = self.block(object, block)?;
        if write {
            self.cache.slots[i].dirty = true;
        }
        // A window maps the whole block: the file grows under it a write at a time.
        let valid = if h.whole { BS } else { (size - start).min(BS) };
        self.cache.stats.object_requests += 1;
        self.cache.stats.object_pages += valid.div_ceil(PAGE_SIZE);
        Ok((i, valid))
    }

    /// `ObjectDirty`: a page of the block was written through a mapping. `EACCES` for a
    /// read-only handle.
    pub fn object_dirty(&mut self, handle: u64, block: u64) -> Result<(), Errno> {
        let object = self.handles.claimed_for_write(handle)?.object;
        if Self::is_buffer(object) {
            return Ok(());
        }
        self.size_of(object)?;
        if let Some(i) = self.cache.lookup((object, block)) {
            self.cache.slots[i].dirty = true;
        }
        Ok(())
    }

    /// `ObjectSync`: writes back the dirty blocks among `first .. first + count` (each one's
    /// mappings are taken away, so the next write faults and is seen).
    pub fn object_sync(&mut self, handle: u64, first: u64, count: u64) -> Result<(), Errno> {
        let object = self.handles.claimed(handle)?.object;
        if Self::is_buffer(object) {
            return Ok(());
        }
        self.size_of(object)?;
        let synced = self.sync(object, first, count);
        // Failed now or in an eviction since the last `msync`: reported once.
        let pending = self.objects.get_mut(&object).and_then(|o| o.error.take());
        synced.and(pending.map_or(Ok(()), Err))
    }

    /// `ObjectRelease` from `badge`: vm maps the handle no more (or the task it was given to
    /// gives back one vm never claimed); the file's last holder settles it.
    pub fn object_release(&mut self, badge: u64, handle: u64) -> Result<(), Errno> {
        let object = self.handles.release(badge, handle)?;
        self.handle_gone(object)
    }

    pub(super) fn handle_gone(&mut self, object: u64) -> Result<(), Errno> {
        if let Some(o) = self.objects.get_mut(&object) {
            o.handles = o.handles.saturating_sub(1);
        }
        self.settle(object)
    }
}
