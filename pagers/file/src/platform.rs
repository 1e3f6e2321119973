//! What the file server's core asks of the machine it runs on, so that the same core runs
//! in the server (system calls, the virtio disk: `main.rs`'s target modules) and in host
//! tests (a RAM disk, block frames on the heap: `tests`).
//!
//! - [`Memory`]: the page cache's block frames (made, revoked from every mapping, read
//!   and written by the server);
//! - [`Device`]: the disk (synchronous requests, asynchronous reads into a cache block
//!   frame that complete in any order, its interrupt);
//! - [`Platform`]: the two, the type of a request waiting for the disk ([`Waiter`]), and
//!   the console and the heap's low-water mark.

use crate::blockdev::{DiskStats, IoError};
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;

/// A frame's mappings could not be taken away (a slot that keeps them keeps its block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// The page cache's block frames, by cache slot (`proto::object::BLOCK_SIZE` bytes each).
pub trait Memory {
    /// Makes the frame of slot `slot` (the next one: slots are made in order), ready for
    /// [`Memory::bytes`]; false when there is no memory for it (said on the console).
    fn new_frame(&mut self, slot: usize) -> bool;
    /// Takes every mapping of slot `slot`'s frame away from the tasks that have it mapped
    /// (the server's own access stays).
    fn revoke(&mut self, slot: usize) -> Result<(), Refused>;
    /// The bytes of slot `slot`'s frame, as the server sees them.
    fn bytes(&mut self, slot: usize) -> &mut [u8];
}

/// The disk: 512-byte sectors.
pub trait Device {
    /// Capacity in sectors.
    fn sectors(&self) -> u64;
    /// Whether it refuses writes.
    fn readonly(&self) -> bool;
    /// Reads sectors from `sector` on into `buf` (whole sectors), waiting for the answer.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (whole sectors) from `sector` on, waiting for the answer.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Asynchronous reads in flight at once, at most.
    fn max_async(&self) -> usize;
    /// Submits an asynchronous read of `len` bytes (whole sectors) from `sector` on into
    /// bytes `at .. at + len` of cache slot `slot`'s frame, labelled `tag` for
    /// [`Device::take_done`]. `Err` (nothing submitted) when the range is not on the disk
    /// or [`Device::max_async`] reads are in flight.
    ///
    /// # Safety
    /// Those bytes of the frame must be neither read nor written by anyone else, and the
    /// frame must stay, until the completion with `tag` has been collected.
    unsafe fn submit_read(
        &mut self,
        sector: u64,
        slot: usize,
        at: usize,
        len: usize,
        tag: u64,
    ) -> Result<(), IoError>;
    /// The asynchronous reads completed since the last call: (tag, result) each.
    fn take_done(&mut self) -> Vec<(u64, Result<(), IoError>)>;
    /// Set while completions wait for [`Device::take_done`] (read without borrowing the
    /// device: the server asks after every request).
    fn done_flag(&self) -> &'static AtomicBool;
    /// Waits until a completed asynchronous read is there to collect; false (at once) if
    /// none is in flight, or when waiting fails.
    fn wait_read(&mut self) -> bool;
    /// Waits until no asynchronous read is in flight.
    fn quiesce(&mut self);
    /// The disk's interrupt arrived: completes what the device finished.
    fn interrupt(&mut self);
    /// Counters.
    fn stats(&self) -> DiskStats;
}

/// A request waiting for the disk, as the receive loop keeps it.
pub trait Waiter {
    /// The task that sent it.
    fn pid(&self) -> u64;
    /// Its task ended while it waited: it is not to run again (the pid may be another
    /// task's by then).
    fn task_ended(&mut self);
}

/// The machine under the core.
pub trait Platform {
    type Memory: Memory;
    type Device: Device;
    type Waiter: Waiter;
    /// One line on the console.
    fn log(args: core::fmt::Arguments<'_>);
    /// Whether the heap is below its low-water mark (new tables refused).
    fn heap_low() -> bool;
}
