//! init, the root task: the first user task, and the process server.
//!
//! It greets, then does what `/chosen/bootargs` asks:
//! - `run=<name>`: starts the servers (zero, vm, file, shm) and program `name` from the
//!   initrd, serves process requests until it ends, and reports how (`proc`);
//! - nothing (`make run`): the same with `run=tour`, every demo in the lecture's order;
//! - `bench=boot`: prints `boot_to_init_instructions` for `cargo xtask bench` (and runs a
//!   program only if `run=` asks for one).
//!
//! The kernel's own tests (`test=boot`, `test=kernel`, `test=fuzz`, `bench=kernel`) are not
//! init's: they are a root task of their own, `microkernel/ktest`, which the kernel boots
//! in init's place.
//!
//! When it returns, the runtime asks the kernel to power off.
#![no_std]
#![no_main]

// The `alloc` crate, under another name: `alloc` is init's object allocator.
extern crate alloc as liballoc;

use abi::bootinfo::{BootInfo, bootarg};
use rootalloc as alloc;
use rt::println;

mod proc;

rt::root_entry!(main);

fn main(info: &'static BootInfo) -> i32 {
    // Read first: instructions from kernel entry until init's first line.
    let boot_instructions = libmk::cycle_counter();
    println!("init: hello from user space");
    let args = info.bootargs();
    let bench = bootarg(args, "bench");
    match bench {
        None => {}
        Some(b"boot") => {
            println!("BENCH boot_to_init_instructions {boot_instructions} instructions")
        }
        Some(other) => println!(
            "FAIL bench: init runs bench=boot, not {:?} (bench=kernel is the ktest root task's)",
            core::str::from_utf8(other).unwrap_or("?")
        ),
    }
    if let Some(test) = bootarg(args, "test") {
        println!(
            "FAIL test: init does not run test={:?}: the kernel's tests are the ktest root task (`make run TEST=kernel`, or ARGS=\"test=...\", which boots it)",
            core::str::from_utf8(test).unwrap_or("?")
        );
        println!("init: done");
        return 1;
    }
    // Nothing asked (`make run`): the tour. A benchmark alone: nothing more.
    let run = bootarg(args, "run").or(bench.is_none().then_some(&b"tour"[..]));
    if let Some(name) = run {
        proc::run(info, core::str::from_utf8(name).unwrap_or("?"));
    }
    println!("init: done");
    0
}
