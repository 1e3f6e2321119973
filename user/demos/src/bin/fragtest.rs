//! `fragtest` (boot scenario `proc-fragtest`, a private copy of the disk with `FRAG.DAT`, whose
//! clusters the tools scattered, and a page cache of 4 blocks): the file server reads and
//! writes back a file whose blocks are not consecutive on the disk, byte for byte. It reads
//! the file through a shared mapping, writes through the mapping and `msync`s, `pwrite`s
//! across a block boundary, appends (new clusters, wherever the crate finds them) and reads
//! everything back with `read()` (the small cache has written back and dropped most blocks by
//! then, so they come from the disk again), then once more after the last close. The tools
//! compare the file after power-off. One `PASS`/`FAIL` line per check; exits with the number
//! of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use demos::fragtest::{
    FILE, FINAL, MAPPED_AT, MAPPED_LEN, ORIG, WRITTEN_AT, WRITTEN_LEN, after, mapped, orig, written,
};
use demos::{Checks, PAGE};
use rt::println;
use rt::{MAP_SHARED, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE};

rt::entry!(main);

/// `(disk requests, blocks read)` since boot; zeroes if the server does not answer.
fn requests() -> (u64, u64) {
    rt::file_stats().map_or((0, 0), |s| (s.disk_requests, s.blocks_read))
}

/// Every byte of the file through `read()` (4000 at a time) against `want`.
fn read_all(fd: u64, len: u64, want: fn(u64) -> u8) -> Result<(), &'static str> {
    let mut buf = vec![0u8; 4000];
    let mut at = 0;
    while at < len {
        let n = rt::pread(fd, &mut buf, at).map_err(|_| "pread failed")?;
        if n == 0 {
            return Err("the file ended early");
        }
        if buf[..n]
            .iter()
            .enumerate()
            .any(|(i, &b)| b != want(at + i as u64))
        {
            println!("fragtest: wrong bytes in [{at}, {})", at + n as u64);
            return Err("wrong bytes");
        }
        at += n as u64;
    }
    Ok(())
}

fn main() -> i32 {
    let mut c = Checks::default();
    let fd = match rt::open_sized(FILE, O_RDWR) {
        Ok((fd, ORIG)) => fd,
        _ => {
            c.check("frag-open", false, "FRAG.DAT is missing or not its size");
            return c.failures;
        }
    };

    // 1. Through a shared mapping, cold: every block from scattered clusters.
    let (r0, b0) = requests();
    c.run("frag-mmap-read", || {
        let a = rt::mmap(0, ORIG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            .map_err(|_| "mmap failed")?;
        // SAFETY: [a, a + ORIG) is a mapping of this task no Rust reference covers.
        let bytes = unsafe { core::slice::from_raw_parts(a as *const u8, ORIG as usize) };
        let same = bytes.iter().enumerate().all(|(i, &b)| b == orig(i as u64));
        // 2. Writes through the mapping, then msync.
        for page in 0..ORIG.div_ceil(PAGE) {
            for i in page * PAGE + MAPPED_AT..(page * PAGE + MAPPED_AT + MAPPED_LEN).min(ORIG) {
                // SAFETY: inside the read-write mapping.
                unsafe { core::ptr::write_volatile((a + i) as *mut u8, mapped(i)) };
            }
        }
        let synced = rt::msync(a, ORIG).is_ok();
        let unmapped = rt::munmap(a, ORIG).is_ok();
        match (same, synced && unmapped) {
            (false, _) => Err("the mapping does not show the file's bytes"),
            (true, false) => Err("msync or munmap failed"),
            (true, true) => Ok(()),
        }
    });
    let (r1, b1) = requests();
    println!(
        "fragtest: {} blocks read with {} disk requests (the clusters are scattered)",
        b1 - b0,
        r1 - r0
    );
    c.check(
        "frag-split-requests",
        b1 > b0 && r1 - r0 > b1 - b0,
        "a fragmented file's blocks did not need more than one request each",
    );

    // 3. pwrite across the first block boundary; 4. append past the end.
    c.run("frag-write", || {
        let mid: Vec<u8> = (WRITTEN_AT..WRITTEN_AT + WRITTEN_LEN)
            .map(written)
            .collect();
        let tail: Vec<u8> = (ORIG..FINAL).map(written).collect();
        if rt::pwrite(fd, &mid, WRITTEN_AT) != Ok(mid.len()) {
            return Err("pwrite in the file failed");
        }
        if rt::pwrite(fd, &tail, ORIG) != Ok(tail.len()) {
            return Err("pwrite past the end failed");
        }
        Ok(())
    });

    // 5. Everything back (most blocks were written back and dropped by the 4-block cache).
    c.run("frag-reread", || read_all(fd, FINAL, after));
    let closed = rt::close(fd).is_ok();
    c.check("frag-close", closed, "close (the last write-back) failed");

    // 6. Once more, after the last close wrote every block back.
    c.run("frag-reopen", || {
        let (fd, size) = rt::open_sized(FILE, O_RDONLY).map_err(|_| "open failed")?;
        if size != FINAL {
            return Err("the file is not its new size");
        }
        read_all(fd, FINAL, after)?;
        rt::close(fd).map_err(|_| "close failed")
    });
    println!("fragtest: {} failures", c.failures);
    c.failures
}
