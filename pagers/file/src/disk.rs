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
//! The file system reaches it as the core's [`Device`] (`file::blockdev::BlockDev` over it:
//! `embedded-sdmmc`'s block device and the page cache's runs of up to 64 KiB).

extern crate alloc;

use crate::hal::DmaHal;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use file::blockdev::{DiskStats, IoError};
use file::platform::Device;
use libmk::{Cap, IrqHandler, Notification};
use proto::object::BLOCK_SIZE;
use proto::startup::{FILE_CACHE_WINDOW, FILE_MMIO_WINDOW, Startup, VIRTIO_SLOT_SIZE, file_slots};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

/// The most transports probed (init gives handlers for as many).
const MAX_TRANSPORTS: u64 = 32;

/// Disk requests the queue holds at once: 16 descriptors, three per request (header, data,
/// status: the crate is built without indirect descriptors).
pub const QUEUE_REQUESTS: usize = 5;
/// Of those, asynchronous reads at most: one is left for a synchronous request.
pub const MAX_ASYNC: usize = QUEUE_REQUESTS - 1;

/// Whether completed asynchronous reads wait to be collected (the server asks after every
/// request; the flag spares it borrowing the device through the crate).
static DONE: AtomicBool = AtomicBool::new(false);

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
            while let Some(t) = self.next_used() {
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
        while let Some(t) = self.next_used() {
            if !self.complete(t) {
                return;
            }
        }
    }

    /// The next token in the used ring, looking twice before saying there is none. The
    /// device (virtio's `RING_EVENT_IDX`, which the driver negotiates) interrupts only for
    /// a completion past the index the driver last stored (`used_event`, moved by each pop):
    /// a completion the device added before it saw that store raised no interrupt, so the
    /// driver must look at the ring again after a full barrier (Linux's
    /// `virtqueue_enable_cb` does the same). Without it, the server sometimes slept in
    /// `Recv` with a finished read in the ring and no interrupt to come, and vm's deadline
    /// ended it (seen under `make bench`'s filebench, about one boot in ten).
    fn next_used(&mut self) -> Option<u16> {
        if let Some(t) = self.blk.peek_used() {
            return Some(t);
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.blk.peek_used()
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

impl Device for Disk {
    fn sectors(&self) -> u64 {
        Disk::sectors(self)
    }

    fn readonly(&self) -> bool {
        Disk::readonly(self)
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        Disk::read(self, sector, buf)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        Disk::write(self, sector, buf)
    }

    fn max_async(&self) -> usize {
        MAX_ASYNC
    }

    unsafe fn submit_read(
        &mut self,
        sector: u64,
        slot: usize,
        at: usize,
        len: usize,
        tag: u64,
    ) -> Result<(), IoError> {
        // Cache slot `slot`'s frame is mapped at its place in the window for the server's
        // life (`frames::Frames::new_frame`).
        let fits = at
            .checked_add(len)
            .is_some_and(|end| end as u64 <= BLOCK_SIZE);
        let va = (slot as u64)
            .checked_mul(BLOCK_SIZE)
            .and_then(|o| o.checked_add(FILE_CACHE_WINDOW + at as u64));
        let Some(va) = va.filter(|_| fits) else {
            return Err(IoError);
        };
        // SAFETY: `va .. va + len` lies inside slot `slot`'s frame (checked above), mapped
        // read-write for the server's life; the caller keeps those bytes untouched until
        // the completion is collected, as `Disk::submit_read` asks.
        unsafe { Disk::submit_read(self, sector, va as *mut u8, len, tag) }
    }

    fn take_done(&mut self) -> Vec<(u64, Result<(), IoError>)> {
        Disk::take_done(self)
    }

    fn done_flag(&self) -> &'static AtomicBool {
        &DONE
    }

    fn wait_read(&mut self) -> bool {
        Disk::wait_read(self)
    }

    fn quiesce(&mut self) {
        Disk::quiesce(self)
    }

    fn interrupt(&mut self) {
        Disk::interrupt(self)
    }

    fn stats(&self) -> DiskStats {
        self.stats
    }
}
