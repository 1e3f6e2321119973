//! POSIX-shaped calls: memory mappings (to vm) and processes (to init, the process server).
//! Each is one `Call` with a typed request of `proto` ([`VmRequest`], [`ProcRequest`]) on
//! the task's badged endpoint capability (`proto::task_slots`), whose reply is an errno or
//! the request's results.

use core::convert::Infallible;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::ipc::Client;
use libmk::{Cap, Notification};
use proto::object::{MmapObject, Msync};
use proto::{Name, ProcRequest, VmRequest, task_slots};

pub use proto::{
    Errno, MemoryReply, RegionInfo, RegionKind, SpaceInfo, TaskEntry, TaskState, VmStats,
    WaitStatus,
};

pub const PROT_NONE: u64 = proto::prot::NONE;
pub const PROT_READ: u64 = proto::prot::READ;
pub const PROT_WRITE: u64 = proto::prot::WRITE;
pub const PROT_EXEC: u64 = proto::prot::EXEC;
pub const MAP_SHARED: u64 = proto::map::SHARED;
pub const MAP_PRIVATE: u64 = proto::map::PRIVATE;
pub const MAP_FIXED: u64 = proto::map::FIXED;
pub const MAP_ANONYMOUS: u64 = proto::map::ANONYMOUS;
/// `fd` for anonymous mappings.
pub const NO_FD: u64 = u64::MAX;

const VM: Client = Client::at(task_slots::VM);
const PROC: Client = Client::at(task_slots::PROC);
const CHILD_NOTIFY: Cap<Notification> = Cap::from_cptr(task_slots::CHILD_NOTIFY);

/// This task's pid (from `x0` at start; a fork child asks init).
static PID: AtomicU64 = AtomicU64::new(0);

pub(crate) fn set_pid(pid: u64) {
    PID.store(pid, Ordering::Relaxed);
}

/// `mmap(addr, len, prot, flags, fd, off)`: the address of the new mapping. A mapping of a
/// descriptor (a file's or a shm object's: `crate::shm::owner` tells by its number) is a
/// memory object: its owner gives a handle bound to this task (`GetObject`, checked
/// writable for a shared writable mapping), then vm claims it from the owner and maps it
/// (`MmapObject`). If vm refuses, the handle goes back to its owner (vm has released it
/// already if it had claimed it; the owner then just answers `EBADF`).
pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64, off: u64) -> Result<u64, Errno> {
    if fd != NO_FD && flags & MAP_ANONYMOUS == 0 {
        let writable = prot & PROT_WRITE != 0 && flags & MAP_SHARED != 0;
        let (pager, handle, _) = crate::shm::object_of(fd, writable)?;
        let req = MmapObject {
            addr,
            len,
            prot,
            flags,
            pager,
            handle,
            offset: off,
        };
        let mapped = req.map(&VM);
        if mapped.is_err() {
            let _ = crate::shm::release_object(pager, handle);
        }
        return mapped;
    }
    VmRequest::mmap(&VM, addr, len, prot, flags, fd, off)
}

/// `msync(addr, len, MS_SYNC)`: the shared file and shm pages of the range written back by
/// their pager (`ENOMEM` if part of the range is not mapped, `EINVAL` for an unaligned
/// address).
pub fn msync(addr: u64, len: u64) -> Result<(), Errno> {
    msync_flags(addr, len, MS_SYNC)
}

/// `msync(addr, len, flags)` with `MS_ASYNC`, `MS_SYNC`, `MS_INVALIDATE` (`EINVAL` for
/// both `MS_ASYNC` and `MS_SYNC`, or an unknown bit).
pub fn msync_flags(addr: u64, len: u64, flags: u64) -> Result<(), Errno> {
    Msync { addr, len, flags }.msync(&VM)
}

pub const MS_ASYNC: u64 = proto::object::ms::ASYNC;
pub const MS_INVALIDATE: u64 = proto::object::ms::INVALIDATE;
pub const MS_SYNC: u64 = proto::object::ms::SYNC;

/// `munmap(addr, len)`.
pub fn munmap(addr: u64, len: u64) -> Result<(), Errno> {
    VmRequest::munmap(&VM, addr, len)
}

/// `mprotect(addr, len, prot)`.
pub fn mprotect(addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
    VmRequest::mprotect(&VM, addr, len, prot)
}

/// Prints this task's regions and resident pages on the console (vm prints them).
pub fn vmmap() -> Result<(), Errno> {
    VmRequest::vmmap(&VM)
}

/// vm's counters.
pub fn vm_stats() -> Result<VmStats, Errno> {
    VmRequest::vm_stats(&VM)
}

/// Task `pid`'s regions and resident pages (vm's `SpaceInfo`; any task's).
pub fn space_info(pid: u64) -> Result<SpaceInfo, Errno> {
    VmRequest::space_info(&VM, pid)
}

