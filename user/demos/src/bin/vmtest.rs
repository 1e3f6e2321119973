//! Exercises vm through the runtime: anonymous mappings, munmap, mprotect, the heap, fork
//! with copy-on-write, and a segmentation fault seen through `wait`. One `PASS`/`FAIL` line
//! per check; exits with the number of failures.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::ptr::{read_volatile, write_volatile};
use rt::{Errno, MAP_ANONYMOUS, MAP_PRIVATE, NO_FD, PROT_READ, PROT_WRITE, WaitStatus};

rt::entry!(main);

const PAGE: u64 = 4096;

type Check = fn() -> Result<(), &'static str>;

const CHECKS: &[(&str, Check)] = &[
    ("vm-mmap-rw", mmap_rw),
    ("vm-munmap", munmap),
    ("vm-mprotect", mprotect),
    ("vm-heap", heap),
    ("vm-fork-cow", fork_cow),
    ("vm-segv", segv),
];

fn main() -> i32 {
    let mut checks = demos::Checks::default();
    for (name, check) in CHECKS {
        checks.run(name, check);
    }
    checks.failures
}

fn anon(pages: u64, prot: u64) -> Result<u64, Errno> {
    rt::mmap(0, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0)
}

/// Reads the word at `addr`.
fn peek(addr: u64) -> u64 {
    // SAFETY: callers pass addresses inside a readable mapping of this task.
    unsafe { read_volatile(addr as *const u64) }
}

/// Writes the word at `addr`.
fn poke(addr: u64, value: u64) {
    // SAFETY: callers pass addresses inside a writable mapping of this task that no Rust
    // reference covers.
    unsafe { write_volatile(addr as *mut u64, value) }
}

/// Four anonymous pages: zero at first, then hold what was written.
fn mmap_rw() -> Result<(), &'static str> {
    let a = anon(4, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
    if a % PAGE != 0 || a == 0 {
        return Err("mmap returned an unaligned or null address");
    }
    for p in 0..4 {
        if peek(a + p * PAGE + 8) != 0 {
            return Err("a new anonymous page is not zero");
        }
        poke(a + p * PAGE, 0x1000 + p);
    }
    for p in 0..4 {
        if peek(a + p * PAGE) != 0x1000 + p {
            return Err("a page did not keep what was written");
        }
    }
    rt::munmap(a, 4 * PAGE).map_err(|_| "munmap failed")
}

/// munmap of part of a mapping succeeds and bad arguments are refused.
fn munmap() -> Result<(), &'static str> {
    let a = anon(2, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
    poke(a + PAGE, 5);
    rt::munmap(a, PAGE).map_err(|_| "munmap of the first page failed")?;
    if peek(a + PAGE) != 5 {
        return Err("the second page lost its contents");
    }
    if rt::munmap(a + 1, PAGE) != Err(Errno::EINVAL) {
        return Err("munmap of an unaligned address did not fail with EINVAL");
    }
    rt::munmap(a + PAGE, PAGE).map_err(|_| "munmap of the second page failed")
}

/// A page made read-only still reads what was written.
fn mprotect() -> Result<(), &'static str> {
    let a = anon(1, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
    poke(a, 77);
    rt::mprotect(a, PAGE, PROT_READ).map_err(|_| "mprotect failed")?;
    if peek(a) != 77 {
        return Err("the page lost its contents");
    }
    rt::munmap(a, PAGE).map_err(|_| "munmap failed")
}

/// The heap grows with mmap: 3 MiB of vectors.
fn heap() -> Result<(), &'static str> {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..(3 << 20) / 8 {
        v.push(i);
    }
    if v.iter().enumerate().any(|(i, &x)| x != i as u64) {
        return Err("the vector lost its contents");
    }
    Ok(())
}

/// After fork the child writes a page; the parent still sees its own value.
fn fork_cow() -> Result<(), &'static str> {
    let a = anon(1, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
    poke(a, 1);
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        poke(a, 2);
        rt::exit(if peek(a) == 2 { 7 } else { 1 });
    }
    let (pid, how, status) = rt::wait(child).map_err(|_| "wait failed")?;
    if pid != child || how != WaitStatus::Exited || status != 7 {
        return Err("the child did not exit with status 7");
    }
    if peek(a) != 1 {
        return Err("the parent sees the child's write");
    }
    rt::munmap(a, PAGE).map_err(|_| "munmap failed")
}

/// A child writing a read-only page is killed with SEGV at that address.
fn segv() -> Result<(), &'static str> {
    let a = anon(1, PROT_READ).map_err(|_| "mmap failed")?;
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        poke(a, 1);
        rt::exit(0);
    }
    match rt::wait(child) {
        Ok((pid, WaitStatus::Segv, addr)) if pid == child && addr == a => Ok(()),
        Ok(_) => Err("the child did not end with SEGV at the page"),
        Err(_) => Err("wait failed"),
    }
}
