//! The virtio-blk disk: found by probing the virtio-mmio transports init mapped, driven by
//! the `virtio-drivers` crate, one request at a time, each completion announced by the
//! transport's interrupt (an IrqHandler signalling the server's notification).
//!
//! Two ways in: [`BlockDev`] as `embedded-sdmmc`'s block device (a sector at a time, read
//! through 4 KiB extents kept), and [`BlockDev::read_run`] / [`BlockDev::write_run`], one
//! request of up to 64 KiB for the page cache's blocks (`fs::extents`).

extern crate alloc;

use crate::hal::DmaHal;
use core::cell::RefCell;
use core::ptr::NonNull;
use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};
use libmk::{Cap, IrqHandler, Notification};
use proto::startup::{FILE_MMIO_WINDOW, Startup, VIRTIO_SLOT_SIZE, file_slots};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

/// The most transports probed (init gives handlers for as many).
const MAX_TRANSPORTS: u64 = 32;

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
}

/// The block device and its interrupt.
pub struct Disk {
    blk: VirtIOBlk<DmaHal, MmioTransport<'static>>,
    irq: Cap<IrqHandler>,
    notify: Cap<Notification>,
    /// Which virtio-mmio transport it is on (its index from the lowest address).
    pub transport: u64,
    pub stats: DiskStats,
}

impl Disk {
    /// The first virtio-blk device among the transports init mapped; `None` without one.
    pub fn probe(st: &Startup) -> Option<Disk> {
        let transports = (st.mmio_size / VIRTIO_SLOT_SIZE).min(MAX_TRANSPORTS);
        for i in 0..transports {
            let va = FILE_MMIO_WINDOW + i * VIRTIO_SLOT_SIZE;
            let header = NonNull::new(va as *mut VirtIOHeader)?;
            // SAFETY: init mapped `mmio_size` bytes of virtio-mmio registers (device memory)
            // at FILE_MMIO_WINDOW for the server's life; each transport is VIRTIO_SLOT_SIZE
            // bytes (header and config space) and only the one transport object made here
            // touches it (the others are dropped at once).
            let transport = match unsafe { MmioTransport::new(header, VIRTIO_SLOT_SIZE as usize) } {
                Ok(t) => t,
                // No device behind this transport (device id 0), or not virtio at all.
                Err(_) => continue,
            };
            if transport.device_type() != DeviceType::Block {
                continue;
            }
            let blk = match VirtIOBlk::<DmaHal, _>::new(transport) {
                Ok(blk) => blk,
                Err(e) => {
                    rt::println!("file: virtio-blk at transport {i}: {e:?}");
                    continue;
                }
            };
            let mut disk = Disk {
                blk,
                irq: Cap::from_cptr(st.slots[file_slots::IRQ_FIRST] + i),
                notify: Cap::from_cptr(st.slots[file_slots::IRQ_NOTIFY]),
                transport: i,
                stats: DiskStats::default(),
            };
            disk.blk.enable_interrupts();
            return Some(disk);
        }
        None
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.blk.capacity()
    }

    /// Whether the device refuses writes (QEMU's `readonly=on`: the shared image).
    pub fn readonly(&self) -> bool {
        self.blk.readonly()
    }

    /// Reads sectors from `sector` on into `buf` (a whole number of sectors): submits the
    /// request, sleeps on the notification until the device's interrupt says it is done.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let block = Self::check(sector, buf.len())?;
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: `req`, `buf` and `resp` stay borrowed by this function, untouched, until
        // `complete_read_blocks` below hands them back.
        let token = unsafe { self.blk.read_blocks_nb(block, &mut req, buf, &mut resp) }
            .map_err(|_| IoError)?;
        self.stats.requests += 1;
        self.stats.sectors_read += (buf.len() / SECTOR_SIZE) as u64;
        self.wait_for(token)?;
        // SAFETY: the same buffers as passed to `read_blocks_nb` for this token.
        unsafe { self.blk.complete_read_blocks(token, &req, buf, &mut resp) }.map_err(|_| IoError)
    }

    /// Writes `buf` (a whole number of sectors) from `sector` on, the same way.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let block = Self::check(sector, buf.len())?;
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: as for `read`: the buffers stay borrowed until `complete_write_blocks`.
        let token = unsafe { self.blk.write_blocks_nb(block, &mut req, buf, &mut resp) }
            .map_err(|_| IoError)?;
        self.stats.requests += 1;
        self.stats.writes += 1;
        self.stats.sectors_written += (buf.len() / SECTOR_SIZE) as u64;
        self.wait_for(token)?;
        // SAFETY: the same buffers as passed to `write_blocks_nb` for this token.
        unsafe { self.blk.complete_write_blocks(token, &req, buf, &mut resp) }.map_err(|_| IoError)
    }

    fn check(sector: u64, len: usize) -> Result<usize, IoError> {
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(IoError);
        }
        usize::try_from(sector).map_err(|_| IoError)
    }

    /// Sleeps until request `token` is in the used ring. Every completion raises the
    /// (level-triggered) interrupt: the kernel masks it and signals; acknowledge it at the
    /// device, then unmask it.
    fn wait_for(&mut self, token: u16) -> Result<(), IoError> {
        loop {
            self.notify.wait().map_err(|_| IoError)?;
            self.stats.interrupts += 1;
            self.blk.ack_interrupt();
            self.irq.ack().map_err(|_| IoError)?;
            if self.blk.peek_used() == Some(token) {
                return Ok(());
            }
        }
    }
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
    data: alloc::boxed::Box<[[u8; EXTENT_BYTES]]>,
}

/// The disk as `embedded-sdmmc` wants it: shared (`&self`) access to a block device,
/// whole 4 KiB extents read ahead and kept.
pub struct BlockDev {
    pub disk: RefCell<Disk>,
    extents: RefCell<Extents>,
}

impl BlockDev {
    pub fn new(disk: Disk) -> Self {
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

impl BlockDev {
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
    fn in_disk(disk: &Disk, sector: u64, len: usize) -> Result<(), IoError> {
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

impl BlockDevice for BlockDev {
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