/// Task `pid`'s first region ending above `from` (vm's `RegionAt`): a listing of another
/// task's regions asks from 0, then from each answer's `end`. `ENOENT` past the last.
pub fn region_at(pid: u64, from: u64) -> Result<RegionInfo, Errno> {
    VmRequest::region_at(&VM, pid, from)
}

/// The task with the lowest pid from `from` on (init's `TaskAt`): `ps` asks from 0, then
/// from each answer's pid + 1. `ESRCH` past the last.
pub fn task_at(from: u64) -> Result<TaskEntry, Errno> {
    ProcRequest::task_at(&PROC, from)
}

/// The machine's RAM and what init gave each server (init's `Memory`, for `free`).
pub fn memory() -> Result<MemoryReply, Errno> {
    ProcRequest::memory(&PROC)
}

/// This task's pid.
pub fn getpid() -> u64 {
    PID.load(Ordering::Relaxed)
}

/// The parent's pid (init's when the parent has ended).
pub fn getppid() -> Result<u64, Errno> {
    ProcRequest::get_pid(&PROC).map(|r| r.parent)
}

/// A program's name as the protocol carries it: `ENOENT` for the empty name and
/// `ENAMETOOLONG` past [`Name::MAX`] bytes (POSIX `execve`), `EINVAL` for a name with a NUL.
fn program_name(name: &str) -> Result<Name, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > Name::MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(Name::new(name)?)
}

/// Starts program `name` (`bin/<name>` on the disk, else the initrd's) as a child of this
/// task, with argv = [`name`] and this task's environment; its pid.
pub fn spawn(name: &str) -> Result<u64, Errno> {
    spawn_with(name, core::iter::once(name), crate::environ())
}

/// `spawn` with arguments: argv as given (`argv[0]` is the program's name by custom; it
/// must not be empty) and this task's environment.
pub fn spawnv(name: &str, argv: &[&str]) -> Result<u64, Errno> {
    spawn_with(name, argv.iter().copied(), crate::environ())
}

/// `spawn` with arguments and an environment (`NAME=value` strings). `E2BIG` past
/// `proto::args::ARG_MAX` bytes or `MAX_ARGS` strings, `EINVAL` for an empty argv or a
/// malformed string.
pub fn spawnve(name: &str, argv: &[&str], envp: &[&str]) -> Result<u64, Errno> {
    spawn_with(name, argv.iter().copied(), envp.iter().copied())
}

fn spawn_with<'a, 'e>(
    name: &str,
    argv: impl Iterator<Item = &'a str> + Clone,
    envp: impl Iterator<Item = &'e str> + Clone,
) -> Result<u64, Errno> {
    let name = program_name(name)?;
    put_args(argv, envp)?;
    ProcRequest::spawn_args(&PROC, name)
}

/// Puts `argv` and `envp` in the outgoing argument area, the working directory as `PWD`
/// (`crate::cwd`: a `PWD` of `envp` is replaced; at the root `envp` goes as given).
fn put_args<'a, 'e>(
    argv: impl Iterator<Item = &'a str> + Clone,
    envp: impl Iterator<Item = &'e str> + Clone,
) -> Result<(), Errno> {
    match crate::cwd::pwd_entry() {
        Some(pwd) => {
            let mut env: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
            for e in envp.filter(|e| !e.starts_with("PWD=")) {
                env.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                env.push(e);
            }
            env.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            env.push(&pwd);
            crate::args::put(argv, env.iter().copied())
        }
        None => crate::args::put(argv, envp),
    }
}

/// Replaces this task's program with `name` (argv = [`name`], the environment kept);
/// returns only on failure.
pub fn exec(name: &str) -> Result<Infallible, Errno> {
    exec_with(name, core::iter::once(name), crate::environ())
}

/// `exec` with arguments (POSIX `execv`): the environment kept.
pub fn execv(name: &str, argv: &[&str]) -> Result<Infallible, Errno> {
    exec_with(name, argv.iter().copied(), crate::environ())
}

/// `exec` with arguments and an environment (POSIX `execve`).
pub fn execve(name: &str, argv: &[&str], envp: &[&str]) -> Result<Infallible, Errno> {
    exec_with(name, argv.iter().copied(), envp.iter().copied())
}

fn exec_with<'a, 'e>(
    name: &str,
    argv: impl Iterator<Item = &'a str> + Clone,
    envp: impl Iterator<Item = &'e str> + Clone,
) -> Result<Infallible, Errno> {
    let name = program_name(name)?;
    put_args(argv, envp)?;
    crate::fastio::before_exec();
    crate::file::before_exec();
    ProcRequest::exec_args(&PROC, name)?;
    // init never replies to a successful exec: the thread restarts in the new program.
    Err(Errno::EIO)
}

/// Asks init to end the session and power the machine off (it ends every task and writes
/// every file back first). Returns only on failure: `EPERM` unless this task is the program
/// init started for the session.
pub fn shutdown() -> Result<Infallible, Errno> {
    ProcRequest::power_off(&PROC)?;
    Err(Errno::EIO)
}

