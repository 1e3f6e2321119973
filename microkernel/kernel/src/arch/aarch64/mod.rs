//! Everything AArch64-specific: entry, exception vectors, translation tables, GIC, timer, PSCI.

pub mod boot;
pub mod cpu;
pub mod exception;
pub mod fp;
pub mod gic;
pub mod mmu;
pub mod psci;
pub mod timer;
