//! vm's POSIX details: `MAP_FIXED` over a range that crosses the top of the user address
//! space is `ENOMEM`; `msync` takes flags (`MS_ASYNC`, `MS_SYNC`, `MS_INVALIDATE`; both of
//! the first two, an unknown bit, or a misaligned address is `EINVAL`); `mprotect` merges
//! equal neighbouring regions again (its `vmmap` listing shows one region where
//! protections were changed and put back; the scenario checks the line); `SEGV` and `BUS`
//! report the address touched, not its page. One `PASS`/`FAIL` line per check; exits with
//! the number of failures.
#![no_std]
#![no_main]

use demos::{Checks, PAGE, anon, prefault, shared_anon};
use rt::proto::{Errno, USER_END};
use rt::{
    MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC, O_RDONLY,
    PROT_READ, PROT_WRITE, WaitStatus, println,
};

rt::entry!(main);

/// Where the merge check maps its 64 pages (the scenario expects vmmap's line for them).
const MERGE_AT: u64 = 0x0000_0040_0000_0000;
const MERGE_PAGES: u64 = 64;
const NO_FD: u64 = u64::MAX;

fn main() -> i32 {
    let mut c = Checks::default();
    prefault();

    c.run("vm-fixed-across-top-enomem", || {
        let top = USER_END - PAGE;
        let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
        let rw = PROT_READ | PROT_WRITE;
        // The last page alone is fine.
        let a = rt::mmap(top, PAGE, rw, fixed, NO_FD, 0).map_err(|_| "the last page failed")?;
        rt::munmap(a, PAGE).map_err(|_| "munmap failed")?;
        for len in [2 * PAGE, 1 << 40, u64::MAX - top + 1, u64::MAX - PAGE] {
            match rt::mmap(top, len, rw, fixed, NO_FD, 0) {
                Err(Errno::ENOMEM) => {}
                Err(e) => {
                    println!("vmposix: MAP_FIXED at {top:#x}, {len:#x} bytes: {e}");
                    return Err("MAP_FIXED across the top is not ENOMEM");
                }
                Ok(_) => return Err("MAP_FIXED across the top succeeded"),
            }
        }
        // A misaligned address is still EINVAL.
        match rt::mmap(top + 1, PAGE, rw, fixed, NO_FD, 0) {
            Err(Errno::EINVAL) => Ok(()),
            _ => Err("a misaligned MAP_FIXED address is not EINVAL"),
        }
    });

    c.run("vm-msync-flags", || {
        let a = shared_anon(4, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
        demos::poke(a, 1);
        let bad = [
            (a, MS_ASYNC | MS_SYNC),
            (a, MS_ASYNC | MS_SYNC | MS_INVALIDATE),
            (a, 8),
            (a, MS_SYNC | 1 << 40),
            (a + 8, MS_SYNC),
        ];
        let mut result = Ok(());
        for (addr, flags) in bad {
            let r = rt::msync_flags(addr, PAGE, flags);
            if r != Err(Errno::EINVAL) {
                println!("vmposix: msync({addr:#x}, {flags:#x}): {r:?}");
                result = Err("msync with bad flags or a misaligned address is not EINVAL");
            }
        }
        for flags in [
            MS_SYNC,
            MS_ASYNC,
            MS_SYNC | MS_INVALIDATE,
            MS_ASYNC | MS_INVALIDATE,
        ] {
            if rt::msync_flags(a, 4 * PAGE, flags).is_err() {
                result = Err("msync with good flags failed");
            }
        }
        if rt::msync_flags(a, 8 * PAGE, MS_SYNC) != Err(Errno::ENOMEM) {
            result = Err("msync of an unmapped range is not ENOMEM");
        }
        rt::munmap(a, 4 * PAGE).map_err(|_| "munmap failed")?;
        result
    });

    c.run("vm-mprotect-merges", || {
        let len = MERGE_PAGES * PAGE;
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
        let a = rt::mmap(MERGE_AT, len, PROT_READ | PROT_WRITE, flags, NO_FD, 0)
            .map_err(|_| "mmap failed")?;
        // Every other page read-only, then all back: one region again (vmmap shows it).
        for i in (0..MERGE_PAGES).step_by(2) {
            rt::mprotect(a + i * PAGE, PAGE, PROT_READ).map_err(|_| "mprotect failed")?;
        }
        for i in (0..MERGE_PAGES).step_by(2) {
            rt::mprotect(a + i * PAGE, PAGE, PROT_READ | PROT_WRITE)
                .map_err(|_| "mprotect back failed")?;
        }
        let _ = rt::vmmap();
        // Many more splits and merges than the region limit: each pair must merge again.
        let b = anon(2, PROT_READ | PROT_WRITE).map_err(|_| "mmap failed")?;
        for _ in 0..70_000 {
            rt::mprotect(b, PAGE, PROT_READ).map_err(|_| "mprotect in the loop failed")?;
            rt::mprotect(b, PAGE, PROT_READ | PROT_WRITE)
                .map_err(|_| "mprotect back in the loop failed")?;
        }
        rt::munmap(b, 2 * PAGE).map_err(|_| "munmap failed")?;
        rt::munmap(a, len).map_err(|_| "munmap failed")
    });

    c.run("vm-segv-exact-address", || {
        let a = anon(1, PROT_READ).map_err(|_| "mmap failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            demos::poke(a + 0x458, 1);
            rt::exit(0);
        }
        let ended = rt::wait(child);
        rt::munmap(a, PAGE).map_err(|_| "munmap failed")?;
        match ended {
            Ok((_, WaitStatus::Segv, addr)) if addr == a + 0x458 => Ok(()),
            Ok((_, how, addr)) => {
                println!(
                    "vmposix: child ended {how:?} at {addr:#x}, wrote {:#x}",
                    a + 0x458
                );
                Err("SEGV does not report the address written")
            }
            Err(_) => Err("wait failed"),
        }
    });

    c.run("vm-bus-exact-address", || {
        let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "open failed")?;
        let a = rt::mmap(0, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0).map_err(|_| "mmap failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let _ = demos::peek(a + PAGE + 0x2a8);
            rt::exit(0);
        }
        let ended = rt::wait(child);
        rt::munmap(a, 2 * PAGE).map_err(|_| "munmap failed")?;
        rt::close(fd).map_err(|_| "close failed")?;
        match ended {
            Ok((_, WaitStatus::Bus, addr)) if addr == a + PAGE + 0x2a8 => Ok(()),
            Ok((_, how, addr)) => {
                println!(
                    "vmposix: child ended {how:?} at {addr:#x}, read {:#x}",
                    a + PAGE + 0x2a8
                );
                Err("BUS does not report the address read")
            }
            Err(_) => Err("wait failed"),
        }
    });

    println!("vmposix: {} failures", c.failures);
    c.failures
}
