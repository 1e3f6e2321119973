//! A failed file server is restarted (issue 9; MINIX 3's reincarnation server is the
//! model). Booted with `file.stop=N`, the file server stops at its `N`th request (as if it
//! had crashed); init takes back everything it had, starts a fresh instance and hands the
//! new endpoint to every task, vm and itself. This program uses files, a file mapping,
//! shared and anonymous memory, keeps asking the file server until the request it stops at
//! fails, and then checks: its old descriptor is `EBADF` (the new server never gave it), a
//! new `open` and `read` work, a new mapping works, `spawn` of a program from the disk
//! works (the new server's counters move), a page of the old mapping is `BUS`, and shm and
//! anonymous memory are unaffected. It runs from the initrd (`tools/src/images.rs`): its
//! own text must not be in the page cache of the server that dies.
#![no_std]
#![no_main]

use demos::{Checks, PAGE, anon, peek, poke};
use rt::{
    Errno, MAP_PRIVATE, MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, PROT_READ, PROT_WRITE, WaitStatus,
    println,
};

rt::entry!(main);

/// 64 KiB: the page-cache block.
const BLOCK: u64 = 64 * 1024;
const SHM_SIZE: u64 = 2 * BLOCK;
const MARK: u64 = 0x4e57_1f3e;

/// Word `i` of big.dat is `8 * i` (`tools::disk::big_file_bytes`).
fn big_word_at(offset: u64) -> u64 {
    offset
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    // Before: a descriptor, a private mapping of big.dat with one page touched, shm and
    // anonymous memory in use.
    let set_up = (|| {
        let fd = rt::open("hello.txt", O_RDONLY)?;
        let mut before = [0u8; 6];
        if rt::read(fd, &mut before)? != before.len() {
            return Err(Errno::EIO);
        }
        let big = rt::open("big.dat", O_RDONLY)?;
        let map = rt::mmap(0, 4 * BLOCK, PROT_READ, MAP_PRIVATE, big, 0)?;
        let shm = rt::shm_open("/restart", O_CREAT | O_RDWR, 0o600)?;
        rt::ftruncate(shm, SHM_SIZE)?;
        let shm_addr = rt::mmap(0, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0)?;
        let anon_addr = anon(4, PROT_READ | PROT_WRITE)?;
        Ok::<_, Errno>((fd, before, map, shm_addr, anon_addr))
    })();
    let Ok((fd, before, map, shm_addr, anon_addr)) = set_up else {
        println!("FAIL server-restart-setup: {set_up:?}");
        return 1;
    };
    let first = peek(map + 8);
    c.check(
        "server-restart-mapping-before",
        first == big_word_at(8),
        "the file mapping did not read big.dat before the stop",
    );
    poke(shm_addr, MARK);
    poke(anon_addr, MARK + 1);

    // Ask the file server until a request fails: the one it stops at.
    let mut asked = 0;
    let failed = loop {
        asked += 1;
        if let Err(e) = rt::stat("hello.txt") {
            break Some(e);
        }
        if asked > 1000 {
            break None;
        }
    };
    println!("server-restart: the file server failed after {asked} requests: {failed:?}");
    c.check(
        "server-restart-call-returns-error",
        failed == Some(Errno::ENODEV),
        "the request the file server stopped at did not fail with ENODEV",
    );

    // init restarted it (it ran before this task: higher priority).
    let mut buf = [0u8; 6];
    c.check(
        "server-restart-old-fd-ebadf",
        rt::read(fd, &mut buf) == Err(Errno::EBADF),
        "a descriptor of the dead file server was not EBADF in the new one",
    );
    let read = rt::open("hello.txt", O_RDONLY).and_then(|fd| {
        let n = rt::read(fd, &mut buf)?;
        rt::close(fd)?;
        Ok(n)
    });
    c.check(
        "server-restart-open-works",
        read == Ok(6) && buf == before,
        "open and read after the restart failed",
    );
    let mapped = rt::open("big.dat", O_RDONLY).and_then(|fd| {
        let a = rt::mmap(0, BLOCK, PROT_READ, MAP_PRIVATE, fd, 2 * BLOCK)?;
        rt::close(fd)?;
        Ok(peek(a + 16))
    });
    c.check(
        "server-restart-new-mapping-works",
        mapped == Ok(big_word_at(2 * BLOCK + 16)),
        "a new file mapping after the restart did not read big.dat",
    );

    // Programs come from the disk through the new server: its counters move (`hello`
    // exits with status 3).
    let before = rt::file_stats().map(|s| s.object_requests);
    let spawned = rt::spawn("hello").and_then(rt::wait);
    let after = rt::file_stats().map(|s| s.object_requests);
    println!("server-restart: spawn hello: {spawned:?}, object requests {before:?} -> {after:?}");
    c.check(
        "server-restart-spawn-from-disk",
        matches!(spawned, Ok((_, WaitStatus::Exited, 3)))
            && matches!((before, after), (Ok(b), Ok(a)) if a > b),
        "spawn of a program from the disk did not work after the restart",
    );

    // The old mapping's pages were the dead server's: a page never touched is BUS.
    let untouched = map + 3 * BLOCK + PAGE;
    match rt::fork() {
        Ok(0) => {
            let _ = peek(untouched);
            rt::exit(0)
        }
        Ok(child) => {
            let w = rt::wait(child);
            c.check(
                "server-restart-old-mapping-bus",
                matches!(w, Ok((_, WaitStatus::Bus, a)) if a == untouched),
                "touching a page of a mapping of the dead file server did not end the task with BUS at its address",
            );
        }
        Err(e) => {
            println!("FAIL server-restart-old-mapping-bus: fork failed: {e}");
            c.failures += 1;
        }
    }

    // shm and anonymous memory never needed the file server.
    c.check(
        "server-restart-shm-unaffected",
        peek(shm_addr) == MARK && rt::shm_open("/restart", O_RDWR, 0).is_ok(),
        "shared memory changed with the file server's restart",
    );
    let anon_ok = peek(anon_addr) == MARK + 1
        && anon(2, PROT_READ | PROT_WRITE).is_ok_and(|a| {
            poke(a + PAGE, 7);
            peek(a + PAGE) == 7 && peek(a) == 0
        });
    c.check(
        "server-restart-anon-unaffected",
        anon_ok,
        "anonymous memory changed with the file server's restart",
    );
    c.failures
}
