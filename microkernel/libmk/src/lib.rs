//! User-side system call stubs, as libsel4 is to seL4: the only place user code executes
//! `svc`, plus the EL0-readable counters.
//!
//! Convention (`abi::syscall`): number in `x8`, arguments in `x0`..`x6`, `x0` = 0 or an error
//! code on return, results in `x1`, `x2`. The kernel preserves every other register.
#![no_std]

use abi::syscall::{PUTSTR_MAX, pack_putstr};
use abi::{Error, Syscall};
use core::arch::asm;

/// A system call with raw arguments; returns `x0`, `x1`, `x2`. For tests that must send the
/// kernel numbers and arguments no typed stub would.
pub fn raw_syscall(number: u64, args: [u64; 7]) -> [u64; 3] {
    let (r0, r1, r2);
    // SAFETY: `svc` enters the kernel, which validates every argument and changes only
    // x0..x2 of this thread's registers (declared as outputs); no memory of ours is touched.
    unsafe {
        asm!(
            "svc #0",
            inout("x0") args[0] => r0,
            inout("x1") args[1] => r1,
            inout("x2") args[2] => r2,
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            in("x6") args[6],
            in("x8") number,
            options(nostack),
        );
    }
    [r0, r1, r2]
}

fn syscall(number: Syscall, args: [u64; 7]) -> Result<[u64; 2], Error> {
    let [r0, r1, r2] = raw_syscall(number as u64, args);
    abi::error::result_from_code(r0).map(|()| [r1, r2])
}

/// Prints `bytes` on the kernel console, [`PUTSTR_MAX`] bytes per system call.
pub fn debug_put_str(bytes: &[u8]) -> Result<(), Error> {
    for chunk in bytes.chunks(PUTSTR_MAX) {
        let r = pack_putstr(chunk);
        syscall(
            Syscall::DebugPutStr,
            [chunk.len() as u64, r[0], r[1], r[2], r[3], r[4], r[5]],
        )?;
    }
    Ok(())
}

/// Powers the machine off.
pub fn debug_power_off() -> ! {
    let _ = syscall(Syscall::DebugPowerOff, [0; 7]);
    // Only reached if the kernel refused; nothing sensible is left to do.
    loop {
        core::hint::spin_loop();
    }
}

/// Timer ticks since boot, and ticks per second.
pub fn debug_ticks() -> (u64, u64) {
    match syscall(Syscall::DebugTicks, [0; 7]) {
        Ok([ticks, hz]) => (ticks, hz),
        Err(_) => (0, 0),
    }
}

/// The PMU cycle counter (`PMCCNTR_EL0`), which under QEMU `-icount` counts guest
/// instructions exactly; the kernel starts it at its entry and lets EL0 read it.
pub fn cycle_counter() -> u64 {
    let v: u64;
    // SAFETY: a register read; the kernel enabled EL0 access (PMUSERENR_EL0).
    unsafe { asm!("mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
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
