//! Entry from the boot loader: the arm64 Image header, EL2 → EL1, the boot page tables, MMU on.
//!
//! QEMU (like any arm64 boot loader) jumps to the first byte of the Image with the MMU off,
//! `x0` = physical address of the device tree, at EL2 or EL1 (Linux `booting.rst`). This code
//! runs at whatever physical address the image was loaded at, so until the MMU is on it uses
//! only PC-relative addressing. It builds three small translations:
//!
//! ```text
//!   TTBR0: identity map of the 4 MiB around the image (only for the instant the MMU turns on)
//!   TTBR1: 0xffff_ffff_c000_0000  kernel window  -> the 2 MiB-aligned base the image sits in
//!          0xffff_ffff_8000_0000  device-tree window (4 MiB) -> the 2 MiB block holding x0
//! ```
//!
//! and jumps to `kernel_main` in the upper half. The linear map of RAM and the device mappings
//! are added by `mmu::build_kernel_map` once the device tree has been read.

use super::mmu::{BootTable, DTB_WINDOW, KERNEL_VBASE};
use core::arch::global_asm;

/// The boot page tables, filled by the assembly below before Rust runs.
pub static BOOT_L0_LO: BootTable = BootTable::new();
pub static BOOT_L1_LO: BootTable = BootTable::new();
pub static BOOT_L2_LO: BootTable = BootTable::new();
pub static BOOT_L0_HI: BootTable = BootTable::new();
pub static BOOT_L1_HI: BootTable = BootTable::new();
pub static BOOT_L2_KERNEL: BootTable = BootTable::new();
pub static BOOT_L2_DTB: BootTable = BootTable::new();

/// Size of the boot stack (one core runs the kernel; SMP will need one per core).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
pub struct BootStack([u8; BOOT_STACK_SIZE]);

/// The kernel stack. Only the assembly touches it, through its address.
pub static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

// Descriptor bits used below (ARM ARM D8.3): table = 0b11; a 2 MiB block of Normal memory
// (AttrIndx 1, see MAIR_EL1), inner shareable, access flag set, EL1 read/write, not executable
// at EL0 (UXN).
const TABLE: u64 = 0b11;
const BLOCK_NORMAL: u64 = 0b01 | (1 << 2) | (0b11 << 8) | (1 << 10) | (1 << 54);

// TCR_EL1 (ARM ARM D17.2.131): 48-bit VAs in both halves (T0SZ = T1SZ = 16), 4 KiB granules,
// table walks inner/outer write-back cacheable, inner shareable. IPS and AS are filled in at
// run time from ID_AA64MMFR0_EL1.
// TG0 = 0b00 (4 KiB) contributes no bits.
const TCR: u64 = 16 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) // TTBR0
    | (16 << 16) | (0b01 << 24) | (0b01 << 26) | (0b11 << 28) | (0b10 << 30); // TTBR1

// SCTLR_EL1 (ARM ARM D17.2.118): RES1 bits, MMU (M), data and instruction caches (C, I),
// stack alignment checks (SA, SA0), and EL0 access to CTR_EL0 (UCT), DC ZVA (DZE) and cache
// maintenance by VA (UCI). WFI/WFE at EL0 trap (nTWI = nTWE = 0).
const SCTLR_RES1: u64 = (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
const SCTLR_MMU_ON: u64 = SCTLR_RES1
    | (1 << 0)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 12)
    | (1 << 14)
    | (1 << 15)
    | (1 << 26);

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    // arm64 Image header (64 bytes; Linux Documentation/arch/arm64/booting.rst).
    b       1f                      // code0: branch over the header
    .long   0                       // code1
    .quad   0x80000                 // text_offset from a 2 MiB boundary
    .quad   __image_size            // image size, including .bss
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0, 0, 0                 // reserved
    .ascii  "ARM\x64"               // magic
    .long   0                       // reserved
