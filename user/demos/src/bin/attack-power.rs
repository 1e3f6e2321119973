//! An attacker at the power switch and the console: a task tries to power the machine off
//! and to print with every capability address it could name. Only init holds the
//! `PowerControl` capability (the kernel refuses `DebugPowerOff` without it); a task prints
//! with the `Console` capability init gave it, and with nothing else.
#![no_std]
#![no_main]

use abi::Error;
use abi::syscall::{Syscall, pack_putstr};
use demos::Checks;
use rt::println;
use rt::proto::task_slots;

rt::entry!(main);

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
    for cptr in addresses().filter(|&a| a != task_slots::CONSOLE) {
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
    println!("attack-power: printed with the console capability init gave it");
    c.failures
}
