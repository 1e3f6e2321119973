//! The disk as the file system reads and writes it, over any [`Device`]: `embedded-sdmmc`'s
//! block device (a sector at a time, through 4 KiB extents kept in memory) and whole runs of
//! up to 64 KiB for the page cache's blocks ([`BlockDev::read_run`], [`BlockDev::write_run`]:
//! `fs::extents`).
//!
//! **Metadata is written back, coalesced** (issue 10). What the crate and the server write a
//! sector at a time (the FAT, directories, the FAT32 info sector, file bytes that go through
//! the crate) lands in the kept extents and is marked dirty there; [`BlockDev::flush`] writes
//! every dirty sector out in ascending order, as runs of consecutive sectors (clean sectors
//! the extents hold fill gaps between dirty ones), each run one request of up to
//! [`MAX_RUN`] bytes. The file server flushes at the end of every request, before its
//! answer, so an answered request's metadata is on the disk (as it was when every sector
//! was a request of its own): a server that crashes or is stopped loses nothing it
//! answered, and `sync()` is a request like any other. Between flushes the disk sees no
//! partial metadata of the request.

use crate::platform::Device;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::RefCell;
use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};

/// A disk sector.
pub const SECTOR_SIZE: usize = 512;

/// Why a disk operation failed (the file system sees it as a device error; tasks as `EIO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError;

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("virtio-blk I/O error")
    }
}

impl core::error::Error for IoError {}

/// Counters, for the console and for measurements.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskStats {
    pub requests: u64,
    pub sectors_read: u64,
    pub sectors_written: u64,
    pub interrupts: u64,
    /// Of the requests, writes.
    pub writes: u64,
    /// Of the requests, asynchronous reads.
    pub async_reads: u64,
    /// The most requests in flight at once (asynchronous ones and a synchronous one).
    pub max_in_flight: u64,
    /// Asynchronous reads the device completed before one submitted earlier.
    pub out_of_order: u64,
}

/// Sectors per extent: the disk is read 4 KiB (a FAT cluster, a page) at a time.
const EXTENT_SECTORS: u64 = 8;
const EXTENT_BYTES: usize = EXTENT_SECTORS as usize * SECTOR_SIZE;
/// All sectors of an extent, as a mask.
const ALL: u8 = 0xff;
/// Extents kept (the least recently used one goes first): `embedded-sdmmc` asks for one
/// 512-byte sector at a time and alternates between the FAT and the data, so without them
/// every sector would be a request and an interrupt. 256 KiB of the server's heap; a
/// request that dirties more than this flushes along the way.
const EXTENTS: usize = 64;

/// 4 KiB of the disk kept in memory.
struct Extent {
    data: Box<[u8; EXTENT_BYTES]>,
    /// Sectors whose bytes `data` holds (bit `i`: sector `i` of the extent): all of them
    /// once read; only those written when it was made by a write.
    valid: u8,
    /// Of those, the sectors written since the last flush (newer than the disk).
    dirty: u8,
    /// When it was last used (for eviction).
    used: u64,
}

/// The kept extents, by extent number.
#[derive(Default)]
struct Extents {
    map: BTreeMap<u64, Extent>,
    clock: u64,
}

impl Extents {
    fn dirty(&self) -> bool {
        self.map.values().any(|e| e.dirty != 0)
    }

    /// Whether a sector of `sector .. sector + n` is dirty.
    fn dirty_in(&self, sector: u64, n: u64) -> bool {
        let end = sector.saturating_add(n);
        let first = sector / EXTENT_SECTORS;
        let last = end.div_ceil(EXTENT_SECTORS);
        self.map.range(first..last).any(|(&x, e)| {
            (0..EXTENT_SECTORS).any(|i| {
                let s = x * EXTENT_SECTORS + i;
                e.dirty & (1 << i) != 0 && (sector..end).contains(&s)
            })
        })
    }

