//! init goes on serving while the file server hangs (issue 9). Booted with the test hook
//! `file.hang=7` (the file server stops answering, alive, at its 7th request: after init's
//! `Open` of `bin/inithang` and this program's five `fork`s, whatever comes next: a task's
//! `open`, init's `Open` for a spawn or init's `TaskExit`) and a short `init.deadline=`,
//! this program has three workers touch anonymous memory only while a fourth child opens a
//! file and a fifth spawns a program from the disk, both waiting on the hung server. Checks: the workers run, exit and are waited for (one killed) while that
//! child still waits, so init was not held by the hung server (before, init's synchronous
//! `TaskExit` waited for ever: vm had nothing in flight to notice the hang); after init's
//! deadline ended and restarted the file server, the waiting child's `open` has failed, the
//! waiting spawn and a new `fork` complete, and `open` and `spawn` from the disk work. It runs from the initrd
//! (`tools/src/images.rs`): its text must not come from the server that hangs.
#![no_std]
#![no_main]

use demos::{Checks, peek, poke, shared_anon};
use rt::{O_RDONLY, PROT_READ, PROT_WRITE, WaitStatus, println};

rt::entry!(main);

/// Shared words: the workers' go signal, whether the hanging child's `open` returned, and
/// whether the spawning child's `spawn` returned.
const GO: u64 = 0;
const OPENED: u64 = 8;
const SPAWNED: u64 = 16;
/// Rounds of anonymous work a worker does after the go signal.
const ROUNDS: u64 = 8;
/// What the hanging child exits with when its `open` failed (the server was ended).
const OPEN_FAILED: i32 = 3;

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    // Shared anonymous memory is the shm server's, not the file server's.
    let Ok(shared) = shared_anon(1, PROT_READ | PROT_WRITE) else {
        println!("FAIL inithang-setup: no shared memory");
        return 1;
    };
    poke(shared + GO, 0);
    poke(shared + OPENED, 0);
    poke(shared + SPAWNED, 0);

    // Three workers: anonymous memory only, then exit 10, 11, 12; the last one is killed
    // instead (it spins until then).
    let mut workers = [0u64; 3];
    for (i, w) in workers.iter_mut().enumerate() {
        match rt::fork() {
            Ok(0) => {
                while peek(shared + GO) == 0 {
                    rt::sched_yield();
                }
                if !(0..ROUNDS).all(|_| demos::anon_round()) {
                    rt::exit(2);
                }
                if i == 2 {
                    loop {
                        rt::sched_yield();
                    }
                }
                rt::exit(10 + i as i32)
            }
            Ok(pid) => *w = pid,
            Err(e) => {
                println!("FAIL inithang-fork: {e}");
                return 1;
            }
        }
    }
    // The child that asks the file server and waits on it.
    let hanging = match rt::fork() {
        Ok(0) => {
            let r = rt::open("hello.txt", O_RDONLY);
            poke(shared + OPENED, 1);
            rt::exit(if r.is_err() { OPEN_FAILED } else { 0 })
        }
        Ok(pid) => pid,
        Err(e) => {
            println!("FAIL inithang-fork: {e}");
            return 1;
        }
    };

    // The child that spawns a program after the go signal: init reads `bin/hello` from the
    // silent server (through its proxy), so the spawn waits, but nobody else does.
    let spawner = match rt::fork() {
        Ok(0) => {
            while peek(shared + GO) == 0 {
                rt::sched_yield();
            }
            let r = rt::spawn("hello");
            poke(shared + SPAWNED, 1);
            // `hello` exits with 3.
            let ok = r
                .and_then(rt::wait)
                .is_ok_and(|(_, how, v)| how == WaitStatus::Exited && v == 3);
            rt::exit(if ok { 0 } else { 4 })
        }
        Ok(pid) => pid,
        Err(e) => {
            println!("FAIL inithang-fork: {e}");
            return 1;
        }
    };

    // The file server stops answering now (the child's `open`, init's `Open` for the
    // spawn, or init's first notice).
    poke(shared + GO, 1);
    let exited = workers[..2].iter().enumerate().all(|(i, &pid)| {
        let w = rt::wait(pid);
        println!("inithang: worker {pid}: {w:?}");
        matches!(w, Ok((p, WaitStatus::Exited, v)) if p == pid && v == 10 + i as u64)
    });
    c.check(
        "inithang-workers-exit",
        exited,
        "a worker using anonymous memory only did not exit cleanly or was not waited for",
    );
    let killed = rt::kill(workers[2]).is_ok()
        && matches!(rt::wait(workers[2]), Ok((p, WaitStatus::Killed, _)) if p == workers[2]);
    c.check(
        "inithang-worker-killed",
        killed,
        "killing and waiting for a worker did not work while the file server hung",
    );
    c.check(
        "inithang-server-still-hung",
        peek(shared + OPENED) == 0 && peek(shared + SPAWNED) == 0,
        "the children waiting on the file server were answered before the workers ended",
    );

    // A fork now waits for the file server's `TaskFork`: it completes once init's deadline
    // has ended the server and started a new one.
    let forked = match rt::fork() {
        Ok(0) => rt::exit(if demos::anon_round() { 0 } else { 2 }),
        Ok(pid) => matches!(rt::wait(pid), Ok((p, WaitStatus::Exited, 0)) if p == pid),
        Err(_) => false,
    };
    c.check(
        "inithang-fork-after-restart",
        forked,
        "a fork while the file server hung did not complete after its restart",
    );
    let w = rt::wait(hanging);
    println!("inithang: the child that waited on the file server: {w:?}");
    c.check(
        "inithang-hung-caller-error",
        matches!(w, Ok((_, WaitStatus::Exited, v)) if v == OPEN_FAILED as u64)
            && peek(shared + OPENED) == 1,
        "the child waiting on the hung server did not get an error when it was ended",
    );
    let w = rt::wait(spawner);
    c.check(
        "inithang-spawn-waited",
        matches!(w, Ok((_, WaitStatus::Exited, 0))) && peek(shared + SPAWNED) == 1,
        "the spawn that waited for the silent server did not complete after its restart",
    );
    let (read, _) = demos::read_hello();
    c.check(
        "inithang-open-works",
        read == Ok(5),
        "open and read did not work after the file server was restarted",
    );
    let spawned = rt::spawn("hello").and_then(rt::wait);
    c.check(
        "inithang-spawn-works",
        // `hello` exits with 3.
        matches!(spawned, Ok((_, WaitStatus::Exited, 3))),
        "spawning a program after the restart did not work",
    );
    println!("inithang: {} failures", c.failures);
    i32::from(c.failures != 0)
}
