//! Exception vectors, the user register context, and the hand-over to the safe handlers.
//!
//! From EL0, SP_EL1 points just past the running thread's [`UserContext`] (as in seL4), so the
//! vector stores the user registers straight into it, then switches to the kernel stack and
//! calls [`crate::trap::from_user`], which returns the context to resume. Exceptions taken at
//! EL1 are kernel bugs (the kernel runs with interrupts masked): they are reported and the
//! machine is powered off.

use super::boot::{BOOT_STACK, BOOT_STACK_SIZE};
use core::arch::global_asm;
use core::mem::{offset_of, size_of};

/// The registers of a user thread, saved on every kernel entry.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(16))]
pub struct UserContext {
    /// `x0`..`x30`.
    pub x: [u64; 31],
    /// `SP_EL0`.
    pub sp: u64,
    /// `ELR_EL1`: where the thread resumes.
    pub elr: u64,
    /// `SPSR_EL1`: the thread's PSTATE.
    pub spsr: u64,
    /// `TPIDR_EL0`: the user's thread pointer (libmk keeps the IPC buffer address there).
    pub tpidr: u64,
    _pad: u64,
}

const CTX_SIZE: usize = size_of::<UserContext>();
const _: () = assert!(offset_of!(UserContext, sp) == 31 * 8);
const _: () = assert!(offset_of!(UserContext, elr) == 32 * 8);
const _: () = assert!(offset_of!(UserContext, tpidr) == 34 * 8);
const _: () = assert!(CTX_SIZE == 36 * 8);

/// Registers saved when the kernel itself takes an exception (for the report only).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct KernelFrame {
    pub x: [u64; 31],
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    _unused: [u64; 2],
}

const _: () = assert!(size_of::<KernelFrame>() == CTX_SIZE);

/// What kind of exception a vector took (the low two bits) and from where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Synchronous,
    Irq,
    Fiq,
    SError,
}

impl Kind {
    fn from_vector(v: u64) -> Self {
        match v & 3 {
            0 => Self::Synchronous,
            1 => Self::Irq,
            2 => Self::Fiq,
            _ => Self::SError,
        }
    }
}

/// Vector numbers 4..=7 are from AArch32 EL0, which this kernel never starts.
const FROM_AARCH32: u64 = 4;

global_asm!(
    r#"
    // One vector: 32 instructions at most (ARM ARM D1.3.2, VBAR_EL1 table layout).
.macro USER_VECTOR kind
    .balign 0x80
    sub     sp, sp, #{ctx_size}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       .Luser_entry
.endm
.macro KERNEL_VECTOR kind
    .balign 0x80
    sub     sp, sp, #{ctx_size}
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       .Lkernel_entry
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global __exception_vectors
__exception_vectors:
    KERNEL_VECTOR 0     // current EL, SP_EL0
    KERNEL_VECTOR 1
    KERNEL_VECTOR 2
    KERNEL_VECTOR 3
    KERNEL_VECTOR 0     // current EL, SP_ELx
    KERNEL_VECTOR 1
    KERNEL_VECTOR 2
    KERNEL_VECTOR 3
    USER_VECTOR 0       // lower EL, AArch64
    USER_VECTOR 1
    USER_VECTOR 2
    USER_VECTOR 3
    USER_VECTOR 4       // lower EL, AArch32
    USER_VECTOR 5
    USER_VECTOR 6
    USER_VECTOR 7

.macro SAVE_X2_TO_X29
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
.endm

.Luser_entry:
    // sp = the running thread's UserContext; x0, x1 are saved, x1 = vector kind.
    SAVE_X2_TO_X29
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #16 * 15]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #16 * 16]
    mrs     x2, tpidr_el0
    str     x2, [sp, #16 * 17]
    mov     x0, sp
    adrp    x2, {stack}
    add     x2, x2, :lo12:{stack}
    add     sp, x2, #{stack_size}
    bl      {from_user}
    // x0 = the UserContext to resume.
    .global __return_to_user
__return_to_user:
    mov     sp, x0
    ldr     x2, [sp, #16 * 17]
    msr     tpidr_el0, x2
    ldp     x2, x3, [sp, #16 * 16]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #16 * 15]
    msr     sp_el0, x2
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{ctx_size}     // SP_EL1 = just past the context, ready for the next entry
    eret

.Lkernel_entry:
    // A kernel exception: save a frame on the current stack and report it.
    SAVE_X2_TO_X29
    add     x2, sp, #{ctx_size}
    stp     x30, x2, [sp, #16 * 15]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #16 * 16]
    mov     x0, sp
    bl      {from_kernel}
    b       .
"#,
    ctx_size = const CTX_SIZE,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    from_user = sym from_user,
    from_kernel = sym from_kernel,
);

unsafe extern "C" {
    /// Restores `context` and returns to EL0 (the tail of the user entry path above).
    fn __return_to_user(context: *mut UserContext) -> !;
}

/// Entered from the user vectors with the saved context; returns the context to resume.
extern "C" fn from_user(context: &mut UserContext, vector: u64) -> *mut UserContext {
    crate::trap::from_user(context, Kind::from_vector(vector), vector >= FROM_AARCH32)
}

/// Entered from the kernel vectors; never returns.
extern "C" fn from_kernel(frame: &KernelFrame, vector: u64) -> ! {
    crate::trap::from_kernel(frame, Kind::from_vector(vector))
}

/// Enters user mode with `context`; `context` must stay valid until the thread next enters
/// the kernel (it lives in a kernel-owned frame that is never freed).
pub fn enter_user(context: &'static mut UserContext) -> ! {
    // SAFETY: `__return_to_user` loads the registers from `context`, sets SP_EL1 just past it
    // and erets to EL0. The context is 'static and the kernel stack is abandoned, which is
    // how every later kernel entry starts anyway (from the top of the kernel stack).
    unsafe { __return_to_user(context) }
}