1:
    mov     x19, x0                 // x19 = device tree physical address

    // Only the boot core continues; any other core that gets here waits forever.
    mrs     x9, mpidr_el1
    mov     x10, #0xffff        // Aff0..Aff3 = MPIDR_EL1 bits [23:0] and [39:32]
    movk    x10, #0xff, lsl #16
    movk    x10, #0xff, lsl #32
    and     x9, x9, x10
    cbnz    x9, .Lpark

    // Start the PMU cycle counter and event counter 0 from zero (PMCR_EL0.E | .P | .C),
    // both counting at EL0, EL1 and EL2 (filter bits P = U = 0, NSH = 1), for the
    // boot_to_init benchmark. Event counter 0 counts INST_RETIRED (event 0x08): instructions
    // executed, which unlike the cycle counter under QEMU -icount does not jump while the
    // CPU idles in `wfi` (a disk request).
    mov     x9, #((1 << 0) | (1 << 1) | (1 << 2))
    msr     pmcr_el0, x9
    mov     x9, #(1 << 27)
    msr     pmccfiltr_el0, x9
    mov     x9, #0x08
    movk    x9, #(1 << (27 - 16)), lsl #16
    msr     pmevtyper0_el0, x9
    mov     x9, #1
    movk    x9, #(1 << (31 - 16)), lsl #16
    msr     pmcntenset_el0, x9
    isb

    mrs     x20, CurrentEL
    lsr     x20, x20, #2            // x20 = exception level we were entered at
    cmp     x20, #2
    b.ne    .Lat_el1

    // At EL2: make EL1 AArch64 (HCR_EL2.RW) with nothing trapped, give EL1 the physical
    // counter and timer (CNTHCTL_EL2.EL1PCTEN | EL1PCEN), no virtual offset, no FP/SIMD traps
    // (CPTR_EL2 with TFP clear), EL1 PMU access with all counters (MDCR_EL2.HPMN = PMCR_EL0.N).
    mov     x9, #(1 << 31)
    msr     hcr_el2, x9
    mrs     x9, cnthctl_el2
    orr     x9, x9, #3
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    mov     x9, #0x33ff
    msr     cptr_el2, x9
    mrs     x9, pmcr_el0
    ubfx    x9, x9, #11, #5
    msr     mdcr_el2, x9
    msr     vttbr_el2, xzr
    // With a GICv3 CPU interface (ID_AA64PFR0_EL1.GIC != 0), let EL1 use its system
    // registers: ICC_SRE_EL2.SRE | .Enable.
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4
    cbz     x9, 2f
    mrs     x9, S3_4_C12_C9_5       // ICC_SRE_EL2
    orr     x9, x9, #0x1
    orr     x9, x9, #0x8
    msr     S3_4_C12_C9_5, x9
    isb
2:
    mov     x9, #{sctlr_res1_lo}
    movk    x9, #{sctlr_res1_hi}, lsl #16
    msr     sctlr_el1, x9           // EL1 starts with MMU and caches off
    mov     x9, #0x3c5              // SPSR_EL2: EL1h, D, A, I, F masked
    msr     spsr_el2, x9
    adr     x9, .Lat_el1
    msr     elr_el2, x9
    eret

.Lat_el1:
    // The stack and .bss, by physical address (MMU off).
    adrp    x9, {stack}
    add     x9, x9, :lo12:{stack}
    add     sp, x9, #{stack_size}
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
3:  cmp     x9, x10
    b.hs    4f
    stp     xzr, xzr, [x9], #16
    b       3b
