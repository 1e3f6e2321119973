//! What the kernel does on each exception: system calls, interrupts, and reports of the
//! exceptions nobody handles.

use crate::arch::cpu;
use crate::arch::exception::{KernelFrame, Kind, UserContext};
use crate::{kprintln, platform, syscall};
use aarch64_cpu::registers::{ESR_EL1, FAR_EL1};
use kernel_core::esr;
use tock_registers::interfaces::Readable;

/// ESR_EL1.EC of an `svc` from AArch64.
const EC_SVC64: u8 = 0x15;

/// Handles an exception from EL0; on return the thread resumes with `context`.
pub fn from_user(context: &mut UserContext, kind: Kind) {
    match kind {
        Kind::Synchronous => {
            let esr = ESR_EL1.get();
            if esr::exception_class(esr) == EC_SVC64 {
                syscall::handle(context);
            } else {
                unexpected_user(context, esr::exception_class_name(esr));
            }
        }
        Kind::Irq => interrupt(),
        Kind::Fiq => unexpected_user(context, "FIQ"),
        Kind::SError => unexpected_user(context, "SError"),
    }
}

/// Takes and handles one pending interrupt.
fn interrupt() {
    let p = platform::get();
    let intid = p.gic.acknowledge();
    if intid == crate::arch::gic::SPURIOUS {
        return;
    }
    if intid == p.timer_intid {
        crate::arch::timer::on_interrupt();
    } else {
        kprintln!("kernel: unexpected interrupt {intid}");
    }
    p.gic.end_of_interrupt(intid);
}

/// A user exception with no one to deliver it to. Until threads have fault endpoints the
/// only user thread is init, so nothing is left to run: report and power off.
pub fn unexpected_user(context: &UserContext, what: &str) -> ! {
    let esr = ESR_EL1.get();
    kprintln!(
        "UNHANDLED EXCEPTION: EL0 {what} (EC {:#04x})",
        esr::exception_class(esr)
    );
    report(esr, context.elr, context.spsr);
    kprintln!(
        "  sp {:#018x}  x0 {:#018x}  x30 {:#018x}",
        context.sp,
        context.x[0],
        context.x[30]
    );
    kprintln!("kernel: init faulted and has no fault handler; no thread left to run");
    platform::power_off()
}

/// An exception taken by the kernel itself: a kernel bug. Report and power off.
pub fn from_kernel(frame: &KernelFrame, kind: Kind) -> ! {
    crate::console::seize();
    let esr = ESR_EL1.get();
    let what = match kind {
        Kind::Synchronous => esr::exception_class_name(esr),
        Kind::Irq => "IRQ",
        Kind::Fiq => "FIQ",
        Kind::SError => "SError",
    };
    kprintln!(
        "UNHANDLED EXCEPTION: EL1 {what} (EC {:#04x})",
        esr::exception_class(esr)
    );
    report(esr, frame.elr, frame.spsr);
    kprintln!(
        "  sp {:#018x}  x29 {:#018x}  x30 {:#018x}",
        frame.sp,
        frame.x[29],
        frame.x[30]
    );
    platform::power_off()
}

fn report(esr: u64, elr: u64, spsr: u64) {
    kprintln!(
        "  ESR {esr:#010x}  FAR {:#018x}  ELR {elr:#018x}  SPSR {spsr:#010x}",
        FAR_EL1.get()
    );
    if let Some(status) = esr::fault_status_name(esr) {
        let access = match esr::abort_is_write(esr) {
            Some(true) => ", write",
            Some(false) => ", read",
            None => "",
        };
        kprintln!("  fault: {status}{access}");
    }
    kprintln!("  cycle counter {}", cpu::cycle_counter());
}
