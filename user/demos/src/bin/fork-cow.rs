//! Demo: the lecture's copy-on-write `fork`. The child starts with the parent's frames mapped
//! read-only on both sides; the first write by either one copies the page (or, once nobody
//! else shares it, just gives write access back). vm's `pages copied` counter matches the
//! pages written. One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, Delta, PAGE, peek, poke, prefault, show, stats};
use rt::{PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

const PAGES: u64 = 16;
/// Pages the child writes (0..CHILD_WRITES) and the parent writes (PARENT_FIRST..+3).
const CHILD_WRITES: u64 = 4;
const PARENT_FIRST: u64 = 8;
const PARENT_WRITES: u64 = 3;
/// Words of the shared page the two sides synchronise with.
const READY: u64 = 0;
const GO: u64 = 8;

fn original(p: u64) -> u64 {
    0xa000 + p
}

/// Spins (giving the processor away) until the shared word at `addr` is nonzero.
fn await_flag(addr: u64) {
    while peek(addr) == 0 {
        rt::sched_yield();
    }
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("fork-cow: the lecture's copy-on-write fork");
    println!(
        "fork-cow:   \"Instead of copying pages, create shared mappings to the same page frames;"
    );
    println!("fork-cow:    shared pages are protected as read-only; when data is written to these");
    println!("fork-cow:    pages, the OS allocates new space and directs the write to it\"");
    prefault();
    let start = stats();
    let (Ok(data), Ok(sync)) = (
        demos::anon(PAGES, PROT_READ | PROT_WRITE),
        demos::shared_anon(1, PROT_READ | PROT_WRITE),
    ) else {
        c.check("fork-cow-setup", false, "mmap failed");
        return c.failures;
    };
    for p in 0..PAGES {
        poke(data + p * PAGE, original(p));
    }
    poke(sync + READY, 0);
    println!(
        "fork-cow: the parent wrote {PAGES} private pages at {data:#x} (page i holds 0xa000 + i)"
    );
    show("fork-cow: counters before fork", &stats());

    // ---- 1: the child reads the same data, then writes; its writes stay its own ----
    println!();
    println!(
        "fork-cow: step 1: fork; the child reads all {PAGES} pages, then writes pages 0..{CHILD_WRITES}"
    );
    let s0 = stats();
    let child = match rt::fork() {
        Ok(0) => child_reads_then_writes(data, sync),
        Ok(pid) => pid,
        Err(e) => {
            println!("fork-cow: fork: {e}");
            c.check("fork-cow-fork", false, "fork failed");
            return c.failures;
        }
    };
    // Let the child measure only once this side is asleep in wait.
    poke(sync + GO, 1);
    let ended = rt::wait(child);
    let s1 = stats();
    println!(
        "fork-cow: parent: the child ended: {ended:?}; since fork: {}",
        Delta::between(&s0, &s1)
    );
    let child_ok = matches!(ended, Ok((p, WaitStatus::Exited, 0)) if p == child);
    c.check(
        "fork-cow-child-checks",
        child_ok,
        "the child's own checks failed",
    );
    let mine = (0..PAGES).all(|p| peek(data + p * PAGE) == original(p));
    println!(
        "fork-cow: parent: my pages still hold 0xa000 + i: {mine} (the child's writes went to its copies)"
    );
    c.check(
        "fork-cow-child-writes-private",
        mine,
        "the parent sees the child's writes",
    );

    // ---- 2: the parent writes while a child still shares the pages ----
    println!();
    println!(
        "fork-cow: step 2: fork again; while the child waits, the parent writes pages {PARENT_FIRST}..{}",
        PARENT_FIRST + PARENT_WRITES
    );
    poke(sync + READY, 0);
    poke(sync + GO, 0);
    let child = match rt::fork() {
        Ok(0) => child_waits_then_reads(data, sync),
        Ok(pid) => pid,
        Err(_) => {
            c.check("fork-cow-fork", false, "fork failed");
            return c.failures;
        }
    };
    await_flag(sync + READY);
    let p0 = stats();
    for p in PARENT_FIRST..PARENT_FIRST + PARENT_WRITES {
        poke(data + p * PAGE, 0xb000 + p);
    }
    let p1 = stats();
    let d = Delta::between(&p0, &p1);
    println!("fork-cow: parent: wrote {PARENT_WRITES} pages: {d}");
    println!("fork-cow: parent: the child still shares them, so each first write copied the page.");
    c.check(
        "fork-cow-parent-copies",
        d.pages_copied == PARENT_WRITES as i64 && d.faults == PARENT_WRITES as i64,
        "pages copied does not match the pages the parent wrote",
    );
    poke(sync + GO, 1);
    let ended = rt::wait(child);
    c.check(
        "fork-cow-parent-writes-private",
        matches!(ended, Ok((p, WaitStatus::Exited, 0)) if p == child),
        "the child saw the parent's writes",
    );

    // ---- 3: nobody shares the page any more ----
    println!();
    println!(
        "fork-cow: step 3: the child has exited; the parent writes page {} (shared until then)",
        PAGES - 1
    );
    let q0 = stats();
    poke(data + (PAGES - 1) * PAGE, 0xb000);
    let q1 = stats();
    let d = Delta::between(&q0, &q1);
    println!("fork-cow: parent: {d}");
    println!("fork-cow: parent: one fault, no copy: the page's only user gets write access back.");
    c.check(
        "fork-cow-sole-owner-no-copy",
        d.faults == 1 && d.pages_copied == 0 && d.pages_in_use == 0,
        "a write to an unshared page was copied",
    );

    let _ = rt::munmap(data, PAGES * PAGE);
    let _ = rt::munmap(sync, PAGE);
    let end = stats();
    show("fork-cow: counters at the end", &end);
    println!(
        "fork-cow: pages in use {} at the start, {} at the end",
        start.pages_in_use, end.pages_in_use
    );
    c.check(
        "fork-cow-reclaimed",
        end.pages_in_use == start.pages_in_use,
        "pages in use did not return to the start",
    );
    c.failures
}

/// Step 1's child: reads every page (no fault: fork mapped the parent's frames read-only),
/// then writes four pages (four copies).
fn child_reads_then_writes(data: u64, sync: u64) -> ! {
    let mut c = Checks::default();
    // Wait until the parent sleeps in `wait`, so that the counters see only this side.
    await_flag(sync + GO);
    rt::sched_yield();
    let c0 = stats();
    let same = (0..PAGES).all(|p| peek(data + p * PAGE) == original(p));
    let c1 = stats();
    let d = Delta::between(&c0, &c1);
    println!("fork-cow: child: read all {PAGES} pages: the parent's data: {same}; {d}");
    println!("fork-cow: child: no fault: fork mapped the parent's frames in the child, read-only.");
    c.check(
        "fork-cow-same-data",
        same && d.faults == 0,
        "the child does not see the parent's data through shared frames",
    );
    let c1 = stats();
    for p in 0..CHILD_WRITES {
        poke(data + p * PAGE, 0xc000 + p);
    }
    let c2 = stats();
    let d = Delta::between(&c1, &c2);
    println!("fork-cow: child: wrote pages 0..{CHILD_WRITES}: {d}");
    println!(
        "fork-cow: child: each first write faulted and vm copied the page: {CHILD_WRITES} writes, {} copies.",
        d.pages_copied
    );
    let mine = (0..PAGES).all(|p| {
        let want = if p < CHILD_WRITES {
            0xc000 + p
        } else {
            original(p)
        };
        peek(data + p * PAGE) == want
    });
    c.check(
        "fork-cow-child-copies",
        mine && d.pages_copied == CHILD_WRITES as i64 && d.pages_in_use == CHILD_WRITES as i64,
        "pages copied does not match the pages the child wrote",
    );
    rt::exit(c.failures)
}

/// Step 2's child: says it is ready, waits for the parent's writes, and checks it still
/// sees the data as it was at fork.
fn child_waits_then_reads(data: u64, sync: u64) -> ! {
    poke(sync + READY, 1);
    await_flag(sync + GO);
    let same = (0..PAGES).all(|p| peek(data + p * PAGE) == original(p));
    println!(
        "fork-cow: child: my pages {PARENT_FIRST}.. still hold what they held at fork: {same}"
    );
    rt::exit(if same { 0 } else { 1 })
}
