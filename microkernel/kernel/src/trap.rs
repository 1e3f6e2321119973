//! What the kernel does on each exception: system calls, faults, interrupts, and the report
//! of exceptions taken by the kernel itself.

use crate::arch::exception::{KernelFrame, Kind, UserContext};
use crate::arch::{cpu, gic, timer};
use crate::object::irq;
use crate::{fastpath, fault, kprintln, platform, sched, syscall};
use aarch64_cpu::registers::{ESR_EL1, FAR_EL1};
use abi::Syscall;
use kernel_core::esr;
use tock_registers::interfaces::Readable;

/// ESR_EL1.EC of an `svc` from AArch64 and of a trapped FP/SIMD access.
const EC_SVC64: u8 = 0x15;
const EC_FP_ACCESS: u8 = 0x07;

/// Handles an exception from EL0 and returns the context of the thread to run next.
pub fn from_user(_saved: &mut UserContext, kind: Kind, aarch32: bool) -> &'static mut UserContext {
    sched::count_entry();
    if let Some(t) = sched::current() {
        match kind {
            Kind::Synchronous => {
                let esr = ESR_EL1.get();
                match esr::exception_class(esr) {
                    EC_SVC64 if !aarch32 => {
                        let fast = match t.get().ctx.x[8] {
                            n if n == Syscall::Call as u64 => fastpath::call(t),
                            n if n == Syscall::ReplyRecv as u64 => fastpath::reply_recv(t),
                            _ => None,
                        };
                        match fast {
                            Some(next) => return sched::switch_to(next),
                            None => syscall::handle(t),
                        }
                    }
                    EC_FP_ACCESS => sched::fp_trap(),
                    _ => fault::user_exception(t, esr, FAR_EL1.get()),
                }
            }
            Kind::Irq => interrupts(),
            Kind::Fiq | Kind::SError => fault::user_exception(t, ESR_EL1.get(), FAR_EL1.get()),
        }
    }
    sched::schedule()
}

/// Takes and handles every pending interrupt.
fn interrupts() {
    let p = platform::get();
    loop {
        let intid = p.gic.acknowledge();
        if intid == gic::SPURIOUS {
            return;
        }
        if intid == p.timer_intid {
            timer::on_interrupt();
            crate::object::timer::expire(timer::ticks());
            sched::tick();
        } else if !irq::deliver(intid) {
            kprintln!("kernel: interrupt {intid} has no handler; masked");
        }
        p.gic.end_of_interrupt(intid);
    }
}

/// Nothing to run: wait for an interrupt (with interrupts still masked, `wfi` wakes when one
/// is pending) and handle it.
pub fn idle_wait() {
    aarch64_cpu::asm::wfi();
    interrupts();
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

/// The root task faulted with nobody to handle it: the system cannot go on.
pub fn root_task_died(context: &UserContext, esr: u64, far: u64) -> ! {
    kprintln!(
        "UNHANDLED EXCEPTION: EL0 {} (EC {:#04x}) in init",
        esr::exception_class_name(esr),
        esr::exception_class(esr)
    );
    report(esr, context.elr, context.spsr);
    let _ = far;
    kprintln!(
        "  sp {:#018x}  x0 {:#018x}  x30 {:#018x}",
        context.sp,
        context.x[0],
        context.x[30]
    );
    kprintln!("kernel: init faulted and has no fault handler; nothing can go on");
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
