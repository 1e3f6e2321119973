//! Changing a FAT file's length in whole clusters: cutting it to nothing
//! ([`Files::cut_closed`]: the crate's truncation keeps the first cluster, which a file of 0
//! bytes must not have), and growing it.
//!
//! Growing a FAT file in whole clusters, so that a write-back that extends a file goes to the
//! disk in one request per run of clusters (`fs::extents`) instead of through
//! `embedded-sdmmc`, which writes a sector per request and updates the FAT once per cluster
//! (a new 256 KiB file took 2,564 requests on the host's RAM disk; `disk_requests` in
//! `FileStats` counts them).
//!
//! The crate's file is closed first (it writes its directory entry), the clusters the new
//! length needs are found free in the FAT, chained and marked in every FAT copy (each FAT
//! sector read and written once), the entry gets the new size (and its first cluster, for a
//! file that had none), and the crate opens the file again by its 8.3 name, as `hide` does.
//! Every growth of a file takes this way (a write-back, an `O_DIRECT` write, an `ftruncate`
//! growth carried to the disk), so that it has all its clusters or none: the crate took them
//! one at a time as it wrote, and a growth it could not finish (`ENOSPC`) left them in the
//! chain past the file's size. The new clusters are then written by the caller from where
//! its data starts; a gap before that (a block written back before the blocks in front of
//! it, an `ftruncate` growth) is written with zeroes here.

use super::extents::{self, Done};
use super::{Files, Mode, ZEROS, errno, write_at};
use crate::platform::Platform;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use fatcheck::{FatType, Link, SECTOR, clusters_for};
use proto::Errno;

/// Clusters taken and chained at a time by a growth (a FAT sector's worth of 16-bit entries
/// 16 times over; 16 KiB of cluster numbers).
const BATCH: usize = 4096;

/// A closed file's 8.3 entry as the disk has it ([`Files::closed_entry`]).
struct ClosedEntry {
    /// The sector holding it, and where in it.
    sector: [u8; SECTOR],
    at: usize,
    first: u32,
    /// Its chain: how many clusters, and the last.
    clusters: u64,
    last: Option<u32>,
}

impl<P: Platform> Files<P> {
    /// Makes `object`'s FAT file `end` bytes long, when the caller's data will be written
    /// from `from` on: a gap between the file's disk length and `from` is written with
    /// zeroes here (up to `from`'s sector end, the rest of it the caller's or past the end
    /// of the file). `Ok(false)`: not this way (a read-only file, a length past the largest
    /// FAT file: the caller goes through the crate, which refuses). `ENOSPC` when the disk
    /// has too few free clusters for the whole length: nothing changes then. The crate is
    /// never left to allocate a file's clusters: it takes them one by one as it writes, so
    /// a growth it cannot finish leaves them in the chain, past the file's size, and it
    /// fails as it takes the last free cluster (which is then in the chain, or lost when
    /// it was the file's first).
    pub(super) fn grow_file(&mut self, object: u64, from: u64, end: u64) -> Result<bool, Errno> {
        let Some(o) = self.objects.get(&object) else {
            return Err(Errno::EIO);
        };
        if !o.writable || end <= o.disk_len || end > u64::from(u32::MAX) {
            return Ok(false);
        }
        let (raw, id, old) = (o.raw, o.id, o.disk_len);
        // The crate writes the entry as it closes: from then on the disk has it all.
        self.volumes.close_file(raw).map_err(errno)?;
        let grown = self.grow_closed(id, end);
        let mode = Mode::ReadWriteAppend;
        let (dirs, name) = match self.objects.get(&object) {
            Some(o) => (o.dirs.clone(), o.name),
            None => return Err(Errno::EIO),
        };
        match self.open_raw(&dirs, name, mode) {
            Ok(raw) => {
                let len = self.volumes.file_length(raw).map_err(errno);
                let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
                o.raw = raw;
                o.map = None;
                o.disk_len = u64::from(len?);
            }
            Err(e) => {
                self.reopen_as_it_was(object);
                return Err(e);
            }
        }
        grown?;
        if from > old {
            self.zero_gap(object, old, from.min(end))?;
        }
        Ok(true)
    }

