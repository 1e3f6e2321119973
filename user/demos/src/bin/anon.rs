//! Demo: the lecture's anonymous mapping. `mmap(NULL, ..., MAP_PRIVATE | MAP_ANONYMOUS)`
//! reserves address space only; a page appears when it is first touched: a read maps the one
//! shared zero frame, a write gets a zero-filled page of its own. vm's counters show each
//! step. One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, Delta, PAGE, peek, poke, prefault, show, stats};
use rt::{PROT_READ, PROT_WRITE, println};

rt::entry!(main);

/// Pages in the mapping, pages only read, pages written (the read ones among them).
const PAGES: u64 = 64;
const READ: u64 = 16;
const WRITTEN: u64 = 32;

fn main() -> i32 {
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
        PAGES * PAGE / 1024
    );
    let a = match demos::anon(PAGES, PROT_READ | PROT_WRITE) {
        Ok(a) => a,
        Err(e) => {
            c.check("anon-mmap", false, "mmap failed");
            println!("anon: mmap: {e}");
            return c.failures;
        }
    };
    let s1 = stats();
    let d = Delta::between(&s0, &s1);
    println!("anon:   = {a:#x}: {PAGES} pages of address space; {d}");
    println!("anon:   nothing is resident yet: mmap only recorded a region in vm.");
    c.check(
        "anon-mmap-lazy",
        d.pages_in_use == 0 && d.faults == 0,
        "mmap used memory or faulted before any page was touched",
    );

    println!();
    println!("anon: step 2: read the first word of pages 0..{READ} (never written)");
    let mut all_zero = true;
    for p in 0..READ {
        all_zero &= peek(a + p * PAGE) == 0;
    }
    let s2 = stats();
    let d = Delta::between(&s1, &s2);
    println!("anon:   every word read 0: {all_zero}; {d}");
    println!("anon:   each read faulted once; vm mapped the one shared zero frame read-only,");
    println!("anon:   so {READ} pages of zeroes cost no memory at all.");
    c.check(
        "anon-read-zero-page",
        all_zero
            && d.faults == READ as i64
            && d.zero_page_maps == READ as i64
            && d.pages_in_use == 0,
        "reads of untouched pages did not all map the zero page without using memory",
    );

    println!();
    println!("anon: step 3: write pages 0..{WRITTEN} (0..{READ} were only read so far)");
    for p in 0..WRITTEN {
        poke(a + p * PAGE + 8, 0x5a00 + p);
    }
    let s3 = stats();
    let d = Delta::between(&s2, &s3);
    println!("anon:   {d}");
    println!("anon:   each first write faulted once and got a zero-filled page of its own");
    println!("anon:   (for pages 0..{READ} it replaced the zero frame): pages appear on demand.");
    let kept =
        (0..WRITTEN).all(|p| peek(a + p * PAGE + 8) == 0x5a00 + p && peek(a + p * PAGE) == 0);
    c.check(
        "anon-write-allocates",
        kept && d.faults == WRITTEN as i64
            && d.pages_in_use == WRITTEN as i64
            && d.pages_zero_filled == WRITTEN as i64,
        "writing N pages did not add exactly N zero-filled pages",
    );
    let after = peek(a + (PAGES - 1) * PAGE);
    let s4 = stats();
    c.check(
        "anon-untouched-still-free",
        after == 0 && s4.pages_in_use == s3.pages_in_use,
        "reading an untouched page used memory",
    );

    println!();
    println!(
        "anon: step 4: vm's listing of this task's regions; the mapping has {} pages resident:",
        WRITTEN + 1
    );
    println!("anon:   the {WRITTEN} written ones and the last one, just read (the zero frame).");
    c.check("anon-vmmap", rt::vmmap().is_ok(), "vmmap failed");

    println!();
    println!("anon: step 5: munmap({a:#x}, {} KiB)", PAGES * PAGE / 1024);
    let unmapped = rt::munmap(a, PAGES * PAGE).is_ok();
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