    /// The runs [`BlockDev::flush`] writes: (first sector, sectors), ascending. A run starts
    /// and ends with a dirty sector and holds only sectors the extents hold (a clean one
    /// between dirty ones is the disk's own bytes), at most [`MAX_RUN`] bytes.
    fn runs(&self) -> Vec<(u64, u64)> {
        let max = (MAX_RUN / SECTOR_SIZE) as u64;
        let mut runs = Vec::new();
        // (first, sectors so far, sectors up to the last dirty one).
        let mut run: Option<(u64, u64, u64)> = None;
        for (&x, e) in &self.map {
            for i in 0..EXTENT_SECTORS {
                let s = x * EXTENT_SECTORS + i;
                let bit = 1u8 << i;
                let dirty = e.dirty & bit != 0;
                let goes_on = e.valid & bit != 0
                    && run.is_some_and(|(first, n, _)| first + n == s && n < max);
                if goes_on {
                    if let Some((_, n, keep)) = run.as_mut() {
                        *n += 1;
                        if dirty {
                            *keep = *n;
                        }
                    }
                    continue;
                }
                if let Some((first, _, keep)) = run.take() {
                    runs.push((first, keep));
                }
                if dirty {
                    run = Some((s, 1, 1));
                }
            }
        }
        if let Some((first, _, keep)) = run {
            runs.push((first, keep));
        }
        runs
    }
}

/// FAT32's count of free clusters, kept right as the FAT changes (issue 10). The info
/// sector (FSINFO) carries it as a hint; `embedded-sdmmc` writes its own count there as it
/// flushes a file, and that count knows nothing of the clusters the server takes and gives
/// back itself (growth, directories, removal), so `fsck.fat` found it wrong. The server
/// counts the free entries of the first FAT once at mount, follows every write of a
/// sector of it (free entries before and after), and puts its count into the info sector
/// whenever anyone writes that sector and at the flush that ends a request which changed it.
#[derive(Clone, Copy, Debug)]
pub struct FreeCount {
    /// The first FAT's first sector and its length, the volume's data clusters (entries
    /// 2 ..= clusters + 1 count), and the info sector.
    pub fat_start: u64,
    pub fat_sectors: u64,
    pub clusters: u32,
    pub info_sector: u64,
    /// Free clusters now.
    pub free: u32,
    /// What the info sector was last given (`None`: it must be written).
    written: Option<u32>,
}

/// Where the info sector keeps the free count, and its signatures.
const INFO_FREE: usize = 488;
const INFO_LEAD: [u8; 4] = 0x4161_5252u32.to_le_bytes();
const INFO_STRUC: [u8; 4] = 0x6141_7272u32.to_le_bytes();

impl FreeCount {
    /// Free entries of FAT sector `sector` (of the first FAT) whose bytes are `bytes`.
    fn free_in(&self, sector: u64, bytes: &[u8]) -> u32 {
        let first = (sector - self.fat_start) * (SECTOR_SIZE as u64 / 4);
        let last = u64::from(self.clusters) + 1;
        let mut free = 0;
        for (i, e) in bytes.chunks_exact(4).enumerate() {
            let c = first + i as u64;
            if (2..=last).contains(&c)
                && u32::from_le_bytes([e[0], e[1], e[2], e[3]]) & 0x0fff_ffff == 0
            {
                free += 1;
            }
        }
        free
    }

    fn in_fat(&self, sector: u64) -> bool {
        (self.fat_start..self.fat_start + self.fat_sectors).contains(&sector)
    }

    /// `bytes` of the info sector with the count put in (unchanged if it has no signature).
    fn patch(&self, bytes: &mut [u8]) {
        if bytes.len() == SECTOR_SIZE && bytes[..4] == INFO_LEAD && bytes[484..488] == INFO_STRUC {
            bytes[INFO_FREE..INFO_FREE + 4].copy_from_slice(&self.free.to_le_bytes());
        }
    }
}

/// The disk as `embedded-sdmmc` wants it: shared (`&self`) access to a block device,
/// whole 4 KiB extents read ahead and kept, sector writes kept until [`BlockDev::flush`].
pub struct BlockDev<D> {
    pub disk: RefCell<D>,
    extents: RefCell<Extents>,
    /// FAT32's free count ([`BlockDev::keep_free_count`]); `None` on FAT16.
    free: RefCell<Option<FreeCount>>,
}

