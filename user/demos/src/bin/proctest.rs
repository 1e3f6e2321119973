//! Exercises the process server through the runtime: spawn, fork, exec, wait, kill,
//! getppid, orphans, and that ended tasks give their memory back. One `PASS`/`FAIL` line
//! per check; exits with the number of failures.
#![no_std]
#![no_main]

use rt::{Errno, WaitStatus, println};

rt::entry!(main);

type Check = fn() -> Result<(), &'static str>;

const CHECKS: &[(&str, Check)] = &[
    ("proc-spawn-wait", spawn_wait),
    ("proc-wait-echild", wait_echild),
    ("proc-spawn-enoent", spawn_enoent),
    ("proc-fork-getppid", fork_getppid),
    ("proc-fork-exec", fork_exec),
    ("proc-exec-enoent", exec_enoent),
    ("proc-kill", kill),
    ("proc-kill-eperm", kill_eperm),
    ("proc-wait-any", wait_any),
    ("proc-orphan", orphan),
    ("proc-memory-reclaimed", memory_reclaimed),
];

fn main() -> i32 {
    let mut checks = demos::Checks::default();
    for (name, check) in CHECKS {
        checks.run(name, check);
    }
    // Left running on purpose: init must end it at power-off (the scenario expects the line).
    if rt::fork() == Ok(0) {
        loop {
            rt::sched_yield();
        }
    }
    checks.failures
}

/// `spawn("hello")`, then `wait` sees it exit with 3.
fn spawn_wait() -> Result<(), &'static str> {
    let pid = rt::spawn("hello").map_err(|_| "spawn failed")?;
    match rt::wait(pid) {
        Ok((p, WaitStatus::Exited, 3)) if p == pid => Ok(()),
        Ok(_) => Err("hello did not exit with status 3"),
        Err(_) => Err("wait failed"),
    }
}

fn wait_echild() -> Result<(), &'static str> {
    match rt::wait(0) {
        Err(Errno::ECHILD) => Ok(()),
        _ => Err("wait without children did not fail with ECHILD"),
    }
}

fn spawn_enoent() -> Result<(), &'static str> {
    match rt::spawn("no-such-file") {
        Err(Errno::ENOENT) => Ok(()),
        _ => Err("spawn of a missing program did not fail with ENOENT"),
    }
}

/// The child sees the parent's pid as its parent and a pid of its own.
fn fork_getppid() -> Result<(), &'static str> {
    let me = rt::getpid();
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        let ok = rt::getppid() == Ok(me) && rt::getpid() != me;
        rt::exit(if ok { 0 } else { 1 });
    }
    match rt::wait(child) {
        Ok((_, WaitStatus::Exited, 0)) => Ok(()),
        _ => Err("the child saw a wrong pid or parent pid"),
    }
}

/// A forked child execs hello, which exits with 3.
fn fork_exec() -> Result<(), &'static str> {
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        let _ = rt::exec("hello");
        rt::exit(99);
    }
    match rt::wait(child) {
        Ok((p, WaitStatus::Exited, 3)) if p == child => Ok(()),
        _ => Err("the exec'd child did not exit with status 3"),
    }
}

fn exec_enoent() -> Result<(), &'static str> {
    match rt::exec("no-such-file") {
        Err(Errno::ENOENT) => Ok(()),
        _ => Err("exec of a missing program did not fail with ENOENT"),
    }
}

/// A child that never ends is killed; `wait` says so.
fn kill() -> Result<(), &'static str> {
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        loop {
            rt::sched_yield();
        }
    }
    rt::kill(child).map_err(|_| "kill failed")?;
    match rt::wait(child) {
        Ok((p, WaitStatus::Killed, _)) if p == child => {}
        _ => return Err("wait did not report the kill"),
    }
    match rt::kill(child) {
        Err(Errno::ESRCH) => Ok(()),
        _ => Err("killing a reaped task did not fail with ESRCH"),
    }
}

/// A task may end only its own descendants: a child cannot kill its parent or its
/// sibling, nor any server.
fn kill_eperm() -> Result<(), &'static str> {
    let sibling = rt::fork().map_err(|_| "fork failed")?;
    if sibling == 0 {
        loop {
            rt::sched_yield();
        }
    }
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        let parent = rt::getppid().unwrap_or(0);
        let denied = |pid| rt::kill(pid) == Err(Errno::EPERM);
        let ok = denied(parent) && denied(sibling) && denied(1);
        rt::exit(if ok { 0 } else { 1 });
    }
    let verdict = match rt::wait(child) {
        Ok((_, WaitStatus::Exited, 0)) => Ok(()),
        _ => Err("a child could kill its parent, its sibling or a server"),
    };
    rt::kill(sibling).map_err(|_| "killing our own child failed")?;
    match rt::wait(sibling) {
        Ok((_, WaitStatus::Killed, _)) => verdict,
        _ => Err("the sibling was not killed by its parent"),
    }
}

/// `wait(0)` collects every child, in whatever order they end.
fn wait_any() -> Result<(), &'static str> {
    let mut sum = 0;
    for status in [1, 2, 4] {
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            rt::exit(status);
        }
    }
    for _ in 0..3 {
        match rt::wait(0) {
            Ok((_, WaitStatus::Exited, s)) => sum += s,
            _ => return Err("wait(0) failed"),
        }
    }
    if sum != 7 {
        return Err("the statuses do not add up");
    }
    match rt::wait(0) {
        Err(Errno::ECHILD) => Ok(()),
        _ => Err("a fourth wait did not fail with ECHILD"),
    }
}

/// A child that forks and exits leaves an orphan, which init adopts.
fn orphan() -> Result<(), &'static str> {
    let child = rt::fork().map_err(|_| "fork failed")?;
    if child == 0 {
        let grandchild = rt::fork().unwrap_or(1);
        if grandchild == 0 {
            // Wait until the parent is gone, then check init adopted this task.
            for _ in 0..1000 {
                if rt::getppid() == Ok(rt::proto::pid::INIT) {
                    rt::exit(0);
                }
                rt::sched_yield();
            }
            println!("FAIL proc-orphan: the orphan was not adopted by init");
            rt::exit(1);
        }
        rt::exit(5);
    }
    match rt::wait(child) {
        Ok((_, WaitStatus::Exited, 5)) => Ok(()),
        _ => Err("the child did not exit with 5"),
    }
}

/// Ten fork/exit rounds leave vm's pages in use where they were.
fn memory_reclaimed() -> Result<(), &'static str> {
    let before = rt::vm_stats().map_err(|_| "vm_stats failed")?;
    for _ in 0..10 {
        let child = rt::fork().map_err(|_| "fork failed")?;
        if child == 0 {
            // Touch a fresh stack page and a heap-free anonymous page.
            let a = rt::mmap(
                0,
                4096,
                rt::PROT_READ | rt::PROT_WRITE,
                rt::MAP_PRIVATE | rt::MAP_ANONYMOUS,
                rt::NO_FD,
                0,
            )
            .unwrap_or(0);
            if a != 0 {
                // SAFETY: `a` is a fresh private read-write page of this task.
                unsafe { core::ptr::write_volatile(a as *mut u64, 1) };
            }
            rt::exit(0);
        }
        rt::wait(child).map_err(|_| "wait failed")?;
    }
    let after = rt::vm_stats().map_err(|_| "vm_stats failed")?;
    if after.pages_in_use > before.pages_in_use {
        println!(
            "proctest: pages in use {} before, {} after",
            before.pages_in_use, after.pages_in_use
        );
        return Err("pages in use grew");
    }
    Ok(())
}
