//! The virtio-blk disk: found by probing the virtio-mmio transports init mapped, driven by
//! the `virtio-drivers` crate, each completion announced by the transport's interrupt (an
//! IrqHandler signalling the server's notification, which init binds to the server's
//! thread: the server's `Recv` returns it as a message, label `NOTIFICATION_LABEL`).
//!
//! Two kinds of request share the queue, completed in whatever order the device finishes
//! them (the used ring says which):
//! - **asynchronous reads** of page-cache blocks ([`Disk::submit_read`]): the server goes on
//!   serving while they are in flight; their completions are collected ([`Disk::take_done`])
//!   when the interrupt arrives or while a synchronous request waits;
//! - **synchronous** requests ([`Disk::read`], [`Disk::write`]): the server waits on the
//!   notification until its request completes (completing any asynchronous one it finds
//!   first). The FAT and directories, `O_DIRECT`, write-back and whatever cannot be read
//!   asynchronously go this way.
//!
//! Two ways in: [`BlockDev`] as `embedded-sdmmc`'s block device (a sector at a time, read
//! through 4 KiB extents kept), and [`BlockDev::read_run`] / [`BlockDev::write_run`], one
//! request of up to 64 KiB for the page cache's blocks (`fs::extents`).

extern crate alloc;

use crate::hal::DmaHal;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
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
    /// Of the requests, asynchronous reads.
    pub async_reads: u64,
    /// The most requests in flight at once (asynchronous ones and a synchronous one).
    pub max_in_flight: u64,
    /// Asynchronous reads the device completed before one submitted earlier.
    pub out_of_order: u64,
}

/// Disk requests the queue holds at once: 16 descriptors, three per request (header, data,
/// status: the crate is built without indirect descriptors).
pub const QUEUE_REQUESTS: usize = 5;
/// Of those, asynchronous reads at most: one is left for a synchronous request.
pub const MAX_ASYNC: usize = QUEUE_REQUESTS - 1;

/// Whether completed asynchronous reads wait to be collected (the server asks after every
/// request; the flag spares it borrowing the device through the crate).
static DONE: AtomicBool = AtomicBool::new(false);

/// Whether completed asynchronous reads wait to be collected by [`Disk::take_done`].
pub fn has_done() -> bool {
    DONE.load(Ordering::Relaxed)
}

/// An asynchronous read in flight: the header and status the device reads and writes (on
/// the heap, boxed so that they stay where the driver saw them), and the buffer.
struct AsyncRead {
    tag: u64,
    /// Submission order.
    seq: u64,
    req: BlkReq,
    resp: BlkResp,
    buf: *mut u8,
    len: usize,
}

