//! `fileasync` (boot scenario `proc-file-async`, a page cache of 8 blocks): the file server
//! keeps several disk requests in flight and completes them in whatever order the device
//! does. Four children, forked at once, read cold blocks of `big.dat` (every 8-byte word
//! holds its own offset) with `pread`, each its own run of blocks front to back (every miss
//! on a block whose predecessor is cached also reads the next one ahead, asynchronously:
//! two requests in flight from one reader alone); a fifth maps its run privately and
//! touches every page (vm's `ObjectPage` requests wait for the disk the same way). Each
//! checks every word it reads. The parent then reads the server's counters: the most
//! requests in flight at once must exceed one (the server of before kept one), and some
//! reads must have been asynchronous.
//!
//! With `AIOERR.DAT` on the disk (scenario `proc-file-async-eio`, whose disk fails the
//! first read of the file's second block once), first: a `pread` of that block, read
//! asynchronously, gets `EIO`, and the next one the right bytes.
//!
//! One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::Checks;
use rt::{MAP_PRIVATE, O_RDONLY, PROT_READ, WaitStatus, println};

rt::entry!(main);

const FILE: &str = "big.dat";
const BLOCK: u64 = 64 * 1024;
const PAGE: u64 = 4096;
/// Readers through `pread`, and blocks each reads (far apart: block `i * SPAN` on).
const READERS: u64 = 4;
const RUN: u64 = 12;
const SPAN: u64 = 48;
/// The mapping child's blocks (after the readers').
const MAP_FIRST: u64 = READERS * SPAN;
const MAP_BLOCKS: u64 = 12;

/// Reads 64 bytes at every page of blocks `first .. first + RUN`: the number of wrong words
/// (or 1000 if a read failed).
fn reader(fd: u64, first: u64) -> i32 {
    let mut wrong = 0;
    let mut buf = [0u8; 64];
    for page in first * BLOCK / PAGE..(first + RUN) * BLOCK / PAGE {
        // Not page-aligned, to cross nothing but still start in the page.
        let at = page * PAGE + 8 * (page % 8);
        match rt::pread(fd, &mut buf, at) {
            Ok(64) => {}
            _ => return 1000,
        }
        for (i, w) in buf.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if u64::from_le_bytes(word) != at + 8 * i as u64 {
                wrong += 1;
            }
        }
    }
    wrong
}

/// Maps blocks `MAP_FIRST ..` privately and reads one word of every page: wrong words.
fn mapper(fd: u64) -> i32 {
    let len = MAP_BLOCKS * BLOCK;
    let Ok(a) = rt::mmap(0, len, PROT_READ, MAP_PRIVATE, fd, MAP_FIRST * BLOCK) else {
        return 1000;
    };
    let mut wrong = 0;
    for page in 0..len / PAGE {
        let off = page * PAGE + 8 * (page % 16);
        // SAFETY: inside the read-only mapping just made, read as a plain word.
        let w = unsafe { core::ptr::read_volatile((a + off) as *const u64) };
        if w != MAP_FIRST * BLOCK + off {
            wrong += 1;
        }
    }
    wrong
}

/// `AIOERR.DAT`'s byte `i` (as the tools write it).
pub fn aioerr_byte(i: u64) -> u8 {
    (i * 7 % 253) as u8
}

/// The disk error check, if `AIOERR.DAT` is there.
fn disk_error(c: &mut Checks) {
    let Ok(fd) = rt::open("AIOERR.DAT", O_RDONLY) else {
        return;
    };
    let before = rt::file_stats().map_or(0, |s| s.async_reads);
    let mut buf = [0u8; 256];
    // Block 1 first: no read-ahead reads it before (block 0 is not cached).
    let at = BLOCK + 1000;
    let first = rt::pread(fd, &mut buf, at);
    let after = rt::file_stats().map_or(0, |s| s.async_reads);
    c.check(
        "fileasync-eio",
        first == Err(rt::Errno::EIO) && after > before,
        "the failed asynchronous read did not answer EIO",
    );
    let again = rt::pread(fd, &mut buf, at);
    let right = buf
        .iter()
        .enumerate()
        .all(|(i, &b)| b == aioerr_byte(at + i as u64));
    c.check(
        "fileasync-eio-retry",
        again == Ok(buf.len()) && right,
        "the read after the error did not get the file's bytes",
    );
    let _ = rt::close(fd);
}

fn main() -> i32 {
    let mut c = Checks::default();
    disk_error(&mut c);
    let fd = match rt::open(FILE, O_RDONLY) {
        Ok(fd) => fd,
        Err(_) => {
            c.check("fileasync-open", false, "cannot open big.dat");
            return c.failures;
        }
    };
    let mut children = 0;
    for i in 0..=READERS {
        match rt::fork() {
            Ok(0) => {
                let wrong = if i < READERS {
                    reader(fd, i * SPAN)
                } else {
                    mapper(fd)
                };
                rt::exit(wrong);
            }
            Ok(_) => children += 1,
            Err(_) => {}
        }
    }
    let mut clean = 0;
    for _ in 0..children {
        if let Ok((_, WaitStatus::Exited, 0)) = rt::wait(u64::MAX) {
            clean += 1;
        }
    }
    c.check(
        "fileasync-readers",
        children == READERS + 1 && clean == READERS + 1,
        "a reader or the mapper saw a wrong word (or did not start, or failed)",
    );
    match rt::file_stats() {
        Ok(s) => {
            println!(
                "fileasync: disk requests {}, asynchronous reads {}, most in flight at once {}, completed out of order {}",
                s.disk_requests, s.async_reads, s.max_in_flight, s.out_of_order
            );
            c.check(
                "fileasync-in-flight",
                s.max_in_flight > 1,
                "never more than one disk request in flight",
            );
            c.check(
                "fileasync-async-reads",
                s.async_reads > 0,
                "no block was read asynchronously",
            );
        }
        Err(_) => {
            c.check(
                "fileasync-in-flight",
                false,
                "no counters from the file server",
            );
        }
    }
    let _ = rt::close(fd);
    println!("fileasync: {} failures", c.failures);
    c.failures
}
