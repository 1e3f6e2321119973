//! The user runtime every program links: entry points, console output, the heap, the panic
//! handler, and the POSIX-shaped calls of [`posix`], [`file`] and [`shm`] (re-exported here).
//!
//! Three kinds of program, three entry macros; each defines `_start`, which the program is
//! entered at with `sp` = the top of its stack:
//! - [`root_entry!`]: the root task (init); `x0` = the boot-info page;
//! - [`server_entry!`]: a server init starts (vm, zero); `x0` = its startup page
//!   (`proto::STARTUP_VADDR`), its IPC buffer at `proto::USER_IPC_BUFFER`;
//! - [`entry!`]: a user task; `x0` = its pid, its IPC buffer at `proto::USER_IPC_BUFFER`,
//!   its arguments at `proto::USER_ARGS` ([`args()`], [`env`]); `main` is `fn() -> i32` or
//!   `fn(&[&str]) -> i32` (given argv); when `main` returns, the task exits with its
//!   result.
#![no_std]

extern crate alloc;

pub mod args;
pub mod console;
pub mod cwd;
pub mod direct;
pub mod fastio;
pub mod file;
pub mod heap;
pub mod ipc;
pub mod posix;
pub mod shm;
pub mod stdio;

pub use abi::bootinfo::BootInfo;
pub use args::{args, env, environ};
pub use cwd::{chdir, getcwd};
pub use file::{DirEntry, ReadDir, closedir, mkdir, opendir, read_dir, readdir, rename, rmdir};
pub use file::{
    FileStats, O_APPEND, O_CLOEXEC, O_DIRECT, O_DIRECTORY, O_DSYNC, O_LARGEFILE, O_NOATIME,
    O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_SYNC, O_WRONLY, Stat, Whence, close, dup,
    dup2, file_stats, fstat, ftruncate, lseek, open, open_sized, pipe, pipe2, pread, pwrite, read,
    stat, unlink, write,
};
pub use posix::*;
pub use proto;
pub use proto::startup::Startup;
pub use shm::{O_CREAT, O_EXCL, O_TRUNC, shm_open, shm_unlink};

use core::sync::atomic::{AtomicU8, Ordering};

/// Declares the root task's entry: `rt::root_entry!(main)` with
/// `fn main(&'static BootInfo) -> i32`. When `main` returns, the machine powers off.
#[macro_export]
macro_rules! root_entry {
    ($main:path) => {
        extern "C" fn __rt_start(bootinfo: u64) -> ! {
            $crate::start_root(bootinfo, $main)
        }
        $crate::__start_asm!(__rt_start);
    };
}

/// Declares a server's entry: `rt::server_entry!(main)` with
/// `fn main(&'static proto::startup::Startup) -> !`.
#[macro_export]
macro_rules! server_entry {
    ($main:path) => {
        extern "C" fn __rt_start(startup: u64) -> ! {
            $crate::start_server(startup, $main)
        }
        $crate::__start_asm!(__rt_start);
    };
}

/// Declares a user task's entry: `rt::entry!(main)` with `fn main() -> i32` or
/// `fn main(args: &[&str]) -> i32` (argv, `args[0]` the program's name); the task exits
/// with `main`'s result.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        extern "C" fn __rt_start(pid: u64) -> ! {
            $crate::start_task(pid, $main)
        }
        $crate::__start_asm!(__rt_start);
    };
}

/// `_start`: clears the frame pointer and link register (so backtraces end here) and calls
/// the Rust start function with `x0` unchanged.
#[doc(hidden)]
#[macro_export]
macro_rules! __start_asm {
    ($start:ident) => {
        core::arch::global_asm!(
            ".section .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "mov x29, xzr",
            "mov x30, xzr",
            "bl {start}",
            "b .",
            start = sym $start,
        );
    };
}

/// What kind of program this is (decides what a panic does).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Role {
    Root = 0,
    Server = 1,
    Task = 2,
}

static ROLE: AtomicU8 = AtomicU8::new(Role::Root as u8);

fn role() -> Role {
    match ROLE.load(Ordering::Relaxed) {
        1 => Role::Server,
        2 => Role::Task,
        _ => Role::Root,
    }
}

