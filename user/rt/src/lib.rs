//! The user task runtime: entry point, console output, panic handler.
//!
//! A program names its `main` with [`entry!`]; the kernel enters `_start` with `x0` = the
//! boot-info page (root task) and `sp` = the top of its stack.
#![no_std]

pub mod console;

pub use abi::bootinfo::BootInfo;

/// Declares the program's entry: `rt::entry!(main)` with `fn main(&'static BootInfo) -> i32`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        extern "C" fn __rt_start(bootinfo: u64) -> ! {
            $crate::start(bootinfo, $main)
        }
        core::arch::global_asm!(
            ".section .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "mov x29, xzr",
            "mov x30, xzr",
            "bl {start}",
            "b .",
            start = sym __rt_start,
        );
    };
}

/// Runs `main` and ends the task with its result.
pub fn start(bootinfo: u64, main: fn(&'static BootInfo) -> i32) -> ! {
    // SAFETY: the kernel maps a read-only, initialised `BootInfo` page at this address for
    // the task's whole life and passes the address in x0 (abi::bootinfo).
    let info = unsafe { &*(bootinfo as *const BootInfo) };
    let status = main(info);
    exit(status)
}

/// Ends the task. The root task has nobody to report to yet, so this powers off.
pub fn exit(status: i32) -> ! {
    if status != 0 {
        println!("FAIL exit: init exited with status {status}");
    }
    libmk::debug_power_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("FAIL panic: {info}");
    libmk::debug_power_off()
}
