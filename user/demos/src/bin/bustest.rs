//! Tests the `BUS` kill: a child touches more anonymous memory than zero has (run it on a
//! small machine), vm cannot supply a page and kills it with `BUS`; the parent's `wait` sees
//! it, every page comes back, and the system goes on. One `PASS`/`FAIL` line per check;
//! exits with the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, Delta, PAGE, anon, peek, poke, prefault, show, stats};
use rt::{PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// More than any small machine has: 1 GiB.
const PAGES: u64 = 1 << 18;
/// Where in each page the child writes.
const TOUCH: u64 = 0x238;

fn main() -> i32 {
    let mut c = Checks::default();
    prefault();
    let s0 = stats();
    show("bustest: counters at the start", &s0);
    let Ok(a) = anon(PAGES, PROT_READ | PROT_WRITE) else {
        c.check("bus-setup", false, "mmap failed");
        return c.failures;
    };
    println!(
        "bustest: a child writes every page of {} MiB at {a:#x}",
        (PAGES * PAGE) >> 20
    );
    let child = match rt::fork() {
        Ok(0) => {
            // Each at a word inside its page: wait must report the address touched.
            for p in 0..PAGES {
                poke(a + p * PAGE + TOUCH, p);
            }
            rt::exit(0)
        }
        Ok(pid) => pid,
        Err(_) => {
            c.check("bus-setup", false, "fork failed");
            return c.failures;
        }
    };
    let ended = rt::wait(child);
    let s1 = stats();
    let (bus, addr) = match ended {
        Ok((p, WaitStatus::Bus, addr)) if p == child => (true, addr),
        _ => (false, 0),
    };
    match ended {
        Ok((_, how, value)) => println!("bustest: wait: the child ended {how:?} ({value:#x})"),
        Err(e) => println!("bustest: wait: {e}"),
    }
    println!(
        "bustest: while it ran, and after: {}",
        Delta::between(&s0, &s1)
    );
    c.check("bus-kill-reported", bus, "wait did not report BUS");
    c.check(
        "bus-address",
        bus && addr % PAGE == TOUCH && (a..a + PAGES * PAGE).contains(&addr),
        "the BUS address is not the address the child wrote to",
    );
    c.check(
        "bus-reclaimed",
        s1.pages_in_use == s0.pages_in_use,
        "the killed child's pages did not all come back",
    );
    // The memory is usable again: the parent writes pages of its own.
    let t0 = stats();
    for p in 0..256 {
        poke(a + p * PAGE, p);
    }
    let back = (0..256).all(|p| peek(a + p * PAGE) == p);
    let t1 = stats();
    let _ = rt::munmap(a, PAGES * PAGE);
    let s2 = stats();
    println!(
        "bustest: the parent wrote 256 pages: {}",
        Delta::between(&t0, &t1)
    );
    c.check(
        "bus-memory-usable-again",
        back && t1.pages_in_use == t0.pages_in_use + 256 && s2.pages_in_use == s0.pages_in_use,
        "memory freed by the killed child is not usable",
    );
    c.failures
}
