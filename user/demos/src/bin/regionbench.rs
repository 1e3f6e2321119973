//! vm at scale (`bench=regions` boots `run=regionbench`; issue 13): what `mmap`, the first
//! write to the new page and `munmap` cost as a task's region count grows, and what `fork`
//! costs per region. A measurement, not a test (it fails only if a call fails).
//!
//! The task grows its region map two regions at a time: `mmap(NULL, 2 pages)` then
//! `mprotect` of the second page to `PROT_NONE`, so that no two neighbours merge (each new
//! pair lands just below the last, top down). At each step of [`STEPS`] it times, one call at
//! a time, [`CALLS`] one-page `mmap(NULL, ...)` calls, a first write to each new page, and
//! their `munmap`, and prints the mean per call:
//! `BENCH {mmap,fault,munmap}_1page_at_<n>_regions <mean> instructions ...`, where `<n>` is
//! the step's name (`2` is the task as it starts: its text, data, stack and heap regions).
//!
//! `munmap_shared_1page_at_<n>_regions`: the `munmap` of a one-page `MAP_SHARED |
//! MAP_ANONYMOUS` mapping (an object region: vm then asks whether any task still maps its
//! handle), mean of [`SHARED_CALLS`].
//!
//! `fork_per_region`: the `fork` call (parent side, median of [`FORKS`]) with 8,000 extra
//! one-page regions, every other one `PROT_NONE` and the others holding one resident page,
//! minus the same call before any were made, divided by 8,000.
//!
//! What vm keeps for them, from its own heap counter (`VmStats::heap_bytes`):
//! `vm_heap_bytes_per_region` (the growth of vm's heap from the start to the last step,
//! divided by the regions made) and `vm_heap_bytes_per_resident_page` (a fresh 16 MiB
//! anonymous mapping, every page written: the growth divided by its 4,096 pages).
#![no_std]
#![no_main]

use core::ptr::write_volatile;
use demos::Ratio;
use rt::{
    MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, PROT_NONE, PROT_READ, PROT_WRITE, WaitStatus,
    println,
};

rt::entry!(main);

const PAGE: u64 = 4096;
/// Calls timed at each step.
const CALLS: usize = 32;
/// `munmap`s of a shared mapping timed at each step.
const SHARED_CALLS: usize = 4;
/// Forks timed (median).
const FORKS: usize = 3;
/// The region counts measured at, and their names in the figures.
const STEPS: [(usize, &str); 6] = [
    (0, "2"),
    (200, "200"),
    (2_000, "2k"),
    (8_000, "8k"),
    (16_000, "16k"),
    (32_000, "32k"),
];
/// Set at build time (`REGIONBENCH_MAX=8000 cargo xtask build`) to stop at a smaller count
/// (today's figures at 32,000 took minutes before the region map was a tree).
const MAX: Option<&str> = option_env!("REGIONBENCH_MAX");

/// The extra regions `fork_per_region` is measured with.
const FORK_REGIONS: usize = 8_000;

fn fail(what: &str) -> ! {
    println!("FAIL regionbench: {what}");
    rt::exit(1)
}

/// Instructions and kernel entries of one window.
#[derive(Clone, Copy, Default)]
struct Sample {
    instructions: u64,
    entries: u64,
}

#[inline(always)]
fn measure<T>(op: impl FnOnce() -> T) -> (T, Sample) {
    let (e0, _) = libmk::debug_counters();
    let c0 = libmk::cycle_counter();
    let r = op();
    let c1 = libmk::cycle_counter();
    let (e1, _) = libmk::debug_counters();
    (
        r,
        Sample {
            instructions: c1 - c0,
            // The second `DebugCounters` call is one of the entries counted.
            entries: e1 - e0 - 1,
        },
    )
}

fn map_page(prot: u64) -> u64 {
    rt::mmap(0, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, NO_FD, 0)
        .unwrap_or_else(|e| fail(&alloc::format!("mmap: {e:?}")))
}

extern crate alloc;

/// Adds two regions: a read-write page and a `PROT_NONE` page above it; `resident` writes
/// the read-write one.
fn add_pair(resident: bool) {
    let a = rt::mmap(
        0,
        2 * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        NO_FD,
        0,
    )
    .unwrap_or_else(|e| fail(&alloc::format!("mmap of a pair: {e:?}")));
    if let Err(e) = rt::mprotect(a + PAGE, PAGE, PROT_NONE) {
        fail(&alloc::format!("mprotect: {e:?}"));
    }
    if resident {
        // SAFETY: a read-write page just mapped, no Rust reference covers it.
        unsafe { write_volatile(a as *mut u8, 1) };
    }
}

fn print(name: &str, at: &str, total: Sample) {
    let calls = CALLS as u64;
    println!(
        "BENCH {name}_1page_at_{at}_regions {} instructions kernel_entries={} calls={calls}",
        Ratio(total.instructions, calls),
        Ratio(total.entries, calls),
    );
}

