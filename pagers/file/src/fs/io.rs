//! `read`, `write` and `lseek` on descriptors: through the page cache, or `O_DIRECT`
//! (staged transfers straight to and from the disk, after the cache is flushed there).

use super::*;
use core::ops::Bound;

impl<P: Platform> Files<P> {
    /// `Read`: up to `out.len()` bytes at `offset` (`AT_POSITION`: the descriptor's
    /// position, advanced); the count. `want` is what the caller still wants in all (an
    /// `O_DIRECT` transfer's length). A read through the cache may wait for its first block
    /// (before anything changed).
    pub fn read(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        want: u64,
        out: &mut [u8],
    ) -> Result<usize, Fail> {
        match self.fds.get(&(pid, fd)).map(|d| (d.end, d.flags)) {
            // `pread` of a pipe: `ESPIPE` (POSIX).
            Some((End::PipeRead(_), _)) if offset != AT_POSITION => {
                return Err(Errno::ESPIPE.into());
            }
            Some((End::PipeRead(id), flags)) => return self.pipe_read(id, flags, out),
            Some((End::PipeWrite(_), _)) => return Err(Errno::EBADF.into()),
            Some((End::Console, _)) => return Err(Errno::EXDEV.into()),
            _ => {}
        }
        let d = self.fd(pid, fd)?;
        if !d.readable() {
            return Err(Errno::EBADF.into());
        }
        let (object, direct) = (d.object, d.direct());
        let at = if offset == AT_POSITION {
            d.pos.get()
        } else {
            offset
        };
        let n = if direct {
            self.direct_read(pid, fd, at, want, out)?
        } else {
            self.cached_read(object, at, out)?
        };
        if offset == AT_POSITION
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.pos.set(d.pos.get() + n as u64);
        }
        Ok(n)
    }

    /// Only the first block may wait: a block after it that is not cached is read
    /// synchronously (the first one's bytes are copied out by then, so a cache of one block
    /// still makes progress).
    pub(super) fn cached_read(
        &mut self,
        object: u64,
        at: u64,
        out: &mut [u8],
    ) -> Result<usize, Fail> {
        let size = self.size_of(object)?;
        if at >= size {
            return Ok(0);
        }
        let n = (out.len() as u64).min(size - at) as usize;
        let mut done = 0;
        while done < n {
            let pos = at + done as u64;
            if done > 0 {
                self.can_wait = false;
            }
            let i = self.block(object, pos / BS)?;
            let off = (pos % BS) as usize;
            let k = (BS as usize - off).min(n - done);
            out[done..done + k].copy_from_slice(&self.cache.bytes(i)[off..off + k]);
            done += k;
        }
        Ok(n)
    }

    /// Writes back and forgets the cached blocks overlapping [`at`, `at + len`) of `object`
    /// (an `O_DIRECT` transfer is about to read or write the disk there).
    pub(super) fn flush_range(
        &mut self,
        object: u64,
        at: u64,
        len: u64,
        forget: bool,
    ) -> Result<(), Errno> {
        let (first, last) = (at / BS, (at + len.max(1) - 1) / BS);
        // Only the blocks in range (a cached 16 MiB file holds 256: listing them all cost
        // several thousand instructions per `O_DIRECT` call).
        let slots: Vec<usize> = self
            .cache
            .index
            .range((object, first)..=(object, last))
            .map(|(_, &i)| i)
            .collect();
        for i in slots {
            if self.cache.slots[i].dirty {
                self.write_back(i)?;
            }
            if forget {
                self.cache.free(i).map_err(|_| Errno::EIO)?;
            }
        }
        Ok(())
    }

    /// `O_DIRECT` read: the disk's bytes at `at`, a whole transfer of up to [`DIRECT_MAX`]
    /// (sector-aligned offset and length) read at once and handed out 464 bytes a message.
    pub(super) fn direct_read(
        &mut self,
        pid: u64,
        fd: u64,
        at: u64,
        want: u64,
        out: &mut [u8],
    ) -> Result<usize, Errno> {
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        let object = d.object;
        let call_end = at.checked_add(want);
        let staged = d.stage.take().filter(|s| {
            !s.write
                && (s.offset..s.offset + s.filled as u64).contains(&at)
                && s.call_end == call_end
        });
        let stage = match staged {
            Some(s) => s,
            None => {
                let size = self.size_of(object)?;
                if at >= size {
                    // End of file, also where a read that ended at it goes on (at the end
                    // of a file whose size is not a multiple of the sector size): Linux
                    // answers 0 there before it checks the alignment.
                    return Ok(0);
                }
                if !at.is_multiple_of(SECTOR_SIZE) || !want.is_multiple_of(SECTOR_SIZE) {
                    return Err(Errno::EINVAL);
                }
                let len = want.min(DIRECT_MAX).min(size - at);
                self.may_stage(pid)?;
                self.flush_range(object, at, len, false)?;
                let o = self.objects.get(&object).ok_or(Errno::EBADF)?;
                // Whole sectors from the disk (the tail of the last one is not handed out).
                let mut data = alloc::vec![0u8; len.next_multiple_of(SECTOR_SIZE) as usize];
                let on_disk = o.disk_len.saturating_sub(at).min(data.len() as u64) as usize;
                read_at(&self.volumes, o.raw, at, &mut data[..on_disk])?;
                Stage {
                    offset: at,
                    data,
                    filled: len as usize,
                    write: false,
                    call_end,
                }
            }
        };
        let from = (at - stage.offset) as usize;
        let n = out.len().min(stage.filled - from);
        out[..n].copy_from_slice(&stage.data[from..from + n]);
        if from + n < stage.filled
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.stage = Some(stage);
        }
        Ok(n)
    }

    /// `DirectBuffer`: the `O_DIRECT` buffer of descriptor `fd` of task `pid` (made at the
    /// first call; each call gives a new handle on the same buffer) → (handle, its length,
    /// [`DIRECT_MAX`]). The buffer is a cache slot taken out of the page cache (pinned, never
    /// written back, no file's block) and mapped by the task through the handle, which vm
    /// claims as any other (`ObjectPage` gives the slot's frame); `DirectRead` fills it from
    /// the disk and `DirectWrite` writes it to the disk, so no byte travels in a message.
    /// `EINVAL` for a descriptor without `O_DIRECT`; `ENOMEM` past [`MAX_TASK_BUFFERS`] of the
    /// task (or its handles), `EAGAIN` past [`MAX_BUFFERS`] or a quarter of the cache.
    pub fn direct_buffer(&mut self, pid: u64, fd: u64) -> Result<(u64, u64), Errno> {
        let d = self.fd(pid, fd)?;
        if !d.direct() {
            return Err(Errno::EINVAL);
        }
        if pid != proto::pid::INIT && self.handles.owned_by(pid) >= MAX_TASK_HANDLES {
            return Err(Errno::ENOMEM);
        }
        if self.handles.len() >= MAX_HANDLES || P::heap_low() {
            return Err(Errno::ENFILE);
        }
        let buffer = match d.buffer {
            Some(b) => b,
            None => {
                let mine = self
                    .fds
                    .range((pid, 0)..=(pid, u64::MAX))
                    .filter(|(_, d)| d.buffer.is_some())
                    .count();
                if mine >= MAX_TASK_BUFFERS {
                    return Err(Errno::ENOMEM);
                }
                let all = self.fds.values().filter(|d| d.buffer.is_some()).count();
                if all >= MAX_BUFFERS || all + 1 > self.cache.budget / 4 {
                    return Err(Errno::EAGAIN);
                }
                let i = self.free_slot().map_err(|_| Errno::EAGAIN)?;
                let buffer = BUFFER_OBJECT | self.next_object;
                self.next_object += 1;
                self.cache.assign(i, (buffer, 0));
                self.cache.slots[i].pinned = true;
                let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
                d.buffer = Some(buffer);
                buffer
            }
        };
        let handle = self.handles.give(pid, buffer, true)?;
        self.handles.set_whole(handle);
        Ok((handle, DIRECT_MAX))
    }

    /// The cache slot of `O_DIRECT` buffer `buffer`, if it is one and still there.
    pub(super) fn buffer_slot(&self, buffer: u64) -> Option<usize> {
        if buffer & BUFFER_OBJECT == 0 {
            return None;
        }
        self.cache.index.get(&(buffer, 0)).copied()
    }

    /// Whether object number `object` names an `O_DIRECT` buffer (not a file).
    pub(super) fn is_buffer(object: u64) -> bool {
        object & BUFFER_OBJECT != 0
    }

    /// Gives the slot of `O_DIRECT` buffer `buffer` back to the cache (its descriptor is
    /// closed): every mapping of it goes first, so the task's next access faults, and
    /// `ObjectPage` then finds no buffer (`EFAULT`: vm's `BUS`).
    pub(super) fn drop_buffer(&mut self, buffer: u64) {
        if let Some(i) = self.buffer_slot(buffer) {
            // A slot whose mappings cannot be revoked keeps its key, pinned: never reused.
            let _ = self.cache.free(i);
        }
    }

    /// The bytes of `fd`'s `O_DIRECT` buffer, as the task's mapping of it shows them.
    pub fn direct_bytes(&mut self, pid: u64, fd: u64) -> Option<&mut [u8]> {
        let i = self.buffer_slot(self.fd(pid, fd).ok()?.buffer?)?;
        Some(&mut self.cache.bytes(i)[..DIRECT_MAX as usize])
    }

    /// An `O_DIRECT` call's descriptor: its object, position, buffer slot and whether it
    /// appends. `EBADF` without the access asked for, `EINVAL` without a buffer.
    fn direct_fd(&self, pid: u64, fd: u64, write: bool) -> Result<Direct, Errno> {
        let d = self.fd(pid, fd)?;
        if !(if write { d.writable() } else { d.readable() }) {
            return Err(Errno::EBADF);
        }
        let slot = d
            .buffer
            .and_then(|b| self.buffer_slot(b))
            .ok_or(Errno::EINVAL)?;
        Ok(Direct {
            object: d.object,
            pos: d.pos.clone(),
            slot,
            append: d.flags & of::APPEND != 0,
        })
    }

    /// `DirectRead`: reads the disk's bytes at `offset` ([`AT_POSITION`]: the position,
    /// advanced) into `fd`'s `O_DIRECT` buffer, from its start → the count: up to
    /// [`DIRECT_MAX`] of the `want` bytes the caller still wants, stopping at the end of the
    /// file (0 at or past it, before any check, as Linux). `want` and the offset must be
    /// multiples of [`SECTOR_SIZE`] (`EINVAL`). The cached blocks the transfer overlaps are
    /// written back first, so it sees every write that went through the cache or a mapping;
    /// bytes the file has in the cache but not yet on the disk (an `ftruncate` growth) read
    /// as zero. `EINVAL` for a descriptor without a buffer.
    pub fn direct_read_buffer(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        want: u64,
    ) -> Result<u64, Errno> {
        let Direct {
            object, pos, slot, ..
        } = self.direct_fd(pid, fd, false)?;
        let at = direct_offset(offset, &pos, None)?;
        let size = self.size_of(object)?;
        if at >= size {
            return Ok(0);
        }
        if !at.is_multiple_of(SECTOR_SIZE) || !want.is_multiple_of(SECTOR_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = want.min(DIRECT_MAX).min(size - at);
        self.flush_range(object, at, len, false)?;
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let bytes = &mut self.cache.mem.bytes(slot)[..DIRECT_MAX as usize];
        // What the FAT file holds of the range; the rest of it (a cached growth) is zero.
        let on_disk = o.disk_len.saturating_sub(at).min(len) as usize;
        if on_disk > 0 {
            // Whole sectors, straight into the buffer when the file's clusters are known
            // (the last one's bytes past the FAT file are cleared below).
            let whole = on_disk.next_multiple_of(SECTOR_SIZE as usize);
            let mapped = extents::read(&self.volumes, &self.geo, o, at, &mut bytes[..whole])?;
            if let Done::Crate = mapped {
                read_at(&self.volumes, o.raw, at, &mut bytes[..on_disk])?;
            }
        }
        bytes[on_disk..len.next_multiple_of(SECTOR_SIZE) as usize].fill(0);
        if offset == AT_POSITION {
            pos.set(at + len);
        }
        Ok(len)
    }

    /// `DirectWrite`: writes the first `min(total, DIRECT_MAX)` bytes of `fd`'s `O_DIRECT`
    /// buffer to the disk at `offset` ([`AT_POSITION`]: the position, advanced; the end of
    /// the file for `O_APPEND`) → the count. `total` (what is left of the caller's write) and
    /// the offset must be multiples of [`SECTOR_SIZE`] (`EINVAL`); `EFBIG` past the largest
    /// file. The cached blocks the transfer overlaps are written back and forgotten first
    /// (and reads of them in flight thrown away), so later reads and mappings get the new
    /// bytes from the disk; a gap between the end of the file and the offset is zero.
    pub fn direct_write_buffer(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        total: u64,
    ) -> Result<u64, Errno> {
        let Direct {
            object,
            pos,
            slot,
            append,
        } = self.direct_fd(pid, fd, true)?;
        let size = self.size_of(object)?;
        let at = direct_offset(offset, &pos, append.then_some(size))?;
        if total == 0 {
            return Ok(0);
        }
        if !at.is_multiple_of(SECTOR_SIZE) || !total.is_multiple_of(SECTOR_SIZE) {
            return Err(Errno::EINVAL);
        }
        let len = total.min(DIRECT_MAX);
        let end = at
            .checked_add(len)
            .filter(|&e| e <= MAX_SIZE)
            .ok_or(Errno::EFBIG)?;
        if end > size {
            self.clear_past(object, size);
        }
        self.flush_range(object, at, len, true)?;
        // Reads in flight would bring what the disk had before this write.
        self.pending.invalidate_object(object);
        let disk_len = self.objects.get(&object).ok_or(Errno::EBADF)?.disk_len;
        if end > disk_len {
            // Whole clusters for the growth first (`fs::grow`, as a write-back does; a gap
            // before `at` zero): the transfer then goes in one request per run of clusters.
            self.grow_file(object, at, end)?;
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        let bytes = &self.cache.mem.bytes(slot)[..len as usize];
        let on_disk = o.disk_len.saturating_sub(at).min(len) as usize;
        let mapped = on_disk - on_disk % SECTOR_SIZE as usize;
        let mut done = 0;
        if mapped > 0
            && let Done::Mapped = extents::write(&self.volumes, &self.geo, o, at, &bytes[..mapped])?
        {
            done = mapped;
        }
        if done < bytes.len() {
            // Where the map cannot say (or a growth the server does not make, which the
            // crate refuses).
            write_at(&self.volumes, o, at + done as u64, &bytes[done..])?;
            self.volumes.flush_file(o.raw).map_err(errno)?;
        }
        o.size = o.size.max(end);
        if offset == AT_POSITION {
            pos.set(at + len);
        }
        Ok(len)
    }

    /// `Write`: `data` at `offset` (`AT_POSITION`: the position, advanced); the count.
    /// `total` is what is left of the caller's whole write. A write through the cache may
    /// wait for its first block (before anything changed).
    pub fn write(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        total: u64,
        data: &[u8],
    ) -> Result<usize, Fail> {
        match self.fds.get(&(pid, fd)).map(|d| (d.end, d.flags)) {
            Some((End::PipeWrite(_), _)) if offset != AT_POSITION => {
                return Err(Errno::ESPIPE.into());
            }
            Some((End::PipeWrite(id), flags)) => {
                return self.pipe_write(pid, id, flags, total, data);
            }
            Some((End::PipeRead(_), _)) => return Err(Errno::EBADF.into()),
            Some((End::Console, _)) => return Err(Errno::EXDEV.into()),
            _ => {}
        }
        let d = self.fd(pid, fd)?;
        if !d.writable() {
            return Err(Errno::EBADF.into());
        }
        let (object, direct) = (d.object, d.direct());
        let dsync = d.flags & of::DSYNC != 0;
        let at = match offset {
            // `O_APPEND`: at the end, whatever the position (POSIX `write`).
            AT_POSITION if d.flags & of::APPEND != 0 => self.size_of(object)?,
            AT_POSITION => d.pos.get(),
            // Negative as an `off_t`.
            o if o > i64::MAX as u64 => return Err(Errno::EINVAL.into()),
            o => o,
        };
        // Nothing to write: nothing changes (not the size either, whatever the offset).
        if data.is_empty() {
            return Ok(0);
        }
        // A FAT file ends at 4 GiB - 1: no byte at or past it (and no range that wraps).
        match at.checked_add(data.len() as u64) {
            Some(end) if end <= MAX_SIZE => {}
            _ => return Err(Errno::EFBIG.into()),
        }
        let n = if direct {
            self.direct_write(pid, fd, at, total, data)?
        } else {
            self.cached_write(object, at, data)?
        };
        // `O_DSYNC`/`O_SYNC`: the blocks written reach the disk before the answer.
        if dsync && n > 0 {
            let first = at / BS;
            let last = (at + n as u64 - 1) / BS;
            self.sync(object, first, last - first + 1)?;
        }
        if offset == AT_POSITION
            && let Some(d) = self.fds.get_mut(&(pid, fd))
        {
            d.pos.set(at + n as u64);
        }
        Ok(n)
    }

    /// As [`Files::cached_read`], only the first block may wait.
    pub(super) fn cached_write(
        &mut self,
        object: u64,
        at: u64,
        data: &[u8],
    ) -> Result<usize, Fail> {
        let size = self.size_of(object)?;
        let mut done = 0;
        while done < data.len() {
            let pos = at + done as u64;
            if done > 0 {
                self.can_wait = false;
            }
            let i = self.block(object, pos / BS)?;
            if done == 0 && at.saturating_add(data.len() as u64) > size {
                // The bytes between the old end and the write are zero (the first block is
                // here: nothing changed before it was); the write covers the rest.
                self.clear_between(object, size, at);
            }
            let off = (pos % BS) as usize;
            let k = (BS as usize - off).min(data.len() - done);
            self.cache.bytes(i)[off..off + k].copy_from_slice(&data[done..done + k]);
            self.cache.slots[i].dirty = true;
            done += k;
            let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
            o.size = o.size.max(at + done as u64);
        }
        Ok(data.len())
    }

    /// `O_DIRECT` write: the pieces of a transfer of up to [`DIRECT_MAX`] (sector-aligned
    /// offset and length) are collected, then written to the disk at once, after the cached
    /// blocks it overlaps are written back and forgotten.
    pub(super) fn direct_write(
        &mut self,
        pid: u64,
        fd: u64,
        at: u64,
        total: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        let object = d.object;
        let continues = d
            .stage
            .take()
            .filter(|s| s.write && at == s.offset + s.filled as u64);
        let mut stage = match continues {
            Some(s) => s,
            None => {
                if !at.is_multiple_of(SECTOR_SIZE) || !total.is_multiple_of(SECTOR_SIZE) {
                    return Err(Errno::EINVAL);
                }
                if at.saturating_add(total.min(DIRECT_MAX)) > MAX_SIZE {
                    return Err(Errno::EFBIG);
                }
                self.may_stage(pid)?;
                Stage {
                    offset: at,
                    data: alloc::vec![0u8; total.min(DIRECT_MAX) as usize],
                    filled: 0,
                    write: true,
                    call_end: None,
                }
            }
        };
        let n = data.len().min(stage.data.len() - stage.filled);
        stage.data[stage.filled..stage.filled + n].copy_from_slice(&data[..n]);
        stage.filled += n;
        if stage.filled < stage.data.len() {
            if let Some(d) = self.fds.get_mut(&(pid, fd)) {
                d.stage = Some(stage);
            }
            return Ok(n);
        }
        let len = stage.data.len() as u64;
        let size = self.size_of(object)?;
        if stage.offset + len > size {
            self.clear_past(object, size);
        }
        self.flush_range(object, stage.offset, len, true)?;
        // Reads in flight would bring what the disk had before this write.
        self.pending.invalidate_object(object);
        // The file as tasks see it may be longer than on the disk (a cached `ftruncate`
        // growth): the disk gets zeroes up to the transfer. Whole clusters for the growth
        // first (`fs::grow`): all of them, or `ENOSPC` with nothing changed.
        let end = stage.offset + len;
        if end > self.objects.get(&object).ok_or(Errno::EBADF)?.disk_len {
            self.grow_file(object, stage.offset, end)?;
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        write_at(&self.volumes, o, stage.offset, &stage.data)?;
        o.size = o.size.max(stage.offset + len);
        self.volumes.flush_file(o.raw).map_err(errno)?;
        Ok(n)
    }

    /// `Span` (the bulk data path): settles where a `read` (`write` false) or `write` of
    /// `len` bytes at `offset` ([`AT_POSITION`]: the descriptor's position, or for an
    /// `O_APPEND` write the end of the file) lies, without moving a byte: (offset, length,
    /// size). The blocks of the range's first [`SPAN_BLOCKS`] are brought into the cache
    /// first (the first may wait for the disk, the others are read synchronously; a disk
    /// error is the caller's `EIO`, where its window's fault would have been `BUS`). A
    /// read's length stops at the end of the file and at the end of those blocks; a write's
    /// is `len`, and the file grows to hold it (the gap before it zero, in the cache: the
    /// caller writes the range through its mapping of the cache's frames, which marks the
    /// blocks dirty). The position advances past the range when `offset` is
    /// [`AT_POSITION`]. Nothing changes before the blocks are in.
    pub fn span(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        len: u64,
        write: bool,
    ) -> Result<(u64, u64, u64), Fail> {
        let d = self.fd(pid, fd)?;
        if !(if write { d.writable() } else { d.readable() }) {
            return Err(Errno::EBADF.into());
        }
        let (object, append) = (d.object, d.flags & of::APPEND != 0);
        let pos = d.pos.clone();
        let size = self.size_of(object)?;
        let at = match offset {
            AT_POSITION if write && append => size,
            AT_POSITION => pos.get(),
            // Negative as an `off_t`.
            o if o > i64::MAX as u64 => return Err(Errno::EINVAL.into()),
            o => o,
        };
        let (n, size) = if write {
            let end = at
                .checked_add(len)
                .filter(|&end| end <= MAX_SIZE)
                .ok_or(Errno::EFBIG)?;
            self.bring_in(object, at, len)?;
            let mut size = size;
            if len > 0 && end > size {
                // The bytes between the old end and the range are the file's now, and zero;
                // the range's own bytes are the caller's to write next.
                self.clear_between(object, size, at);
                let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
                // (A growth reservation ended just now may have made it longer still.)
                o.size = o.size.max(end);
                size = o.size;
            }
            (len, size.max(end))
        } else {
            let n = len.min(size.saturating_sub(at));
            let brought = self.bring_in(object, at, n)?;
            (n.min(brought), size)
        };
        if offset == AT_POSITION {
            pos.set(at + n);
        }
        Ok((at, n, size))
    }

    /// Brings the blocks of [`at`, `at + len`) into the cache, at most [`SPAN_BLOCKS`] of
    /// them (the first may wait): how many bytes from `at` lie in the blocks brought in.
    fn bring_in(&mut self, object: u64, at: u64, len: u64) -> Result<u64, Fail> {
        if len == 0 {
            return Ok(0);
        }
        let first = at / BS;
        let last = ((at + len - 1) / BS).min(first + SPAN_BLOCKS - 1);
        for b in first..=last {
            if b > first {
                self.can_wait = false;
            }
            self.block(object, b)?;
        }
        Ok(((last + 1) * BS - at).min(len))
    }

    /// `SizePage`: task `pid`'s size page (made at the first call; each call gives another
    /// handle on it) → (handle, its length). A cache slot taken out of the cache (pinned,
    /// as an `O_DIRECT` buffer), mapped shared and writable by the task: cell `c` (16 bytes
    /// at `c * 16`, [`CELLS`] of them) holds, for a descriptor with a growth reservation
    /// (`Grow`), how far the task wrote the file (little-endian u64, the task's to store)
    /// and the reservation's limit (the server's; 0: none). `ENOMEM` past the handles of
    /// the task, `EAGAIN` past [`MAX_SIZE_PAGES`] or an eighth of the cache (the task then
    /// asks for every growth, as before).
    pub fn size_page(&mut self, pid: u64) -> Result<(u64, u64), Errno> {
        if pid != proto::pid::INIT && self.handles.owned_by(pid) >= MAX_TASK_HANDLES {
            return Err(Errno::ENOMEM);
        }
        if self.handles.len() >= MAX_HANDLES || P::heap_low() {
            return Err(Errno::ENFILE);
        }
        let page = match self.size_pages.get(&pid) {
            Some(&p) => p,
            None => {
                let n = self.size_pages.len();
                if n >= MAX_SIZE_PAGES || n + 1 > self.cache.budget / 8 {
                    return Err(Errno::EAGAIN);
                }
                let i = self.free_slot().map_err(|_| Errno::EAGAIN)?;
                let page = BUFFER_OBJECT | self.next_object;
                self.next_object += 1;
                self.cache.assign(i, (page, 0));
                self.cache.slots[i].pinned = true;
                bufio::zero(&mut self.cache.mem.bytes(i)[..CELLS * 16]);
                self.size_pages.insert(pid, page);
                page
            }
        };
        let handle = self.handles.give(pid, page, true)?;
        self.handles.set_whole(handle);
        Ok((handle, BS))
    }

    /// Word `word` (0: written, 1: limit) of cell `cell` of task `pid`'s size page, as an
    /// atomic the task shares (`None` without a page).
    fn cell(&mut self, pid: u64, cell: usize, word: usize) -> Option<&AtomicU64> {
        let page = *self.size_pages.get(&pid)?;
        let slot = self.buffer_slot(page)?;
        let bytes = self.cache.mem.bytes(slot);
        let at = (cell * 2 + word) * 8;
        let w = bytes.get_mut(at..at + 8)?;
        let p = w.as_mut_ptr().cast::<u64>();
        if !p.is_aligned() {
            return None;
        }
        // SAFETY: `p` points at 8 bytes of the page's frame, aligned, which live as long as
        // the slot (borrowed from `self` for the result's life); the task may store to them
        // at any time, which an atomic access allows (the server touches them no other way).
        Some(unsafe { AtomicU64::from_ptr(p) })
    }

    /// Folds every growth reservation into its file's size: what the task says it wrote,
    /// kept inside what the server granted (before each request: a task's write that
    /// finished before the request was made is in the size it sees).
    pub fn fold_reserved(&mut self) {
        if self.reserved.is_empty() {
            return;
        }
        // Key after key (no list made: this runs before every request).
        let mut next = self.reserved.iter().next().map(|(k, r)| (*k, *r));
        while let Some((key, r)) = next {
            self.fold_one(key.0, r);
            next = self
                .reserved
                .range((Bound::Excluded(key), Bound::Unbounded))
                .next()
                .map(|(k, r)| (*k, *r));
        }
    }

    fn fold_one(&mut self, pid: u64, r: Reserved) {
        let Some(written) = self.cell(pid, r.cell, 0).map(|c| c.load(Ordering::Acquire)) else {
            return;
        };
        if let Some(o) = self.objects.get_mut(&r.object)
            && !o.lost
            && written > o.size
        {
            // The bytes up to `written` are the task's: its writes go on from the size.
            o.size = written.min(r.limit);
        }
    }

    /// Ends reservation `key`: its limit goes to 0 first, then what the task wrote is
    /// folded in. A task whose write raced with this sees the 0 after its own store (both
    /// sides fence between their store and their load) and asks again, so no write is lost.
    fn end_reservation(&mut self, key: (u64, u64)) {
        let Some(r) = self.reserved.remove(&key) else {
            return;
        };
        if let Some(c) = self.cell(key.0, r.cell, 1) {
            c.store(0, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        self.fold_one(key.0, r);
    }

    /// Ends descriptor (pid, fd)'s reservation, if it has one (its `close`).
    pub(super) fn drop_reservation(&mut self, pid: u64, fd: u64) {
        self.end_reservation((pid, fd));
    }

    /// Ends every reservation on `object` (before the server changes bytes past its size, or
    /// the size itself: a write-back, a growth, a truncate, an `O_DIRECT` write).
    pub(super) fn end_reservations(&mut self, object: u64) {
        if self.reserved.is_empty() {
            return;
        }
        let keys: Vec<(u64, u64)> = self
            .reserved
            .iter()
            .filter(|(_, r)| r.object == object)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.end_reservation(k);
        }
    }

    /// Ends task `pid`'s reservations (`exec`, its end) and, at its end, frees its page.
    pub(super) fn task_reservations_end(&mut self, pid: u64, page_too: bool) {
        let keys: Vec<(u64, u64)> = self
            .reserved
            .range((pid, 0)..=(pid, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.end_reservation(k);
        }
        if page_too && let Some(page) = self.size_pages.remove(&pid) {
            self.drop_buffer(page);
        }
    }

    /// How far a window may fault `object` in: its size, or past it the furthest growth
    /// reservation (the task writes there before it says so).
    pub(super) fn reach(&self, object: u64, size: u64) -> u64 {
        self.reserved
            .values()
            .filter(|r| r.object == object)
            .fold(size, |m, r| m.max(r.limit))
    }

    /// `Grow`: a `Span` write of `len` bytes at `offset` (see [`Files::span`]) that grows
    /// the file, and with it, when the descriptor has its own position (no `fork` child
    /// shares it), is not `O_APPEND`, the offset is explicit and the task has a size page,
    /// a *growth reservation*: the blocks from the range's on (up to [`SPAN_BLOCKS`]) are
    /// brought into the cache, and the task may go on writing up to their end (`limit`)
    /// through its window without asking, each write starting at or before the size it
    /// knows, storing its new end in cell `cell` of its page (the task's choice; another
    /// descriptor's reservation there ends). → (offset, length, size, limit, cell); limit 0:
    /// no reservation (also for a cell past [`CELLS`]). The size never holds reserved bytes the task did not
    /// write: the server folds the cells in before each request, and ends a reservation
    /// (limit 0, folded) before it changes bytes past the size or the size itself.
    pub fn grow(
        &mut self,
        pid: u64,
        fd: u64,
        offset: u64,
        len: u64,
        cell: u64,
    ) -> Result<(u64, u64, u64, u64, u64), Fail> {
        let (at, n, size) = self.span(pid, fd, offset, len, true)?;
        let d = self.fd(pid, fd)?;
        let (object, own) = (d.object, Rc::strong_count(&d.pos) == 1);
        let Some(cell) = usize::try_from(cell).ok().filter(|&c| c < CELLS) else {
            return Ok((at, n, size, 0, 0));
        };
        let room = self.reserved.len() < MAX_RESERVED || self.reserved.contains_key(&(pid, fd));
        let eligible = own
            && room
            && offset != AT_POSITION
            && d.flags & of::APPEND == 0
            && self.size_pages.contains_key(&pid);
        if !eligible || n == 0 {
            return Ok((at, n, size, 0, 0));
        }
        // The blocks the span brought in, and those after it past the disk's end (filled
        // with zeroes: no disk read), up to SPAN_BLOCKS from the range's first.
        let first = at / BS;
        let disk_len = self.objects.get(&object).map_or(0, |o| o.disk_len);
        let mut last = (at + n - 1) / BS;
        self.can_wait = false;
        while last + 1 < first + SPAN_BLOCKS && (last + 1) * BS >= disk_len {
            if self.block(object, last + 1).is_err() {
                break;
            }
            last += 1;
        }
        let limit = ((last + 1) * BS).min(MAX_SIZE);
        // Another descriptor's reservation in that cell ends (the task moved it on).
        let other: Vec<(u64, u64)> = self
            .reserved
            .range((pid, 0)..=(pid, u64::MAX))
            .filter(|(k, r)| k.1 != fd && r.cell == cell)
            .map(|(k, _)| *k)
            .collect();
        for k in other {
            self.end_reservation(k);
        }
        if self.cell(pid, cell, 0).is_none() {
            return Ok((at, n, size, 0, 0));
        }
        if let Some(c) = self.cell(pid, cell, 0) {
            c.store(size, Ordering::Release);
        }
        if let Some(c) = self.cell(pid, cell, 1) {
            c.store(limit, Ordering::Release);
        }
        self.reserved.insert(
            (pid, fd),
            Reserved {
                object,
                cell,
                limit,
            },
        );
        Ok((at, n, size, limit, cell as u64))
    }

    /// `Lseek`: the new position.
    pub fn lseek(&mut self, pid: u64, fd: u64, offset: i64, whence: Whence) -> Result<u64, Errno> {
        let d = self.fd(pid, fd)?;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => d.pos.get(),
            Whence::End => self.size_of(d.object)?,
        };
        // Below 0 or past the largest FAT file (as Linux's `s_maxbytes`): EINVAL.
        let pos = base
            .checked_add_signed(offset)
            .filter(|&p| p <= MAX_SIZE)
            .ok_or(Errno::EINVAL)?;
        let d = self.fds.get_mut(&(pid, fd)).ok_or(Errno::EBADF)?;
        d.pos.set(pos);
        d.stage = None;
        Ok(pos)
    }
}

/// An `O_DIRECT` descriptor as a transfer needs it ([`Files::direct_fd`]).
struct Direct {
    object: u64,
    pos: Rc<Cell<u64>>,
    /// The cache slot of its buffer.
    slot: usize,
    append: bool,
}

/// Where an `O_DIRECT` transfer starts: `offset`, or for [`AT_POSITION`] the end of the file
/// when it appends (`append_end`) and else the position. `EINVAL` past `i64::MAX`.
fn direct_offset(offset: u64, pos: &Cell<u64>, append_end: Option<u64>) -> Result<u64, Errno> {
    match offset {
        AT_POSITION => Ok(append_end.unwrap_or_else(|| pos.get())),
        o if o > i64::MAX as u64 => Err(Errno::EINVAL),
        o => Ok(o),
    }
}
