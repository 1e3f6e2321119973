//! Write-back (revoke the block's mappings, write its bytes up to the end of the file, mark
//! it clean), sync, and the size changes: growth, clearing past the end, `ftruncate`.

use super::*;

impl<P: Platform> Files<P> {
    /// Writes slot `i`'s block to the disk (bytes past the end of the file never), updates
    /// the directory entry, and marks it clean.
    ///
    /// Every mapping of the block is taken away first (vm's copies of its capability, in
    /// every task), so that no task writes it while its bytes go to the disk: a write that
    /// landed in the frame after `embedded-sdmmc` copied its sector would be in no write-back
    /// (the block is clean afterwards) and lost when the block is evicted. The next access
    /// through a mapping faults and reaches this server only after the write-back (it is
    /// single-threaded); a write then marks the block dirty again. The bytes past the end of
    /// the file are cleared at the same time, so that no mapping made from now on sees what
    /// an old one wrote there (POSIX: the rest of the last page reads as zero). A failed
    /// write leaves the block dirty, for the next write-back to try again.
    pub(super) fn write_back(&mut self, i: usize) -> Result<(), Errno> {
        let Some((object, block)) = self.cache.slots[i].key else {
            return Ok(());
        };
        // A growth reservation's bytes past the size are cleared below: it ends first (the
        // task asks again, and writes again, if its write raced with this).
        self.end_reservations(object);
        self.cache.revoke(i).map_err(|_| Errno::EIO)?;
        let o = self.objects.get(&object).ok_or(Errno::EIO)?;
        let start = block * BS;
        let valid = o.size.saturating_sub(start).min(BS) as usize;
        if valid > 0 && start + valid as u64 > o.disk_len {
            // Whole clusters for the growth first (`fs::grow`): the block then goes to the
            // disk in one request per run of clusters, below.
            self.grow_file(object, start, start + valid as u64)?;
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        let bytes = self.cache.bytes(i);
        bytes[valid..].fill(0);
        if valid > 0 {
            // The bytes the FAT file already has go straight to their sectors (the last
            // one whole when the block ends inside it: the rest of it is the zeroes past
            // the end); the rest through the crate, which allocates their clusters.
            let on_disk = o.disk_len.saturating_sub(start).min(valid as u64) as usize;
            let mapped = if on_disk == valid {
                valid.next_multiple_of(SECTOR)
            } else {
                on_disk - on_disk % SECTOR
            };
            let mut done = 0;
            if mapped > 0 {
                let part = &bytes[..mapped];
                if let Done::Mapped = extents::write(&self.volumes, &self.geo, o, start, part)? {
                    done = mapped.min(valid);
                }
            }
            if done < valid {
                write_at(&self.volumes, o, start + done as u64, &bytes[done..valid])?;
                self.volumes.flush_file(o.raw).map_err(errno)?;
            }
            self.cache.stats.written_back += 1;
        }
        self.cache.slots[i].dirty = false;
        Ok(())
    }

    /// [`Files::write_back`], and when it fails (a full disk: `ENOSPC`; `EIO`) the block's
    /// data is dropped, as Linux drops a page whose write-back failed: the block is
    /// forgotten (its mappings revoked) and the error is kept for the writers, each
    /// writable descriptor's next `close` and the next `msync` of the file. The block can
    /// then never be chosen for eviction again and again, and nobody else's `read`,
    /// `ObjectPage` or `spawn` ever sees the writer's error.
    pub(super) fn write_back_or_drop(&mut self, i: usize) -> Result<(), Errno> {
        let Err(e) = self.write_back(i) else {
            return Ok(());
        };
        if let Some((object, _)) = self.cache.slots[i].key {
            for d in self.fds.values_mut() {
                if d.object == object && d.writable() {
                    d.error = Some(e);
                }
            }
            if let Some(o) = self.objects.get_mut(&object) {
                o.error = Some(e);
            }
        }
        self.cache.slots[i].dirty = false;
        // A slot whose mappings cannot be revoked keeps its key (`Cache::free`).
        let _ = self.cache.free(i);
        Err(e)
    }

    /// Writes back the dirty blocks of `object` among `first .. first + count` (each one
    /// tried: the first error is the result).
    pub(super) fn sync(&mut self, object: u64, first: u64, count: u64) -> Result<(), Errno> {
        self.size_of(object)?;
        let end = first.saturating_add(count);
        let mut result = Ok(());
        for (b, i) in self.cache.blocks_of(object) {
            if (first..end).contains(&b) && self.cache.slots[i].dirty {
                result = result.and(self.write_back_or_drop(i));
            }
        }
        result.and(self.extend(object))
    }

    /// Makes the FAT file as long as the file (zeroes past its length on the disk): a file
    /// grown by `ftruncate` alone has no dirty block to carry its size there.
    pub(super) fn extend(&mut self, object: u64) -> Result<(), Errno> {
        let Some(o) = self.objects.get_mut(&object) else {
            return Ok(());
        };
        if o.size <= o.disk_len || o.unlinked || self.readonly {
            return Ok(());
        }
        let size = o.size;
        if self.grow_file(object, size, size)? {
            return Ok(());
        }
        // Not a growth the server makes (`fs::grow`): the crate refuses it.
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        write_at(&self.volumes, o, size, &[])?;
        self.volumes.flush_file(o.raw).map_err(errno)
    }

    /// Clears the bytes from `at` to the end of its block, if the block is cached: they lie
    /// past the end of the file, where a mapping may have written, and are about to become
    /// file data (the file grows) or be seen by a new mapping.
    pub(super) fn clear_past(&mut self, object: u64, at: u64) {
        self.clear_between(object, at, u64::MAX);
    }

    /// Zeroes the cached bytes of `object` from its old end `at` up to `until` (or the end
    /// of `at`'s block): what a growth of the file makes the file's. Only `at`'s block can
    /// hold bytes past the end (a mapping's stores there); blocks after it come in as zero.
    pub(super) fn clear_between(&mut self, object: u64, at: u64, until: u64) {
        self.end_reservations(object);
        if let Some(&i) = self.cache.index.get(&(object, at / BS)) {
            let from = (at % BS) as usize;
            let to = until.saturating_sub(at - at % BS).min(BS) as usize;
            if from < to {
                bufio::zero(&mut self.cache.bytes(i)[from..to]);
            }
        }
    }

    /// Sets `object`'s size to `len`: blocks past it are dropped (dirty or not), the rest of
    /// the last block zeroed. A FAT file cannot be cut short in place (`embedded-sdmmc` has no
    /// truncate), so a shrink below the disk length rewrites the file: its blocks up to `len`
    /// are brought in and pinned, the file is cut to nothing (every cluster given back:
    /// `Files::cut_closed`) and the blocks are left dirty (`EFBIG` if they do not fit in the
    /// cache).
    ///
    /// Failures leave a consistent state: bringing the blocks in comes first, and if it
    /// fails (a disk error) the pins go and nothing else has changed; if the truncated file
    /// cannot be opened again, it is opened as it was (the cache holds the file's data up to
    /// `len`, dirty, and the size is `len`; the error is the caller's), and if even that
    /// fails the object is lost (`Object::lost`: `EIO` for everyone until it is closed).
    pub(super) fn truncate(&mut self, object: u64, len: u64) -> Result<(), Errno> {
        if len > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        self.end_reservations(object);
        let old = self.size_of(object)?;
        // Reads in flight would bring blocks as they were: cut, or about to be rewritten.
        self.pending.invalidate_object(object);
        let o = self.objects.get(&object).ok_or(Errno::EBADF)?;
        let rewrite = len < o.disk_len;
        let keep = len.div_ceil(BS);
        // Refused before anything changes (the size stayed, and with it the bytes past
        // `len` that a later growth would otherwise read back from the disk).
        if rewrite && keep as usize > self.cache.budget {
            return Err(Errno::EFBIG);
        }
        if rewrite {
            let pinned = (0..keep).try_for_each(|b| {
                let i = self.block_ahead(object, b, false)?;
                self.cache.slots[i].pinned = true;
                Ok(())
            });
            if let Err(e) = pinned {
                self.unpin(object);
                return Err(e);
            }
        }
        let o = self.objects.get_mut(&object).ok_or(Errno::EBADF)?;
        o.size = len;
        if len > old {
            self.clear_past(object, old);
        }
        for (b, i) in self.cache.blocks_of(object) {
            let start = b * BS;
            if start >= len {
                self.cache.slots[i].dirty = false;
                let _ = self.cache.free(i);
            } else if start + BS > len {
                // Mappings first, so that none writes past the new end after the clearing.
                let _ = self.cache.revoke(i);
                let at = (len - start) as usize;
                self.cache.bytes(i)[at..].fill(0);
            }
            if rewrite && start < len {
                self.cache.slots[i].dirty = true;
            }
        }
        if !rewrite {
            return Ok(());
        }
        let o = self.objects.get(&object).ok_or(Errno::EIO)?;
        // The crate forgets the file even when its last flush fails; the entry is written
        // again as the file is cut, so that error changes nothing here. The server cuts it
        // (`fs::grow`): the crate's truncation keeps the first cluster, which a file of 0
        // bytes must not have.
        let (dirs, name, id) = (o.dirs.clone(), o.name, o.id);
        let _ = self.volumes.close_file(o.raw);
        let reopened = self
            .cut_closed(id)
            .and_then(|()| self.open_raw(&dirs, name, Mode::ReadWriteAppend));
        self.unpin(object);
        match reopened {
            Ok(raw) => {
                let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
                // The clusters went with the truncation: the chain is mapped again.
                o.map = None;
                o.raw = raw;
                o.disk_len = 0;
                Ok(())
            }
            Err(e) => {
                self.reopen_as_it_was(object);
                Err(e)
            }
        }
    }

    /// Unpins `object`'s cached blocks.
    pub(super) fn unpin(&mut self, object: u64) {
        for (_, i) in self.cache.blocks_of(object) {
            self.cache.slots[i].pinned = false;
        }
    }

    /// Opens `object`'s FAT file again after the crate's file was closed and opening it
    /// another way failed: as it was opened at first, with its length as the disk now has
    /// it; if that fails too, the object is lost (`Object::lost`).
    pub(super) fn reopen_as_it_was(&mut self, object: u64) {
        let Some(o) = self.objects.get(&object) else {
            return;
        };
        let mode = if o.writable {
            Mode::ReadWriteAppend
        } else {
            Mode::ReadOnly
        };
        let reopened = self.open_raw(&o.dirs, o.name, mode).and_then(|raw| {
            match self.volumes.file_length(raw) {
                Ok(len) => Ok((raw, u64::from(len))),
                Err(e) => {
                    let _ = self.volumes.close_file(raw);
                    Err(errno(e))
                }
            }
        });
        let Some(o) = self.objects.get_mut(&object) else {
            return;
        };
        match reopened {
            Ok((raw, len)) => {
                o.map = None;
                o.raw = raw;
                o.disk_len = len;
            }
            Err(e) => {
                P::log(format_args!(
                    "file: cannot open a file again ({e}): EIO until it is closed"
                ));
                o.lost = true;
            }
        }
    }
}