/// Times `CALLS` one-page `mmap`s, a first write to each, and their `munmap`s.
fn step(at: &str) {
    let mut pages = [0u64; CALLS];
    let (mut mmap, mut fault, mut munmap) =
        (Sample::default(), Sample::default(), Sample::default());
    let add = |sum: &mut Sample, s: Sample| {
        sum.instructions += s.instructions;
        sum.entries += s.entries;
    };
    for p in &mut pages {
        let (a, s) = measure(|| map_page(PROT_READ | PROT_WRITE));
        add(&mut mmap, s);
        *p = a;
    }
    for &p in &pages {
        // SAFETY: a read-write page just mapped, no Rust reference covers it.
        let ((), s) = measure(|| unsafe { write_volatile(p as *mut u8, 1) });
        add(&mut fault, s);
    }
    for &p in &pages {
        let (r, s) = measure(|| rt::munmap(p, PAGE));
        if let Err(e) = r {
            fail(&alloc::format!("munmap: {e:?}"));
        }
        add(&mut munmap, s);
    }
    print("mmap", at, mmap);
    print("fault", at, fault);
    print("munmap", at, munmap);
    let mut shared = Sample::default();
    for _ in 0..SHARED_CALLS {
        let a = rt::mmap(
            0,
            PAGE,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS,
            NO_FD,
            0,
        )
        .unwrap_or_else(|e| fail(&alloc::format!("shared mmap: {e:?}")));
        let (r, s) = measure(|| rt::munmap(a, PAGE));
        if let Err(e) = r {
            fail(&alloc::format!("shared munmap: {e:?}"));
        }
        add(&mut shared, s);
    }
    println!(
        "BENCH munmap_shared_1page_at_{at}_regions {} instructions kernel_entries={} calls={SHARED_CALLS}",
        Ratio(shared.instructions, SHARED_CALLS as u64),
        Ratio(shared.entries, SHARED_CALLS as u64),
    );
}

/// The parent's `fork` call, median of `FORKS` (the child exits at once; the wait is
/// outside the window).
fn fork_cost() -> Sample {
    let mut samples = [Sample::default(); FORKS];
    for s in &mut samples {
        let (r, sample) = measure(|| {
            let r = rt::fork();
            if r == Ok(0) {
                rt::exit(0);
            }
            r
        });
        let child = r.unwrap_or_else(|e| fail(&alloc::format!("fork: {e:?}")));
        if !matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0))) {
            fail("the forked child did not exit with 0");
        }
        *s = sample;
    }
    demos::median_by(&mut samples, |s| s.instructions)
}

fn vm_heap() -> u64 {
    rt::vm_stats().map_or(0, |s| s.heap_bytes)
}

/// vm's heap per resident page: a fresh 16 MiB mapping, every page written.
fn heap_per_page() {
    const PAGES: u64 = 4096;
    let before = vm_heap();
    let a = rt::mmap(
        0,
        PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS,
        NO_FD,
        0,
    )
    .unwrap_or_else(|e| fail(&alloc::format!("mmap of 16 MiB: {e:?}")));
    for i in 0..PAGES {
        // SAFETY: a read-write page of the mapping just made, no Rust reference covers it.
        unsafe { write_volatile((a + i * PAGE) as *mut u8, 1) };
    }
    let after = vm_heap();
    let _ = rt::munmap(a, PAGES * PAGE);
    println!(
        "BENCH vm_heap_bytes_per_resident_page {} bytes pages={PAGES} heap_before={before} heap_after={after}",
        Ratio(after.saturating_sub(before), PAGES)
    );
}

fn main() -> i32 {
    demos::prefault();
    heap_per_page();
    let heap0 = vm_heap();
    let fork_base = fork_cost();
    let mut made = 0;
    let max = MAX.and_then(|m| m.parse().ok()).unwrap_or(usize::MAX);
    for (regions, at) in STEPS.into_iter().filter(|&(r, _)| r <= max) {
        while made < regions {
            // The first FORK_REGIONS regions hold a resident page every other region.
            add_pair(made < FORK_REGIONS);
            made += 2;
        }
        if regions == FORK_REGIONS {
            let with = fork_cost();
            let per = with.instructions.saturating_sub(fork_base.instructions);
            println!(
                "BENCH fork_per_region {} instructions kernel_entries={} fork_base={} fork_with={} regions={FORK_REGIONS}",
                Ratio(per, FORK_REGIONS as u64),
                Ratio(
                    with.entries.saturating_sub(fork_base.entries),
                    FORK_REGIONS as u64
                ),
                fork_base.instructions,
                with.instructions,
            );
        }
        step(at);
    }
    let heap1 = vm_heap();
    println!(
        "BENCH vm_heap_bytes_per_region {} bytes regions={made} heap_before={heap0} heap_after={heap1}",
        Ratio(heap1.saturating_sub(heap0), made.max(1) as u64)
    );
    0
}
