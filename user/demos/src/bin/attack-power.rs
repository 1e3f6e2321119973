//! An attacker at the power switch and the console: a task tries to power the machine off
//! and to print with every capability address it could name. Only init holds the
//! `PowerControl` capability (the kernel refuses `DebugPowerOff` without it); a task prints
//! with the `Console` capability init gave it, and with nothing else. A task may ask init to
//! power off (`rt::shutdown`) only if it is the session's program (`run=`): a child of it is
//! refused. This program ends by asking, and init writes the file it left unsynced back
//! before the machine goes off (the tools check the file on the disk afterwards).
#![no_std]
#![no_main]

use abi::Error;
use abi::syscall::{Syscall, pack_putstr};
use demos::Checks;
use rt::println;
use rt::proto::task_slots;

rt::entry!(main);

const PAGE: u64 = 4096;
/// The file left in the page cache at power-off, and its words.
const SYNC_FILE: &str = "POWER.DAT";
use demos::attack_power::word as power_word;

/// Every slot of the task's CNode, and addresses past it.
fn addresses() -> impl Iterator<Item = u64> {
    (0..(1u64 << task_slots::RADIX)).chain([1 << task_slots::RADIX, u64::MAX >> 1, u64::MAX])
}

fn main() -> i32 {
    let mut c = Checks { failures: 0 };
    let mut refused = true;
    for cptr in addresses() {
        refused &= libmk::debug_power_off(cptr) == Error::InvalidCapability;
    }
    // Still running: the machine did not go off.
    c.check(
        "attack-power-off-refused",
        refused,
        "DebugPowerOff from a task was not refused with InvalidCapability",
    );

    let text = pack_putstr(b"X");
    let mut silent = true;
    // A task holds no `Console` capability at all: its slot `CONSOLE` is the console
    // server's endpoint, and the kernel's console is the kernel's, init's and the servers'.
    for cptr in addresses() {
        let r = libmk::raw_syscall(
            Syscall::DebugPutStr as u64,
            cptr,
            1,
            [text[0], 0, 0, 0, 0, 0],
        );
        silent &= r.error == Error::InvalidCapability.code();
    }
    c.check(
        "attack-console-needs-capability",
        silent,
        "DebugPutStr without the Console capability was not refused",
    );
    println!("attack-power: printed through descriptor 1, the console server");

    // A child may not end the session.
    let refused = match rt::fork() {
        Ok(0) => rt::exit(match rt::shutdown() {
            Err(rt::Errno::EPERM) => 0,
            _ => 1,
        }),
        Ok(child) => matches!(rt::wait(child), Ok((_, rt::WaitStatus::Exited, 0))),
        Err(_) => false,
    };
    c.check(
        "attack-shutdown-child-refused",
        refused,
        "a task that is not the session's program was allowed to power off",
    );

    // Data only in the page cache (a shared mapping a child still running wrote and never
    // synced) must reach the disk when the session's program asks init to power off.
    let Ok(flag) = demos::shared_anon(1, rt::PROT_READ | rt::PROT_WRITE) else {
        println!("FAIL attack-power-file-written: no shared page");
        return 1;
    };
    if let Ok(0) = rt::fork() {
        let written = rt::open(SYNC_FILE, rt::O_RDWR | rt::O_CREAT).and_then(|fd| {
            rt::ftruncate(fd, PAGE)?;
            let a = rt::mmap(
                0,
                PAGE,
                rt::PROT_READ | rt::PROT_WRITE,
                rt::MAP_SHARED,
                fd,
                0,
            )?;
            for i in 0..PAGE / 8 {
                demos::poke(a + i * 8, power_word(i));
            }
            rt::close(fd)
        });
        demos::poke(flag, if written.is_ok() { 1 } else { 2 });
        loop {
            rt::sched_yield();
        }
    }
    while demos::peek(flag) == 0 {
        rt::sched_yield();
    }
    c.check(
        "attack-power-file-written",
        demos::peek(flag) == 1,
        "a child could not write the file through a shared mapping",
    );
    if c.failures != 0 {
        return c.failures;
    }
    let r = rt::shutdown();
    println!("FAIL attack-power-shutdown: the session's program could not power off: {r:?}");
    1
}