impl<D: Device> BlockDev<D> {
    pub fn new(disk: D) -> Self {
        Self {
            disk: RefCell::new(disk),
            extents: RefCell::new(Extents::default()),
            free: RefCell::new(None),
        }
    }

    /// Keeps FAT32's free-cluster count from now on: the free entries of the first FAT
    /// (`fat_start`, `fat_sectors` sectors, `clusters` data clusters) are counted, and the
    /// info sector `info_sector` gets the count at the next flush.
    pub fn keep_free_count(
        &self,
        fat_start: u64,
        fat_sectors: u64,
        clusters: u32,
        info_sector: u64,
    ) -> Result<(), IoError> {
        let mut fc = FreeCount {
            fat_start,
            fat_sectors,
            clusters,
            info_sector,
            free: 0,
            written: None,
        };
        let mut buf = [0u8; SECTOR_SIZE];
        for s in fat_start..fat_start + fat_sectors {
            self.read_sector(s, &mut buf)?;
            fc.free += fc.free_in(s, &buf);
        }
        *self.free.try_borrow_mut().map_err(|_| IoError)? = Some(fc);
        Ok(())
    }

    /// FAT32's free-cluster count as the server keeps it.
    pub fn free_count(&self) -> Option<u32> {
        self.free.try_borrow().ok().and_then(|f| f.map(|f| f.free))
    }

    /// Whether `sector` lies in the disk's last, partial extent (read and written a sector
    /// at a time, never kept).
    fn unkept(disk: &D, sector: u64) -> bool {
        (sector / EXTENT_SECTORS + 1) * EXTENT_SECTORS > disk.sectors()
    }

