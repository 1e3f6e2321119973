//! init goes on serving while the shm server hangs (issue 9). Booted with the test hook
//! `shm.hang=4` (the shm server stops answering, alive, at its 4th request: after init's
//! `TaskFork`s for this program's three `fork`s, whatever comes next: init's first
//! `TaskExit`) and a short `init.deadline=`, this program has three workers use anonymous
//! memory only: two until they are killed, one for a few rounds before it exits. Checks:
//! the workers are killed or exit and are waited for while the shm server is silent
//! (before, init's synchronous `TaskExit` waited for ever: vm had nothing in flight to it);
//! a `fork` then waits for the shm server's `TaskFork` and completes once init's deadline
//! has ended the server (it is not restarted); `shm_open` is then `ENODEV`, and files work
//! as before.
#![no_std]
#![no_main]

use demos::Checks;
use rt::{Errno, O_CREAT, O_RDWR, WaitStatus, println};

rt::entry!(main);

/// What the worker that is not killed exits with.
const STATUS: i32 = 12;

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let mut workers = [0u64; 3];
    for (i, w) in workers.iter_mut().enumerate() {
        match rt::fork() {
            Ok(0) if i < 2 => loop {
                if !demos::anon_round() {
                    rt::exit(2);
                }
            },
            Ok(0) => rt::exit(if (0..8).all(|_| demos::anon_round()) {
                STATUS
            } else {
                2
            }),
            Ok(pid) => *w = pid,
            Err(e) => {
                println!("FAIL initshmhang-fork: {e}");
                return 1;
            }
        }
    }
    // The shm server stops answering at the first `TaskExit` init tells it.
    let killed = workers[..2].iter().all(|&pid| {
        let k = rt::kill(pid);
        let w = rt::wait(pid);
        println!("initshmhang: worker {pid}: {k:?} {w:?}");
        k.is_ok() && matches!(w, Ok((p, WaitStatus::Killed, _)) if p == pid)
    });
    c.check(
        "initshmhang-workers-killed",
        killed,
        "killing and waiting for a worker did not work while the shm server hung",
    );
    let w = rt::wait(workers[2]);
    println!("initshmhang: worker {}: {w:?}", workers[2]);
    c.check(
        "initshmhang-worker-exits",
        matches!(w, Ok((p, WaitStatus::Exited, v)) if p == workers[2] && v == STATUS as u64),
        "a worker using anonymous memory only did not exit cleanly or was not waited for",
    );
    // A fork now waits for the shm server's `TaskFork` until init's deadline ends it.
    let forked = match rt::fork() {
        Ok(0) => rt::exit(if demos::anon_round() { 0 } else { 2 }),
        Ok(pid) => matches!(rt::wait(pid), Ok((p, WaitStatus::Exited, 0)) if p == pid),
        Err(_) => false,
    };
    c.check(
        "initshmhang-fork-after-end",
        forked,
        "a fork while the shm server hung did not complete after it was ended",
    );
    c.check(
        "initshmhang-shm-gone",
        rt::shm_open("/initshmhang", O_CREAT | O_RDWR, 0o600) == Err(Errno::ENODEV),
        "shm_open after the shm server was ended was not ENODEV",
    );
    let (read, _) = demos::read_hello();
    c.check(
        "initshmhang-files-work",
        read == Ok(5),
        "open and read did not work after the shm server was ended",
    );
    println!("initshmhang: {} failures", c.failures);
    i32::from(c.failures != 0)
}
