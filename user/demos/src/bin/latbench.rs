//! Anonymous fault latency beside a cold file reader (`bench=latency` boots `run=latbench
//! file.cache=4`; issue 9). A measurement of today's system, not a test.
//!
//! The timing task (this one) touches [`FAULTS`] fresh pages of a fresh anonymous mapping, one
//! byte each, and reads the generic timer's virtual count (`CNTVCT_EL0`,
//! `libmk::virtual_counter`) just before and just after each store: one latency per fault,
//! in counter ticks. It does this twice:
//! - alone, nothing else running;
//! - beside a reader: a forked child (same priority, started first) that streams `big.dat`
//!   (16 MiB) through a private read-only mapping, one byte per page, over and over with a
//!   fresh mapping each pass, through a page cache of 4 blocks (`file.cache=4`), so that
//!   every 64 KiB block comes from the disk. The timer starts once the reader signals
//!   through a shared anonymous page that it has read its first page, and the reader keeps
//!   going until the timer sets a stop word there.
//!
//! Prints `BENCH anon_fault_latency_{p50,p99,max}_{alone,beside_cold_reader} <ticks> ticks
//! ...`. Under QEMU `-icount` the virtual counter advances one tick per 16 instructions, and
//! jumps ahead whenever the CPU idles waiting for the disk: a fault that waited behind the
//! reader's disk request would show that wait, and one that the file server's completion
//! work for the reader interrupts shows that work (docs/performance.md, issue 9).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::ptr::{read_volatile, write_volatile};
use demos::{PAGE, peek, poke};
use rt::{MAP_PRIVATE, O_RDONLY, PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// Faults timed per run.
const FAULTS: usize = 2048;
/// A fault slower than this (in ticks) counts in `slow_faults=`.
const SLOW_TICKS: u64 = 1000;
const FILE: &str = "big.dat";
const FILE_BYTES: u64 = 16 << 20;

/// Words of the shared page: the reader has read its first page; the timer is done; pages
/// the reader has read; passes it has finished.
const STARTED: u64 = 0;
const STOP: u64 = 8;
const READER_PAGES: u64 = 16;
const READER_PASSES: u64 = 24;

fn fail(what: &str) -> ! {
    println!("FAIL latbench: {what}");
    rt::exit(1)
}

/// The tick counts of one run, and the file server's disk requests during it.
struct Run {
    ticks: Vec<u64>,
    disk_requests: u64,
    reader_pages: u64,
}

/// Times `FAULTS` first touches of a fresh anonymous mapping; `sync` (if any) is the shared
/// page whose reader-page counter is read around the window.
fn time_faults(lat: &mut [u64], sync: Option<u64>) -> Run {
    let base = demos::anon(FAULTS as u64, PROT_READ | PROT_WRITE)
        .unwrap_or_else(|e| fail(&alloc::format!("mmap: {e:?}")));
    let pages0 = sync.map_or(0, |s| peek(s + READER_PAGES));
    let disk0 = rt::file_stats().unwrap_or_default().disk_requests;
    for (i, slot) in lat.iter_mut().enumerate() {
        let p = base + i as u64 * PAGE;
        let (t0, _) = libmk::virtual_counter();
        // SAFETY: `p` is a page of the fresh read-write mapping above, no Rust reference
        // covers it.
        unsafe { write_volatile(p as *mut u8, 1) };
        let (t1, _) = libmk::virtual_counter();
        *slot = t1 - t0;
        // Outside the window: let the reader (if any) run until it blocks, so that the next
        // fault comes while it streams rather than all 2,048 inside one time slice.
        rt::sched_yield();
    }
    let disk1 = rt::file_stats().unwrap_or_default().disk_requests;
    let pages1 = sync.map_or(0, |s| peek(s + READER_PAGES));
    let _ = rt::munmap(base, FAULTS as u64 * PAGE);
    let mut ticks = lat.to_vec();
    ticks.sort_unstable();
    Run {
        ticks,
        disk_requests: disk1 - disk0,
        reader_pages: pages1 - pages0,
    }
}

fn report(which: &str, run: &Run, freq: u64) {
    let t = &run.ticks;
    let n = t.len();
    let p50 = t[n / 2];
    // The smallest value at least 99% of the samples do not exceed (nearest rank).
    let p99 = t[(n * 99).div_ceil(100) - 1];
    let max = t[n - 1];
    // Faults that waited behind something else (more than 10 times the alone figure), and
    // those that took more than 1 ms of virtual time (a million instructions: only a wait
    // for the disk, with the CPU idle and the clock jumping, takes that long).
    let slow = t.iter().filter(|&&x| x > SLOW_TICKS).count();
    let over_1ms = t.iter().filter(|&&x| x > freq / 1000).count();
    let extra = alloc::format!(
        "p50={p50} p99={p99} max={max} faults={n} slow_faults={slow} over_1ms={over_1ms} disk_requests={} reader_pages={} counter=cntvct freq={freq}",
        run.disk_requests,
        run.reader_pages
    );
    println!("BENCH anon_fault_latency_p50_{which} {p50} ticks {extra}");
    println!("BENCH anon_fault_latency_p99_{which} {p99} ticks {extra}");
    println!("BENCH anon_fault_latency_max_{which} {max} ticks {extra}");
}

fn main() -> i32 {
    let (_, freq) = libmk::virtual_counter();
    let mut lat = alloc::vec![0u64; FAULTS];
    for slot in lat.iter_mut() {
        // SAFETY: a live element of `lat`.
        unsafe { write_volatile(slot, 1) };
    }
    demos::prefault();
    let sync = demos::shared_anon(1, PROT_READ | PROT_WRITE)
        .unwrap_or_else(|e| fail(&alloc::format!("mmap shared: {e:?}")));
    for w in [STARTED, STOP, READER_PAGES, READER_PASSES] {
        poke(sync + w, 0);
    }

    // A warm-up pass, so that both measured runs get pages vm has zeroed and reused rather
    // than fresh chunks.
    let _ = time_faults(&mut lat, None);
    let alone = time_faults(&mut lat, None);

    let child = match rt::fork() {
        Ok(0) => reader(sync),
        Ok(pid) => pid,
        Err(e) => fail(&alloc::format!("fork: {e}")),
    };
    // After fork the stack and `lat` are copy-on-write: write them now, outside the window.
    demos::prefault_stack(16);
    for slot in lat.iter_mut() {
        // SAFETY: a live element of `lat`.
        unsafe { write_volatile(slot, 1) };
    }
    while peek(sync + STARTED) == 0 {
        rt::sched_yield();
    }
    let beside = time_faults(&mut lat, Some(sync));
    poke(sync + STOP, 1);
    match rt::wait(child) {
        Ok((_, WaitStatus::Exited, 0)) => {}
        other => fail(&alloc::format!("the reader ended: {other:?}")),
    }
    if beside.reader_pages == 0 {
        fail("the reader read nothing while the faults were timed");
    }
    report("alone", &alone, freq);
    report("beside_cold_reader", &beside, freq);
    println!(
        "latbench: the reader read {} pages in {} whole passes of big.dat",
        peek(sync + READER_PAGES),
        peek(sync + READER_PASSES)
    );
    0
}

/// The reader: one byte per page of a fresh private mapping of `big.dat`, pass after pass,
/// until the timer sets `STOP`.
fn reader(sync: u64) -> ! {
    let fd = match rt::open_sized(FILE, O_RDONLY) {
        Ok((fd, FILE_BYTES)) => fd,
        Ok(_) => fail("big.dat is not 16 MiB"),
        Err(e) => fail(&alloc::format!("open big.dat: {e:?}")),
    };
    let mut pages = 0u64;
    'passes: loop {
        let a = rt::mmap(0, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0)
            .unwrap_or_else(|e| fail(&alloc::format!("mmap big.dat: {e:?}")));
        let mut off = 0;
        while off < FILE_BYTES {
            // SAFETY: [a, a + FILE_BYTES) is a readable mapping of this task that no Rust
            // reference covers.
            let x = unsafe { read_volatile((a + off) as *const u8) };
            core::hint::black_box(x);
            pages += 1;
            poke(sync + READER_PAGES, pages);
            if pages == 1 {
                poke(sync + STARTED, 1);
            }
            if peek(sync + STOP) != 0 {
                let _ = rt::munmap(a, FILE_BYTES);
                break 'passes;
            }
            off += PAGE;
        }
        let _ = rt::munmap(a, FILE_BYTES);
        poke(sync + READER_PASSES, peek(sync + READER_PASSES) + 1);
    }
    let _ = rt::close(fd);
    rt::exit(0)
}
