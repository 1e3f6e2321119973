//! A file server that keeps failing is restarted at most three times (issue 9). Booted
//! with `file.stop=N file.stop.all=1`, every instance of the file server stops at its `N`th
//! request. This program keeps asking it: the server comes back three times, then stays
//! ended (every later call `ENODEV`), and the rest of the system runs on (anonymous memory,
//! `fork`, `spawn` of a program, which init then takes from the initrd).
#![no_std]
#![no_main]

use demos::{Checks, PAGE, anon, peek, poke};
use rt::{Errno, PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// Calls made after the last failure, to see the server stay ended.
const AFTER: u32 = 20;

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let mut failures = 0u32;
    let mut back = 0u32;
    let mut last_failed = false;
    let mut after_last = 0u32;
    let mut ok_after_last = 0u32;
    let mut other = None;
    for _ in 0..2000 {
        match rt::stat("hello.txt") {
            Ok(_) => {
                if last_failed {
                    back += 1;
                }
                last_failed = false;
                if failures > 3 {
                    ok_after_last += 1;
                }
            }
            Err(Errno::ENODEV) => {
                if !last_failed {
                    failures += 1;
                }
                last_failed = true;
            }
            Err(e) => other = Some(e),
        }
        if failures > 3 {
            after_last += 1;
            if after_last > AFTER {
                break;
            }
        }
    }
    println!(
        "restart-limit: {failures} failures, back {back} times, {ok_after_last} answers after the last, other errors {other:?}"
    );
    c.check(
        "server-restart-limit-three-restarts",
        back == 3 && other.is_none(),
        "the file server did not come back exactly three times",
    );
    c.check(
        "server-restart-limit-stays-ended",
        failures == 4 && after_last > AFTER && ok_after_last == 0,
        "the file server did not stay ended after its fourth failure",
    );
    let anon_ok = anon(2, PROT_READ | PROT_WRITE).is_ok_and(|a| {
        poke(a + PAGE, 7);
        peek(a + PAGE) == 7 && peek(a) == 0
    });
    let forked = match rt::fork() {
        Ok(0) => rt::exit(42),
        Ok(child) => matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 42))),
        Err(_) => false,
    };
    let spawned = rt::spawn("hello").and_then(rt::wait);
    c.check(
        "server-restart-limit-rest-runs",
        anon_ok && forked && matches!(spawned, Ok((_, WaitStatus::Exited, 3))),
        "anonymous memory, fork or spawn failed with the file server ended",
    );
    c.failures
}
