//! `exectest` (boot scenario `proc-exectest`, on a private copy of the disk): programs loaded
//! from the disk by `spawn` and `exec` (their text paged in from the file server's cache:
//! the vmmap listing shows `file` regions), `ENOENT` for a program that is nowhere, the
//! descriptors a `fork` child inherits (file and shm), descriptors dropped when a task
//! exits or is killed without closing them, and data written through shared mappings
//! reaching the disk without `msync`: `EXIT.DAT` by a child that exits, `SYNC.DAT` by a child
//! still running when its parent exits (init ends it before power-off, which writes its
//! shared mappings back, as at any end). The tools compare both files after
//! power-off. One `PASS`/`FAIL` line per check; exits with the number of failures.
#![no_std]
#![no_main]

use demos::Checks;
use demos::exectest::{EXIT_FILE, SYNC_FILE, file_byte, file_len};
use rt::proto::WaitStatus;
use rt::{
    Errno, MAP_ANONYMOUS, MAP_SHARED, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, PROT_READ, PROT_WRITE,
    println,
};

rt::entry!(main);

const PAGE: u64 = 4096;

fn main() -> i32 {
    let mut c = Checks::default();
    println!("exectest: programs from the disk, descriptors across fork, exit and power-off");
    // This very program came from the disk: its segments are private file regions.
    let _ = rt::vmmap();

    c.run("exec-spawn-from-disk", || {
        let child = rt::spawn("hello").map_err(|_| "spawn failed")?;
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 3)) => Ok(()),
            _ => Err("hello did not exit with 3"),
        }
    });

    c.run("exec-fork-exec-from-disk", || {
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let _ = rt::exec("hello");
            rt::exit(99);
        }
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 3)) => Ok(()),
            _ => Err("the child did not become hello"),
        }
    });

    c.run("exec-enoent", || {
        if rt::spawn("no-such-prog") != Err(Errno::ENOENT) {
            return Err("spawn of a missing program is not ENOENT");
        }
        match rt::exec("no-such-prog") {
            Err(Errno::ENOENT) => Ok(()),
            _ => Err("exec of a missing program is not ENOENT"),
        }
    });

    c.run("fd-inherited-by-fork", || {
        let fd = rt::open("hello.txt", O_RDONLY).map_err(|_| "open failed")?;
        let mut whole = [0u8; 18];
        rt::pread(fd, &mut whole, 0).map_err(|_| "pread failed")?;
        let mut first = [0u8; 6];
        rt::read(fd, &mut first).map_err(|_| "read failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            // Same descriptor, same position as the parent's at the fork.
            let mut next = [0u8; 6];
            let ok = rt::read(fd, &mut next) == Ok(6) && next == whole[6..12];
            rt::exit(if ok { 0 } else { 1 });
        }
        let inherited = matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0)));
        // The position is shared (POSIX's open file description): the parent's moved with
        // the child's read.
        let mut next = [0u8; 6];
        let own = rt::read(fd, &mut next) == Ok(6) && next == whole[12..];
        rt::close(fd).map_err(|_| "close failed")?;
        println!(
            "exectest: a fork child read {:?} from its parent's descriptor",
            core::str::from_utf8(&whole[6..12]).unwrap_or("?")
        );
        match (inherited, own) {
            (true, true) => Ok(()),
            (false, _) => Err("the child could not read from the inherited descriptor"),
            _ => Err("the parent's position did not move with the child's read"),
        }
    });

    c.run("shm-fd-inherited-by-fork", || {
        let fd = rt::shm_open("/exectest", O_CREAT | O_RDWR, 0o600).map_err(|_| "open failed")?;
        rt::ftruncate(fd, 3 * PAGE).map_err(|_| "ftruncate failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let ok = rt::fstat(fd).is_ok_and(|s| s.size == 3 * PAGE);
            rt::exit(if ok { 0 } else { 1 });
        }
        let ok = matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0)));
        rt::close(fd).map_err(|_| "close failed")?;
        rt::shm_unlink("/exectest").map_err(|_| "unlink failed")?;
        if ok {
            Ok(())
        } else {
            Err("the child cannot use the shm descriptor")
        }
    });

    c.run("fd-released-at-exit", || {
        let before = rt::file::descriptors().map_err(|_| "no count")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            for name in ["hello.txt", "big.dat", "bin/hello"] {
                if rt::open(name, O_RDONLY).is_err() {
                    rt::exit(1);
                }
            }
            rt::exit(0); // without closing anything
        }
        let exited = matches!(rt::wait(child), Ok((_, WaitStatus::Exited, 0)));
        let after = rt::file::descriptors().map_err(|_| "no count")?;
        println!(
            "exectest: file server descriptors before {}, after the child's exit {}",
            before.fds, after.fds
        );
        match (exited, after == before) {
            (true, true) => Ok(()),
            (false, _) => Err("the child failed to open its files"),
            _ => Err("the child's descriptors are still open"),
        }
    });

    c.run("fd-released-at-kill", || {
        let before = rt::file::descriptors().map_err(|_| "no count")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let _ = rt::open("hello.txt", O_RDONLY);
            let _ = rt::open("big.dat", O_RDONLY);
            loop {
                rt::sched_yield();
            }
        }
        let mut opened = false;
        for _ in 0..100_000 {
            if rt::file::descriptors().is_ok_and(|d| d.fds >= before.fds + 2) {
                opened = true;
                break;
            }
            rt::sched_yield();
        }
        rt::kill(child).map_err(|_| "kill failed")?;
        let killed = matches!(rt::wait(child), Ok((_, WaitStatus::Killed, _)));
        let after = rt::file::descriptors().map_err(|_| "no count")?;
        match (opened && killed, after == before) {
            (true, true) => Ok(()),
            (false, _) => Err("the child did not open its files or was not killed"),
            _ => Err("the killed child's descriptors are still open"),
        }
    });

    c.run("shared-write-at-exit", || {
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            // Written through a shared mapping; no msync, no munmap, no close.
            rt::exit(if write_mapped(EXIT_FILE).is_ok() {
                0
            } else {
                1
            });
        }
        match rt::wait(child) {
            Ok((_, WaitStatus::Exited, 0)) => Ok(()),
            _ => Err("the child could not write its file"),
        }
    });

    c.run("shared-write-still-running", || {
        // A shared anonymous page tells the parent the child has written.
        let flag = rt::mmap(
            0,
            PAGE,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS,
            u64::MAX,
            0,
        )
        .map_err(|_| "mmap failed")?;
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            let done = if write_mapped(SYNC_FILE).is_ok() { 1 } else { 2 };
            demos::poke(flag, done);
            // Still running, the mapping dirty, when exectest exits.
            loop {
                rt::sched_yield();
            }
        }
        for _ in 0..1_000_000 {
            if demos::peek(flag) != 0 {
                break;
            }
            rt::sched_yield();
        }
        match demos::peek(flag) {
            1 => {
                println!(
                    "exectest: task {child} wrote {SYNC_FILE} through a shared mapping and keeps running"
                );
                Ok(())
            }
            _ => Err("the child could not write its file"),
        }
    });

    println!("exectest: {} failures", c.failures);
    c.failures
}

/// Creates `name`, maps it shared and fills it with `file_byte`, leaving everything open.
fn write_mapped(name: &str) -> Result<(), Errno> {
    let len = file_len();
    let fd = rt::open(name, O_RDWR | O_CREAT | O_TRUNC)?;
    rt::ftruncate(fd, len)?;
    let a = rt::mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)?;
    for i in 0..len {
        // SAFETY: [a, a + len) is this task's read-write mapping of the file.
        unsafe { ((a + i) as *mut u8).write_volatile(file_byte(i)) };
    }
    Ok(())
}
