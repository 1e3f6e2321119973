//! Tasks waiting on a pager that fails (issue 9). Booted with a test hook that makes the file
//! server crash (`file.stop.block=200`) or stop answering (`file.hang.block=200` with a short
//! `vm.deadline=`) when vm asks it for block 200 of a file, this program has three children
//! fault on blocks 200 and 201 of `big.dat` (two on the same block: one request) while a
//! fourth touches anonymous memory only. Checks: the anonymous child keeps running while the
//! others wait; every waiter ends with `BUS` at the address it touched and `wait` says so;
//! after init has started a new file server, `open`, `read` and a new mapping work. It runs
//! from the initrd (`tools/src/images.rs`): its text must not come from the pager that fails.
#![no_std]
#![no_main]

use demos::{Checks, PAGE, anon, peek, poke};
use rt::{Errno, MAP_PRIVATE, MAP_SHARED, O_RDONLY, PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// 64 KiB: the page-cache block.
const BLOCK: u64 = 64 * 1024;
/// The block the test hook acts at (no other program on the disk is that large).
const HOOK_BLOCK: u64 = 200;
/// The anonymous child's word: rounds done; the parent's word: stop.
const ROUNDS: u64 = 0;
const STOP: u64 = 8;

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let set_up = (|| {
        let big = rt::open("big.dat", O_RDONLY)?;
        let map = rt::mmap(0, 256 * BLOCK, PROT_READ, MAP_PRIVATE, big, 0)?;
        rt::close(big)?;
        // Shared anonymous memory is the shm server's, not the file server's.
        let shared = rt::mmap(
            0,
            PAGE,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | rt::MAP_ANONYMOUS,
            u64::MAX,
            0,
        )?;
        Ok::<_, Errno>((map, shared))
    })();
    let Ok((map, shared)) = set_up else {
        println!("FAIL pagerwait-setup: {set_up:?}");
        return 1;
    };
    poke(shared + ROUNDS, 0);
    poke(shared + STOP, 0);

    // The anonymous child: fresh anonymous pages, round after round, until told to stop.
    let worker = match rt::fork() {
        Ok(0) => {
            while peek(shared + STOP) == 0 {
                let ok = anon(16, PROT_READ | PROT_WRITE).is_ok_and(|a| {
                    (0..16).for_each(|i| poke(a + i * PAGE, i));
                    let sum: u64 = (0..16).map(|i| peek(a + i * PAGE)).sum();
                    rt::munmap(a, 16 * PAGE).is_ok() && sum == 120
                });
                if !ok {
                    rt::exit(2);
                }
                poke(shared + ROUNDS, peek(shared + ROUNDS) + 1);
            }
            rt::exit(0)
        }
        Ok(pid) => pid,
        Err(e) => {
            println!("FAIL pagerwait-fork: {e}");
            return 1;
        }
    };
    // The waiters: two on block 200 (they share one request), one on block 201 (queued
    // behind it).
    let addrs = [
        map + HOOK_BLOCK * BLOCK + 8,
        map + HOOK_BLOCK * BLOCK + 3 * PAGE,
        map + (HOOK_BLOCK + 1) * BLOCK + 16,
    ];
    let mut waiters = [0u64; 3];
    for (w, &a) in waiters.iter_mut().zip(&addrs) {
        match rt::fork() {
            Ok(0) => {
                let _ = peek(a);
                rt::exit(0)
            }
            Ok(pid) => *w = pid,
            Err(e) => {
                println!("FAIL pagerwait-fork: {e}");
                return 1;
            }
        }
    }
    let before = peek(shared + ROUNDS);
    let mut ended_bus = 0;
    for (&pid, &a) in waiters.iter().zip(&addrs) {
        let w = rt::wait(pid);
        println!("pagerwait: waiter {pid} (touched {a:#x}): {w:?}");
        if matches!(w, Ok((_, WaitStatus::Bus, at)) if at == a) {
            ended_bus += 1;
        }
    }
    let during = peek(shared + ROUNDS);
    c.check(
        "pagerwait-waiters-bus",
        ended_bus == 3,
        "a task waiting on the failed pager did not end with BUS at the address it touched",
    );
    c.check(
        "pagerwait-anon-unaffected",
        during > before,
        "the task using anonymous memory only did not run while the others waited",
    );
    poke(shared + STOP, 1);
    let w = rt::wait(worker);
    c.check(
        "pagerwait-anon-exits",
        matches!(w, Ok((_, WaitStatus::Exited, 0))),
        "the anonymous task did not finish cleanly",
    );

    // init has started a new file server: files work again.
    let (read, _) = demos::read_hello();
    c.check(
        "pagerwait-open-works",
        read == Ok(5),
        "open and read did not work after the file server was replaced",
    );
    let mapped = rt::open("big.dat", O_RDONLY).and_then(|fd| {
        let a = rt::mmap(0, BLOCK, PROT_READ, MAP_PRIVATE, fd, HOOK_BLOCK * BLOCK)?;
        rt::close(fd)?;
        Ok(peek(a + 8))
    });
    c.check(
        "pagerwait-new-mapping-works",
        mapped == Ok(HOOK_BLOCK * BLOCK + 8),
        "a new mapping of the block the old server failed at did not read big.dat",
    );
    println!("pagerwait: {} failures", c.failures);
    i32::from(c.failures != 0)
}
