//! Demo: the lecture's first point: "virtual address space is a resource; if you run out of
//! it, you cannot access any more memory, even if you have space in physical memory". The
//! task maps huge anonymous regions until every page of its 48-bit address space is taken
//! and `mmap` fails with `ENOMEM`, while vm has used no memory for them and can still
//! supply pages. One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, Delta, Mapped, PAGE, poke, prefault, show, stats};
use rt::proto::{MMAP_TOP, USER_END, USER_MIN};
use rt::{Errno, MAP_ANONYMOUS, MAP_PRIVATE, NO_FD, PROT_READ, PROT_WRITE, println};

rt::entry!(main);

/// The first (largest) mappings `mmap(NULL, ...)` makes.
const BIG: u64 = 16 << 30;
/// Pages touched to show that physical memory is still there.
const TOUCH: u64 = 64;

const GIB: u64 = 1 << 30;

fn map(addr: u64, len: u64) -> Result<u64, Errno> {
    rt::mmap(
        addr,
        len,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        NO_FD,
        0,
    )
}

/// What filling the address space did.
#[derive(Default)]
struct Fill {
    regions: u64,
    bytes: u64,
    /// The first region `mmap(NULL, BIG)` gave.
    first: Option<u64>,
    /// Something other than success or `ENOMEM`, or a hint placed elsewhere.
    surprise: bool,
}

impl Fill {
    /// `mmap(NULL, ...)` with halving lengths until not even one page fits below `MMAP_TOP`.
    fn null_placed(&mut self) {
        let mut len = BIG;
        loop {
            match map(0, len) {
                Ok(a) => {
                    self.first.get_or_insert(a);
                    self.regions += 1;
                    self.bytes += len;
                }
                Err(Errno::ENOMEM) if len > PAGE => len /= 2,
                Err(Errno::ENOMEM) => return,
                Err(_) => {
                    self.surprise = true;
                    return;
                }
            }
        }
    }

    /// Maps every free page of [`lo`, `hi`) with hinted mappings: the whole range if its
    /// hint is honoured, else each half. Only after `null_placed`: a taken hint then fails
    /// with `ENOMEM` instead of being placed elsewhere.
    fn hinted(&mut self, lo: u64, hi: u64) {
        if lo >= hi || self.surprise {
            return;
        }
        match map(lo, hi - lo) {
            Ok(a) if a == lo => {
                self.regions += 1;
                self.bytes += hi - lo;
                return;
            }
            Ok(a) => {
                let _ = rt::munmap(a, hi - lo);
                self.surprise = true;
                return;
            }
            Err(Errno::ENOMEM) => {}
            Err(_) => {
                self.surprise = true;
                return;
            }
        }
        let pages = (hi - lo) / PAGE;
        if pages > 1 {
            let mid = lo + pages / 2 * PAGE;
            self.hinted(lo, mid);
            self.hinted(mid, hi);
        }
    }
}

fn main() -> i32 {
    let mut c = Checks::default();
    println!("vaspace: the lecture's first point about virtual memory areas:");
    println!("vaspace:   \"Virtual address space is a resource ... If you run out of the virtual");
    println!("vaspace:    address space, you can not access any more memory (even if you have");
    println!("vaspace:    space in the physical memory)\"");
    println!(
        "vaspace: a task's address space here is {:#x}..{:#x} (48-bit addresses, the first 2 MiB",
        USER_MIN, USER_END
    );
    println!(
        "vaspace: left unmapped); mmap(NULL, ...) places mappings top down from {MMAP_TOP:#x}."
    );
    prefault();
    let s0 = stats();
    show("vaspace: counters at the start", &s0);

    println!();
    println!(
        "vaspace: step 1: mmap(NULL, 16 GiB, ...) until ENOMEM, then halve the length, down to one page"
    );
    let mut fill = Fill::default();
    fill.null_placed();
    println!(
        "vaspace:   {} mappings, {} GiB: nothing below {MMAP_TOP:#x} is free any more",
        fill.regions,
        fill.bytes / GIB
    );
    println!("vaspace: step 2: mappings at hint addresses for every free page above it");
    fill.hinted(MMAP_TOP, USER_END);
    let s1 = stats();
    let d = Delta::between(&s0, &s1);
    println!(
        "vaspace:   {} mappings in all, {} GiB ({} TiB) of address space; {d}",
        fill.regions,
        fill.bytes / GIB,
        fill.bytes >> 40
    );
    let null = map(0, PAGE);
    let hinted = map(0x4000_0000_0000, PAGE);
    println!(
        "vaspace:   mmap(NULL, 4096, ...) = {}; mmap(0x400000000000, 4096, ...) = {}",
        Mapped(null),
        Mapped(hinted)
    );
    c.check(
        "vaspace-enomem",
        !fill.surprise
            && null == Err(Errno::ENOMEM)
            && hinted == Err(Errno::ENOMEM)
            && fill.bytes >= USER_END - MMAP_TOP - GIB,
        "the address space did not fill up with mmap failing with ENOMEM",
    );
    println!("vaspace:   out of address space, yet the mappings hold no memory: a region is only");
    println!("vaspace:   a promise; vm gives a page when one is touched.");
    c.check(
        "vaspace-no-memory-used",
        d.pages_in_use == 0,
        "mapping address space used pages",
    );

    println!();
    println!("vaspace: step 3: touch {TOUCH} pages of the first mapping");
    let Some(first) = fill.first else {
        c.check("vaspace-first", false, "no mmap(NULL) succeeded");
        return c.failures;
    };
    let t0 = stats();
    for p in 0..TOUCH {
        poke(first + p * PAGE, p);
    }
    let t1 = stats();
    let d = Delta::between(&t0, &t1);
    let still = map(0, PAGE);
    println!(
        "vaspace:   {d}; mmap(NULL, 4096, ...) still = {}",
        Mapped(still)
    );
    println!("vaspace:   physical memory was there all along: only address space ran out.");
    c.check(
        "vaspace-memory-still-free",
        d.pages_in_use == TOUCH as i64 && still == Err(Errno::ENOMEM),
        "touching pages inside the full address space did not get fresh pages",
    );

    println!();
    println!(
        "vaspace: step 4: munmap the first mapping ({} GiB at {first:#x}), then mmap(NULL, 4096) again",
        BIG / GIB
    );
    let unmapped = rt::munmap(first, BIG);
    let again = map(0, PAGE);
    let s2 = stats();
    println!(
        "vaspace:   munmap = {unmapped:?}; mmap(NULL, 4096, ...) = {}; since the start: {}",
        Mapped(again),
        Delta::between(&s0, &s2)
    );
    c.check(
        "vaspace-munmap-gives-back",
        unmapped.is_ok()
            && again.is_ok_and(|a| (first..first + BIG).contains(&a))
            && s2.pages_in_use == s0.pages_in_use,
        "munmap did not give back the address space and its pages",
    );
    println!(
        "vaspace: exiting: vm forgets all {} regions at once",
        fill.regions
    );
    c.failures
}
