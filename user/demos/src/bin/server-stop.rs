//! A server that fails ends alone. Booted with `shm.stop=N`, the shm server stops (as if it
//! had crashed: its thread takes an undefined instruction) when its `N`th request arrives.
//! This program keeps asking shm until that happens, then checks what the rest of the
//! system does: the request in flight returns an error (it does not hang), later shm
//! requests fail at once, what was already mapped from shm stays, a page not yet supplied
//! is `BUS` (seen by `wait`), and anonymous memory, `fork` and files go on working.
#![no_std]
#![no_main]

use demos::{Checks, PAGE, anon, peek, poke};
use rt::{Errno, MAP_SHARED, O_CREAT, O_RDWR, PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// Bytes of the shm object: two 64 KiB blocks, only the first touched before the stop.
const SIZE: u64 = 2 * 64 * 1024;
const MARK: u64 = 0x5157_0b1e;

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let set_up = rt::shm_open("/stop", O_CREAT | O_RDWR, 0o600).and_then(|fd| {
        rt::ftruncate(fd, SIZE)?;
        let addr = rt::mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)?;
        Ok((fd, addr))
    });
    let Ok((_fd, addr)) = set_up else {
        println!("FAIL server-stop-setup: {set_up:?}");
        return 1;
    };
    poke(addr, MARK);

    // Ask shm until a request fails: the one the server stops at.
    let mut asked = 0;
    let failed = loop {
        asked += 1;
        match rt::shm_open("/stop", O_RDWR, 0) {
            Ok(fd) => {
                let _ = rt::close(fd);
            }
            Err(e) => break Some(e),
        }
        if asked > 1000 {
            break None;
        }
    };
    println!("server-stop: shm failed after {asked} requests: {failed:?}");
    c.check(
        "server-stop-call-returns-error",
        failed == Some(Errno::ENODEV),
        "the request the shm server stopped at did not fail with ENODEV",
    );
    c.check(
        "server-stop-later-calls-fail",
        rt::shm_open("/other", O_CREAT | O_RDWR, 0o600) == Err(Errno::ENODEV),
        "a request to the stopped shm server did not fail with ENODEV",
    );
    c.check(
        "server-stop-mapped-page-stays",
        peek(addr) == MARK,
        "the page shm supplied before it stopped lost its contents",
    );

    // A page of the mapping nobody touched yet: shm cannot supply it any more.
    let untouched = addr + SIZE - PAGE;
    match rt::fork() {
        Ok(0) => {
            let _ = peek(untouched);
            rt::exit(0)
        }
        Ok(child) => {
            let w = rt::wait(child);
            c.check(
                "server-stop-untouched-page-bus",
                matches!(w, Ok((_, WaitStatus::Bus, a)) if a == untouched),
                "touching a page of a stopped pager did not end the task with BUS at its address",
            );
        }
        Err(e) => {
            println!("FAIL server-stop-untouched-page-bus: fork failed: {e}");
            c.failures += 1;
        }
    }

    // Everything that does not need shm goes on.
    let anon_ok = anon(4, PROT_READ | PROT_WRITE).is_ok_and(|a| {
        poke(a + PAGE, 7);
        peek(a + PAGE) == 7 && peek(a) == 0
    });
    c.check(
        "server-stop-anon-works",
        anon_ok,
        "anonymous memory failed after shm stopped",
    );
    let forked = match rt::fork() {
        Ok(0) => rt::exit(42),
        Ok(child) => matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 42))),
        Err(_) => false,
    };
    c.check(
        "server-stop-fork-works",
        forked,
        "fork failed after shm stopped",
    );
    let (read, buf) = demos::read_hello();
    c.check(
        "server-stop-files-work",
        read == Ok(5) && buf.iter().all(|b| b.is_ascii()),
        "reading a file failed after shm stopped",
    );
    c.failures
}
