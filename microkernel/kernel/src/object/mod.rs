//! Kernel objects in memory: where each lives and how the kernel reaches it.
//!
//! Every object was retyped by user space out of untyped RAM (or carved at boot for the root
//! task) and is reached through the linear map. Capabilities name objects by physical
//! address; links between objects (queues, reply targets, derivation-tree neighbours) are
//! kernel virtual addresses, 0 meaning none.
//!
//! # Invariants
//! - An `Obj<T>` is only made from the address of a live object of type `T` (from a
//!   capability whose type says so, or from a link the kernel itself maintains and clears
//!   when the object dies).
//! - The kernel runs on one core with interrupts masked, so no two kernel paths touch an
//!   object at the same time; a `&mut` obtained from [`Obj::get`] is used and dropped before
//!   another one to the same object is made.

pub mod cnode;
pub mod endpoint;
pub mod irq;
pub mod notification;
pub mod tcb;
pub mod timer;
pub mod untyped;
pub mod vspace;

use crate::arch::mmu::{LINEAR_BASE, phys_to_virt};
use core::marker::PhantomData;

/// A kernel object of type `T`, by its kernel virtual address.
pub struct Obj<T> {
    kva: u64,
    kind: PhantomData<*mut T>,
}

impl<T> Clone for Obj<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Obj<T> {}
impl<T> PartialEq for Obj<T> {
    fn eq(&self, other: &Self) -> bool {
        self.kva == other.kva
    }
}
impl<T> Eq for Obj<T> {}
impl<T> core::fmt::Debug for Obj<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#x}", self.kva)
    }
}

impl<T> Obj<T> {
    /// The object at physical address `pa`.
    pub const fn from_pa(pa: u64) -> Self {
        Self {
            kva: phys_to_virt(pa),
            kind: PhantomData,
        }
    }

    /// The object at kernel virtual address `kva` (nonzero).
    pub const fn from_kva(kva: u64) -> Self {
        Self {
            kva,
            kind: PhantomData,
        }
    }

    /// The object at kernel virtual address `kva` (a link); `None` for 0.
    pub const fn from_link(kva: u64) -> Option<Self> {
        if kva == 0 {
            None
        } else {
            Some(Self {
                kva,
                kind: PhantomData,
            })
        }
    }

    pub const fn kva(self) -> u64 {
        self.kva
    }

    pub const fn pa(self) -> u64 {
        self.kva - LINEAR_BASE
    }

    /// The object itself, for the duration of one kernel step (see the module invariants).
    pub fn get(&self) -> &'static mut T {
        // SAFETY: by the module invariants `kva` is a live, properly aligned object of type
        // `T` in the linear map, and no other reference to it is alive while this one is used.
        unsafe { &mut *(self.kva as *mut T) }
    }
}

/// The link value of an optional object.
pub fn link<T>(o: Option<Obj<T>>) -> u64 {
    o.map_or(0, |o| o.kva())
}

/// Zeroes `len` bytes of RAM at physical address `pa` (a fresh object).
pub fn zero_phys(pa: u64, len: u64) {
    crate::arch::cpu::zero_memory(phys_to_virt(pa), len);
}
