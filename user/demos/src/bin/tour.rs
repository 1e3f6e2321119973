//! The tour `make run` gives: every demo in the order of the lecture on memory mapping, each
//! under a heading that names the slide it shows, then a summary. Each demo checks itself
//! (`PASS`/`FAIL` lines) and exits with its number of failures. A slide whose C program is
//! on the disk (user/c, docs/c.md) runs it after the demo: the slide's code compiled as
//! printed.
//!
//! `tour [demo...]`: only the named stops, still in the lecture's order (`make run
//! DEMO="tour anon shm"`); a name that is no stop is a usage error (status 2).
#![no_std]
#![no_main]

extern crate alloc;

use rt::{WaitStatus, println};

rt::entry!(main);

/// (program, slide title, what the demo shows), in the lecture's order.
const STOPS: &[(&str, &str, &str)] = &[
    (
        "vaspace",
        "Virtual Memory Area",
        "virtual address space is a resource: it runs out while physical memory is still free",
    ),
    (
        "anon",
        "File vs. Anonymous Mapping",
        "an anonymous mapping is filled with 0, and pages appear only when touched",
    ),
    (
        "mapping-kinds",
        "Shared vs. Private Mapping",
        "the 2x2 table: who sees a write, and whether the file changes",
    ),
    (
        "mmap-file",
        "Memory-Mapped File: Example",
        "the slide's program maps a program file and prints 0x7f 0x45 0x4c 0x46; pages arrive when touched",
    ),
    (
        "writeback",
        "Memory-Mapped File",
        "writes to a MAP_SHARED mapping reach the file: at msync, at munmap, on eviction, at exit",
    ),
    (
        "fileio",
        "File I/O Comparisons",
        "read 1 KiB, O_DIRECT 4 KiB, fgets and mmap on a 16 MiB file: what each costs per MiB",
    ),
    (
        "shm",
        "Shared Memory",
        "unrelated tasks map one named object; stored pointers work only at the same address",
    ),
    (
        "fork-cow",
        "Copy-on-Write during fork()",
        "parent and child share pages read-only; the first write copies",
    ),
];

/// (stop, the C program of its slide, what it is): run after the stop's demo.
const C_PROGRAMS: &[(&str, &str, &str)] = &[
    (
        "mmap-file",
        "c-mmap",
        "the slide's C code as printed (mapping /bin/hello)",
    ),
    (
        "fileio",
        "c-fileio",
        "the slide's four ways in C, on big.dat",
    ),
    (
        "shm",
        "c-shm-check",
        "the slide's C code as printed (c-shm), then /shm1 read back",
    ),
    ("fork-cow", "c-fork", "copy-on-write after fork() in C"),
];

/// Runs `program` and waits for it: whether it exited with status 0 (else says how it
/// ended).
fn run(program: &str) -> bool {
    match rt::spawn(program).and_then(rt::wait) {
        Ok((_, WaitStatus::Exited, 0)) => {
            println!("==== {program}: all its checks passed");
            true
        }
        Ok((_, how, value)) => {
            println!("==== {program}: ended {how:?} ({value:#x})");
            false
        }
        Err(e) => {
            println!("==== {program}: could not run it: {e}");
            false
        }
    }
}

fn main(args: &[&str]) -> i32 {
    let wanted = args.get(1..).unwrap_or_default();
    if let Some(bad) = wanted.iter().find(|w| !STOPS.iter().any(|(p, ..)| p == *w)) {
        let names: alloc::vec::Vec<&str> = STOPS.iter().map(|(p, ..)| *p).collect();
        return demos::cmdline::usage(
            &alloc::format!(
                "tour: {bad:?} is no stop of the tour; its stops: {}",
                names.join(" ")
            ),
            "tour [demo...]   (only these stops, in the lecture's order; default all)",
        );
    }
    let stops: alloc::vec::Vec<_> = STOPS
        .iter()
        .filter(|(p, ..)| wanted.is_empty() || wanted.contains(p))
        .collect();
    println!("tour: the lecture \"Memory Mapping\" on this system, one demo per slide");
    let mut failed = 0;
    for (i, (program, slide, shows)) in stops.iter().enumerate() {
        println!();
        println!(
            "==== {}/{}: slide \"{slide}\" ({program})",
            i + 1,
            stops.len()
        );
        println!("==== {shows}");
        let mut ok = run(program);
        for (_, c, what) in C_PROGRAMS.iter().filter(|(stop, ..)| stop == program) {
            println!("==== in C: {c}: {what}");
            ok &= run(c);
        }
        if !ok {
            failed += 1;
        }
    }
    println!();
    println!("tour: {} demos, {failed} failed", stops.len());
    failed
}