4:
    adr     x21, _start             // x21 = physical address of the image
    mov     x9, #{block}
    movk    x9, #{block_hi}, lsl #48

    // TTBR0: identity map of the two 2 MiB blocks from the one holding _start.
    adrp    x0, {l0_lo}
    adrp    x1, {l1_lo}
    adrp    x2, {l2_lo}
    ubfx    x3, x21, #39, #9
    orr     x4, x1, #{table}
    str     x4, [x0, x3, lsl #3]
    ubfx    x3, x21, #30, #9
    orr     x4, x2, #{table}
    str     x4, [x1, x3, lsl #3]
    ubfx    x3, x21, #21, #9
    lsr     x4, x21, #21
    lsl     x4, x4, #21
    orr     x4, x4, x9
    str     x4, [x2, x3, lsl #3]
    add     x3, x3, #1
    and     x3, x3, #511
    add     x4, x4, #(1 << 21)
    str     x4, [x2, x3, lsl #3]

    // TTBR1: L0[511] -> L1; L1[511] -> kernel window; L1[510] -> device-tree window.
    adrp    x0, {l0_hi}
    adrp    x1, {l1_hi}
    adrp    x2, {l2_kernel}
    adrp    x3, {l2_dtb}
    orr     x4, x1, #{table}
    str     x4, [x0, #(511 * 8)]
    orr     x4, x2, #{table}
    str     x4, [x1, #(511 * 8)]
    orr     x4, x3, #{table}
    str     x4, [x1, #(510 * 8)]

    // Kernel window: blocks from the 2 MiB boundary below _start until __kernel_end.
    lsr     x4, x21, #21
    lsl     x4, x4, #21
    orr     x4, x4, x9
    ldr     x5, =__kernel_end
    ldr     x6, ={kernel_vbase}
    sub     x5, x5, x6              // bytes from the window base to the end of the image
    mov     x7, #0x1fffff
    add     x5, x5, x7
    lsr     x5, x5, #21             // number of 2 MiB blocks
    mov     x6, #0
5:  str     x4, [x2, x6, lsl #3]
    add     x4, x4, #(1 << 21)
    add     x6, x6, #1
    cmp     x6, x5
    b.lo    5b

    // Device-tree window: the block holding the device tree and the next one (a device tree
    // is at most 2 MiB), if the boot loader gave us one.
    cbz     x19, 6f
    lsr     x4, x19, #21
    lsl     x4, x4, #21
    orr     x4, x4, x9
    str     x4, [x3]
    add     x4, x4, #(1 << 21)
    str     x4, [x3, #8]
6:
    // Memory attributes, translation control, table bases.
    ldr     x9, ={mair}
    msr     mair_el1, x9
    ldr     x9, ={tcr}
    mrs     x10, id_aa64mmfr0_el1
    and     x11, x10, #0xf          // PARange
    cmp     x11, #5
    mov     x12, #5
    csel    x11, x11, x12, ls       // above 48 bits needs 52-bit descriptors: stay at 48
    bfi     x9, x11, #32, #3        // TCR_EL1.IPS
    ubfx    x11, x10, #4, #4        // ASIDBits
    cmp     x11, #2
    b.ne    7f
    orr     x9, x9, #(1 << 36)      // TCR_EL1.AS: 16-bit ASIDs
7:  msr     tcr_el1, x9
    adrp    x9, {l0_lo}
    msr     ttbr0_el1, x9
    adrp    x9, {l0_hi}
    msr     ttbr1_el1, x9
    dsb     ish
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x9, ={sctlr}
    msr     sctlr_el1, x9
    isb
    ldr     x9, =.Lhigh
    br      x9

.Lhigh:
    // Now in the upper half: the same stack by its virtual address, the vectors, then Rust.
    ldr     x9, ={stack}
    add     sp, x9, #{stack_size}
    ldr     x9, =__exception_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x19
    mov     x1, x21
    mov     x2, x20
    bl      {main}
.Lpark:
    wfe
    b       .Lpark
    .ltorg
"#,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    l0_lo = sym BOOT_L0_LO,
    l1_lo = sym BOOT_L1_LO,
    l2_lo = sym BOOT_L2_LO,
    l0_hi = sym BOOT_L0_HI,
    l1_hi = sym BOOT_L1_HI,
    l2_kernel = sym BOOT_L2_KERNEL,
    l2_dtb = sym BOOT_L2_DTB,
    table = const TABLE,
    block = const BLOCK_NORMAL & 0xffff,
    block_hi = const BLOCK_NORMAL >> 48,
    kernel_vbase = const KERNEL_VBASE,
    mair = const kernel_core::pte::MAIR_EL1_VALUE,
    tcr = const TCR,
    sctlr = const SCTLR_MMU_ON,
    sctlr_res1_lo = const SCTLR_RES1 & 0xffff,
    sctlr_res1_hi = const SCTLR_RES1 >> 16,
    main = sym crate::kernel_main,
);

const _: () = assert!(BLOCK_NORMAL & !0xffff == (BLOCK_NORMAL >> 48) << 48);
const _: () = assert!(DTB_WINDOW == KERNEL_VBASE - (1 << 30));
