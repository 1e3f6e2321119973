//! The paging benchmarks (`bench=pagers` boots `run=vmbench`): anonymous faults, copy-on-write
//! faults, fork with 16 and 64 MiB resident, a whole fork + exec + exit + wait cycle, and a
//! null round trip to vm. Prints one line per figure,
//! `BENCH <name> <value> instructions kernel_entries=E address_space_switches=S ...`, values
//! being medians over repetitions in guest instructions (PMCCNTR under QEMU -icount), per
//! page for the fault figures (one 16 MiB pass divided by its 4096 pages) and per call for
//! the others. Measurement points as in seL4's sel4bench: the counter is read just before
//! the operation (the first store, the `fork` call) and just after it. The kernel entries and
//! address-space switches are `DebugCounters` deltas over the same window, per operation.
//! Extra keys count round trips to other servers from vm's counters: `zero_calls` (2 MiB
//! chunks vm fetched from zero), `vm_faults` (faults vm served).
#![no_std]
#![no_main]

use core::fmt;
use core::ptr::write_volatile;
use libmk::{Cap, Endpoint, Message};
use rt::{
    MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, NO_FD, PROT_READ, PROT_WRITE, VmStats, WaitStatus,
    println,
};

use demos::Ratio;

rt::entry!(main);

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;
/// The size of the fault benchmarks' region.
const PASS_BYTES: u64 = 16 * MIB;
/// Passes (with fresh memory each) of the fault benchmarks, forks of the fork benchmarks.
const REPS: usize = 5;
/// Whole fork + exec + exit + wait cycles.
const CYCLES: usize = 9;
/// Null round trips to vm.
const CALLS: usize = 255;

/// One measured window.
#[derive(Clone, Copy, Default)]
struct Sample {
    instructions: u64,
    entries: u64,
    switches: u64,
    /// vm's counters over the window (read outside it).
    faults: u64,
    chunks: u64,
}

/// Counters at the start of a window.
struct Start {
    cycles: u64,
    entries: u64,
    switches: u64,
}

#[inline(always)]
fn start() -> Start {
    let (entries, switches) = libmk::debug_counters();
    Start {
        cycles: libmk::cycle_counter(),
        entries,
        switches,
    }
}

#[inline(always)]
fn stop(s: &Start) -> Sample {
    let cycles = libmk::cycle_counter();
    let (entries, switches) = libmk::debug_counters();
    Sample {
        instructions: cycles - s.cycles,
        // The second `DebugCounters` call is one of the entries counted.
        entries: entries - s.entries - 1,
        switches: switches - s.switches,
        faults: 0,
        chunks: 0,
    }
}

fn stats() -> VmStats {
    rt::vm_stats().unwrap_or_default()
}

/// The sample with the median instruction count.
fn median(samples: &mut [Sample]) -> Sample {
    demos::median_by(samples, |s| s.instructions)
}

/// Prints one figure: the median sample divided by `per` operations.
fn report(name: &str, samples: &mut [Sample], per: u64, extra: fmt::Arguments<'_>) {
    let m = median(samples);
    println!(
        "BENCH {name} {} instructions kernel_entries={} address_space_switches={} zero_calls={} vm_faults={}{}",
        Ratio(m.instructions, per),
        Ratio(m.entries, per),
        Ratio(m.switches, per),
        Ratio(m.chunks, per),
        Ratio(m.faults, per),
        extra
    );
}

fn anon(len: u64, flags: u64) -> u64 {
    match rt::mmap(
        0,
        len,
        PROT_READ | PROT_WRITE,
        flags | MAP_ANONYMOUS,
        NO_FD,
        0,
    ) {
        Ok(a) => a,
        Err(e) => {
            println!("FAIL vmbench: mmap of {len} bytes: {e:?}");
            rt::exit(1)
        }
    }
}

/// Writes one byte to every page of [`base`, `base + len`).
#[inline(always)]
fn touch(base: u64, len: u64) {
    let mut a = base;
    while a < base + len {
        // SAFETY: [base, base + len) is a private read-write mapping of this task that no
        // Rust reference covers.
        unsafe { write_volatile(a as *mut u8, 1) };
        a += PAGE;
    }
}

/// Runs `op`, with vm's counters read around the window `op` measures.
fn with_stats(op: impl FnOnce() -> Sample) -> Sample {
    let before = stats();
    let mut s = op();
    let after = stats();
    s.faults = after.faults - before.faults;
    s.chunks = after.chunks - before.chunks;
    s
}

/// Set at build time (`VMBENCH_ONLY=cow_fault cargo xtask build`) to run one benchmark
/// alone, e.g. under QEMU's execution log for a profile.
const ONLY: Option<&str> = option_env!("VMBENCH_ONLY");

fn main() -> i32 {
    let benches: [(&str, fn()); 6] = [
        ("anon_fault", anon_fault),
        ("cow_fault", cow_fault),
        ("fork_16mib", || fork_resident("fork_16mib", 16 * MIB)),
        ("fork_64mib", || fork_resident("fork_64mib", 64 * MIB)),
        ("fork_exec_exit_wait", fork_exec_exit_wait),
        ("null_ipc_to_vm", null_ipc_to_vm),
    ];
    for (name, bench) in benches {
        if ONLY.is_none_or(|only| only == name) {
            bench();
        }
    }
    0
}