    /// Extent `x`, made (empty) if it is not kept; the least recently used one goes to
    /// make room (a full set of extents is flushed first if any is dirty).
    fn extent<'e>(disk: &mut D, ext: &'e mut Extents, x: u64) -> Result<&'e mut Extent, IoError> {
        ext.clock += 1;
        let now = ext.clock;
        if !ext.map.contains_key(&x) && ext.map.len() >= EXTENTS {
            if ext.dirty() {
                Self::flush_all(disk, ext)?;
            }
            let oldest = ext.map.iter().min_by_key(|(_, e)| e.used).map(|(&k, _)| k);
            if let Some(k) = oldest {
                ext.map.remove(&k);
            }
        }
        let e = ext.map.entry(x).or_insert_with(|| Extent {
            data: Box::new([0; EXTENT_BYTES]),
            valid: 0,
            dirty: 0,
            used: now,
        });
        e.used = now;
        Ok(e)
    }

    /// Sector `sector` into `out`, from the kept extents or a new 4 KiB read.
    pub fn read_sector(&self, sector: u64, out: &mut [u8; SECTOR_SIZE]) -> Result<(), IoError> {
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        if Self::unkept(&disk, sector) {
            return disk.read(sector, out);
        }
        let x = sector / EXTENT_SECTORS;
        let i = (sector % EXTENT_SECTORS) as usize;
        let e = Self::extent(&mut disk, &mut ext, x)?;
        Self::fill(&mut disk, e, x, i)?;
        out.copy_from_slice(&e.data[i * SECTOR_SIZE..(i + 1) * SECTOR_SIZE]);
        Ok(())
    }

    /// Makes sector `i` of extent `x` (kept as `e`) valid: the whole extent is read, the
    /// sectors kept are newer (or the same) and stay.
    fn fill(disk: &mut D, e: &mut Extent, x: u64, i: usize) -> Result<(), IoError> {
        if e.valid & (1 << i) != 0 {
            return Ok(());
        }
        let mut fresh = alloc::vec![0u8; EXTENT_BYTES];
        disk.read(x * EXTENT_SECTORS, &mut fresh)?;
        for j in 0..EXTENT_SECTORS as usize {
            if e.valid & (1 << j) == 0 {
                let r = j * SECTOR_SIZE..(j + 1) * SECTOR_SIZE;
                e.data[r.clone()].copy_from_slice(&fresh[r]);
            }
        }
        e.valid = ALL;
        Ok(())
    }

    /// Keeps `bytes` as sector `sector`'s, dirty, for the next [`BlockDev::flush`] (the
    /// disk's last, partial extent is written at once). `IoError` at once on a read-only
    /// disk.
    pub fn write_sector(&self, sector: u64, bytes: &[u8; SECTOR_SIZE]) -> Result<(), IoError> {
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        if disk.readonly() || sector >= disk.sectors() {
            return Err(IoError);
        }
        if Self::unkept(&disk, sector) {
            return disk.write(sector, bytes);
        }
        let i = (sector % EXTENT_SECTORS) as usize;
        let x = sector / EXTENT_SECTORS;
        let mut free = self.free.try_borrow_mut().map_err(|_| IoError)?;
        let e = Self::extent(&mut disk, &mut ext, x)?;
        let at = i * SECTOR_SIZE..(i + 1) * SECTOR_SIZE;
        if let Some(fc) = free.as_mut() {
            if fc.in_fat(sector) {
                // The free entries it had (read first if not kept) and has now.
                Self::fill(&mut disk, e, x, i)?;
                let before = fc.free_in(sector, &e.data[at.clone()]);
                let after = fc.free_in(sector, bytes);
                fc.free = (fc.free + after).saturating_sub(before);
            }
            e.data[at.clone()].copy_from_slice(bytes);
            if sector == fc.info_sector {
                // The crate's count is stale: the info sector always carries the server's.
                fc.patch(&mut e.data[at]);
                fc.written = Some(fc.free);
            }
        } else {
            e.data[at].copy_from_slice(bytes);
        }
        e.valid |= 1 << i;
        e.dirty |= 1 << i;
        Ok(())
    }

    /// Whether sectors wait to be written by [`BlockDev::flush`].
    pub fn has_dirty(&self) -> bool {
        self.extents.try_borrow().is_ok_and(|e| e.dirty())
    }

    /// Writes every dirty sector to the disk, in ascending order, one request per run of
    /// consecutive sectors (at most [`MAX_RUN`] bytes). A run that fails stays dirty (with
    /// those after it), to be written by the next flush; the error comes back.
    pub fn flush(&self) -> Result<(), IoError> {
        self.update_info_sector()?;
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        Self::flush_all(&mut disk, &mut ext)
    }

    /// Gives FAT32's info sector the free count, if it changed since it was last given
    /// (kept dirty, for the flush).
    fn update_info_sector(&self) -> Result<(), IoError> {
        let fc = match *self.free.try_borrow().map_err(|_| IoError)? {
            Some(fc) if fc.written != Some(fc.free) => fc,
            _ => return Ok(()),
        };
        if self.disk.try_borrow().map_err(|_| IoError)?.readonly() {
            return Ok(());
        }
        let mut info = [0u8; SECTOR_SIZE];
        self.read_sector(fc.info_sector, &mut info)?;
        // `write_sector` puts the count in.
        self.write_sector(fc.info_sector, &info)
    }

    fn flush_all(disk: &mut D, ext: &mut Extents) -> Result<(), IoError> {
        let mut buf = Vec::new();
        for (first, n) in ext.runs() {
            buf.clear();
            for s in first..first + n {
                let e = ext.map.get(&(s / EXTENT_SECTORS)).ok_or(IoError)?;
                let at = (s % EXTENT_SECTORS) as usize * SECTOR_SIZE;
                buf.extend_from_slice(&e.data[at..at + SECTOR_SIZE]);
            }
            disk.write(first, &buf)?;
            for s in first..first + n {
                if let Some(e) = ext.map.get_mut(&(s / EXTENT_SECTORS)) {
                    e.dirty &= !(1 << (s % EXTENT_SECTORS));
                }
            }
        }
        Ok(())
    }

    /// Flushes first if a sector of `sector ..` for `len` bytes is dirty: the disk is then
    /// read or written there directly (a page-cache block's run, an asynchronous read).
    fn settle(disk: &mut D, ext: &mut Extents, sector: u64, len: usize) -> Result<(), IoError> {
        if ext.dirty_in(sector, (len / SECTOR_SIZE) as u64) {
            Self::flush_all(disk, ext)?;
        }
        Ok(())
    }

    /// Submits an asynchronous read into cache slot `slot` (`Device::submit_read`), after
    /// writing out any dirty sector it would read past.
    ///
    /// # Safety
    /// As `Device::submit_read`.
    pub unsafe fn submit_read(
        &self,
        sector: u64,
        slot: usize,
        at: usize,
        len: usize,
        tag: u64,
    ) -> Result<(), IoError> {
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        Self::settle(&mut disk, &mut ext, sector, len)?;
        // SAFETY: the caller's promise, passed on.
        unsafe { disk.submit_read(sector, slot, at, len, tag) }
    }
}

