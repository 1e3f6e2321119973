//! Demo: the lecture's anonymous mapping. `mmap(NULL, ..., MAP_PRIVATE | MAP_ANONYMOUS)`
//! reserves address space only; a page appears when it is first touched: a read maps the one
//! shared zero frame, a write gets a zero-filled page of its own. vm's counters show each
//! step. One `PASS`/`FAIL` line per check; exits with the number of failures.
//!
//! `anon [pages]`: the mapping's size in pages (default 64, from 4 to 16384); a quarter of
//! them is read, half of them written.
#![no_std]
#![no_main]

extern crate alloc;

use demos::cmdline::{self, usage};
use demos::{Checks, Delta, PAGE, peek, poke, prefault, show, stats};
use rt::{PROT_READ, PROT_WRITE, println};

rt::entry!(main);

/// Pages in the mapping by default, and the most a student may ask for (64 MiB).
const PAGES: u64 = 64;
const MAX_PAGES: u64 = 16384;
const USAGE: &str = "anon [pages]   (pages: 4 to 16384, default 64)";

fn main(args: &[&str]) -> i32 {
    let pages = match cmdline::number(args, 1, PAGES, 4..=MAX_PAGES) {
        Ok(p) if args.len() <= 2 => p,
        Ok(_) => return usage("anon: too many arguments", USAGE),
        Err(why) => return usage(&alloc::format!("anon: {:?}: {why}", args[1]), USAGE),
    };
    run(pages)
}

/// The demo on a mapping of `pages` pages: `read` of them only read first, `written`
/// written (the read ones among them).
fn run(pages: u64) -> i32 {
    let read = pages / 4;
    let written = pages / 2;
    let mut c = Checks::default();
    println!("anon: the lecture's anonymous mapping");
    println!("anon:   \"Anonymous mapping: not backed by a file; maps a memory region to a");
    println!("anon:    memory area filled with 0 (zero-page mapping)\"");
    println!("anon: every page fault on the way is served by vm, a user-space server;");
    println!("anon: its counters (rt::vm_stats) show what it did.");
    // The measurements below must see only the mapping's pages, not new stack pages.
    prefault();
    let s0 = stats();
    show("anon: counters at the start", &s0);

    println!();
    println!(
        "anon: step 1: mmap(NULL, {} KiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
        pages * PAGE / 1024
    );
    let a = match demos::anon(pages, PROT_READ | PROT_WRITE) {
        Ok(a) => a,
        Err(e) => {
            c.check("anon-mmap", false, "mmap failed");
            println!("anon: mmap: {e}");
            return c.failures;
        }
    };
    let s1 = stats();
    let d = Delta::between(&s0, &s1);
    println!("anon:   = {a:#x}: {pages} pages of address space; {d}");
    println!("anon:   nothing is resident yet: mmap only recorded a region in vm.");
    c.check(
        "anon-mmap-lazy",
        d.pages_in_use == 0 && d.faults == 0,
        "mmap used memory or faulted before any page was touched",
    );

    println!();
    println!("anon: step 2: read the first word of pages 0..{read} (never written)");
    let mut all_zero = true;
    for p in 0..read {
        all_zero &= peek(a + p * PAGE) == 0;
    }
    let s2 = stats();
    let d = Delta::between(&s1, &s2);
    println!("anon:   every word read 0: {all_zero}; {d}");
    println!("anon:   each read faulted once; vm mapped the one shared zero frame read-only,");
    println!("anon:   so {read} pages of zeroes cost no memory at all.");
    c.check(
        "anon-read-zero-page",
        all_zero
            && d.faults == read as i64
            && d.zero_page_maps == read as i64
            && d.pages_in_use == 0,
        "reads of untouched pages did not all map the zero page without using memory",
    );

    println!();
    println!("anon: step 3: write pages 0..{written} (0..{read} were only read so far)");
    for p in 0..written {
        poke(a + p * PAGE + 8, 0x5a00 + p);
    }
    let s3 = stats();
    let d = Delta::between(&s2, &s3);
    println!("anon:   {d}");
    println!("anon:   each first write faulted once and got a zero-filled page of its own");
    println!("anon:   (for pages 0..{read} it replaced the zero frame): pages appear on demand.");
    let kept =
        (0..written).all(|p| peek(a + p * PAGE + 8) == 0x5a00 + p && peek(a + p * PAGE) == 0);
    c.check(
        "anon-write-allocates",
        kept && d.faults == written as i64
            && d.pages_in_use == written as i64
            && d.pages_zero_filled == written as i64,
        "writing N pages did not add exactly N zero-filled pages",
    );
    let after = peek(a + (pages - 1) * PAGE);
    let s4 = stats();
    c.check(
        "anon-untouched-still-free",
        after == 0 && s4.pages_in_use == s3.pages_in_use,
        "reading an untouched page used memory",
    );

    println!();
    println!(
        "anon: step 4: vm's listing of this task's regions; the mapping has {} pages resident:",
        written + 1
    );
    println!("anon:   the {written} written ones and the last one, just read (the zero frame).");
    c.check("anon-vmmap", rt::vmmap().is_ok(), "vmmap failed");

    println!();
    println!("anon: step 5: munmap({a:#x}, {} KiB)", pages * PAGE / 1024);
    let unmapped = rt::munmap(a, pages * PAGE).is_ok();
    let s5 = stats();
    let d = Delta::between(&s4, &s5);
    println!("anon:   {d}: the pages went back to vm's free list.");
    c.check(
        "anon-munmap-frees",
        unmapped && s5.pages_in_use == s0.pages_in_use,
        "munmap did not give back every page",
    );
    show("anon: counters at the end", &s5);
    c.failures
}
