//! The lecture demos with the arguments a student would try (issue 11): each started with
//! `spawnv` and its exit status checked. Good arguments run the demo on them (all its checks
//! pass: status 0); bad ones print a usage line and end with status 2. Boot scenario
//! `proc-demo-args`, which also requires the lines showing the arguments were used.
#![no_std]
#![no_main]

use demos::Checks;
use demos::cmdline::USAGE_STATUS;
use rt::{WaitStatus, println};

rt::entry!(main);

/// (check, argv, the exit status it must end with).
const RUNS: &[(&str, &[&str], i32)] = &[
    ("demo-args-anon-128", &["anon", "128"], 0),
    (
        "demo-args-anon-not-a-number",
        &["anon", "lots"],
        USAGE_STATUS,
    ),
    ("demo-args-anon-too-small", &["anon", "3"], USAGE_STATUS),
    (
        "demo-args-anon-too-many",
        &["anon", "64", "64"],
        USAGE_STATUS,
    ),
    (
        "demo-args-mmap-file-hello-txt",
        &["mmap-file", "hello.txt"],
        0,
    ),
    (
        "demo-args-mmap-file-missing",
        &["mmap-file", "nonesuch.txt"],
        USAGE_STATUS,
    ),
    (
        "demo-args-mmap-file-directory",
        &["mmap-file", "bin"],
        USAGE_STATUS,
    ),
    ("demo-args-tour-part", &["tour", "anon", "fork-cow"], 0),
    (
        "demo-args-tour-unknown",
        &["tour", "anon", "nope"],
        USAGE_STATUS,
    ),
];

fn main() -> i32 {
    let mut c = Checks::default();
    for (id, argv, want) in RUNS {
        println!("demoargs: {}", argv.join(" "));
        let status = rt::spawnv(argv[0], argv).and_then(rt::wait);
        let ok = matches!(status, Ok((_, WaitStatus::Exited, s)) if s as i32 == *want);
        if !ok {
            println!("demoargs: {argv:?} ended {status:?}, want exit status {want}");
        }
        c.check(
            id,
            ok,
            "the demo did not end with the status its arguments call for",
        );
    }
    println!("demoargs: {} failures", c.failures);
    c.failures
}
