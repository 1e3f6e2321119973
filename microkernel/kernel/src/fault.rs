//! Turning a user thread's exceptions into fault messages to its fault endpoint.

use crate::object::tcb::TcbRef;
use crate::{delete, ipc, kprintln};
use abi::Error;
use abi::message::{FaultLabel, vm_fault};
use kernel_core::esr;

/// ESR_EL1 exception classes (ARM ARM D17.2.37).
const EC_UNKNOWN: u8 = 0x00;
const EC_INSTRUCTION_ABORT_LOWER: u8 = 0x20;
const EC_PC_ALIGNMENT: u8 = 0x22;
const EC_DATA_ABORT_LOWER: u8 = 0x24;
const EC_SP_ALIGNMENT: u8 = 0x26;
/// DFSC/IFSC values: translation faults 0b0001LL, permission faults 0b0011LL, alignment 0x21.
const FSC_ALIGNMENT: u64 = 0x21;

/// A synchronous exception other than `svc` from thread `t`.
pub fn user_exception(t: TcbRef, esr: u64, far: u64) {
    let ip = t.get().ctx.elr;
    let ec = esr::exception_class(esr);
    let fsc = esr & 0x3f;
    let (label, mrs, length) = match ec {
        EC_DATA_ABORT_LOWER | EC_INSTRUCTION_ABORT_LOWER if fsc == FSC_ALIGNMENT => {
            (FaultLabel::AlignmentFault, [ip, esr, far, 0, 0, 0], 3)
        }
        EC_DATA_ABORT_LOWER | EC_INSTRUCTION_ABORT_LOWER => {
            let access = if ec == EC_INSTRUCTION_ABORT_LOWER {
                vm_fault::Access::Execute
            } else if esr::abort_is_write(esr) == Some(true) {
                vm_fault::Access::Write
            } else {
                vm_fault::Access::Read
            };
            let kind = match fsc & 0b11_1100 {
                0b00_0100 => vm_fault::Kind::Translation,
                0b00_1100 => vm_fault::Kind::Permission,
                _ => vm_fault::Kind::Other,
            };
            (
                FaultLabel::VmFault,
                [far, ip, access as u64, kind as u64, esr, 0],
                vm_fault::LENGTH,
            )
        }
        EC_PC_ALIGNMENT | EC_SP_ALIGNMENT => {
            (FaultLabel::AlignmentFault, [ip, esr, far, 0, 0, 0], 3)
        }
        EC_UNKNOWN => (FaultLabel::UndefinedInstruction, [ip, esr, 0, 0, 0, 0], 2),
        _ => (FaultLabel::UserException, [ip, esr, far, 0, 0, 0], 3),
    };
    deliver(t, label, mrs, length, esr, far);
}

/// An `svc` with an unknown number: a fault if the thread has a handler, else an error.
pub fn unknown_syscall(t: TcbRef, number: u64) {
    let c = &t.get().ctx;
    let mrs = [number, c.elr, c.x[0], c.x[1], c.x[2], c.x[3]];
    if !ipc::send_fault(t, FaultLabel::UnknownSyscall, mrs, 6) {
        ipc::set_result(t, Err(Error::InvalidSyscall));
    }
}

fn deliver(t: TcbRef, label: FaultLabel, mrs: [u64; 6], length: usize, esr: u64, far: u64) {
    if ipc::send_fault(t, label, mrs, length) {
        return;
    }
    if crate::root_task::is_root(t) {
        crate::trap::root_task_died(&t.get().ctx, esr, far);
    }
    kprintln!(
        "kernel: thread {:#x} faulted with no fault handler: {} (ESR {esr:#x}, FAR {far:#x}, pc {:#x}); suspended",
        t.pa(),
        esr::exception_class_name(esr),
        t.get().ctx.elr
    );
    delete::suspend(t);
}