    /// Writes zeroes over bytes `from .. to` of `object`'s FAT file (within its length):
    /// the sector `from` lies in keeps its bytes before it (through the crate), the others
    /// go whole (to `to`'s sector end), a request per 4 KiB through the map where it can
    /// say, else through the crate.
    fn zero_gap(&mut self, object: u64, from: u64, to: u64) -> Result<(), Errno> {
        let o = self.objects.get_mut(&object).ok_or(Errno::EIO)?;
        let sector = SECTOR as u64;
        let head = from.next_multiple_of(sector).min(to);
        if from < head {
            write_at(&self.volumes, o, from, &ZEROS[..(head - from) as usize])?;
        }
        let mut at = head;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64) as usize;
            let whole = &ZEROS[..n.next_multiple_of(SECTOR)];
            if let Done::Crate = extents::write(&self.volumes, &self.geo, o, at, whole)? {
                write_at(&self.volumes, o, at, &ZEROS[..n])?;
            }
            at += n as u64;
        }
        self.volumes.flush_file(o.raw).map_err(errno)
    }

    /// The 8.3 entry of the closed file at `id` (its sector, read) and its chain as it is
    /// (checked: in range, ending, no longer than the volume, holding the entry's size).
    fn closed_entry(&self, id: super::EntryId) -> Result<ClosedEntry, Errno> {
        let mut sector = [0u8; SECTOR];
        self.sector(u64::from(id.0), &mut sector)
            .map_err(|_| Errno::EIO)?;
        let at = id.1 as usize;
        let e = sector.get(at..at + 32).ok_or(Errno::EIO)?;
        let word = |i: usize| u32::from(u16::from_le_bytes([e[i], e[i + 1]]));
        let high = match self.geo.fat_type {
            FatType::Fat16 => 0,
            FatType::Fat32 => word(20),
        };
        let first = (high << 16) | word(26);
        let size = u32::from_le_bytes([e[28], e[29], e[30], e[31]]);
        let (mut clusters, mut last) = (0, None);
        if first != 0 {
            clusters = self
                .geo
                .walk_chain(
                    first,
                    u64::MAX,
                    |s, out| self.sector(s, out),
                    |c| last = Some(c),
                )
                .map_err(|err| self.damaged("file cluster chain", err))?;
        }
        if clusters < clusters_for(u64::from(size), self.geo.cluster_bytes()) {
            return Err(Errno::EIO);
        }
        Ok(ClosedEntry {
            sector,
            at,
            first,
            clusters,
            last,
        })
    }

    /// Sets the first cluster and the size of the 8.3 entry `e` holds, and writes it.
    fn set_entry(&self, id: super::EntryId, e: &mut ClosedEntry, size: u32) -> Result<(), Errno> {
        let (at, first) = (e.at, e.first);
        e.sector[at + 26..at + 28].copy_from_slice(&(first as u16).to_le_bytes());
        if self.geo.fat_type == FatType::Fat32 {
            e.sector[at + 20..at + 22].copy_from_slice(&((first >> 16) as u16).to_le_bytes());
        }
        e.sector[at + 28..at + 32].copy_from_slice(&size.to_le_bytes());
        self.write_sector(u64::from(id.0), &e.sector)
    }

    /// Cuts the closed file whose 8.3 entry is at `id` to nothing: the entry gets size 0
    /// and no first cluster (written first: an interrupted cut loses clusters, never
    /// leaves the entry naming freed ones), then every cluster of its chain is freed. The
    /// crate's truncation keeps the first cluster, which a file of 0 bytes must not have
    /// (`fsck.fat` would cut the chain).
    pub(super) fn cut_closed(&mut self, id: super::EntryId) -> Result<(), Errno> {
        let mut e = self.closed_entry(id)?;
        let first = e.first;
        e.first = 0;
        self.set_entry(id, &mut e, 0)?;
        if first == 0 {
            return Ok(());
        }
        self.free_chain(first, e.clusters)
    }

    /// Frees the `n` clusters of the chain from `first` (walked and checked before) in
    /// every FAT, [`BATCH`] at a time.
    fn free_chain(&self, first: u32, n: u64) -> Result<(), Errno> {
        let mut next = Some(first);
        let mut left = n;
        let mut buf = [0u8; SECTOR];
        while let Some(mut c) = next.take() {
            let mut batch: Vec<(u32, u32)> = Vec::new();
            batch.try_reserve_exact(BATCH).map_err(|_| Errno::ENOMEM)?;
            loop {
                // A chain that changed since its walk: what is left stays (lost, never
                // another file's).
                left = left.checked_sub(1).ok_or(Errno::EIO)?;
                batch.push((c, 0));
                let (s, _) = self.geo.fat_entry_at(c);
                self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
                match self.geo.link(c, &buf) {
                    Ok(Link::End) => break,
                    Ok(Link::Next(n)) if batch.len() < BATCH => c = n,
                    Ok(Link::Next(n)) => {
                        next = Some(n);
                        break;
                    }
                    Err(_) => return Err(Errno::EIO),
                }
            }
            self.set_fats(&batch)?;
        }
        Ok(())
    }

    /// [`Files::grow_file`] on the closed file whose 8.3 entry is at `id`. The free
    /// clusters are counted first (`ENOSPC` before anything changes), then taken and
    /// chained [`BATCH`] at a time, so that a growth of any length (an `ftruncate` to 4 GiB)
    /// needs little memory.
    fn grow_closed(&mut self, id: super::EntryId, end: u64) -> Result<(), Errno> {
        let mut e = self.closed_entry(id)?;
        let need = clusters_for(end, self.geo.cluster_bytes());
        let mut more = need.saturating_sub(e.clusters);
        if more > 0 && !self.has_free(more, e.last)? {
            return Err(Errno::ENOSPC);
        }
        let mut last = e.last;
        while more > 0 {
            let n = more.min(BATCH as u64) as usize;
            let new = self.free_clusters(n, last)?;
            // Chain them: each to the next, the last an end mark, the file's last to the
            // first.
            let mut links: Vec<(u32, u32)> = new.windows(2).map(|w| (w[0], w[1])).collect();
            if let Some(&end) = new.last() {
                links.push((end, 0x0fff_ffff));
            }
            if let (Some(old), Some(&head)) = (last, new.first()) {
                links.push((old, head));
            }
            self.set_fats(&links)?;
            if e.first == 0 {
                e.first = new.first().copied().unwrap_or(0);
            }
            last = new.last().copied();
            more -= n as u64;
        }
        let size = u32::try_from(end).map_err(|_| Errno::EFBIG)?;
        self.set_entry(id, &mut e, size)
    }

    /// Calls `each` with the free clusters, after `after` first, then from the start, until
    /// it says to stop (true); whether it did.
    fn scan_free(
        &self,
        after: Option<u32>,
        mut each: impl FnMut(u32) -> bool,
    ) -> Result<bool, Errno> {
        let last = self.geo.clusters.saturating_add(1);
        let mut buf = [0u8; SECTOR];
        let mut held = None;
        let mut is_free = |c: u32| -> Result<bool, Errno> {
            let (s, at) = self.geo.fat_entry_at(c);
            if held != Some(s) {
                self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
                held = Some(s);
            }
            Ok(match self.geo.fat_type {
                FatType::Fat16 => u16::from_le_bytes([buf[at], buf[at + 1]]) == 0,
                FatType::Fat32 => {
                    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
                        & 0x0fff_ffff
                        == 0
                }
            })
        };
        // After the file's last cluster when the next one is free (a file growing in
        // place), else from the lowest one that may be free: not over every cluster of
        // the files that follow it (a file growing a little at a time behind others).
        let hint = self.free_hint.get().clamp(2, last.max(2));
        let start = match after.map(|c| c.saturating_add(1)) {
            Some(c) if (2..=last).contains(&c) && is_free(c)? => c,
            _ => hint,
        };
        let mut first = true;
        for c in (start..=last).chain(2..start) {
            if is_free(c)? {
                if first && start == hint {
                    // Every cluster from the hint (or from 2) to here is in use.
                    self.free_hint.set(c);
                }
                first = false;
                if each(c) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Clusters `freed` are free from now on: the search for free ones may start there.
    pub(super) fn freeing(&self, freed: impl Iterator<Item = u32>) {
        if let Some(low) = freed.min() {
            self.free_hint.set(self.free_hint.get().min(low));
        }
    }

    /// Whether the volume has `n` free clusters (counted, none kept), looked for after
    /// `after` first (a file's last cluster: the free ones usually follow it, so that a file
    /// growing a little at a time does not count from the start of the FAT each time).
    pub(super) fn has_free(&self, n: u64, after: Option<u32>) -> Result<bool, Errno> {
        let mut seen = 0u64;
        self.scan_free(after, |_| {
            seen += 1;
            seen >= n
        })
    }

    /// `n` free clusters (at most [`BATCH`]), looked for after `after` first, then from the
    /// start: `ENOSPC` if the volume has fewer.
    pub(super) fn free_clusters(&self, n: usize, after: Option<u32>) -> Result<Vec<u32>, Errno> {
        let mut found = Vec::new();
        if n == 0 {
            return Ok(found);
        }
        found
            .try_reserve_exact(n.min(BATCH))
            .map_err(|_| Errno::ENOMEM)?;
        let enough = self.scan_free(after, |c| {
            found.push(c);
            found.len() >= n
        })?;
        if enough {
            Ok(found)
        } else {
            Err(Errno::ENOSPC)
        }
    }

    /// Sets FAT entries (cluster, value) in every FAT copy, each sector read and written
    /// once.
    fn set_fats(&self, links: &[(u32, u32)]) -> Result<(), Errno> {
        self.freeing(links.iter().filter(|l| l.1 == 0).map(|l| l.0));
        let mut by_sector: BTreeMap<u64, Vec<(usize, u32)>> = BTreeMap::new();
        for &(c, v) in links {
            if !self.geo.in_range(c) {
                return Err(Errno::EIO);
            }
            let (s, at) = self.geo.fat_entry_at(c);
            by_sector.entry(s).or_default().push((at, v));
        }
        for (s, entries) in by_sector {
            for copy in 0..self.geo.fats {
                let s = s + copy * self.geo.fat_sectors;
                let mut buf = [0u8; SECTOR];
                self.sector(s, &mut buf).map_err(|_| Errno::EIO)?;
                for &(at, v) in &entries {
                    match self.geo.fat_type {
                        FatType::Fat16 => {
                            buf[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes())
                        }
                        FatType::Fat32 => {
                            let old = u32::from_le_bytes([
                                buf[at],
                                buf[at + 1],
                                buf[at + 2],
                                buf[at + 3],
                            ]);
                            let v = (old & 0xf000_0000) | (v & 0x0fff_ffff);
                            buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                self.write_sector(s, &buf)?;
            }
        }
        Ok(())
    }
}
