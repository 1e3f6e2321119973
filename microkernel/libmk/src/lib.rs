//! User-side system call stubs and typed capability handles, as libsel4 is to seL4: the only
//! place user code executes `svc`.
//!
//! Convention (`abi::syscall`): number in `x8`, capability in `x0`, `MsgInfo` in `x1`,
//! MR0..MR5 in `x2`..`x7`; on return `x0` = 0 or an error code, `x1` = `MsgInfo`,
//! `x2`..`x7` = MR0..MR5, `x8` = badge. Message registers past MR5 are in the IPC buffer,
//! whose address this library keeps in `TPIDR_EL0` (see [`set_ipc_buffer`]).
#![no_std]

pub mod cap;

use abi::message::{IpcBuffer, MsgInfo, REGISTER_MRS};
use abi::syscall::{PUTSTR_MAX, pack_putstr};
use abi::{Error, Syscall};
use core::arch::asm;

pub use cap::*;

/// A capability address: a slot index in the caller's CSpace root CNode.
pub type CPtr = u64;

/// What a system call returned: `x0`, `x1` (the message info for IPC and invocations),
/// MR0..MR5 and the badge (`x8`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub error: u64,
    pub x1: u64,
    pub mrs: [u64; REGISTER_MRS],
    pub badge: u64,
}

impl Reply {
    /// `x1` read as a message info (an empty one if it is not valid).
    pub fn info(&self) -> MsgInfo {
        MsgInfo::decode(self.x1).unwrap_or_default()
    }

    /// The message received, as registers carry it.
    pub fn message(&self) -> Message {
        Message {
            info: self.info(),
            mrs: self.mrs,
        }
    }
}

/// A message as it travels in registers: info and MR0..MR5 (the rest is in the IPC buffer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub info: MsgInfo,
    pub mrs: [u64; REGISTER_MRS],
}

impl Message {
    /// A message with `label` and the given register MRs (at most six).
    pub fn new(label: u64, mrs: &[u64]) -> Self {
        let mut m = Self {
            info: MsgInfo::new(label, mrs.len().min(REGISTER_MRS)),
            mrs: [0; REGISTER_MRS],
        };
        m.mrs[..m.info.length].copy_from_slice(&mrs[..m.info.length]);
        m
    }
}

/// A system call with raw registers; the kernel's answer exactly as it came. For tests that
/// must send numbers and arguments no typed stub would.
pub fn raw_syscall(number: u64, x0: u64, x1: u64, mrs: [u64; REGISTER_MRS]) -> Reply {
    let (r0, r1, r2, r3, r4, r5, r6, r7, r8);
    // SAFETY: `svc` enters the kernel, which validates every argument, changes only x0..x8 of
    // this thread's registers (all declared as outputs) and touches no memory of ours but
    // the registered IPC buffer, which Rust code reaches only through `ipc_buffer()`.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") x0 => r0,
            inout("x1") x1 => r1,
            inout("x2") mrs[0] => r2,
            inout("x3") mrs[1] => r3,
            inout("x4") mrs[2] => r4,
            inout("x5") mrs[3] => r5,
            inout("x6") mrs[4] => r6,
            inout("x7") mrs[5] => r7,
            inout("x8") number => r8,
            options(nostack),
        );
    }
    Reply {
        error: r0,
        x1: r1,
        mrs: [r2, r3, r4, r5, r6, r7],
        badge: r8,
    }
}

pub(crate) fn call(number: Syscall, x0: u64, msg: &Message) -> Result<Reply, Error> {
    let r = raw_syscall(number as u64, x0, msg.info.encode(), msg.mrs);
    abi::error::result_from_code(r.error).map(|()| r)
}

/// Registers the IPC buffer of the calling thread for this library (the kernel learns it
/// from `TcbConfigure`). Stored in `TPIDR_EL0`, which the kernel saves per thread.
pub fn set_ipc_buffer(vaddr: u64) {
    // SAFETY: TPIDR_EL0 is a software thread register with no architectural effect.
    unsafe { asm!("msr tpidr_el0, {}", in(reg) vaddr, options(nomem, nostack)) };
}

/// The calling thread's IPC buffer, if one was registered with [`set_ipc_buffer`].
pub fn ipc_buffer() -> Option<&'static mut IpcBuffer> {
    let v: u64;
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe { asm!("mrs {}, tpidr_el0", out(reg) v, options(nomem, nostack)) };
    // SAFETY: `set_ipc_buffer` is given the address at which this thread's IPC buffer frame
    // is mapped, writable, for the thread's life; one thread uses one buffer at a time.
    (v != 0).then(|| unsafe { &mut *(v as *mut IpcBuffer) })
}

