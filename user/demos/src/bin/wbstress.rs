//! `wbstress` (boot scenario `proc-wbstress`, `file.cache=2`, a private copy of the disk):
//! no write through a shared file mapping is lost while the page cache evicts and writes
//! back under it. [`WRITERS`] fork children map one file of six 64 KiB blocks (three times
//! the cache) `MAP_SHARED` and each owns [`SLOTS`] words of every page. [`ROUNDS`] times
//! each goes through the blocks, all in the same order so that they meet in them, and
//! writes its words of a block [`PASSES`] times over, a new value each time: before each
//! write it checks that the word still holds its own last value, after it that it reads
//! back what it wrote; every other visit ends with `msync` of the block. Another child
//! reads pages of `big.dat` meanwhile, so blocks are evicted (written back first, while
//! other writers write them) all the time. Each writer logs its last value of every word
//! in a shared anonymous mapping; at the end every word of the file must hold its writer's
//! last value, read with `pread` and through a fresh mapping (and by the host, from the
//! disk image, after power-off). A last check forks a task from a parent whose writable
//! block was revoked and handed out again: the child's writes must still be seen as dirty.
//! One `PASS`/`FAIL` line per check; exits with the number of failures.
//!
//! The program runs from the initrd (the tools keep it off the disk): its own text, paged
//! in through the cache of two blocks, would make the tasks take turns, none writing while
//! another's fault has the file server busy.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use demos::wbstress::{
    BLOCKS, BYTES, FILE, PAGES, PASSES, ROUNDS, SLOTS, WRITERS, final_word, offset, value,
};
use demos::{Checks, PAGE, peek, poke};
use rt::proto::WaitStatus;
use rt::{MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE, println};

rt::entry!(main);

const BLOCK: u64 = rt::proto::object::BLOCK_SIZE;
/// Words of the log: one per (writer, page, slot).
const LOG_WORDS: u64 = WRITERS * PAGES * SLOTS;
/// The log's word after the writers' words: set when the writers are done.
const DONE: u64 = LOG_WORDS;
/// Mismatches a writer describes on the console (the rest are only counted).
const SHOWN: u64 = 3;

/// The log word of writer `k`'s slot `j` of page `p`.
fn log_at(log: u64, k: u64, p: u64, j: u64) -> u64 {
    log + 8 * ((k * PAGES + p) * SLOTS + j)
}

/// Writer `k`: [`ROUNDS`] rounds over the blocks of the mapping at `a`, [`PASSES`] passes
/// over its words of a block at each visit; the number of words that did not hold what it
/// wrote last (before a write, or right after it).
fn writer(k: u64, a: u64, log: u64) -> i32 {
    let mut bad = 0u64;
    let mut note = |what: &str, at: u64, saw: u64, want: u64| {
        if bad < SHOWN {
            println!("wbstress: writer {k}: {what} at {at:#x}: read {saw:#x}, want {want:#x}");
        }
        bad += 1;
    };
    let pages = BLOCK / PAGE;
    for r in 0..ROUNDS {
        for i in 0..BLOCKS {
            // Every writer goes through the blocks in the same order: they meet in them.
            let b = i;
            for pass in 0..PASSES {
                let n = r * PASSES + pass;
                for p in b * pages..(b + 1) * pages {
                    for j in 0..SLOTS {
                        let at = offset(k, p, j);
                        let last = if n > 0 { value(k, p, j, n - 1) } else { 0 };
                        let before = peek(a + at);
                        if before != last {
                            note("stale before write", at, before, last);
                        }
                        let v = value(k, p, j, n);
                        poke(a + at, v);
                        let after = peek(a + at);
                        if after != v {
                            note("stale read-back", at, after, v);
                        }
                        poke(log_at(log, k, p, j), v);
                    }
                }
            }
            if (r + i + k).is_multiple_of(2) && rt::msync(a + b * BLOCK, BLOCK).is_err() {
                note("msync failed", b * BLOCK, 0, 0);
            }
        }
    }
    bad.min(100) as i32
}

/// Reads a page of another block of `big.dat` at a time, each a miss of the cache, until
/// the writers are done (at most `limit` reads).
fn reader(log: u64, limit: u64) -> i32 {
    let Ok(fd) = rt::open("big.dat", O_RDONLY) else {
        return 1;
    };
    let mut buf = vec![0u8; PAGE as usize];
    let mut n = 0;
    while peek(log + 8 * DONE) == 0 && n < limit {
        let at = (n % 64) * BLOCK * 3;
        if rt::pread(fd, &mut buf, at) != Ok(buf.len()) {
            return 2;
        }
        n += 1;
    }
    println!("wbstress: the reader read a page of {n} blocks of big.dat");
    0
}

/// Whether every word of the file at `read(at)` is its writer's last value; the first
/// difference is printed.
fn all_final(what: &str, mut read: impl FnMut(u64) -> u64) -> bool {
    for at in (0..BYTES).step_by(8) {
        let (saw, want) = (read(at), final_word(at));
        if saw != want {
            println!(
                "wbstress: {what}: word at {at:#x} is {saw:#x}, its writer's last value {want:#x}"
            );
            return false;
        }
    }
    true
}