/// The most bytes one request of [`BlockDev::read_run`] or [`BlockDev::write_run`] moves: a
/// page-cache block (16 pages of the 256-page DMA pool, as a bounce buffer).
pub const MAX_RUN: usize = 64 * 1024;

impl<D: Device> BlockDev<D> {
    /// Reads `buf` (whole sectors, at most [`MAX_RUN`] bytes) from `sector` on, as one
    /// request: a page-cache block whose clusters are consecutive on the disk. Dirty sectors
    /// there are written out first, so the disk holds the newest bytes.
    pub fn read_run(&self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() > MAX_RUN {
            return Err(IoError);
        }
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        Self::in_disk(&disk, sector, buf.len())?;
        Self::settle(&mut disk, &mut ext, sector, buf.len())?;
        disk.read(sector, buf)
    }

    /// Writes `buf` (whole sectors, at most [`MAX_RUN`] bytes) from `sector` on, as one
    /// request; kept extents holding any of those sectors get the new bytes (clean: newer
    /// than any dirty copy they had).
    pub fn write_run(&self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if buf.len() > MAX_RUN {
            return Err(IoError);
        }
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        Self::in_disk(&disk, sector, buf.len())?;
        disk.write(sector, buf)?;
        let end = sector + (buf.len() / SECTOR_SIZE) as u64;
        for s in sector..end {
            let Some(e) = ext.map.get_mut(&(s / EXTENT_SECTORS)) else {
                continue;
            };
            let i = (s % EXTENT_SECTORS) as usize;
            let from = (s - sector) as usize * SECTOR_SIZE;
            e.data[i * SECTOR_SIZE..(i + 1) * SECTOR_SIZE]
                .copy_from_slice(&buf[from..from + SECTOR_SIZE]);
            e.valid |= 1 << i;
            e.dirty &= !(1 << i);
        }
        Ok(())
    }

    /// `IoError` unless sectors `sector ..` for `len` bytes lie on the disk.
    fn in_disk(disk: &D, sector: u64, len: usize) -> Result<(), IoError> {
        let sectors = (len / SECTOR_SIZE) as u64;
        match sector.checked_add(sectors) {
            Some(end) if end <= disk.sectors() => Ok(()),
            _ => Err(IoError),
        }
    }
}

impl<D: Device> BlockDevice for BlockDev<D> {
    type Error = IoError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), IoError> {
        for (i, block) in blocks.iter_mut().enumerate() {
            self.read_sector(u64::from(start.0) + i as u64, &mut block.contents)?;
        }
        Ok(())
    }

    /// Kept dirty until the server's next flush (the end of the request).
    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), IoError> {
        for (i, block) in blocks.iter().enumerate() {
            self.write_sector(u64::from(start.0) + i as u64, &block.contents)?;
        }
        Ok(())
    }

    fn num_blocks(&self) -> Result<BlockCount, IoError> {
        let disk = self.disk.try_borrow().map_err(|_| IoError)?;
        u32::try_from(disk.sectors())
            .map(BlockCount)
            .map_err(|_| IoError)
    }
}