/// Whether this program is the root task (init).
pub(crate) fn is_root() -> bool {
    role() == Role::Root
}

/// Whether this program is a user task (it has argument areas).
pub(crate) fn is_task() -> bool {
    role() == Role::Task
}

/// What [`entry!`] accepts as a task's `main`: `fn() -> i32` ([`NoArgs`]) or
/// `fn(&[&str]) -> i32` ([`WithArgs`], given argv). The form is told by the function's
/// type, so existing programs need no change.
pub trait Main<Form> {
    fn run(self) -> i32;
}

/// `main` takes no arguments.
pub struct NoArgs;
/// `main` takes argv.
pub struct WithArgs;

impl<F: FnOnce() -> i32> Main<NoArgs> for F {
    fn run(self) -> i32 {
        self()
    }
}

/// argv of up to this many strings is handed to `main` from the stack: the heap stays
/// untouched (demos that count vm's pages see only what they do themselves).
const STACK_ARGS: usize = 16;

impl<F: FnOnce(&[&str]) -> i32> Main<WithArgs> for F {
    fn run(self) -> i32 {
        let argc = args().count();
        if argc <= STACK_ARGS {
            let mut argv = [""; STACK_ARGS];
            for (slot, arg) in argv.iter_mut().zip(args()) {
                *slot = arg;
            }
            self(&argv[..argc])
        } else {
            let argv: alloc::vec::Vec<&str> = args().collect();
            self(&argv)
        }
    }
}

/// Registers the IPC buffer at `USER_IPC_BUFFER` and accepts no capabilities until asked.
fn set_user_ipc_buffer() {
    libmk::set_ipc_buffer(proto::USER_IPC_BUFFER);
    if let Some(buf) = libmk::ipc_buffer() {
        buf.receive_slot = abi::message::NULL_CPTR;
    }
}

/// Runs the root task's `main`, then powers off.
pub fn start_root(bootinfo: u64, main: fn(&'static BootInfo) -> i32) -> ! {
    ROLE.store(Role::Root as u8, Ordering::Relaxed);
    // SAFETY: the kernel maps a read-only, initialised `BootInfo` page at this address for
    // the task's whole life and passes the address in x0 (abi::bootinfo).
    let info = unsafe { &*(bootinfo as *const BootInfo) };
    let status = main(info);
    if status != 0 {
        println!("FAIL exit: init exited with status {status}");
    }
    power_off()
}

/// Powers the machine off with the root task's `PowerControl` capability (only init has
/// one; anyone else just stops).
pub fn power_off() -> ! {
    let e = libmk::debug_power_off(abi::object::init_slots::POWER);
    println!("power off refused: {e:?}");
    stop()
}

/// Stops this thread for good: an undefined instruction, which the kernel reports to the
/// thread's fault handler (init, for a server) and never resumes.
pub fn stop() -> ! {
    loop {
        // SAFETY: `udf` only raises an undefined-instruction exception; it touches no memory
        // or register.
        unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
    }
}

/// Runs a server's `main`.
pub fn start_server(startup: u64, main: fn(&'static Startup) -> !) -> ! {
    ROLE.store(Role::Server as u8, Ordering::Relaxed);
    console::set_console(proto::startup::SERVER_CONSOLE_SLOT);
    set_user_ipc_buffer();
    // SAFETY: init maps the filled-in startup page read-only at this address for the
    // server's whole life and passes the address in x0 (proto::startup).
    let startup = unsafe { &*(startup as *const Startup) };
    main(startup)
}

/// Runs a user task's `main` and exits with its result.
pub fn start_task<Form>(pid: u64, main: impl Main<Form>) -> ! {
    ROLE.store(Role::Task as u8, Ordering::Relaxed);
    console::use_descriptors();
    set_user_ipc_buffer();
    posix::set_pid(pid);
    heap::enable_growth();
    let status = main.run();
    posix::exit(status)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("FAIL panic: {info}");
    match role() {
        Role::Task => posix::exit(101),
        // A server ends alone: init, its fault handler, reports it and the rest runs on.
        Role::Server => stop(),
        Role::Root => power_off(),
    }
}
