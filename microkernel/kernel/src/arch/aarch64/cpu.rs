//! CPU identification, PMU and FP access set-up, and halting.

use aarch64_cpu::registers::{CNTKCTL_EL1, CPACR_EL1, MIDR_EL1, MPIDR_EL1};
use tock_registers::interfaces::{Readable, Writeable};

pub fn midr() -> u64 {
    MIDR_EL1.get()
}

/// MPIDR_EL1 affinity fields Aff3..Aff0 packed as in GICR_TYPER.Affinity.
pub fn affinity() -> u32 {
    let m = MPIDR_EL1.get();
    ((((m >> 32) & 0xff) << 24) | (m & 0xff_ffff)) as u32
}

/// Lets EL0 use FP/SIMD (CPACR_EL1.FPEN), read the virtual counter (CNTKCTL_EL1.EL0VCTEN) and
/// read the PMU cycle counter and event counters (PMUSERENR_EL0.EN | .CR | .ER): the cycle
/// counter counts guest instructions under QEMU `-icount` (plus the clock's jumps while the CPU
/// idles), event counter 0 counts instructions retired (boot.rs); benchmarks measure with them.
///
/// The kernel itself is built soft-float and never touches FP/SIMD registers; with one user
/// thread no FP state needs switching yet.
pub fn enable_user_access() {
    CPACR_EL1.write(CPACR_EL1::FPEN::TrapNothing);
    // EL0 may also read the physical counter and program the EL1 physical timer, which the
    // kernel does not use: it is a device user space can own (INTID 30).
    CNTKCTL_EL1
        .write(CNTKCTL_EL1::EL0VCTEN::SET + CNTKCTL_EL1::EL0PCTEN::SET + CNTKCTL_EL1::EL0PTEN::SET);
    // SAFETY: PMUSERENR_EL0 only grants EL0 read access to PMU counters.
    unsafe {
        core::arch::asm!("msr pmuserenr_el0, {}", "isb", in(reg) 0b1101u64, options(nostack))
    };
}

/// The PMU cycle counter (instructions under icount), started at kernel entry.
pub fn cycle_counter() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Stops this core for good.
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// For the `kernel.selftest=data-abort` boot test: reads an address nothing maps (just below
/// the device window, in the upper half), which must end in the kernel exception report.
pub fn read_unmapped_kernel_address() {
    let address = super::mmu::DEVICE_BASE - 0x1000;
    // SAFETY: the read faults before it returns anything; the EL1 exception handler reports
    // it and powers off, so no code observes the value.
    let _ = unsafe { core::ptr::read_volatile(address as *const u64) };
}

/// Zeroes `len` bytes at kernel address `va`, a whole cache-zeroing block at a time
/// (`DC ZVA`, block size from DCZID_EL0) when alignment allows.
pub fn zero_memory(va: u64, len: u64) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let block = 4u64 << (dczid & 0xf);
    let prohibited = dczid & (1 << 4) != 0;
    if !prohibited && va.is_multiple_of(block) && len.is_multiple_of(block) {
        let mut a = va;
        while a < va + len {
            // SAFETY: `a..a + block` lies in `va..va + len`, which the caller owns (a fresh
            // object in the linear map, Normal memory as DC ZVA requires).
            unsafe { core::arch::asm!("dc zva, {}", in(reg) a, options(nostack, preserves_flags)) };
            a += block;
        }
    } else {
        // SAFETY: as above, the caller owns `va..va + len`.
        unsafe { core::ptr::write_bytes(va as *mut u8, 0, len as usize) };
    }
}

/// Whether an interrupt is pending (ISR_EL1.I): long operations stop at such a point and are
/// restarted after the interrupt has been taken.
pub fn interrupt_pending() -> bool {
    let isr: u64;
    // SAFETY: reading ISR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, isr_el1", out(reg) isr, options(nomem, nostack)) };
    isr & (1 << 7) != 0
}

/// Copies `src` into `dst` (the shorter length) eight bytes at a time, whatever their
/// alignment. The targets are built with `strict-align`, so the general `memcpy` copies an
/// unaligned source byte by byte; the CPU itself allows unaligned accesses to Normal memory
/// (SCTLR_EL1.A = 0), which this loop uses.
pub fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let words = n / 8;
    // SAFETY: the loop reads `words * 8` bytes from `src` and writes as many to `dst`, both
    // within the slices; both are Normal memory (kernel data or the linear map), where
    // unaligned accesses are permitted with SCTLR_EL1.A clear (boot.rs).
    unsafe {
        core::arch::asm!(
            "2: cbz {n}, 3f",
            "ldr {t}, [{s}], #8",
            "str {t}, [{d}], #8",
            "sub {n}, {n}, #1",
            "b 2b",
            "3:",
            n = inout(reg) words => _,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            t = out(reg) _,
            options(nostack),
        )
    };
    dst[words * 8..n].copy_from_slice(&src[words * 8..n]);
}