/// `sync()`: returns once the file and shm servers have dropped the descriptors of every
/// task that ended before the call (init tells them asynchronously) and every dirty block
/// of every file is on the disk. `EIO` if a write-back failed.
pub fn sync() -> Result<(), Errno> {
    ProcRequest::sync(&PROC)
}

/// Ends this task with `status`; its parent's `wait` sees it.
pub fn exit(status: i32) -> ! {
    if crate::is_root() {
        // The root task has nobody to report to.
        crate::power_off();
    }
    // init does not reply.
    let _ = ProcRequest::exit(&PROC, status);
    // Only reached if init refused: nothing sensible is left but to stop running.
    loop {
        libmk::yield_now();
    }
}

/// Waits for child `pid` (0, or `u64::MAX` as C's -1: any child) to end: its pid, how it ended and the exit status
/// or fault address. `ECHILD` if there is no such child.
pub fn wait(pid: u64) -> Result<(u64, WaitStatus, u64), Errno> {
    loop {
        match ProcRequest::wait(&PROC, pid) {
            Ok(r) => return Ok((r.pid, r.how, r.value)),
            Err(Errno::EAGAIN) => {
                CHILD_NOTIFY.wait().map_err(Errno::from)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// [`wait`] that does not wait (`waitpid` with `WNOHANG`): `None` while child `pid` (or,
/// for 0 or `u64::MAX`, every child) still runs. `ECHILD` if there is no such child.
pub fn try_wait(pid: u64) -> Result<Option<(u64, WaitStatus, u64)>, Errno> {
    match ProcRequest::wait(&PROC, pid) {
        Ok(r) => Ok(Some((r.pid, r.how, r.value))),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ends task `pid` (a parent's `wait` then sees `WaitStatus::Killed`).
pub fn kill(pid: u64) -> Result<(), Errno> {
    ProcRequest::kill(&PROC, pid)
}

/// Gives the processor to another task of the same priority.
pub fn sched_yield() {
    libmk::yield_now();
}

/// Creates a child that is a copy of this task: the child's pid in the parent, 0 in the
/// child.
pub fn fork() -> Result<u64, Errno> {
    // Positions the runtime keeps go to the file server, which keeps them from now on:
    // parent and child share them (`crate::fastio`).
    crate::fastio::before_fork();
    crate::file::before_fork();
    // SAFETY: `__rt_fork` follows the C calling convention (it saves and restores every
    // callee-saved register itself) and touches only its own stack frame.
    let r = unsafe { __rt_fork() };
    match r {
        0 => {
            // The child: a new thread, so its thread register is not set yet.
            crate::set_user_ipc_buffer();
            if let Ok(r) = ProcRequest::get_pid(&PROC) {
                set_pid(r.pid);
            }
            Ok(0)
        }
        r if r > 0 => Ok(r as u64),
        r => Err(Errno::try_from(r.unsigned_abs()).unwrap_or(Errno::EIO)),
    }
}

unsafe extern "C" {
    /// Saves the callee-saved registers on the stack, asks init to fork with that stack and
    /// [`__rt_fork_child`] as the child's start, and returns the child's pid, or `-errno`;
    /// the child returns 0 from it.
    fn __rt_fork() -> i64;
}

/// Called by `__rt_fork` with the stack holding the saved registers and the address where
/// the child starts: the child's pid or `-errno`.
extern "C" fn fork_request(sp: u64, pc: u64) -> i64 {
    match ProcRequest::fork(&PROC, sp, pc) {
        Ok(pid) => i64::try_from(pid).unwrap_or(-(Errno::EIO as i64)),
        Err(e) => -(e as i64),
    }
}

// The frame `__rt_fork` saves (160 bytes, 16-aligned): x19..x30 at sp+0..96, d8..d15 at
// sp+96..160. The child starts at `__rt_fork_child` with that sp (its copy-on-write view of
// the parent's stack), reloads the frame and returns 0 to `fork`'s caller.
core::arch::global_asm!(
    ".section .text.__rt_fork, \"ax\"",
    ".global __rt_fork",
    ".type __rt_fork, %function",
    "__rt_fork:",
    "sub sp, sp, #160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "mov x0, sp",
    "adr x1, __rt_fork_child",
    "bl {request}",
    // The parent: x19..x28 and d8..d15 survived the call; x29 and x30 are reloaded.
    "ldp x29, x30, [sp, #80]",
    "add sp, sp, #160",
    "ret",
    ".size __rt_fork, . - __rt_fork",
    "",
    ".global __rt_fork_child",
    ".type __rt_fork_child, %function",
    "__rt_fork_child:",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "add sp, sp, #160",
    "mov x0, xzr",
    "ret",
    ".size __rt_fork_child, . - __rt_fork_child",
    request = sym fork_request,
);
