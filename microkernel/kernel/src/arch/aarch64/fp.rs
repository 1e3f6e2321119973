//! FP/SIMD registers: lazy switching. EL0 runs with FP trapped unless its registers are the
//! ones in the CPU; the first FP instruction after a switch traps (ESR EC 0x07) and the
//! kernel swaps the register file (see `sched::fp_trap`). The kernel itself never uses FP.

use crate::object::tcb::FpState;
use aarch64_cpu::registers::CPACR_EL1;
use tock_registers::interfaces::Writeable;

/// Lets EL0 use FP/SIMD (true) or makes its first use trap (false). EL1 may always use it.
pub fn set_enabled(enabled: bool) {
    if enabled {
        CPACR_EL1.write(CPACR_EL1::FPEN::TrapNothing);
    } else {
        CPACR_EL1.write(CPACR_EL1::FPEN::TrapEl0);
    }
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Saves q0..q31, FPCR and FPSR.
pub fn save(state: &mut FpState) {
    let p = state as *mut FpState;
    // SAFETY: `p` is an exclusive, 16-byte aligned FpState of 32 * 16 + 16 bytes, exactly
    // what the stores cover; CPACR_EL1 never traps FP at EL1.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{p}, #0]",
            "stp q2, q3, [{p}, #32]",
            "stp q4, q5, [{p}, #64]",
            "stp q6, q7, [{p}, #96]",
            "stp q8, q9, [{p}, #128]",
            "stp q10, q11, [{p}, #160]",
            "stp q12, q13, [{p}, #192]",
            "stp q14, q15, [{p}, #224]",
            "stp q16, q17, [{p}, #256]",
            "stp q18, q19, [{p}, #288]",
            "stp q20, q21, [{p}, #320]",
            "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]",
            "stp q26, q27, [{p}, #416]",
            "stp q28, q29, [{p}, #448]",
            "stp q30, q31, [{p}, #480]",
            "mrs {t}, fpcr",
            "str {t}, [{p}, #512]",
            "mrs {t}, fpsr",
            "str {t}, [{p}, #520]",
            p = in(reg) p,
            t = out(reg) _,
            options(nostack),
        )
    };
}

/// Loads q0..q31, FPCR and FPSR.
pub fn restore(state: &FpState) {
    let p = state as *const FpState;
    // SAFETY: `p` is a 16-byte aligned FpState read in full; the registers loaded belong to
    // EL0 and the kernel does not use them.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{p}, #0]",
            "ldp q2, q3, [{p}, #32]",
            "ldp q4, q5, [{p}, #64]",
            "ldp q6, q7, [{p}, #96]",
            "ldp q8, q9, [{p}, #128]",
            "ldp q10, q11, [{p}, #160]",
            "ldp q12, q13, [{p}, #192]",
            "ldp q14, q15, [{p}, #224]",
            "ldp q16, q17, [{p}, #256]",
            "ldp q18, q19, [{p}, #288]",
            "ldp q20, q21, [{p}, #320]",
            "ldp q22, q23, [{p}, #352]",
            "ldp q24, q25, [{p}, #384]",
            "ldp q26, q27, [{p}, #416]",
            "ldp q28, q29, [{p}, #448]",
            "ldp q30, q31, [{p}, #480]",
            "ldr {t}, [{p}, #512]",
            "msr fpcr, {t}",
            "ldr {t}, [{p}, #520]",
            "msr fpsr, {t}",
            p = in(reg) p,
            t = out(reg) _,
            options(nostack),
        )
    };
}