/// `Invoke`: operation `label` on `cap` with `args` (more than six go through the IPC
/// buffer); returns the results' reply.
pub fn invoke(cap: CPtr, label: abi::Invocation, args: &[u64]) -> Result<Reply, Error> {
    let mut msg = Message::new(label as u64, args);
    if args.len() > REGISTER_MRS {
        let buf = ipc_buffer().ok_or(Error::InvalidArgument)?;
        let n = args.len().min(abi::message::MAX_MRS);
        buf.mrs[REGISTER_MRS..n].copy_from_slice(&args[REGISTER_MRS..n]);
        msg.info.length = n;
    }
    call(Syscall::Invoke, cap, &msg)
}

/// Prints `bytes` on the kernel console, [`PUTSTR_MAX`] bytes per system call, with the
/// `Console` capability at `console`.
pub fn debug_put_str(console: CPtr, bytes: &[u8]) -> Result<(), Error> {
    for chunk in bytes.chunks(PUTSTR_MAX) {
        let r = pack_putstr(chunk);
        let reply = raw_syscall(
            Syscall::DebugPutStr as u64,
            console,
            chunk.len() as u64,
            [r[0], r[1], r[2], r[3], r[4], r[5]],
        );
        abi::error::result_from_code(reply.error)?;
    }
    Ok(())
}

/// Powers the machine off with the `PowerControl` capability at `power`; returns the
/// kernel's error if that is not one.
pub fn debug_power_off(power: CPtr) -> Error {
    let reply = raw_syscall(Syscall::DebugPowerOff as u64, power, 0, [0; REGISTER_MRS]);
    match abi::error::result_from_code(reply.error) {
        Err(e) => e,
        // The kernel never returns from a power-off it accepted.
        Ok(()) => Error::InvalidCapability,
    }
}

/// Timer ticks since boot, and ticks per second.
pub fn debug_ticks() -> (u64, u64) {
    let r = raw_syscall(Syscall::DebugTicks as u64, 0, 0, [0; REGISTER_MRS]);
    (r.x1, r.mrs[0])
}

/// The type of the capability at `cptr` (`abi::object::CapType` value).
pub fn debug_cap_type(cptr: CPtr) -> Result<u64, Error> {
    let r = raw_syscall(Syscall::DebugCapType as u64, cptr, 0, [0; REGISTER_MRS]);
    abi::error::result_from_code(r.error).map(|()| r.x1)
}

/// Kernel entries and address-space switches since boot (for benchmarks).
pub fn debug_counters() -> (u64, u64) {
    let r = raw_syscall(Syscall::DebugCounters as u64, 0, 0, [0; REGISTER_MRS]);
    (r.x1, r.mrs[0])
}

/// Gives the rest of the time slice to another thread of the same priority.
pub fn yield_now() {
    raw_syscall(Syscall::Yield as u64, 0, 0, [0; REGISTER_MRS]);
}

/// The PMU cycle counter (`PMCCNTR_EL0`), which under QEMU `-icount` counts guest
/// instructions exactly; the kernel starts it at its entry and lets EL0 read it.
pub fn cycle_counter() -> u64 {
    let v: u64;
    // SAFETY: a register read; the kernel enabled EL0 access (PMUSERENR_EL0).
    unsafe { asm!("mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// PMU event counter 0 (`PMEVCNTR0_EL0`), which the kernel programs at its entry to count
/// instructions retired (event 0x08) at EL0 and EL1 and lets EL0 read. Unlike
/// [`cycle_counter`] it does not advance while the CPU idles: under QEMU `-icount` the clock
/// (and with it the cycle counter) jumps to the next timer deadline when every CPU waits in
/// `wfi`, for instance for a disk request. The counter is 32 bits wide on Cortex-A72 (PMUv3
/// before v3p5) and wraps: take differences with [`instructions_between`].
pub fn instructions_retired() -> u64 {
    let v: u64;
    // SAFETY: a register read; the kernel enabled EL0 access (PMUSERENR_EL0.EN | .ER).
    unsafe { asm!("mrs {}, pmevcntr0_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Instructions retired from `start` to `end` (two [`instructions_retired`] readings less
/// than 2^32 instructions apart), across a wrap of the 32-bit counter.
pub fn instructions_between(start: u64, end: u64) -> u64 {
    end.wrapping_sub(start) & 0xffff_ffff
}

/// The generic timer's virtual count (`CNTVCT_EL0`) and its frequency (`CNTFRQ_EL0`).
pub fn virtual_counter() -> (u64, u64) {
    let (count, freq): (u64, u64);
    // SAFETY: register reads; the kernel enabled EL0 access (CNTKCTL_EL1.EL0VCTEN).
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", "mrs {}, cntfrq_el0", out(reg) count, out(reg) freq, options(nomem, nostack))
    };
    (count, freq)
}
