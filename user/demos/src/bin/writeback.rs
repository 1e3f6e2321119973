//! Demo: the lecture's slide "Memory-Mapped File": "If MAP_SHARED, OS writes to a page and
//! it is written to the file when evicted from physical memory". A shared mapping of a new
//! file (`WB.DAT`, 17 blocks of 64 KiB and 1,000 bytes) is written in three parts, each
//! reaching the disk a different way: part 1 at `msync`, part 2 at `munmap` (and, with a
//! small page cache, by eviction while it is written), part 3 when the task exits with the
//! mapping still in place. Then the machine powers off; the tools read the disk image back
//! on the host and compare every byte, and a second boot on the same image runs
//! `writeback-check`, which reads the file back. One `PASS`/`FAIL` line per check; exits
//! with the number of failures.
#![no_std]
#![no_main]

use demos::writeback::{BYTES, FILE, byte};
use demos::{Checks, Delta, PAGE, peek, prefault, stats};
use rt::{MAP_SHARED, O_CREAT, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE, println};

rt::entry!(main);

const BLOCK: u64 = rt::proto::object::BLOCK_SIZE;
/// The parts: [0, PART2) at msync, [PART2, PART3) at munmap, [PART3, BYTES) at exit.
const PART2: u64 = 4 * BLOCK;
const PART3: u64 = 12 * BLOCK;

/// The word of the file at `at` (a multiple of 8).
fn word(at: u64) -> u64 {
    u64::from_le_bytes(core::array::from_fn(|i| byte(at + i as u64)))
}

/// Writes the file's words in `[from, to)` through the mapping at `a`.
fn fill(a: u64, from: u64, to: u64) {
    let mut at = from;
    while at < to {
        demos::poke(a + at, word(at));
        at += 8;
    }
}

/// Whether `pread` of `[from, to)` returns the file's bytes.
fn pread_matches(fd: u64, from: u64, to: u64) -> bool {
    let mut buf = [0u8; 4096];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(buf.len());
        if rt::pread(fd, &mut buf[..n], at) != Ok(n) {
            return false;
        }
        if !buf[..n]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == byte(at + i as u64))
        {
            return false;
        }
        at += n as u64;
    }
    true
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("writeback: writes to a MAP_SHARED file mapping reach the file on the disk");
    prefault();
    let _ = rt::unlink(FILE);
    let len = BYTES.div_ceil(PAGE) * PAGE;
    println!(
        "writeback: fd = open(\"{FILE}\", O_RDWR|O_CREAT|O_TRUNC); ftruncate(fd, {BYTES}) (17 blocks of 64 KiB + 1000 bytes)"
    );
    let fd = rt::open(FILE, O_RDWR | O_CREAT | O_TRUNC);
    let ready = fd.and_then(|fd| rt::ftruncate(fd, BYTES).map(|()| fd));
    let mapped = ready.and_then(|fd| {
        rt::mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).map(|a| (fd, a))
    });
    let Ok((fd, a)) = mapped else {
        c.check("writeback-map", false, "open, ftruncate or mmap failed");
        return c.failures;
    };
    println!(
        "writeback: p = mmap(0, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0) = {a:#x}; the file reads as zeroes: {}",
        peek(a) == 0
    );
    println!("writeback: vm maps file pages read-only at first: the first write to a block is a");
    println!(
        "writeback: fault that tells the file server the block is dirty (software dirty bits)."
    );

    println!();
    println!("writeback: part 1: write bytes [0, {PART2}) (4 blocks), then msync(p, {PART2})");
    let s0 = stats();
    fill(a, 0, PART2);
    let s1 = stats();
    println!("writeback:   vm: {}", Delta::between(&s0, &s1));
    let synced = rt::msync(a, PART2).is_ok();
    println!("writeback:   msync wrote the dirty blocks to the disk and made the pages read-only");
    println!("writeback:   again (the next write is reported dirty again).");
    c.check(
        "writeback-msync",
        synced && pread_matches(fd, 0, PART2),
        "msync failed or pread does not see part 1",
    );

    println!();
    println!(
        "writeback: part 2: write bytes [{PART2}, {PART3}) (8 blocks), then munmap that range"
    );
    fill(a, PART2, PART3);
    let s2 = stats();
    println!("writeback:   vm: {}", Delta::between(&s1, &s2));
    let unmapped = rt::munmap(a + PART2, PART3 - PART2).is_ok();
    println!("writeback:   one fault per block's first write; more when the page cache is small:");
    println!("writeback:   an evicted block is written back first and its mappings revoked, so");
    println!("writeback:   the next write to it faults (and marks it dirty) again. munmap wrote");
    println!("writeback:   back what was still dirty.");
    c.check(
        "writeback-munmap",
        unmapped && pread_matches(fd, PART2, PART3),
        "munmap failed or pread does not see part 2",
    );

    println!();
    println!("writeback: part 3: write bytes [{PART3}, {BYTES}) and leave them mapped; close(fd)");
    fill(a, PART3, BYTES);
    let s3 = stats();
    println!("writeback:   vm: {}", Delta::between(&s2, &s3));
    // Bytes past the end of the file in the last page read as zero and never reach the disk.
    let past = peek(a + BYTES) == 0;
    c.check(
        "writeback-exit-pending",
        rt::close(fd).is_ok() && past && peek(a + PART3) == word(PART3),
        "close failed, or the mapping does not hold part 3",
    );
    println!("writeback: exiting with part 3 still mapped: vm writes it back as it tears the task");
    println!("writeback: down, then the machine powers off. After that, the host reads {FILE}");
    println!("writeback: out of the disk image and compares every byte, and a second boot");
    println!("writeback: (writeback-check) reads it back.");
    println!("writeback: {} failures", c.failures);
    c.failures
}
