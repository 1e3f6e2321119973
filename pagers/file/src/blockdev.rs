//! The disk as the file system reads and writes it, over any [`Device`]: `embedded-sdmmc`'s
//! block device (a sector at a time, read through 4 KiB extents kept) and whole runs of up
//! to 64 KiB for the page cache's blocks ([`BlockDev::read_run`], [`BlockDev::write_run`]:
//! `fs::extents`).

use crate::platform::Device;
use alloc::boxed::Box;
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
/// Extents kept (direct-mapped by extent number): `embedded-sdmmc` asks for one 512-byte
/// sector at a time and alternates between the FAT and the data, so without this every
/// sector would be a request and an interrupt.
const EXTENTS: usize = 16;

/// Read-ahead: recently read extents.
struct Extents {
    tags: [Option<u64>; EXTENTS],
    data: Box<[[u8; EXTENT_BYTES]]>,
}

/// The disk as `embedded-sdmmc` wants it: shared (`&self`) access to a block device,
/// whole 4 KiB extents read ahead and kept.
pub struct BlockDev<D> {
    pub disk: RefCell<D>,
    extents: RefCell<Extents>,
}

impl<D: Device> BlockDev<D> {
    pub fn new(disk: D) -> Self {
        Self {
            disk: RefCell::new(disk),
            extents: RefCell::new(Extents {
                tags: [None; EXTENTS],
                // Made on the heap directly (the server's stack is 64 KiB).
                data: alloc::vec![[0; EXTENT_BYTES]; EXTENTS].into_boxed_slice(),
            }),
        }
    }

    /// Sector `sector` into `out`, from the extent cache or a new 4 KiB read.
    pub fn read_sector(&self, sector: u64, out: &mut [u8; SECTOR_SIZE]) -> Result<(), IoError> {
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        let extent = sector / EXTENT_SECTORS;
        let slot = (extent % EXTENTS as u64) as usize;
        if (extent + 1) * EXTENT_SECTORS > disk.sectors() {
            // The disk's last, partial extent: one sector at a time.
            return disk.read(sector, out);
        }
        if ext.tags[slot] != Some(extent) {
            ext.tags[slot] = None;
            disk.read(extent * EXTENT_SECTORS, &mut ext.data[slot])?;
            ext.tags[slot] = Some(extent);
        }
        let at = (sector % EXTENT_SECTORS) as usize * SECTOR_SIZE;
        out.copy_from_slice(&ext.data[slot][at..at + SECTOR_SIZE]);
        Ok(())
    }
}

/// The most bytes one request of [`BlockDev::read_run`] or [`BlockDev::write_run`] moves: a
/// page-cache block (16 pages of the 256-page DMA pool, as a bounce buffer).
pub const MAX_RUN: usize = 64 * 1024;

impl<D: Device> BlockDev<D> {
    /// Reads `buf` (whole sectors, at most [`MAX_RUN`] bytes) from `sector` on, as one
    /// request: a page-cache block whose clusters are consecutive on the disk. The disk
    /// holds every byte written (the kept extents are written through), so nothing kept
    /// is newer.
    pub fn read_run(&self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if buf.len() > MAX_RUN {
            return Err(IoError);
        }
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        Self::in_disk(&disk, sector, buf.len())?;
        disk.read(sector, buf)
    }

    /// Writes `buf` (whole sectors, at most [`MAX_RUN`] bytes) from `sector` on, as one
    /// request; kept extents holding any of those sectors get the new bytes.
    pub fn write_run(&self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if buf.len() > MAX_RUN {
            return Err(IoError);
        }
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        Self::in_disk(&disk, sector, buf.len())?;
        disk.write(sector, buf)?;
        let end = sector + (buf.len() / SECTOR_SIZE) as u64;
        for extent in sector / EXTENT_SECTORS..end.div_ceil(EXTENT_SECTORS) {
            let slot = (extent % EXTENTS as u64) as usize;
            if ext.tags[slot] != Some(extent) {
                continue;
            }
            let first = (extent * EXTENT_SECTORS).max(sector);
            let last = ((extent + 1) * EXTENT_SECTORS).min(end);
            let from = (first - sector) as usize * SECTOR_SIZE;
            let at = (first % EXTENT_SECTORS) as usize * SECTOR_SIZE;
            let n = (last - first) as usize * SECTOR_SIZE;
            ext.data[slot][at..at + n].copy_from_slice(&buf[from..from + n]);
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

    /// Writes one sector (through the kept extents), for the server's own directory and
    /// FAT updates (`fs::volume`).
    pub fn write_sector(&self, sector: u64, bytes: &[u8; SECTOR_SIZE]) -> Result<(), IoError> {
        let start = u32::try_from(sector).map_err(|_| IoError)?;
        let mut block = Block::new();
        block.contents = *bytes;
        BlockDevice::write(self, core::slice::from_ref(&block), BlockIdx(start))
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

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), IoError> {
        let mut disk = self.disk.try_borrow_mut().map_err(|_| IoError)?;
        let mut ext = self.extents.try_borrow_mut().map_err(|_| IoError)?;
        for (i, block) in blocks.iter().enumerate() {
            let sector = u64::from(start.0) + i as u64;
            disk.write(sector, &block.contents)?;
            // Write through: a kept extent holding this sector gets the new bytes.
            let extent = sector / EXTENT_SECTORS;
            let slot = (extent % EXTENTS as u64) as usize;
            if ext.tags[slot] == Some(extent) {
                let at = (sector % EXTENT_SECTORS) as usize * SECTOR_SIZE;
                ext.data[slot][at..at + SECTOR_SIZE].copy_from_slice(&block.contents);
            }
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