/// One byte per page of a fresh 16 MiB private anonymous mapping, `REPS` times (a new
/// mapping each time; the first pass gets its pages from new chunks, the others from pages
/// the previous pass gave back).
fn anon_fault() {
    let pages = PASS_BYTES / PAGE;
    let mut samples = [Sample::default(); REPS];
    for s in &mut samples {
        let a = anon(PASS_BYTES, MAP_PRIVATE);
        *s = with_stats(|| {
            let w = start();
            touch(a, PASS_BYTES);
            stop(&w)
        });
        let _ = rt::munmap(a, PASS_BYTES);
    }
    let first = samples[0];
    report(
        "anon_fault_per_page",
        &mut samples,
        pages,
        format_args!(
            " first_pass={} first_pass_zero_calls={}",
            Ratio(first.instructions, pages),
            first.chunks
        ),
    );
}

/// A child writes one byte to every page of 16 MiB its parent wrote before the fork (so
/// every write copies: the parent still holds the page). The child leaves its sample in a
/// shared page.
fn cow_fault() {
    let pages = PASS_BYTES / PAGE;
    let shared = anon(PAGE, MAP_SHARED) as *mut Sample;
    let a = anon(PASS_BYTES, MAP_PRIVATE);
    touch(a, PASS_BYTES);
    let mut samples = [Sample::default(); REPS];
    for s in &mut samples {
        let child = match rt::fork() {
            Ok(c) => c,
            Err(e) => {
                println!("FAIL vmbench: fork: {e:?}");
                return;
            }
        };
        if child == 0 {
            let sample = with_stats(|| {
                let w = start();
                touch(a, PASS_BYTES);
                stop(&w)
            });
            // SAFETY: a shared read-write page of this task and its parent; the parent
            // reads it only after this task has ended.
            unsafe { write_volatile(shared, sample) };
            rt::exit(0);
        }
        if !matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0))) {
            println!("FAIL vmbench: the COW child failed");
        }
        // SAFETY: written by the child, which has ended.
        *s = unsafe { core::ptr::read_volatile(shared) };
    }
    let _ = rt::munmap(a, PASS_BYTES);
    let _ = rt::munmap(shared as u64, PAGE);
    report("cow_fault_per_page", &mut samples, pages, format_args!(""));
}

/// The `fork` call in the parent with `bytes` of private anonymous memory resident (all
/// written): from just before the call to just after it returns in the parent. The child
/// exits at once; the parent waits for it outside the window.
fn fork_resident(name: &str, bytes: u64) {
    let a = anon(bytes, MAP_PRIVATE);
    touch(a, bytes);
    let mut samples = [Sample::default(); REPS];
    for s in &mut samples {
        let mut child = 0;
        *s = with_stats(|| {
            let w = start();
            let r = rt::fork();
            if r == Ok(0) {
                rt::exit(0);
            }
            let sample = stop(&w);
            match r {
                Ok(c) => child = c,
                Err(e) => println!("FAIL vmbench: fork: {e:?}"),
            }
            sample
        });
        if !matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0))) {
            println!("FAIL vmbench: the forked child failed");
        }
    }
    let _ = rt::munmap(a, bytes);
    report(
        name,
        &mut samples,
        1,
        format_args!(" pages={}", bytes / PAGE),
    );
}

/// `fork`, the child `exec`s `nop` (which exits with 0), the parent `wait`s for it: from
/// just before `fork` to just after `wait` returns.
fn fork_exec_exit_wait() {
    let mut samples = [Sample::default(); CYCLES];
    for s in &mut samples {
        *s = with_stats(|| {
            let w = start();
            let child = match rt::fork() {
                Ok(0) => {
                    let _ = rt::exec("nop");
                    rt::exit(99)
                }
                Ok(c) => c,
                Err(e) => {
                    println!("FAIL vmbench: fork: {e:?}");
                    0
                }
            };
            let r = rt::wait(child);
            let sample = stop(&w);
            if !matches!(r, Ok((_, WaitStatus::Exited, 0))) {
                println!("FAIL vmbench: fork + exec nop did not exit with 0");
            }
            sample
        });
    }
    report("fork_exec_exit_wait", &mut samples, 1, format_args!(""));
}

/// A `Call` to vm with a label it does not serve (it answers `ENOSYS`): vm's receive,
/// dispatch and reply, and the two crossings.
fn null_ipc_to_vm() {
    let vm: Cap<Endpoint> = Cap::from_cptr(rt::proto::task_slots::VM);
    let msg = Message::new(0, &[]);
    let mut samples = [Sample::default(); CALLS];
    let _ = vm.call(&msg);
    for s in &mut samples {
        let w = start();
        let _ = vm.call(&msg);
        *s = stop(&w);
    }
    report("null_ipc_to_vm", &mut samples, 1, format_args!(""));
}