/// The children exited with status 0.
fn all_exited_0(pids: &[u64]) -> bool {
    let mut ok = true;
    for &pid in pids {
        match rt::wait(pid) {
            Ok((_, WaitStatus::Exited, 0)) => {}
            other => {
                println!("wbstress: child {pid} ended with {other:?}");
                ok = false;
            }
        }
    }
    ok
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!(
        "wbstress: {WRITERS} writers, {ROUNDS} rounds each over a {} KiB shared file mapping, a cache of 2 blocks",
        BYTES / 1024
    );
    let _ = rt::unlink(FILE);
    let fd = rt::open(FILE, O_RDWR | O_CREAT | O_TRUNC);
    let ready = fd.and_then(|fd| rt::ftruncate(fd, BYTES).map(|()| fd));
    let mapped = ready.and_then(|fd| {
        rt::mmap(0, BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).map(|a| (fd, a))
    });
    let log = demos::shared_anon((8 * (LOG_WORDS + 1)).div_ceil(PAGE), PROT_READ | PROT_WRITE);
    let (Ok((fd, a)), Ok(log)) = (mapped, log) else {
        c.check("wbstress-setup", false, "open, ftruncate or mmap failed");
        return c.failures;
    };
    let before = rt::file_stats().unwrap_or_default();

    let mut writers = [0u64; WRITERS as usize];
    for (k, pid) in writers.iter_mut().enumerate() {
        match rt::fork() {
            Ok(0) => rt::exit(writer(k as u64, a, log)),
            Ok(child) => *pid = child,
            Err(_) => {
                c.check("wbstress-setup", false, "fork failed");
                return c.failures;
            }
        }
    }
    let reader_pid = match rt::fork() {
        Ok(0) => rt::exit(reader(log, 10_000)),
        Ok(child) => child,
        Err(_) => {
            c.check("wbstress-setup", false, "fork failed");
            return c.failures;
        }
    };
    let writers_ok = all_exited_0(&writers);
    poke(log + 8 * DONE, 1);
    let reader_ok = all_exited_0(&[reader_pid]);
    let after = rt::file_stats().unwrap_or_default();
    println!(
        "wbstress: file server: {} blocks evicted, {} written back",
        after.evicted - before.evicted,
        after.written_back - before.written_back
    );
    c.check(
        "wbstress-readback",
        writers_ok,
        "a writer did not read back its own last value",
    );
    c.check(
        "wbstress-evicted",
        reader_ok && after.evicted > before.evicted && after.written_back > before.written_back,
        "the reader failed, or nothing was evicted and written back",
    );
    c.check(
        "wbstress-log",
        (0..WRITERS).all(|k| {
            (0..PAGES).all(|p| {
                (0..SLOTS).all(|j| peek(log_at(log, k, p, j)) == final_word(offset(k, p, j)))
            })
        }),
        "a writer's log does not hold its last round",
    );
    // Through the cache with pread, 4 KiB at a time.
    let mut page = vec![0u8; PAGE as usize];
    let mut held = u64::MAX;
    let by_pread = all_final("pread", |at| {
        let base = at - at % PAGE;
        if held != base {
            held = base;
            if rt::pread(fd, &mut page, base) != Ok(page.len()) {
                page.fill(0xff);
            }
        }
        let i = (at - base) as usize;
        u64::from_le_bytes(core::array::from_fn(|b| page[i + b]))
    });
    c.check(
        "wbstress-pread",
        by_pread,
        "pread shows a word that is not its writer's last value",
    );
    let _ = rt::munmap(a, BYTES);
    let fresh = rt::mmap(0, BYTES, PROT_READ, MAP_SHARED, fd, 0);
    let by_mmap = fresh.is_ok_and(|m| {
        let ok = all_final("a fresh mapping", |at| peek(m + at));
        rt::munmap(m, BYTES).is_ok() && ok
    });
    c.check(
        "wbstress-mmap",
        by_mmap,
        "a fresh mapping shows a word that is not its writer's last value",
    );
    let _ = rt::close(fd);

    c.run("wbstress-fork-after-revoke", fork_after_revoke);
    println!("wbstress: {} failures", c.failures);
    c.failures
}

/// A parent writes a block through its shared mapping (vm marks its pages writable); a first
/// child's `msync` writes the block back and the file server revokes every mapping of it; the
/// child reads it again (vm gets the block anew, clean). A second child forked now must not
/// get the parent's old write access through the new capability: its write must mark the
/// block dirty, or the block is dropped unwritten when it is evicted.
fn fork_after_revoke() -> Result<(), &'static str> {
    const NAME: &str = "FORKREV.DAT";
    let _ = rt::unlink(NAME);
    let fd = rt::open(NAME, O_RDWR | O_CREAT | O_TRUNC).map_err(|_| "open failed")?;
    rt::ftruncate(fd, PAGE).map_err(|_| "ftruncate failed")?;
    let a =
        rt::mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
    poke(a, 1);
    let syncer = rt::fork().map_err(|_| "fork failed")?;
    if syncer == 0 {
        let synced = rt::msync(a, PAGE).is_ok() && peek(a) == 1;
        rt::exit(if synced { 0 } else { 1 });
    }
    if !all_exited_0(&[syncer]) {
        return Err("the first child's msync failed or it did not read 1");
    }
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        poke(a, 2);
        // Evict the block: read three others through the cache of two.
        let mut buf = vec![0u8; BLOCK as usize];
        let evicted = rt::open("big.dat", O_RDONLY)
            .is_ok_and(|big| (0..3).all(|i| rt::pread(big, &mut buf, i * BLOCK) == Ok(buf.len())));
        let seen = peek(a);
        if seen != 2 {
            println!("wbstress: the second child wrote 2 and reads {seen} after eviction");
        }
        rt::exit(if evicted && seen == 2 { 0 } else { 1 });
    }
    let ok = all_exited_0(&[child]);
    let mut word = [0u8; 8];
    let on_file = rt::pread(fd, &mut word, 0) == Ok(8) && u64::from_le_bytes(word) == 2;
    rt::munmap(a, PAGE).map_err(|_| "munmap failed")?;
    rt::close(fd).map_err(|_| "close failed")?;
    if ok && on_file {
        Ok(())
    } else {
        Err("a fork child's write to a block handed out again was lost at eviction")
    }
}