/// The block device and its interrupt.
pub struct Disk {
    blk: VirtIOBlk<DmaHal, MmioTransport<'static>>,
    irq: Cap<IrqHandler>,
    notify: Cap<Notification>,
    /// Which virtio-mmio transport it is on (its index from the lowest address).
    pub transport: u64,
    pub stats: DiskStats,
    /// Asynchronous reads in flight, by token.
    reads: BTreeMap<u16, Box<AsyncRead>>,
    /// Completed asynchronous reads not yet collected: (tag, result).
    done: Vec<(u64, Result<(), IoError>)>,
    /// The next asynchronous read's `seq`.
    seq: u64,
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
                reads: BTreeMap::new(),
                done: Vec::new(),
                seq: 0,
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
        self.count_in_flight(1);
        self.wait_for(token)?;
        // SAFETY: the same buffers as passed to `read_blocks_nb` for this token.
        let done = unsafe { self.blk.complete_read_blocks(token, &req, buf, &mut resp) };
        self.drain();
        done.map_err(|_| IoError)
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
        self.count_in_flight(1);
        self.wait_for(token)?;
        // SAFETY: the same buffers as passed to `write_blocks_nb` for this token.
        let done = unsafe { self.blk.complete_write_blocks(token, &req, buf, &mut resp) };
        self.drain();
        done.map_err(|_| IoError)
    }

    fn check(sector: u64, len: usize) -> Result<usize, IoError> {
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(IoError);
        }
        usize::try_from(sector).map_err(|_| IoError)
    }

    /// Sleeps until synchronous request `token` is next in the used ring, completing the
    /// asynchronous reads that come before it. Every completion raises the
    /// (level-triggered) interrupt: the kernel masks it and signals; [`Disk::interrupt`]
    /// acknowledges it.
    fn wait_for(&mut self, token: u16) -> Result<(), IoError> {
        loop {
            while let Some(t) = self.blk.peek_used() {
                if t == token {
                    return Ok(());
                }
                if !self.complete(t) {
                    // A token nobody submitted: the ring cannot be trusted.
                    return Err(IoError);
                }
            }
            self.notify.wait().map_err(|_| IoError)?;
            self.ack()?;
        }
    }

    /// The interrupt was signalled (the server's `Recv` said so): acknowledges it and
    /// completes every asynchronous read the device has finished.
    pub fn interrupt(&mut self) {
        if self.ack().is_ok() {
            self.drain();
        }
    }

    /// Completes every asynchronous read the used ring holds. After a synchronous request
    /// too: reads the device finished behind it raised no interrupt of their own (the one
    /// interrupt covered them all) and would otherwise wait for the next one, which may
    /// never come.
    fn drain(&mut self) {
        while let Some(t) = self.blk.peek_used() {
            if !self.complete(t) {
                return;
            }
        }
    }

    /// Waits until a completed asynchronous read is there to collect; false (at once) if
    /// none is in flight, or when waiting fails.
    pub fn wait_read(&mut self) -> bool {
        loop {
            self.drain();
            if !self.done.is_empty() {
                return true;
            }
            if self.reads.is_empty() || self.notify.wait().is_err() || self.ack().is_err() {
                return false;
            }
            self.drain();
        }
    }

    /// Waits until no asynchronous read is in flight (their completions are collected as
    /// usual): before the server stops on purpose (`file.stop`), so that the device writes
    /// nothing into memory init gives to the next instance.
    pub fn quiesce(&mut self) {
        while !self.reads.is_empty() {
            if self.notify.wait().is_err() || self.ack().is_err() {
                return;
            }
            self.drain();
        }
    }

    /// Acknowledges the interrupt at the device, then unmasks it at the kernel: a
    /// completion after this raises it again.
    fn ack(&mut self) -> Result<(), IoError> {
        self.stats.interrupts += 1;
        self.blk.ack_interrupt();
        self.irq.ack().map_err(|_| IoError)
    }

    fn count_in_flight(&mut self, more: usize) {
        let now = (self.reads.len() + more) as u64;
        self.stats.max_in_flight = self.stats.max_in_flight.max(now);
    }

    /// Completes asynchronous read `token` (next in the used ring) into the done list; false
    /// if it is no asynchronous read in flight.
    fn complete(&mut self, token: u16) -> bool {
        let Some(mut r) = self.reads.remove(&token) else {
            return false;
        };
        if self.reads.values().any(|o| o.seq < r.seq) {
            self.stats.out_of_order += 1;
        }
        // SAFETY: `r.buf` and `r.len` are the buffer given to `read_blocks_nb` for this token
        // (`submit_read`'s caller keeps it valid and untouched until the completion is
        // collected); `r.req` and `r.resp` are the boxed header and status passed with it.
        let result = unsafe {
            let buf = core::slice::from_raw_parts_mut(r.buf, r.len);
            self.blk
                .complete_read_blocks(token, &r.req, buf, &mut r.resp)
        };
        self.done.push((r.tag, result.map_err(|_| IoError)));
        DONE.store(true, Ordering::Relaxed);
        true
    }

    /// Submits an asynchronous read of `len` bytes (whole sectors) from `sector` on into
    /// `buf`, labelled `tag` for [`Disk::take_done`]. `Err` (nothing submitted) when the
    /// range is not on the disk, [`MAX_ASYNC`] reads are in flight, or the queue is full.
    ///
    /// # Safety
    /// `buf .. buf + len` must stay valid, and neither read nor written by anyone else,
    /// until the completion with `tag` has been collected from [`Disk::take_done`].
    pub unsafe fn submit_read(
        &mut self,
        sector: u64,
        buf: *mut u8,
        len: usize,
        tag: u64,
    ) -> Result<(), IoError> {
        let block = Self::check(sector, len)?;
        let fits = sector
            .checked_add((len / SECTOR_SIZE) as u64)
            .is_some_and(|end| end <= self.sectors());
        if !fits || self.reads.len() >= MAX_ASYNC {
            return Err(IoError);
        }
        self.seq += 1;
        let mut r = Box::new(AsyncRead {
            tag,
            seq: self.seq,
            req: BlkReq::default(),
            resp: BlkResp::default(),
            buf,
            len,
        });
        // SAFETY: the caller keeps `buf` valid and untouched until the completion is
        // collected (`complete` hands it back); `r` is boxed and kept in `reads` until then,
        // so its header and status stay where the driver saw them.
        let token = unsafe {
            let data = core::slice::from_raw_parts_mut(buf, len);
            let AsyncRead { req, resp, .. } = &mut *r;
            self.blk.read_blocks_nb(block, req, data, resp)
        }
        .map_err(|_| IoError)?;
        self.stats.requests += 1;
        self.stats.async_reads += 1;
        self.stats.sectors_read += (len / SECTOR_SIZE) as u64;
        self.reads.insert(token, r);
        self.count_in_flight(0);
        Ok(())
    }

    /// The asynchronous reads completed since the last call: (tag, result) each.
    pub fn take_done(&mut self) -> Vec<(u64, Result<(), IoError>)> {
        DONE.store(false, Ordering::Relaxed);
        core::mem::take(&mut self.done)
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
